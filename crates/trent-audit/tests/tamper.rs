//! The audit log end to end: records written through the writer (group commit, rolled files,
//! signatures, the head), then verified clean, then tampered with in every way the issue names:
//! each tampering is found and named.

use serde_json::{Map, Value, json};
mod common;

use common::{lines, logs};
use std::path::Path;
use std::time::Duration;
use trent_audit::{
    AuditConfig, AuditKeySpec, AuditLog, AuditPublicKey, AuditSigner, HEAD_FILE, Report,
    log_file_name, verify_dir,
};

fn record(i: u64) -> Map<String, Value> {
    json!({
        "eventVersion": "1.11",
        "eventName": "Encrypt",
        "eventSource": "kms.amazonaws.com",
        "requestID": format!("req-{i:08}"),
        "requestParameters": {"keyId": "arn:aws:kms:us-east-1:111122223333:key/k", "encryptionContext": {"n": i.to_string()}},
    })
    .as_object()
    .unwrap()
    .clone()
}

fn config(dir: &Path) -> AuditConfig {
    let mut c = AuditConfig::new(dir.to_path_buf(), "test-node");
    c.max_file_bytes = 4096;
    c
}

/// Write `n` records one after the other (so that the small files roll often), and close the
/// log.
async fn write_log(dir: &Path, n: u64, spec: AuditKeySpec) -> AuditPublicKey {
    let (signer, _) = AuditSigner::generate(spec).unwrap();
    let public = signer.public_key();
    let log = AuditLog::open(config(dir), signer).unwrap();
    for i in 0..n {
        log.append(record(i)).await.unwrap();
    }
    log.close().await;
    public
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn first_problem(report: &Report) -> String {
    report
        .problems
        .first()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "no problem found".into())
}

#[tokio::test]
async fn a_clean_log_verifies_with_its_key_and_not_with_another() {
    for spec in [AuditKeySpec::Ed25519, AuditKeySpec::EcdsaP256] {
        let dir = tempfile::tempdir().unwrap();
        let key = write_log(dir.path(), 300, spec).await;
        let files = logs(dir.path());
        assert!(files.len() > 3, "small files roll: {files:?}");
        let report = verify_dir(dir.path(), Some(&key)).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!((report.records, report.last_sequence), (300, 300));
        assert_eq!(report.files, files.len());
        // Every file signed, plus the head.
        assert_eq!(report.signatures, files.len() + 1);
        // Without a key given, the one the node left in the directory is used.
        assert!(verify_dir(dir.path(), None).unwrap().ok());
        // Every record is there, once, in order.
        let all: Vec<String> = files.iter().flat_map(|f| lines(f)).collect();
        for (i, l) in all.iter().enumerate() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["trentChain"]["sequence"], i as u64 + 1);
        }
        let (other, _) = AuditSigner::generate(spec).unwrap();
        let report = verify_dir(dir.path(), Some(&other.public_key())).unwrap();
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.message.starts_with("its signature does not verify")
                    || p.message.starts_with("not signed")
                    || p.message.starts_with("missing")),
            "{:?}",
            report.problems
        );
        assert!(!report.ok());
    }
}

#[tokio::test]
async fn an_edited_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), 200, AuditKeySpec::Ed25519).await;
    let f = logs(dir.path())[1].clone();
    let mut l = lines(&f);
    let seq: u64 = serde_json::from_str::<Value>(&l[2]).unwrap()["trentChain"]["sequence"]
        .as_u64()
        .unwrap();
    l[2] = l[2].replace("\"Encrypt\"", "\"Decrypt\"");
    write_lines(&f, &l);
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        first_problem(&report),
        format!(
            "{}:4: the record before this one, {seq} ({} line 3), was edited or replaced",
            name(&f),
            name(&f)
        )
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file == name(&f) && p.message.starts_with("edited: the first")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), 200, AuditKeySpec::Ed25519).await;
    let f = logs(dir.path())[2].clone();
    let mut l = lines(&f);
    let seq = serde_json::from_str::<Value>(&l[3]).unwrap()["trentChain"]["sequence"]
        .as_u64()
        .unwrap();
    l.remove(3);
    write_lines(&f, &l);
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        first_problem(&report),
        format!(
            "{}:4: deleted: records {seq}..{seq} are absent before this record",
            name(&f)
        )
    );
}

#[tokio::test]
async fn reordered_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), 200, AuditKeySpec::Ed25519).await;
    let f = logs(dir.path())[1].clone();
    let mut l = lines(&f);
    let seq = |s: &str| {
        serde_json::from_str::<Value>(s).unwrap()["trentChain"]["sequence"]
            .as_u64()
            .unwrap()
    };
    let (a, b) = (seq(&l[1]), seq(&l[2]));
    l.swap(1, 2);
    write_lines(&f, &l);
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        first_problem(&report),
        format!(
            "{}:2: reordered: record {b} stands where record {a} belongs",
            name(&f)
        )
    );
}

