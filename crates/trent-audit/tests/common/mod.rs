//! What the tests read back: the log files and their lines.

use std::path::{Path, PathBuf};

/// The log files of `dir` (`audit-*.jsonl`), oldest first.
pub fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    v.sort();
    v
}

/// The lines of one file.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every line of every log file of `dir`, in order.
#[allow(dead_code)]
pub fn all_lines(dir: &Path) -> Vec<String> {
    logs(dir).iter().flat_map(|f| lines(f)).collect()
}
