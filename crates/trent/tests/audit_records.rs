//! The audit log as a user reads it, end to end through `aws-sdk-kms` against a real `trent serve
//! --data-dir DIR` (the log is on by default, in `DIR/audit`): the record of each call is found
//! by the request id the SDK returned, and holds what was asked (never a secret), the key, who
//! asked and, for a failure, the error the client saw. `trent audit verify` accepts the log as
//! written and names a record edited by one byte. A record is durable before its response is
//! sent, so every test reads the log right after the call returns. Every test runs its own
//! server.

mod common;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Distinctive enough that finding it in a log can only mean the log holds the plaintext.
const PLAINTEXT: &str = "quokka-zeppelin-plaintext-5d41402abc4b2a76";

/// The audit directory of a server started with [`Server::on_dir`].
fn audit_dir(server: &Server) -> PathBuf {
    server
        .data_dir
        .as_ref()
        .expect("a server with a data directory")
        .join("audit")
}

/// Whether `name` is a log file's name: `audit-<12 digits>.jsonl`.
fn is_log_name(name: &str) -> bool {
    name.strip_prefix("audit-")
        .and_then(|rest| rest.strip_suffix(".jsonl"))
        .is_some_and(|seq| seq.len() == 12 && seq.bytes().all(|c| c.is_ascii_digit()))
}

/// The log files of `dir`, oldest first.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| is_log_name(p.file_name().unwrap().to_str().unwrap_or("")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no audit-*.jsonl in {}", dir.display());
    files
}