#[tokio::test]
async fn a_truncated_closed_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), 200, AuditKeySpec::Ed25519).await;
    let f = logs(dir.path())[1].clone();
    let mut l = lines(&f);
    l.truncate(l.len() - 2);
    write_lines(&f, &l);
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    let first = first_problem(&report);
    assert!(
        first.starts_with(&format!(
            "{}: truncated: {}.sig covers ",
            name(&f),
            name(&f)
        )),
        "{first}"
    );
    // A record cut in the middle is named too.
    let g = logs(dir.path())[2].clone();
    let text = std::fs::read(&g).unwrap();
    std::fs::write(&g, &text[..text.len() - 10]).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    let n = lines(&g).len();
    assert!(
        report.problems.iter().any(|p| p.to_string()
            == format!("{}:{n}: truncated: the last record is incomplete", name(&g))),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn the_end_of_the_log_cut_off_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), 200, AuditKeySpec::Ed25519).await;
    let files = logs(dir.path());
    let last = files.last().unwrap();
    // The newest file and its signature both removed: the head still names the last record.
    std::fs::remove_file(last).unwrap();
    std::fs::remove_file(format!("{}.sig", last.display())).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    let ends = report.last_sequence;
    let messages: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        messages,
        vec![
            format!(
                "{}: missing: {HEAD_FILE} names it, holding records up to 200",
                name(last)
            ),
            format!(
                "{}: truncated: {HEAD_FILE} names records up to 200, the log ends at {ends}",
                name(last)
            ),
        ]
    );
    // And without the head, that it is missing.
    std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        first_problem(&report),
        format!("{HEAD_FILE}: missing: the end of the log cannot be checked without it")
    );
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), 200, AuditKeySpec::Ed25519).await;
    let files = logs(dir.path());
    let (gone, after, next) = (&files[2], &files[1], &files[3]);
    let first_gone = lines(gone)
        .first()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["trentChain"]["sequence"]
                .as_u64()
                .unwrap()
        })
        .unwrap();
    let last_gone = first_gone + lines(gone).len() as u64 - 1;
    std::fs::remove_file(gone).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    let messages: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        messages,
        vec![
            format!(
                "{}: missing: records {first_gone}..{last_gone} are gone (its signature file {}.sig is here)",
                name(gone),
                name(gone)
            ),
            format!(
                "{}:1: missing file: records {first_gone}..{last_gone} are absent before this file (after {})",
                name(next),
                name(after)
            ),
        ]
    );
    // Its signature removed as well: the gap in the chain still names it.
    std::fs::remove_file(format!("{}.sig", gone.display())).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].file, name(next));
}

#[tokio::test]
async fn the_open_file_is_covered_by_the_head_and_a_restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, pkcs8) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let key = signer.public_key();
    let mut c = AuditConfig::new(dir.path().to_path_buf(), "test-node");
    c.digest_interval = Duration::from_millis(20);
    let log = AuditLog::open(c.clone(), signer).unwrap();
    for i in 0..20 {
        log.append(record(i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A copy taken while the node runs: one open file, not signed, covered by the head.
    let snapshot = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, snapshot.path().join(p.file_name().unwrap())).unwrap();
    }
    let report = verify_dir(snapshot.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, 20);
    let open = snapshot.path().join(log_file_name(1));
    let mut l = lines(&open);
    l.truncate(15);
    write_lines(&open, &l);
    let report = verify_dir(snapshot.path(), Some(&key)).unwrap();
    assert!(
        first_problem(&report)
            .starts_with(&format!("{}: truncated: {HEAD_FILE} covers ", name(&open))),
        "{:?}",
        report.problems
    );

    // The node stops without closing (as if killed): the next start signs the file it left,
    // cuts off a half-written line, and continues the chain in a new file.
    drop(log);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let f = dir.path().join(log_file_name(1));
    std::fs::remove_file(dir.path().join(format!("{}.sig", log_file_name(1)))).unwrap();
    let mut text = std::fs::read(&f).unwrap();
    text.extend_from_slice(b"{\"eventName\":\"half");
    std::fs::write(&f, &text).unwrap();
    let signer = AuditSigner::from_pkcs8(AuditKeySpec::Ed25519, &pkcs8).unwrap();
    let log = AuditLog::open(c, signer).unwrap();
    for i in 20..25 {
        log.append(record(i)).await.unwrap();
    }
    log.close().await;
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.records, report.files), (25, 2));
}

#[tokio::test]
async fn a_clean_log_of_100000_records_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let key = signer.public_key();
    let mut c = AuditConfig::new(dir.path().to_path_buf(), "test-node");
    c.max_file_bytes = 4 * 1024 * 1024;
    let log = std::sync::Arc::new(AuditLog::open(c, signer).unwrap());
    // 64 writers, each appending its share: batches form from whatever is queued.
    let mut tasks = Vec::new();
    for w in 0..64u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000 / 64 + 1 {
                let n = w * 10_000 + i;
                if w * (100_000 / 64 + 1) + i < 100_000 {
                    log.append(record(n)).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    log.close().await;
    let stats = log.stats();
    assert_eq!(stats.records, 100_000);
    assert!(stats.batches < 100_000, "records were grouped: {stats:?}");
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.records, report.last_sequence), (100_000, 100_000));
    assert!(report.files > 1);
}

