//! Retention end to end: the writer removes the oldest closed files past a total size or an age,
//! after a signed statement of what it removed (`pruned.json`); `verify_dir` then verifies what
//! remains and names the cut, and still names a file removed without such a statement, a forged
//! or edited statement, an older statement put back (which would hide a gap) and a statement that
//! claims files still there.

use serde_json::{Map, Value, json};
mod common;

use common::logs;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use trent_audit::{
    AuditConfig, AuditKeySpec, AuditLog, AuditSigner, PRUNE_FILE, PruneReason, PruneStatement,
    Report, Retention, verify_dir,
};

fn record(i: u64) -> Map<String, Value> {
    json!({
        "eventVersion": "1.11",
        "eventName": "Encrypt",
        "requestID": format!("req-{i:08}"),
        "requestParameters": {"keyId": "arn:aws:kms:us-east-1:111122223333:key/k", "encryptionContext": {"n": i.to_string()}},
    })
    .as_object()
    .unwrap()
    .clone()
}

/// A log in `dir` with small files (4 KiB: about 20 records each) and `retention`.
fn config(dir: &Path, retention: Retention) -> AuditConfig {
    let mut c = AuditConfig::new(dir.to_path_buf(), "test-node");
    c.max_file_bytes = 4096;
    c.retention = retention;
    c
}

fn by_size(bytes: u64) -> Retention {
    Retention {
        max_total_bytes: Some(bytes),
        max_age: None,
    }
}

/// The node's key pair, kept between runs of the log in a test.
fn signer_pair() -> (Vec<u8>, trent_audit::AuditPublicKey) {
    let (signer, pkcs8) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    (pkcs8.to_vec(), signer.public_key())
}

fn signer(pkcs8: &[u8]) -> AuditSigner {
    AuditSigner::from_pkcs8(AuditKeySpec::Ed25519, pkcs8).unwrap()
}

/// Open the log with `config`, append records `from..to`, and close it; its stats at the end.
async fn run(config: AuditConfig, pkcs8: &[u8], from: u64, to: u64) -> trent_audit::StatsSnapshot {
    let log = AuditLog::open(config, signer(pkcs8)).unwrap();
    for i in from..to {
        log.append(record(i)).await.unwrap();
    }
    let stats = log.stats();
    log.close().await;
    stats
}

fn problems(report: &Report) -> Vec<String> {
    report.problems.iter().map(|p| p.to_string()).collect()
}

fn names(dir: &Path) -> Vec<String> {
    logs(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn log_bytes(dir: &Path) -> u64 {
    logs(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn statement(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(PRUNE_FILE)).unwrap()).unwrap()
}

#[tokio::test]
async fn past_the_total_the_oldest_files_go_and_what_remains_verifies_from_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    let stats = run(config(dir.path(), by_size(16 * 1024)), &pkcs8, 0, 1000).await;

    let files = names(dir.path());
    // About 50 files were written; at most the bound plus the file being filled are left.
    assert!(files.len() <= 6, "{files:?}");
    assert!(log_bytes(dir.path()) <= 16 * 1024 + 2 * 4096 + 1024);
    assert!(stats.pruned.files >= 40, "{:?}", stats.pruned);
    assert!(stats.pruned.bytes >= 40 * 4096);
    assert_eq!(stats.pruned.failures, 0);
    // Every removed file's signature went with it.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(log) = name.strip_suffix(".sig") {
            assert!(files.iter().any(|f| f == log), "{name} outlived its file");
        }
    }

    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", problems(&report));
    let s = report.pruned.clone().expect("a prune statement");
    let first_left: u64 = files[0]["audit-".len()..][..12].parse().unwrap();
    assert_eq!(report.first_sequence, s.last_sequence + 1);
    assert_eq!(report.first_sequence, first_left);
    assert_eq!(report.last_sequence, 1000);
    assert_eq!(report.records, 1000 - s.last_sequence);
    assert_eq!(s.files, stats.pruned.files);
    assert!(
        s.removed
            .iter()
            .all(|f| f.reason == PruneReason::MaxTotalBytes)
    );
    let summary = report.pruned_summary().unwrap();
    assert!(
        summary.starts_with(&format!(
            "pruned: records 1..{} ({} files, audit-000000000001.jsonl .. {}, {} bytes) were removed by retention, last at ",
            s.last_sequence,
            s.files,
            s.removed.last().unwrap().file,
            s.bytes
        )),
        "{summary}"
    );
    assert!(
        summary.ends_with(&format!(
            " under --audit-max-total-bytes; the log verifies from record {}",
            s.last_sequence + 1
        )),
        "{summary}"
    );

    // The log goes on after a restart, and keeps pruning.
    run(config(dir.path(), by_size(16 * 1024)), &pkcs8, 1000, 1200).await;
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", problems(&report));
    assert_eq!(report.last_sequence, 1200);
    assert!(report.pruned.unwrap().last_sequence > s.last_sequence);
}

