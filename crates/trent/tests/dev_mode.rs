//! Dev mode, the emulator for tests: any credentials, one account (configurable), a moto-style
//! reset endpoint, and never listening beyond loopback.

mod common;

use aws_sdk_kms::primitives::Blob;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn any_credentials_work_and_share_one_account() {
    let server = Server::dev();
    let alice = server.client_with(REGION, "AKIAALICE", "alice-secret");
    let bob = server.client_with(REGION, "test", "test");
    let carol = server.client_with(REGION, "ASIA0000000000000000", "x");

    let md = alice
        .create_key()
        .send()
        .await
        .expect("CreateKey with made-up credentials")
        .key_metadata
        .unwrap();
    assert_eq!(md.aws_account_id(), Some(ACCOUNT));
    let id = md.key_id();
    let blob = bob
        .encrypt()
        .key_id(id)
        .plaintext(Blob::new("shared"))
        .send()
        .await
        .expect("another caller sees the same key")
        .ciphertext_blob
        .unwrap();
    let out = carol.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"shared");
    assert_eq!(out.key_id(), Some(key_arn(REGION, ACCOUNT, id).as_str()));
}

#[tokio::test]
async fn moto_api_reset_wipes_everything() {
    let server = Server::dev();
    let kms = server.client();
    let west = server.client_in(OTHER_REGION);
    let id = created_key(kms.create_key()).await.key_id().to_owned();
    kms.create_alias()
        .alias_name("alias/before-reset")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    west.create_key().send().await.unwrap();

    let resp = http_post(server.authority(), "/moto-api/reset", &[], b"").await;
    assert_eq!(resp.status, 200, "{resp:?} {}", resp.body_text());

    assert!(kms.list_keys().send().await.unwrap().keys().is_empty());
    assert!(west.list_keys().send().await.unwrap().keys().is_empty());
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(
        aliases
            .aliases()
            .iter()
            .all(|a| a.alias_name().is_some_and(|n| n.starts_with("alias/aws/"))),
        "customer aliases survived the reset: {aliases:?}"
    );
    assert_error(
        kms.describe_key().key_id(&id).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, &id),
    );

    // The server keeps serving, and the alias name is free again.
    let fresh = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    kms.create_alias()
        .alias_name("alias/before-reset")
        .target_key_id(fresh.key_id())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn dev_account_sets_the_account() {
    let account = "444455556666";
    let server = Server::dev_with(&["--dev-account", account]);
    let kms = server.client();
    let md = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    let id = md.key_id();
    assert_eq!(md.aws_account_id(), Some(account));
    assert_eq!(md.arn(), Some(key_arn(REGION, account, id).as_str()));

    let out = kms
        .encrypt()
        .key_id(id)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(key_arn(REGION, account, id).as_str()));

    kms.create_alias()
        .alias_name("alias/acct")
        .target_key_id(id)
        .send()
        .await
        .unwrap();
    let aliases = kms.list_aliases().key_id(id).send().await.unwrap();
    assert_eq!(
        aliases.aliases()[0].alias_arn(),
        Some(alias_arn(REGION, account, "alias/acct").as_str())
    );

    let policy = kms
        .get_key_policy()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        policy["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{account}:root")
    );

    let missing = "12345678-1234-4234-8234-123456789012";
    assert_error(
        kms.describe_key().key_id(missing).send().await,
        "NotFoundException",
        &not_found_message(REGION, account, missing),
    );
}

#[test]
fn dev_mode_refuses_to_listen_beyond_loopback() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["serve", "--dev", "--listen", "0.0.0.0:0"][..],
        &["serve", "--dev", "--in-memory", "--listen", "0.0.0.0:0"][..],
    ] {
        let exited = run_to_exit_in(cwd.path(), args, Duration::from_secs(20));
        assert!(
            !exited.status.success(),
            "{args:?} exited with {:?}\n{}",
            exited.status,
            exited.output
        );
        assert!(
            !exited.output.contains("trent listening on"),
            "{args:?} listened before exiting:\n{}",
            exited.output
        );
    }
}

#[tokio::test]
async fn protocol_errors() {
    let server = Server::dev();
    // Dev mode accepts any signature, but a request still carries one.
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/kms/aws4_request, \
                SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00";
    let json = ("Content-Type", "application/x-amz-json-1.1");
    for (what, target, body, code) in [
        (
            "unknown operation",
            Some("TrentService.NoSuchOperation"),
            &b"{}"[..],
            "UnknownOperationException",
        ),
        ("no target", None, &b"{}"[..], "UnknownOperationException"),
        (
            "unparsable JSON",
            Some("TrentService.ListKeys"),
            &b"{not json"[..],
            "SerializationException",
        ),
    ] {
        let mut headers = vec![
            json,
            ("Authorization", auth),
            ("X-Amz-Date", "20261123T000000Z"),
        ];
        if let Some(t) = target {
            headers.push(("X-Amz-Target", t));
        }
        let resp = http_post(server.authority(), "/", &headers, body).await;
        assert_eq!(resp.status, 400, "{what}: {resp:?}");
        assert_eq!(
            json_error_code(&resp.body).as_deref(),
            Some(code),
            "{what}: {}",
            resp.body_text()
        );
        assert!(
            resp.header("x-amzn-RequestId").is_some(),
            "{what}: {resp:?}"
        );
    }
}