/// Every record of the log in `dir`, in log order.
fn records(dir: &Path) -> Vec<Value> {
    log_files(dir)
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .map(|line| {
                    serde_json::from_str::<Value>(line).unwrap_or_else(|e| {
                        panic!("{}: a line that is not JSON ({e}): {line}", f.display())
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The one record whose requestID is `request_id`.
#[track_caller]
fn record_for(dir: &Path, request_id: &str) -> Value {
    let all = records(dir);
    let found: Vec<&Value> = all
        .iter()
        .filter(|r| r["requestID"] == request_id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "records with requestID {request_id}: {found:#?}\nwhole log:\n{all:#?}"
    );
    found[0].clone()
}

/// Every byte of every file in `dir`: logs, signatures, head, public key.
fn every_byte(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The members every record of a successful request from the admin client has in common.
#[track_caller]
fn assert_admin_call(r: &Value, server: &Server, event_name: &str, read_only: bool, key: &str) {
    assert_eq!(r["eventVersion"], "1.11", "{r:#}");
    // CloudTrail's eventTime: whole seconds, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    let time = r["eventTime"].as_str().unwrap_or_default().as_bytes();
    assert!(
        time.len() == 20
            && time.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'Z',
                _ => c.is_ascii_digit(),
            }),
        "eventTime {:?}",
        r["eventTime"]
    );
    assert_eq!(r["eventSource"], "kms.amazonaws.com", "{r:#}");
    assert_eq!(r["eventName"], event_name, "{r:#}");
    assert_eq!(r["awsRegion"], REGION, "{r:#}");
    assert_eq!(r["sourceIPAddress"], "127.0.0.1", "{r:#}");
    assert_eq!(r["readOnly"], read_only, "{r:#}");
    assert_eq!(r["eventType"], "AwsApiCall", "{r:#}");
    assert_eq!(r["managementEvent"], true, "{r:#}");
    assert_eq!(r["recipientAccountId"], ACCOUNT, "{r:#}");
    assert_eq!(r["eventCategory"], "Management", "{r:#}");
    assert_eq!(
        r["userIdentity"]["accessKeyId"],
        server.access_key.as_str(),
        "{r:#}"
    );
    assert_eq!(r["userIdentity"]["accountId"], ACCOUNT, "{r:#}");
    assert_eq!(
        r["resources"],
        json!([{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key}]),
        "{r:#}"
    );
    assert!(r.get("errorCode").is_none(), "{r:#}");
    assert!(r.get("errorMessage").is_none(), "{r:#}");
    let agent = r["userAgent"].as_str().unwrap_or_default();
    assert!(agent.contains("aws-sdk-rust"), "userAgent {agent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_encrypt_decrypt_records_say_what_was_asked_and_keep_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&tmp.path().join("data"));
    let kms = server.client();
    let audit = audit_dir(&server);
    // Context keys in several cases: the record must keep them as they are, not camelCase them.
    let context = [
        ("Department", "Finance"),
        ("tenant-ID", "Acme-42"),
        ("x", "Y"),
    ];

    let created = kms
        .create_key()
        .description("audited by audit_records.rs")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateKey: {}", DisplayErrorContext(&e)));
    let created_rid = created
        .request_id()
        .expect("CreateKey request id")
        .to_owned();
    let md = created.key_metadata().expect("KeyMetadata");
    let key_id = md.key_id().to_owned();
    let arn = md.arn().expect("Arn").to_owned();
    let material = md
        .current_key_material_id()
        .expect("CurrentKeyMaterialId")
        .to_owned();

    let mut encrypt = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(PLAINTEXT.as_bytes()));
    for (k, v) in context {
        encrypt = encrypt.encryption_context(k, v);
    }
    let encrypted = encrypt
        .send()
        .await
        .unwrap_or_else(|e| panic!("Encrypt: {}", DisplayErrorContext(&e)));
    let encrypt_rid = encrypted
        .request_id()
        .expect("Encrypt request id")
        .to_owned();
    let blob = encrypted
        .ciphertext_blob()
        .expect("CiphertextBlob")
        .as_ref()
        .to_vec();

    // Decrypt names the key by ARN, so its record's keyId is an ARN: what was sent.
    let mut decrypt = kms
        .decrypt()
        .key_id(&arn)
        .ciphertext_blob(Blob::new(blob.clone()));
    for (k, v) in context {
        decrypt = decrypt.encryption_context(k, v);
    }
    let decrypted = decrypt
        .send()
        .await
        .unwrap_or_else(|e| panic!("Decrypt: {}", DisplayErrorContext(&e)));
    let decrypt_rid = decrypted
        .request_id()
        .expect("Decrypt request id")
        .to_owned();
    assert_eq!(
        decrypted.plaintext().expect("Plaintext").as_ref(),
        PLAINTEXT.as_bytes()
    );

    let sent_context = json!({"Department": "Finance", "tenant-ID": "Acme-42", "x": "Y"});

    // CreateKey: a change, so not read-only, and the response is kept.
    let c = record_for(&audit, &created_rid);
    assert_admin_call(&c, &server, "CreateKey", false, &arn);
    assert_eq!(
        c["requestParameters"],
        json!({"description": "audited by audit_records.rs"})
    );
    let shown = &c["responseElements"]["keyMetadata"];
    assert_eq!(shown["keyId"], key_id.as_str(), "{c:#}");
    assert_eq!(shown["arn"], arn.as_str(), "{c:#}");
    assert_eq!(shown["keyState"], "Enabled", "{c:#}");
    assert_eq!(shown["description"], "audited by audit_records.rs", "{c:#}");

    // Encrypt: read-only, no responseElements, the key material from the ciphertext's header.
    let e = record_for(&audit, &encrypt_rid);
    assert_admin_call(&e, &server, "Encrypt", true, &arn);
    assert_eq!(
        e["requestParameters"],
        json!({"keyId": key_id, "encryptionContext": sent_context}),
        "{e:#}"
    );
    assert_eq!(e["responseElements"], Value::Null, "{e:#}");
    assert_eq!(
        e["additionalEventData"],
        json!({"keyMaterialId": material}),
        "{e:#}"
    );

    let d = record_for(&audit, &decrypt_rid);
    assert_admin_call(&d, &server, "Decrypt", true, &arn);
    assert_eq!(
        d["requestParameters"],
        json!({"keyId": arn, "encryptionContext": sent_context}),
        "{d:#}"
    );
    assert_eq!(d["responseElements"], Value::Null, "{d:#}");
    assert_eq!(
        d["additionalEventData"],
        json!({"keyMaterialId": material}),
        "{d:#}"
    );

    // The log's order is the calls' order.
    let seq = |r: &Value| r["trentChain"]["sequence"].as_u64().expect("sequence");
    assert!(
        seq(&c) < seq(&e) && seq(&e) < seq(&d),
        "{c:#}\n{e:#}\n{d:#}"
    );
    // Each request has its own eventID; each record its own.
    assert_ne!(e["eventID"], d["eventID"]);

    // No secret anywhere in the audit directory.
    let everything = every_byte(&audit);
    for (what, secret) in [
        ("plaintext", PLAINTEXT.as_bytes().to_vec()),
        ("plaintext, base64", B64.encode(PLAINTEXT).into_bytes()),
        ("ciphertext, base64", B64.encode(&blob).into_bytes()),
        ("secret access key", server.secret_key.as_bytes().to_vec()),
    ] {
        assert!(
            !contains(&everything, &secret),
            "the audit directory holds the {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_is_recorded_with_the_error_the_client_saw() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&tmp.path().join("data"));
    let kms = server.client();
    let audit = audit_dir(&server);

    // DescribeKey of a key that does not exist.
    let missing = "0b7d6f1e-3c2a-4e5f-9a8b-7c6d5e4f3a2b";
    let err = kms
        .describe_key()
        .key_id(missing)
        .send()
        .await
        .expect_err("DescribeKey of a missing key");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_not_found_exception()),
        "{}",
        DisplayErrorContext(&err)
    );
    let rid = err
        .request_id()
        .expect("request id of the error")
        .to_owned();
    assert_eq!(err.code(), Some("NotFoundException"));
    let message = err.message().expect("an error message").to_owned();
    assert_eq!(message, not_found_message(REGION, ACCOUNT, missing));

    let r = record_for(&audit, &rid);
    assert_eq!(r["eventName"], "DescribeKey", "{r:#}");
    assert_eq!(r["eventSource"], "kms.amazonaws.com", "{r:#}");
    assert_eq!(r["errorCode"], "NotFoundException", "{r:#}");
    assert_eq!(r["errorMessage"], message.as_str(), "{r:#}");
    assert_eq!(r["requestParameters"], json!({"keyId": missing}), "{r:#}");
    assert_eq!(r["responseElements"], Value::Null, "{r:#}");
    assert_eq!(r["readOnly"], true, "{r:#}");
    assert_eq!(
        r["userIdentity"]["accessKeyId"],
        server.access_key.as_str(),
        "{r:#}"
    );
    // A key named by key id is named in resources, even though it does not exist.
    assert_eq!(
        r["resources"],
        json!([{"accountId": ACCOUNT, "type": "AWS::KMS::Key",
                "ARN": key_arn(REGION, ACCOUNT, missing)}]),
        "{r:#}"
    );

    // Decrypt of bytes that are no ciphertext.
    let garbage = test_bytes(7, 64);
    let err = kms
        .decrypt()
        .ciphertext_blob(Blob::new(garbage.clone()))
        .send()
        .await
        .expect_err("Decrypt of garbage");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_invalid_ciphertext_exception()),
        "{}",
        DisplayErrorContext(&err)
    );
    let rid = err
        .request_id()
        .expect("request id of the error")
        .to_owned();
    assert_eq!(err.code(), Some("InvalidCiphertextException"));
    let r = record_for(&audit, &rid);
    assert_eq!(r["eventName"], "Decrypt", "{r:#}");
    assert_eq!(r["errorCode"], "InvalidCiphertextException", "{r:#}");
    // KMS answers InvalidCiphertextException without a message; the record shows none either.
    assert_eq!(err.message(), None, "{}", DisplayErrorContext(&err));
    assert!(r.get("errorMessage").is_none(), "{r:#}");
    assert_eq!(r["requestParameters"], json!({}), "{r:#}");
    assert!(
        !contains(&every_byte(&audit), B64.encode(&garbage).as_bytes()),
        "the audit directory holds the ciphertext sent"
    );
}

/// Runs `trent audit verify DIR`.
fn verify(dir: &Path) -> Exited {
    run_to_exit(
        &["audit", "verify", dir.to_str().expect("UTF-8 path")],
        Duration::from_secs(60),
    )
}

/// Copies the files of `from` (a flat directory) into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        assert!(path.is_file(), "{} is not a file", path.display());
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_the_log_and_names_a_record_edited_by_one_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::on_dir(&tmp.path().join("data"));
    let kms = server.client();
    let audit = audit_dir(&server);

    let key_id = created_key(kms.create_key()).await.key_id().to_owned();
    let mut rids = Vec::new();
    for i in 0..3 {
        let out = kms
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(PLAINTEXT.as_bytes()))
            .encryption_context("n", i.to_string())
            .send()
            .await
            .expect("Encrypt");
        rids.push(out.request_id().expect("request id").to_owned());
    }
    let _ = kms.describe_key().key_id("alias/none-such").send().await;

    // Every call was answered, so every record is on disk: a copy taken now is a whole log.
    let copy = tmp.path().join("copy");
    copy_dir(&audit, &copy);
    let n = records(&copy).len();
    let files = log_files(&copy);

    let ok = verify(&copy);
    assert!(
        ok.status.success(),
        "verify of the log as written:\n{}",
        ok.output
    );
    assert!(
        ok.output.starts_with(&format!(
            "OK: {n} records in {} files, sequence 1..{n}, chain intact,",
            files.len()
        )),
        "{}",
        ok.output
    );

    // One byte of the first Encrypt record's eventID, in the copy only: a hex digit for another.
    let target = record_for(&copy, &rids[0]);
    let event_id = target["eventID"].as_str().expect("eventID").to_owned();
    let (file, line_no) = files
        .iter()
        .find_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .position(|l| l.contains(&rids[0]))
                .map(|i| (f.clone(), i + 1))
        })
        .expect("the Encrypt record's line");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = {
        let needle = format!("\"eventID\":\"{event_id}\"");
        let start = bytes
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap_or_else(|| panic!("{needle} in {}", file.display()));
        start + "\"eventID\":\"".len()
    };
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&file, &bytes).unwrap();
    let edited = record_for(&copy, &rids[0]);
    assert_ne!(edited["eventID"], target["eventID"]);

    let bad = verify(&copy);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "verify of an edited log:\n{}",
        bad.output
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    let seq = target["trentChain"]["sequence"].as_u64().expect("sequence");
    let expected = format!(
        "{name}:{}: the record before this one, {seq} ({name} line {line_no}), was edited or replaced",
        line_no + 1
    );
    assert!(
        bad.output.lines().any(|l| l == expected),
        "expected the line {expected:?} in:\n{}",
        bad.output
    );
    assert!(bad.output.contains("has been changed"), "{}", bad.output);

    // The live log was not touched. Once its node is stopped (killed: its file is left unsigned,
    // as after a crash), it verifies too.
    assert_eq!(record_for(&audit, &rids[0])["eventID"], event_id.as_str());
    server.kill9();
    let live = verify(&audit);
    assert!(
        live.status.success(),
        "verify of a killed node's log:\n{}",
        live.output
    );
    assert!(
        live.output.starts_with(&format!("OK: {n} records in ")),
        "{}",
        live.output
    );
}