fn sequence_of(line: &str) -> u64 {
    serde_json::from_str::<Value>(line).unwrap()["trentChain"]["sequence"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn an_older_head_put_back_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, pkcs8) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let key = signer.public_key();
    let log = AuditLog::open(config(dir.path()), signer).unwrap();
    for i in 0..50 {
        log.append(record(i)).await.unwrap();
    }
    log.close().await;
    let old_head = std::fs::read(dir.path().join(HEAD_FILE)).unwrap();
    let signer = AuditSigner::from_pkcs8(AuditKeySpec::Ed25519, &pkcs8).unwrap();
    let log = AuditLog::open(config(dir.path()), signer).unwrap();
    for i in 50..100 {
        log.append(record(i)).await.unwrap();
    }
    log.close().await;
    assert!(verify_dir(dir.path(), Some(&key)).unwrap().ok());
    std::fs::write(dir.path().join(HEAD_FILE), &old_head).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    let newest = logs(dir.path()).pop().unwrap();
    assert_eq!(
        first_problem(&report),
        format!(
            "{HEAD_FILE}: replaced by an older one: it ends at record 50, {}.sig ends at 100",
            name(&newest)
        )
    );
    assert_eq!(sequence_of(lines(&newest).last().unwrap()), 100);
}

#[tokio::test]
async fn an_empty_log_has_a_head_and_deleting_everything_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let key = signer.public_key();
    let log = AuditLog::open(config(dir.path()), signer).unwrap();
    log.close().await;
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.records, report.signatures), (0, 1));
    std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    let report = verify_dir(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        first_problem(&report),
        format!("{HEAD_FILE}: missing: the end of the log cannot be checked without it")
    );
}

#[tokio::test]
async fn a_restart_refuses_a_log_edited_while_the_node_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, pkcs8) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let mut c = AuditConfig::new(dir.path().to_path_buf(), "test-node");
    c.digest_interval = Duration::from_millis(20);
    let log = AuditLog::open(c.clone(), signer).unwrap();
    for i in 0..20 {
        log.append(record(i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What a killed node leaves, copied while it runs: one open file, unsigned, and the head
    // covering it.
    let crashed = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, crashed.path().join(p.file_name().unwrap())).unwrap();
    }
    log.close().await;
    let open = crashed.path().join(log_file_name(1));
    let original = lines(&open);
    let mut l = original.clone();
    l[3] = l[3].replace("\"Encrypt\"", "\"Decrypt\"");
    write_lines(&open, &l);
    let mut c = AuditConfig::new(crashed.path().to_path_buf(), "test-node");
    c.digest_interval = Duration::from_millis(20);
    let signer = AuditSigner::from_pkcs8(AuditKeySpec::Ed25519, &pkcs8).unwrap();
    let err = AuditLog::open(c.clone(), signer)
        .err()
        .expect("an edited log is refused");
    assert!(
        err.contains("does not match its signed head")
            && err.contains("was changed within what the head covers"),
        "{err}"
    );
    let sig = crashed.path().join(format!("{}.sig", log_file_name(1)));
    assert!(!sig.exists(), "nothing was signed");

    // Unedited, the same state is taken up: the file is signed and the chain goes on.
    write_lines(&open, &original);
    let signer = AuditSigner::from_pkcs8(AuditKeySpec::Ed25519, &pkcs8).unwrap();
    let key = signer.public_key();
    let log = AuditLog::open(c, signer).unwrap();
    log.append(record(99)).await.unwrap();
    log.close().await;
    assert!(sig.exists());
    let report = verify_dir(crashed.path(), Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, 21);
}

#[tokio::test]
async fn digests_are_written_under_steady_load() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let mut c = AuditConfig::new(dir.path().to_path_buf(), "test-node");
    c.digest_interval = Duration::from_millis(100);
    let log = AuditLog::open(c, signer).unwrap();
    // A record every 10 ms for a second: the writer never sits idle for a whole tick.
    let mut heads = std::collections::HashSet::new();
    for i in 0..100 {
        log.append(record(i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        heads.insert(std::fs::read(dir.path().join(HEAD_FILE)).unwrap());
    }
    log.close().await;
    assert!(heads.len() >= 5, "the head moved {} times", heads.len());
}

#[tokio::test]
async fn a_closed_log_refuses_records_and_reports_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = AuditSigner::generate(AuditKeySpec::Ed25519).unwrap();
    let log = AuditLog::open(config(dir.path()), signer).unwrap();
    log.append(record(1)).await.unwrap();
    assert!(log.barrier().await.is_ok());
    log.close().await;
    assert!(!log.is_healthy());
    let refused = Err(trent_audit::AuditError::Unwritable);
    assert_eq!(log.append(record(2)).await, refused);
    assert_eq!(log.barrier().await, refused);
}
