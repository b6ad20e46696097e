//! SigV4 authentication of a non-dev server: the admin credentials written on first start work,
//! anything else is refused with the error AWS gives.

mod common;

use aws_sdk_kms::primitives::Blob;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

fn data_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    // A directory that does not exist yet: the first start creates it.
    tmp.path().join("data")
}

#[tokio::test]
async fn first_start_writes_admin_credentials_that_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let server = Server::on_dir(&dir);
    assert!(dir.is_dir(), "data dir created");

    // The credentials are printed once, as well as written.
    let output = server.output();
    assert!(
        output.contains(&server.access_key) && output.contains(&server.secret_key),
        "admin credentials not printed on first start:\n{output}"
    );

    let kms = server.client();
    let md = kms
        .create_key()
        .send()
        .await
        .expect("CreateKey as admin")
        .key_metadata
        .unwrap();
    assert_eq!(md.aws_account_id(), Some(ACCOUNT));
    assert_eq!(
        md.arn(),
        Some(key_arn(REGION, ACCOUNT, md.key_id()).as_str())
    );
    let blob = kms
        .encrypt()
        .key_id(md.key_id())
        .plaintext(Blob::new("admin data"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let out = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"admin data");

    // Keys are regional for authenticated callers too.
    let west = server.client_in(OTHER_REGION);
    assert_error(
        west.describe_key().key_id(md.key_id()).send().await,
        "NotFoundException",
        &not_found_message(OTHER_REGION, ACCOUNT, md.key_id()),
    );
}

#[tokio::test]
async fn credentials_file_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let server = Server::on_dir(&dir);
    let path = dir.join("credentials");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[trent]"), "profile [trent] in:\n{text}");
    drop(server);
}

#[tokio::test]
async fn wrong_secret_is_an_invalid_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&data_dir(&tmp));
    let mut wrong = server.secret_key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let kms = server.client_with(REGION, &server.access_key, &wrong);

    let f = failure(kms.list_keys().send().await);
    assert_eq!(
        (f.code.as_str(), f.status),
        ("InvalidSignatureException", 400),
        "{f:?}"
    );
    assert!(
        f.message_text().starts_with(
            "The request signature we calculated does not match the signature you provided."
        ),
        "{f:?}"
    );
    // Nothing was done on the refused caller's behalf.
    let f = failure(kms.create_key().send().await);
    assert_eq!(f.code, "InvalidSignatureException");
    let keys = server.client().list_keys().send().await.unwrap();
    assert!(keys.keys().is_empty(), "{keys:?}");
}

#[tokio::test]
async fn unknown_access_key_is_unrecognized() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&data_dir(&tmp));
    let kms = server.client_with(REGION, "AKIANOTAREALKEY00000", &server.secret_key);
    assert_error(
        kms.list_keys().send().await,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    // Dev-mode style throwaway credentials are refused too.
    let kms = server.client_with(REGION, DEV_ACCESS_KEY, DEV_SECRET_KEY);
    assert_error(
        kms.create_key().send().await,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    let keys = server.client().list_keys().send().await.unwrap();
    assert!(keys.keys().is_empty(), "{keys:?}");
}

#[derive(Debug)]
struct SkewedClock(Duration);

impl aws_smithy_async::time::TimeSource for SkewedClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.0
    }
}

#[tokio::test]
async fn signature_from_a_skewed_clock_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&data_dir(&tmp));
    let conf = server
        .config(REGION, &server.access_key, &server.secret_key)
        .time_source(SkewedClock(Duration::from_secs(20 * 60)))
        .build();
    let kms = aws_sdk_kms::Client::from_conf(conf);
    let f = failure(kms.list_keys().send().await);
    assert_eq!(f.status, 400, "{f:?}");
    assert!(
        ["InvalidSignatureException", "RequestExpired"].contains(&f.code.as_str()),
        "{f:?}"
    );

    // Within the 15-minute window is fine.
    let conf = server
        .config(REGION, &server.access_key, &server.secret_key)
        .time_source(SkewedClock(Duration::from_secs(5 * 60)))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
        .list_keys()
        .send()
        .await
        .expect("5 minutes of skew is accepted");
}

#[tokio::test]
async fn unsigned_request_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&data_dir(&tmp));
    let resp = http_post(
        server.authority(),
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "TrentService.ListKeys"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(resp.status, 400, "{resp:?} {}", resp.body_text());
    let code = json_error_code(&resp.body).unwrap_or_default();
    assert!(
        code.starts_with("MissingAuthenticationToken"),
        "code {code:?} in {}",
        resp.body_text()
    );
    assert!(resp.header("x-amzn-RequestId").is_some(), "{resp:?}");
}

#[tokio::test]
async fn restart_keeps_credentials_and_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let server = Server::on_dir(&dir);
    let (ak, sk) = (server.access_key.clone(), server.secret_key.clone());
    let id = created_key(server.client().create_key().description("kept"))
        .await
        .key_id()
        .to_owned();
    drop(server);

    let server = Server::on_dir(&dir);
    assert_eq!(
        (server.access_key.as_str(), server.secret_key.as_str()),
        (ak.as_str(), sk.as_str()),
        "credentials changed on restart"
    );
    assert!(
        !server.output().contains(&sk),
        "the secret is printed again on a later start:\n{}",
        server.output()
    );
    let md = server
        .client()
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(md.description(), Some("kept"));
}

#[tokio::test]
async fn a_session_token_is_refused_as_an_invalid_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&data_dir(&tmp));
    // The admin's own key and secret, with a session token: the SDK signs it in as
    // X-Amz-Security-Token. trent issues no temporary credentials, so the token is refused.
    let creds = aws_sdk_kms::config::Credentials::new(
        &server.access_key,
        &server.secret_key,
        Some("FwoGZXIvYXdzEJr//////////wEaDFakeSessionToken".into()),
        None,
        "trent-tests",
    );
    let with_token = aws_sdk_kms::Client::from_conf(
        server
            .config(REGION, &server.access_key, &server.secret_key)
            .credentials_provider(creds)
            .build(),
    );
    assert_error(
        with_token.list_keys().send().await,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    server.client().list_keys().send().await.unwrap();
}

#[tokio::test]
async fn a_region_the_server_does_not_serve_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::on_dir(&data_dir(&tmp));
    for region in ["xx-fake-1", "us-gov-west-1", "cn-north-1"] {
        assert_error(
            server.client_in(region).list_keys().send().await,
            "InvalidSignatureException",
            &format!("Credential should be scoped to a valid region, not '{region}'. "),
        );
    }
    server
        .client_in("ap-southeast-7")
        .list_keys()
        .send()
        .await
        .unwrap();
}
