//! The service over a real (in-memory or file) SQLite store: lifecycle rules that need a clock or
//! a restart, which the HTTP-level suites cannot reach directly.

use std::path::Path;
use std::sync::Arc;
use trent_crypto::{LocalRootKey, RootKey};
use trent_kms::api::*;
use trent_kms::{Caller, Kms, KmsError, OpenError};
use trent_store::{SqliteStore, Store};

/// A user of the test account whose identity policy allows every KMS action.
fn caller() -> Caller {
    let mut c = Caller::new(
        "111122223333",
        "us-east-1",
        "arn:aws:iam::111122223333:user/test",
    );
    let admin = r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
    c.identity = Arc::from(vec![
        trent_kms::policy::parse_kind(admin, trent_kms::policy::Kind::Identity).unwrap(),
    ]);
    c
}

/// The ARN of a key of the test account in `region`.
fn key_arn(region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:111122223333:key/{key_id}")
}

/// The error for a key that does not exist where the caller looked for it.
fn not_found(key_arn: &str) -> KmsError {
    KmsError::NotFound(format!("Key '{key_arn}' does not exist"))
}

async fn service() -> Kms {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let root: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
    Kms::open(store, root).await.unwrap()
}

/// Open the service over the SQLite file `db`.
async fn open_file(db: &Path, root: Arc<dyn RootKey>) -> Result<Kms, OpenError> {
    Kms::open(Arc::new(SqliteStore::open(db).unwrap()), root).await
}

async fn new_key(kms: &Kms) -> String {
    kms.create_key(&caller(), CreateKeyRequest::default())
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

async fn create_alias(kms: &Kms, alias_name: &str, key_id: &str) {
    let req = AliasRequest {
        alias_name: Some(alias_name.into()),
        target_key_id: Some(key_id.into()),
    };
    kms.create_alias(&caller(), req).await.unwrap();
}

async fn schedule_deletion(kms: &Kms, key_id: &str, pending_window_in_days: Option<i64>) {
    let req = ScheduleKeyDeletionRequest {
        key_id: Some(key_id.into()),
        pending_window_in_days,
    };
    kms.schedule_key_deletion(&caller(), req).await.unwrap();
}

async fn describe(kms: &Kms, c: &Caller, key_id: &str) -> Result<DescribeKeyResponse, KmsError> {
    let req = DescribeKeyRequest {
        key_id: Some(key_id.into()),
        grant_tokens: None,
    };
    kms.describe_key(c, req).await
}

/// The customer's aliases: ListAliases less the predefined `alias/aws/*` ones AWS lists too.
async fn aliases(kms: &Kms) -> Vec<AliasListEntry> {
    let all = kms
        .list_aliases(&caller(), ListAliasesRequest::default())
        .await
        .unwrap()
        .aliases;
    assert!(all.iter().any(|a| a.alias_name == "alias/aws/s3"));
    all.into_iter()
        .filter(|a| !a.alias_name.starts_with("alias/aws/"))
        .collect()
}

#[tokio::test]
async fn keys_are_destroyed_when_their_window_ends_and_not_before() {
    let kms = service().await;
    let c = caller();
    let doomed = new_key(&kms).await;
    let kept = new_key(&kms).await;
    create_alias(&kms, "alias/doomed", &doomed).await;
    schedule_deletion(&kms, &doomed, Some(7)).await;
    kms.clock.advance(7 * 86_400 - 60);
    assert!(kms.destroy_due_keys().await.unwrap().is_empty());
    kms.clock.advance(120);
    let gone = kms.destroy_due_keys().await.unwrap();
    assert_eq!(gone, vec![key_arn("us-east-1", &doomed)]);
    let err = describe(&kms, &c, &doomed).await.unwrap_err();
    assert_eq!(err, not_found(&key_arn("us-east-1", &doomed)));
    assert!(aliases(&kms).await.is_empty());
    assert!(describe(&kms, &c, &kept).await.is_ok());
}

#[tokio::test]
async fn a_cancelled_deletion_is_not_carried_out() {
    let kms = service().await;
    let c = caller();
    let key = new_key(&kms).await;
    schedule_deletion(&kms, &key, None).await;
    kms.cancel_key_deletion(
        &c,
        KeyIdRequest {
            key_id: Some(key.clone()),
        },
    )
    .await
    .unwrap();
    kms.clock.advance(31 * 86_400);
    assert!(kms.destroy_due_keys().await.unwrap().is_empty());
    let meta = describe(&kms, &c, &key)
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, "Disabled");
    assert!(!meta.enabled);
}

#[tokio::test]
async fn a_reopened_store_decrypts_what_was_encrypted_and_refuses_another_root_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("trent.db");
    let (root, _) = LocalRootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
    let root: Arc<dyn RootKey> = Arc::new(root);
    let c = caller();
    let blob = {
        let kms = open_file(&db, root.clone()).await.unwrap();
        let key = new_key(&kms).await;
        kms.encrypt(
            &c,
            EncryptRequest {
                key_id: Some(key),
                plaintext: Some(Blob::new(b"kept".to_vec())),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
    };
    let kms = open_file(&db, root).await.unwrap();
    let out = kms
        .decrypt(
            &c,
            DecryptRequest {
                ciphertext_blob: Some(blob),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.plaintext.unwrap().as_slice(), b"kept");

    let other: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
    let err = open_file(&db, other).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "the root key does not match this data directory (wrong key file or passphrase)"
    );
}

#[tokio::test]
async fn keys_are_regional_and_accounts_are_separate() {
    let kms = service().await;
    let key = new_key(&kms).await;
    let elsewhere = Caller {
        region: "eu-west-1".into(),
        ..caller()
    };
    let err = describe(&kms, &elsewhere, &key).await.unwrap_err();
    assert_eq!(err, not_found(&key_arn("eu-west-1", &key)));
    let other_account = Caller {
        account: "444455556666".into(),
        principal_arn: "arn:aws:iam::444455556666:user/eve".into(),
        ..caller()
    };
    let arn = key_arn("us-east-1", &key);
    let err = describe(&kms, &other_account, &arn).await.unwrap_err();
    assert_eq!(
        err,
        KmsError::AccessDenied(
            "User: arn:aws:iam::444455556666:user/eve is not authorized to perform: kms:DescribeKey on this resource because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access".into()
        )
    );
}

#[tokio::test]
async fn reset_wipes_keys_and_aliases() {
    let kms = service().await;
    let key = new_key(&kms).await;
    create_alias(&kms, "alias/a", &key).await;
    kms.reset().await.unwrap();
    assert_eq!(kms.key_count(), 0);
    assert!(aliases(&kms).await.is_empty());
}
