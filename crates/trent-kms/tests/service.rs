//! The service over a real (in-memory or file) SQLite store: lifecycle rules that need a clock or
//! a restart, which the HTTP-level suites cannot reach directly.

use std::sync::Arc;
use trent_crypto::{LocalRootKey, RootKey};
use trent_kms::api::*;
use trent_kms::{Caller, Kms, KmsError};
use trent_store::{SqliteStore, Store};

fn caller() -> Caller {
    Caller {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        principal_arn: "arn:aws:iam::111122223333:user/test".into(),
    }
}

async fn service() -> Kms {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let root: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
    Kms::open(store, root).await.unwrap()
}

async fn new_key(kms: &Kms) -> String {
    kms.create_key(&caller(), CreateKeyRequest::default())
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

#[tokio::test]
async fn keys_are_destroyed_when_their_window_ends_and_not_before() {
    let kms = service().await;
    let c = caller();
    let doomed = new_key(&kms).await;
    let kept = new_key(&kms).await;
    kms.create_alias(
        &c,
        AliasRequest {
            alias_name: Some("alias/doomed".into()),
            target_key_id: Some(doomed.clone()),
        },
    )
    .await
    .unwrap();
    kms.schedule_key_deletion(
        &c,
        ScheduleKeyDeletionRequest {
            key_id: Some(doomed.clone()),
            pending_window_in_days: Some(7),
        },
    )
    .await
    .unwrap();
    kms.clock.advance(7 * 86_400 - 60);
    assert!(kms.destroy_due_keys().await.unwrap().is_empty());
    kms.clock.advance(120);
    let gone = kms.destroy_due_keys().await.unwrap();
    assert_eq!(
        gone,
        vec![format!("arn:aws:kms:us-east-1:111122223333:key/{doomed}")]
    );
    let err = kms
        .describe_key(
            &c,
            DescribeKeyRequest {
                key_id: Some(doomed.clone()),
                grant_tokens: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        KmsError::NotFound(format!(
            "Key 'arn:aws:kms:us-east-1:111122223333:key/{doomed}' does not exist"
        ))
    );
    let aliases = kms
        .list_aliases(&c, ListAliasesRequest::default())
        .await
        .unwrap();
    assert!(aliases.aliases.is_empty());
    assert!(
        kms.describe_key(
            &c,
            DescribeKeyRequest {
                key_id: Some(kept),
                grant_tokens: None
            }
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn a_cancelled_deletion_is_not_carried_out() {
    let kms = service().await;
    let c = caller();
    let key = new_key(&kms).await;
    kms.schedule_key_deletion(
        &c,
        ScheduleKeyDeletionRequest {
            key_id: Some(key.clone()),
            pending_window_in_days: None,
        },
    )
    .await
    .unwrap();
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
    let meta = kms
        .describe_key(
            &c,
            DescribeKeyRequest {
                key_id: Some(key),
                grant_tokens: None,
            },
        )
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
        let kms = Kms::open(Arc::new(SqliteStore::open(&db).unwrap()), root.clone())
            .await
            .unwrap();
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
    let kms = Kms::open(Arc::new(SqliteStore::open(&db).unwrap()), root)
        .await
        .unwrap();
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
    let err = Kms::open(Arc::new(SqliteStore::open(&db).unwrap()), other)
        .await
        .err()
        .unwrap();
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
    let err = kms
        .describe_key(
            &elsewhere,
            DescribeKeyRequest {
                key_id: Some(key.clone()),
                grant_tokens: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        KmsError::NotFound(format!(
            "Key 'arn:aws:kms:eu-west-1:111122223333:key/{key}' does not exist"
        ))
    );
    let other_account = Caller {
        account: "444455556666".into(),
        principal_arn: "arn:aws:iam::444455556666:user/eve".into(),
        ..caller()
    };
    let err = kms
        .describe_key(
            &other_account,
            DescribeKeyRequest {
                key_id: Some(format!("arn:aws:kms:us-east-1:111122223333:key/{key}")),
                grant_tokens: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        KmsError::AccessDenied(format!(
            "User: arn:aws:iam::444455556666:user/eve is not authorized to perform: kms:DescribeKey on resource: arn:aws:kms:us-east-1:111122223333:key/{key} because no resource-based policy allows the kms:DescribeKey action"
        ))
    );
}

#[tokio::test]
async fn reset_wipes_keys_and_aliases() {
    let kms = service().await;
    let key = new_key(&kms).await;
    kms.create_alias(
        &caller(),
        AliasRequest {
            alias_name: Some("alias/a".into()),
            target_key_id: Some(key),
        },
    )
    .await
    .unwrap();
    kms.reset().await.unwrap();
    assert_eq!(kms.key_count(), 0);
    assert!(
        kms.list_aliases(&caller(), ListAliasesRequest::default())
            .await
            .unwrap()
            .aliases
            .is_empty()
    );
}
