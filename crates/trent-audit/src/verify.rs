//! `trent audit verify`: check the chain, the signature files and the head of an audit
//! directory, and name every place where the log is not what its node wrote.

use crate::attest::Attestation;
use crate::chain::{GENESIS_HASH, hash_line, read_chain};
use crate::prune::{PRUNE_FILE, PruneStatement};
use crate::signer::AuditPublicKey;
use crate::{HEAD_FILE, PUBLIC_KEY_FILE, parse_log_file_name};
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use trent_crypto::primitives::sha256;

/// One thing wrong with the log, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in (a log file, a signature file or the head).
    pub file: String,
    /// The line of a log file, counted from 1.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub records: u64,
    /// The first record the log holds: 1, or the one after what retention removed.
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// What retention removed, as its signed statement says (when it verified).
    pub pruned: Option<PruneStatement>,
    /// Signature files and heads whose signature verified.
    pub signatures: usize,
    /// In the order met: the first is the first place the log was changed.
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line on what retention removed, when it removed anything: the records and files, the
    /// last prune's time and setting, and where the log verifies from.
    pub fn pruned_summary(&self) -> Option<String> {
        let s = self.pruned.as_ref()?;
        let mut reasons: Vec<&str> = Vec::new();
        for f in &s.removed {
            if !reasons.contains(&f.reason.setting()) {
                reasons.push(f.reason.setting());
            }
        }
        Some(format!(
            "pruned: records 1..{} ({} files, {} .. {}, {} bytes) were removed by retention, last at {} under {}; the log verifies from record {}",
            s.last_sequence,
            s.files,
            crate::log_file_name(1),
            s.removed.last().map_or("", |f| f.file.as_str()),
            s.bytes,
            s.time,
            reasons.join(" and "),
            s.last_sequence + 1
        ))
    }

    fn problem(&mut self, file: &str, line: Option<usize>, message: String) {
        self.problems.push(Problem {
            file: file.to_string(),
            line,
            message,
        });
    }
}

/// A record's place in the chain: its sequence number and the hash of the line before it.
type Link = (u64, String);

/// A signed statement, and the file that holds it.
struct Statement {
    holder: String,
    attestation: Attestation,
}