static CLOCK_OFFSET_SECS: AtomicI64 = AtomicI64::new(0);

fn test_clock() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(CLOCK_OFFSET_SECS.load(Ordering::SeqCst))
}

#[tokio::test]
async fn files_closed_longer_ago_than_the_age_go() {
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    let mut c = config(
        dir.path(),
        Retention {
            max_total_bytes: None,
            max_age: Some(Duration::from_secs(30 * 86_400)),
        },
    );
    c.clock = test_clock;
    let log = AuditLog::open(c, signer(&pkcs8)).unwrap();
    for i in 0..200 {
        log.append(record(i)).await.unwrap();
    }
    let before = names(dir.path());
    assert!(before.len() >= 8, "{before:?}");
    assert_eq!(log.stats().pruned.files, 0, "nothing is 30 days old yet");
    // 31 days later, the files closed until then are old; the next roll prunes them.
    CLOCK_OFFSET_SECS.store(31 * 86_400, Ordering::SeqCst);
    for i in 200..260 {
        log.append(record(i)).await.unwrap();
    }
    let stats = log.stats();
    log.close().await;
    let after = names(dir.path());
    // Every file closed before the jump is gone but the one the head named then; the files
    // closed since are young.
    assert!(stats.pruned.files >= before.len() as u64 - 2, "{stats:?}");
    assert!(!after.contains(&before[0]), "{after:?}");
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", problems(&report));
    assert_eq!(report.last_sequence, 260);
    let s = report.pruned.clone().unwrap();
    assert!(s.removed.iter().all(|f| f.reason == PruneReason::MaxAge));
    assert!(
        report
            .pruned_summary()
            .unwrap()
            .contains(" under --audit-max-age-days; "),
        "{:?}",
        report.pruned_summary()
    );
}

/// A pruned log of 400 records, its key, and the names of the files left.
async fn pruned_log(dir: &Path) -> (Vec<u8>, trent_audit::AuditPublicKey, Vec<String>) {
    let (pkcs8, key) = signer_pair();
    run(config(dir, by_size(16 * 1024)), &pkcs8, 0, 400).await;
    let report = verify_dir(dir, Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", problems(&report));
    assert!(report.pruned.is_some());
    (pkcs8, key, names(dir))
}

fn first_of(name: &str) -> u64 {
    name["audit-".len()..][..12].parse().unwrap()
}

#[tokio::test]
async fn a_file_removed_without_a_statement_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key, files) = pruned_log(dir.path()).await;
    let pruned_to = statement(dir.path())["lastSequence"].as_u64().unwrap();
    // The oldest file left goes, with its signature, as an intruder would remove it.
    std::fs::remove_file(dir.path().join(&files[0])).unwrap();
    std::fs::remove_file(dir.path().join(format!("{}.sig", files[0]))).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [format!(
            "{}:1: missing file: records {}..{} are absent before this file (after records 1..{pruned_to}, which pruned.json says were removed)",
            files[1],
            pruned_to + 1,
            first_of(&files[1]) - 1
        )]
    );

    // In a log never pruned, removing the first file is named too.
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    run(config(dir.path(), Retention::default()), &pkcs8, 0, 100).await;
    let files = names(dir.path());
    std::fs::remove_file(dir.path().join(&files[0])).unwrap();
    std::fs::remove_file(dir.path().join(format!("{}.sig", files[0]))).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [format!(
            "{}:1: missing file: records 1..{} are absent before this file",
            files[1],
            first_of(&files[1]) - 1
        )]
    );
}

#[tokio::test]
async fn the_statement_removed_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key, files) = pruned_log(dir.path()).await;
    std::fs::remove_file(dir.path().join(PRUNE_FILE)).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [format!(
            "{}:1: missing file: records 1..{} are absent before this file",
            files[0],
            first_of(&files[0]) - 1
        )]
    );
}

#[tokio::test]
async fn a_forged_or_edited_statement_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key, files) = pruned_log(dir.path()).await;
    let good = std::fs::read(dir.path().join(PRUNE_FILE)).unwrap();
    let first_left = first_of(&files[0]);

    // Edited to claim the next file too, keeping the node's signature.
    let mut edited = statement(dir.path());
    edited["lastSequence"] = json!(first_of(&files[1]) - 1);
    std::fs::write(dir.path().join(PRUNE_FILE), edited.to_string()).unwrap();
    std::fs::remove_file(dir.path().join(&files[0])).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    let p = problems(&report);
    assert_eq!(
        p[0],
        format!(
            "pruned.json: its signature does not verify with key {}",
            key.key_id()
        )
    );
    // Without a statement to trust, the removed records are missing.
    assert!(
        p.iter().any(|l| l.contains("missing file: records 1..")),
        "{p:?}"
    );

    // Forged outright: a statement signed with another key.
    let (other, _) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let mut forged: PruneStatement = serde_json::from_value({
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v.as_object_mut().unwrap().remove("signature");
        v
    })
    .unwrap();
    forged.last_sequence = first_of(&files[1]) - 1;
    forged.removed.last_mut().unwrap().last_sequence = forged.last_sequence;
    std::fs::write(dir.path().join(PRUNE_FILE), forged.sign(&other).unwrap()).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report)[0],
        format!(
            "pruned.json: its signature does not verify with key {}",
            key.key_id()
        )
    );
    assert!(report.pruned.is_none());

    // The genuine statement back, the file still gone (its signature file left): its records
    // are missing.
    std::fs::write(dir.path().join(PRUNE_FILE), &good).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [
            format!(
                "{}: missing: records {first_left}..{} are gone (its signature file {}.sig is here)",
                files[0],
                first_of(&files[1]) - 1,
                files[0]
            ),
            format!(
                "{}:1: missing file: records {first_left}..{} are absent before this file (after records 1..{}, which pruned.json says were removed)",
                files[1],
                first_of(&files[1]) - 1,
                first_left - 1
            )
        ]
    );
}

#[tokio::test]
async fn an_older_statement_put_back_does_not_hide_what_a_later_prune_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key, _) = pruned_log(dir.path()).await;
    let older = std::fs::read(dir.path().join(PRUNE_FILE)).unwrap();
    let older_to = statement(dir.path())["lastSequence"].as_u64().unwrap();
    run(config(dir.path(), by_size(16 * 1024)), &pkcs8, 400, 600).await;
    let files = names(dir.path());
    assert!(verify_dir(dir.path(), Some(&key)).unwrap().ok());
    std::fs::write(dir.path().join(PRUNE_FILE), older).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [format!(
            "{}:1: missing file: records {}..{} are absent before this file (after records 1..{older_to}, which pruned.json says were removed)",
            files[0],
            older_to + 1,
            first_of(&files[0]) - 1
        )]
    );
}