/// Verify the audit log in `dir` with `key`, or with the public key the node left in the
/// directory when none is given (which proves only that the log agrees with itself: give the
/// key kept elsewhere to prove it is the node's).
pub fn verify_dir(dir: &Path, key: Option<&AuditPublicKey>) -> Result<Report, String> {
    let shown = dir.display();
    let own;
    let key = match key {
        Some(k) => k,
        None => {
            let pem = std::fs::read(dir.join(PUBLIC_KEY_FILE)).map_err(|e| {
                format!(
                    "{shown}/{PUBLIC_KEY_FILE}: {e} (give the node's public key with --public-key)"
                )
            })?;
            own = AuditPublicKey::from_pem(&pem)
                .map_err(|e| format!("{shown}/{PUBLIC_KEY_FILE}: {e}"))?;
            &own
        }
    };
    let mut report = Report::default();
    // Where the log begins: after what a verified prune statement says was removed.
    match std::fs::read(dir.join(PRUNE_FILE)) {
        Ok(bytes) => match PruneStatement::open(&bytes, key) {
            Ok(Some(s)) => match s.inconsistency() {
                None => {
                    report.signatures += 1;
                    report.pruned = Some(s);
                }
                Some(why) => report.problem(PRUNE_FILE, None, why),
            },
            Ok(None) => report.problem(
                PRUNE_FILE,
                None,
                format!("its signature does not verify with key {}", key.key_id()),
            ),
            Err(e) => report.problem(PRUNE_FILE, None, e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{PRUNE_FILE}: {e}")),
    }
    let (pruned_to, pruned_hash) = report
        .pruned
        .as_ref()
        .map_or((0, GENESIS_HASH.to_string()), |s| {
            (s.last_sequence, s.last_hash.clone())
        });
    report.first_sequence = pruned_to + 1;
    let mut logs = BTreeMap::new();
    let mut statements: Vec<Statement> = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{shown}: {e}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        if let Some(first) = parse_log_file_name(&name) {
            logs.insert(first, name);
        } else if name.ends_with(".jsonl.sig") || name == HEAD_FILE {
            let bytes = std::fs::read(dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
            match Attestation::open(&bytes, key) {
                Ok(Some(attestation)) => {
                    report.signatures += 1;
                    statements.push(Statement {
                        holder: name,
                        attestation,
                    });
                }
                Ok(None) => report.problem(
                    &name,
                    None,
                    format!("its signature does not verify with key {}", key.key_id()),
                ),
                Err(e) => report.problem(&name, None, e),
            }
        }
    }
    // Signature files of log files that are gone (but for what retention removed: a prune cut
    // short removes a log file before its signature file).
    for s in &statements {
        let a = &s.attestation;
        if a.kind == "file" && a.last_sequence > pruned_to && !logs.values().any(|n| *n == a.file) {
            report.problem(
                &a.file,
                None,
                format!(
                    "missing: records {}..{} are gone (its signature file {} is here)",
                    a.first_sequence, a.last_sequence, s.holder
                ),
            );
        }
    }

    let mut expected = pruned_to + 1;
    let mut previous = pruned_hash;
    let mut previous_at: Option<(String, usize)> = None;
    let last_name = logs.values().next_back().cloned();
    let mut previous_file: Option<String> = None;
    for (first, name) in &logs {
        if *first <= pruned_to {
            report.problem(
                name,
                None,
                format!(
                    "still here: {PRUNE_FILE} says records 1..{pruned_to} were removed, and this file holds records from {first} (a prune cut short by a stop is finished when the node starts again)"
                ),
            );
            continue;
        }
        report.files += 1;
        let data = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut line_no = 0;
        let mut last_in_file: Option<(u64, String)> = None;
        // Every complete line (the file up to its last newline), with what its chain says.
        let lines: Vec<(&[u8], Option<Link>)> = data[..complete]
            .strip_suffix(b"\n")
            .map(|body| {
                body.split(|b| *b == b'\n')
                    .map(|l| (l, read_chain(l)))
                    .collect()
            })
            .unwrap_or_default();
        let in_file: HashSet<u64> = lines
            .iter()
            .filter_map(|(_, c)| Some(c.as_ref()?.0))
            .collect();
        for (line, chain) in &lines {
            line_no += 1;
            let hash = hash_line(line);
            match chain {
                None => {
                    report.problem(
                        name,
                        Some(line_no),
                        "edited: not a sealed audit record".into(),
                    );
                    expected += 1;
                }
                Some((sequence, previous_hash)) => {
                    let sequence = *sequence;
                    if line_no == 1 && sequence != *first {
                        report.problem(
                            name,
                            Some(line_no),
                            format!("renamed or edited: the file's name says its first record is {first}, the record says {sequence}"),
                        );
                    }
                    if sequence > expected && in_file.contains(&expected) {
                        report.problem(
                            name,
                            Some(line_no),
                            format!("reordered: record {sequence} stands where record {expected} belongs"),
                        );
                    } else if sequence > expected {
                        let message = if line_no == 1 {
                            let after = match (&previous_file, pruned_to) {
                                (Some(p), _) => format!(" (after {p})"),
                                (None, 0) => String::new(),
                                (None, n) => format!(
                                    " (after records 1..{n}, which {PRUNE_FILE} says were removed)"
                                ),
                            };
                            format!(
                                "missing file: records {expected}..{} are absent before this file{after}",
                                sequence - 1
                            )
                        } else {
                            format!(
                                "deleted: records {expected}..{} are absent before this record",
                                sequence - 1
                            )
                        };
                        report.problem(name, Some(line_no), message);
                        expected = sequence + 1;
                    } else if sequence < expected {
                        report.problem(
                            name,
                            Some(line_no),
                            format!("reordered or repeated: record {sequence} where record {expected} belongs"),
                        );
                    } else {
                        if *previous_hash != previous && previous_at.is_none() && pruned_to > 0 {
                            report.problem(
                                name,
                                Some(line_no),
                                format!(
                                    "does not follow what was removed: its previousHash is not the hash {PRUNE_FILE} gives for record {pruned_to}"
                                ),
                            );
                        } else if *previous_hash != previous {
                            let at = previous_at
                                .as_ref()
                                .map(|(f, l)| format!(" ({f} line {l})"))
                                .unwrap_or_default();
                            report.problem(
                                name,
                                Some(line_no),
                                format!(
                                    "the record before this one, {}{at}, was edited or replaced",
                                    sequence.saturating_sub(1)
                                ),
                            );
                        }
                        expected = sequence + 1;
                    }
                    last_in_file = Some((sequence, hash.clone()));
                    report.records += 1;
                    report.last_sequence = report.last_sequence.max(sequence);
                }
            }
            previous = hash;
            previous_at = Some((name.clone(), line_no));
        }
        if complete < data.len() {
            report.problem(
                name,
                Some(line_no + 1),
                "truncated: the last record is incomplete".into(),
            );
        }
        // What the node signed about this file.
        let file_sig = statements
            .iter()
            .find(|s| s.attestation.kind == "file" && s.attestation.file == *name);
        match file_sig {
            Some(s) => check_statement(&mut report, name, &data, last_in_file.as_ref(), s),
            None if Some(name) != last_name.as_ref() => report.problem(
                name,
                None,
                "not signed: every file but the newest is signed when it is closed".into(),
            ),
            None => {}
        }
        for s in statements
            .iter()
            .filter(|s| s.holder == HEAD_FILE && s.attestation.file == *name)
        {
            check_statement(&mut report, name, &data, last_in_file.as_ref(), s);
        }
        previous_file = Some(name.clone());
    }
    match statements.iter().find(|s| s.holder == HEAD_FILE) {
        None if !report.problems.iter().any(|p| p.file == HEAD_FILE) => report.problem(
            HEAD_FILE,
            None,
            "missing: the end of the log cannot be checked without it".into(),
        ),
        None => {}
        Some(head) => {
            let h = &head.attestation;
            if !h.file.is_empty() && !logs.values().any(|n| *n == h.file) {
                report.problem(
                    &h.file,
                    None,
                    format!(
                        "missing: {HEAD_FILE} names it, holding records up to {}",
                        h.last_sequence
                    ),
                );
            }
            // Every close moves the head to the file it closed: a head behind a signed file
            // is an older head put back.
            if let Some(newer) = statements
                .iter()
                .filter(|s| s.attestation.kind == "file")
                .max_by_key(|s| s.attestation.last_sequence)
                .filter(|s| s.attestation.last_sequence > h.last_sequence)
            {
                report.problem(
                    HEAD_FILE,
                    None,
                    format!(
                        "replaced by an older one: it ends at record {}, {} ends at {}",
                        h.last_sequence, newer.holder, newer.attestation.last_sequence
                    ),
                );
            }
        }
    }
    // A statement naming records beyond the end: the end was cut off.
    if pruned_to > report.last_sequence {
        report.problem(
            PRUNE_FILE,
            None,
            format!(
                "truncated: it says records up to {pruned_to} were removed, the log ends at {}",
                report.last_sequence
            ),
        );
    } else if let Some(s) = statements
        .iter()
        .filter(|s| s.attestation.last_sequence > report.last_sequence)
        .max_by_key(|s| s.attestation.last_sequence)
    {
        report.problem(
            &s.attestation.file,
            None,
            format!(
                "truncated: {} names records up to {}, the log ends at {}",
                s.holder, s.attestation.last_sequence, report.last_sequence
            ),
        );
    }
    Ok(report)
}

/// Check a log file against a signed statement about it: the head covers a prefix of the
/// file, a signature file the whole of it.
fn check_statement(
    report: &mut Report,
    name: &str,
    data: &[u8],
    last_in_file: Option<&(u64, String)>,
    s: &Statement,
) {
    let a = &s.attestation;
    let whole = a.kind == "file";
    let len = data.len() as u64;
    if len < a.bytes {
        report.problem(
            name,
            None,
            format!(
                "truncated: {} covers {} bytes up to record {}, the file has {len}",
                s.holder, a.bytes, a.last_sequence
            ),
        );
    } else if whole && len > a.bytes {
        report.problem(
            name,
            None,
            format!(
                "appended to: {} covers {} bytes, the file has {len}",
                s.holder, a.bytes
            ),
        );
    } else if hex::encode(sha256(&data[..a.bytes as usize])) != a.sha256 {
        report.problem(
            name,
            None,
            format!(
                "edited: the first {} bytes differ from what {} signed",
                a.bytes, s.holder
            ),
        );
    } else if whole
        && last_in_file.is_some_and(|(seq, hash)| *seq != a.last_sequence || *hash != a.last_hash)
    {
        report.problem(
            name,
            None,
            format!("edited: its last record is not the one {} signed", s.holder),
        );
    }
}