#[tokio::test]
async fn a_statement_that_claims_a_file_still_there_is_named_and_a_restart_finishes_the_prune() {
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    // Unpruned first; keep a copy of the oldest file as a prune cut short would leave it.
    run(config(dir.path(), Retention::default()), &pkcs8, 0, 200).await;
    let oldest = names(dir.path())[0].clone();
    let copy = std::fs::read(dir.path().join(&oldest)).unwrap();
    let copy_sig = std::fs::read(dir.path().join(format!("{oldest}.sig"))).unwrap();
    run(config(dir.path(), by_size(16 * 1024)), &pkcs8, 200, 201).await;
    assert!(!dir.path().join(&oldest).exists());
    std::fs::write(dir.path().join(&oldest), &copy).unwrap();
    std::fs::write(dir.path().join(format!("{oldest}.sig")), &copy_sig).unwrap();
    let pruned_to = statement(dir.path())["lastSequence"].as_u64().unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [format!(
            "{oldest}: still here: pruned.json says records 1..{pruned_to} were removed, and this file holds records from 1 (a prune cut short by a stop is finished when the node starts again)"
        )]
    );
    // The next start removes it.
    run(config(dir.path(), by_size(16 * 1024)), &pkcs8, 201, 202).await;
    assert!(!dir.path().join(&oldest).exists());
    assert!(!dir.path().join(format!("{oldest}.sig")).exists());
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", problems(&report));
}

#[tokio::test]
async fn retention_never_removes_past_a_file_removed_or_changed_behind_the_nodes_back() {
    // A file removed from the middle: the node prunes up to it and no further, so the gap
    // stays for verify to name.
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    run(config(dir.path(), Retention::default()), &pkcs8, 0, 200).await;
    let files = names(dir.path());
    std::fs::remove_file(dir.path().join(&files[2])).unwrap();
    std::fs::remove_file(dir.path().join(format!("{}.sig", files[2]))).unwrap();
    let stats = run(config(dir.path(), by_size(1)), &pkcs8, 200, 201).await;
    assert_eq!(stats.pruned.files, 2, "{stats:?}");
    assert!(stats.pruned.failures >= 1);
    assert!(dir.path().join(&files[3]).exists());
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        problems(&report),
        [format!(
            "{}:1: missing file: records {}..{} are absent before this file (after records 1..{}, which pruned.json says were removed)",
            files[3],
            first_of(&files[2]),
            first_of(&files[3]) - 1,
            first_of(&files[2]) - 1
        )]
    );

    // A file cut short: nothing from it on is pruned.
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    run(config(dir.path(), Retention::default()), &pkcs8, 0, 200).await;
    let files = names(dir.path());
    let path = dir.path().join(&files[0]);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let stats = run(config(dir.path(), by_size(1)), &pkcs8, 200, 201).await;
    assert_eq!(stats.pruned.files, 0);
    assert!(stats.pruned.failures >= 1);
    assert!(!dir.path().join(PRUNE_FILE).exists());
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(
        problems(&report)
            .iter()
            .any(|p| p.starts_with(&format!("{}: truncated:", files[0]))),
        "{:?}",
        problems(&report)
    );
}

#[tokio::test]
async fn the_open_file_and_the_one_the_head_names_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, key) = signer_pair();
    let log = AuditLog::open(config(dir.path(), by_size(1)), signer(&pkcs8)).unwrap();
    for i in 0..300 {
        log.append(record(i)).await.unwrap();
        // Never fewer than the head's file and the open one (when one was begun).
        assert!(!names(dir.path()).is_empty());
    }
    let left = names(dir.path());
    assert!(left.len() <= 2, "{left:?}");
    log.close().await;
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", problems(&report));
    assert_eq!(report.last_sequence, 300);
}
