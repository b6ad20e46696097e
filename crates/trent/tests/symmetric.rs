//! Symmetric keys end to end through `aws-sdk-kms`: key lifecycle, aliases, tags, key policies,
//! the symmetric data plane, and every error of the reference's sections 2, 3, 5 and 6, each with
//! its exact code, message and HTTP status. Every test runs its own dev-mode, in-memory server.

mod common;

use aws_sdk_kms::Client;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
// CustomerMasterKeySpec is deprecated in the model, but clients still read it: it must be right.
#[allow(deprecated)]
use aws_sdk_kms::types::CustomerMasterKeySpec;
use aws_sdk_kms::types::{
    DataKeySpec, EncryptionAlgorithmSpec, KeyManagerType, KeyMetadata, KeySpec, KeyState,
    KeyUsageType, OriginType, Tag,
};
use common::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

// ---------------------------------------------------------------------------------------------
// helpers

fn arn(key_id: &str) -> String {
    key_arn(REGION, ACCOUNT, key_id)
}

fn alias_arn_of(name: &str) -> String {
    alias_arn(REGION, ACCOUNT, name)
}

fn disabled_msg(key_id: &str) -> String {
    format!("{} is disabled.", arn(key_id))
}

fn pending_deletion_msg(key_id: &str) -> String {
    format!("{} is pending deletion.", arn(key_id))
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn create_key(kms: &Client) -> KeyMetadata {
    kms.create_key()
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("KeyMetadata")
}

async fn create_alias(kms: &Client, name: &str, key_id: &str) {
    kms.create_alias()
        .alias_name(name)
        .target_key_id(key_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateAlias {name}: {e:?}"));
}

async fn describe(kms: &Client, key_id: &str) -> KeyMetadata {
    kms.describe_key()
        .key_id(key_id)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata
        .expect("KeyMetadata")
}

async fn encrypt(kms: &Client, key_id: &str, plaintext: &[u8]) -> Vec<u8> {
    kms.encrypt()
        .key_id(key_id)
        .plaintext(Blob::new(plaintext))
        .send()
        .await
        .expect("Encrypt")
        .ciphertext_blob
        .expect("CiphertextBlob")
        .into_inner()
}

async fn decrypt(kms: &Client, blob: &[u8]) -> Vec<u8> {
    kms.decrypt()
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .expect("Decrypt")
        .plaintext
        .expect("Plaintext")
        .into_inner()
}

async fn tags_of(kms: &Client, key_id: &str) -> BTreeMap<String, String> {
    let out = kms
        .list_resource_tags()
        .key_id(key_id)
        .send()
        .await
        .expect("ListResourceTags");
    assert!(!out.truncated());
    out.tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect()
}

async fn aliases_of(kms: &Client, key_id: &str) -> BTreeSet<String> {
    let out = kms
        .list_aliases()
        .key_id(key_id)
        .send()
        .await
        .expect("ListAliases");
    out.aliases()
        .iter()
        .map(|a| a.alias_name().unwrap().to_owned())
        .collect()
}

fn every_form(key_id: &str, alias: &str) -> [String; 4] {
    [
        key_id.to_owned(),
        arn(key_id),
        alias.to_owned(),
        alias_arn_of(alias),
    ]
}

const DEFAULT_POLICY: &str = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;

/// A policy that still lets the account (and so the caller) manage the key.
fn custom_policy(sid: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Id":"custom","Statement":[{{"Sid":"{sid}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

const INCORRECT_KEY_MESSAGES: [&str; 2] = [
    "The key ID in the request does not identify a CMK that can perform this operation.",
    "The key ID in the request does not identify a KMS key that can perform this operation.",
];

// ---------------------------------------------------------------------------------------------
// CreateKey / DescribeKey

#[tokio::test]
#[allow(deprecated)]
async fn create_key_returns_full_symmetric_metadata() {
    let server = Server::dev();
    let kms = server.client();
    let before = now_secs();
    let out = kms.create_key().send().await.expect("CreateKey");
    assert!(
        out.request_id().is_some_and(|id| !id.is_empty()),
        "x-amzn-RequestId"
    );
    let md = out.key_metadata.expect("KeyMetadata");

    let id = md.key_id().to_owned();
    assert!(is_uuid_v4(&id), "key id {id:?} is not a UUID v4");
    assert_eq!(md.arn(), Some(arn(&id).as_str()));
    assert_eq!(md.aws_account_id(), Some(ACCOUNT));
    assert!(md.enabled());
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.description(), Some(""));
    assert_eq!(md.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(md.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(
        md.customer_master_key_spec(),
        Some(&CustomerMasterKeySpec::SymmetricDefault)
    );
    assert_eq!(
        md.encryption_algorithms(),
        &[EncryptionAlgorithmSpec::SymmetricDefault]
    );
    assert!(md.signing_algorithms().is_empty());
    assert!(md.mac_algorithms().is_empty());
    assert_eq!(md.origin(), Some(&OriginType::AwsKms));
    assert_eq!(md.key_manager(), Some(&KeyManagerType::Customer));
    assert_eq!(md.multi_region(), Some(false));
    assert_eq!(md.deletion_date(), None);
    assert_eq!(md.valid_to(), None);
    let created = md.creation_date().expect("CreationDate").secs();
    assert!(
        (before - 5..=now_secs() + 5).contains(&created),
        "CreationDate {created} not near now {before}"
    );
    let material = md.current_key_material_id().expect("CurrentKeyMaterialId");
    assert!(is_hex64(material), "CurrentKeyMaterialId {material:?}");

    // DescribeKey by every identifier form returns the same metadata.
    create_alias(&kms, "alias/describe-me", &id).await;
    for form in every_form(&id, "alias/describe-me") {
        assert_eq!(describe(&kms, &form).await, md, "DescribeKey({form})");
    }

    // Two keys never share an id or key material.
    let other = create_key(&kms).await;
    assert_ne!(other.key_id(), id);
    assert_ne!(other.current_key_material_id(), Some(material));
}

#[tokio::test]
async fn create_key_with_description_tags_and_policy() {
    let server = Server::dev();
    let kms = server.client();
    let policy = custom_policy("KeepAdmin");
    let md = kms
        .create_key()
        .description("payments key")
        .policy(&policy)
        .tags(tag("team", "payments"))
        .tags(tag("empty", ""))
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .unwrap();
    let id = md.key_id();
    assert_eq!(md.description(), Some("payments key"));
    assert_eq!(describe(&kms, id).await.description(), Some("payments key"));

    let got = kms
        .get_key_policy()
        .key_id(id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(policy.as_str()));
    assert_eq!(got.policy_name(), Some("default"));

    let expected: BTreeMap<String, String> = [("empty", ""), ("team", "payments")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(tags_of(&kms, id).await, expected);
}

#[tokio::test]
async fn create_key_rejects_bad_input_and_creates_nothing() {
    let server = Server::dev();
    let kms = server.client();

    assert_error(
        kms.create_key()
            .tags(tag("a", "1"))
            .tags(tag("a", "2"))
            .send()
            .await,
        "TagException",
        "Duplicate tag keys",
    );
    assert_error(
        kms.create_key().tags(tag("aws:owner", "x")).send().await,
        "TagException",
        "Tags beginning with aws: are reserved",
    );
    assert_code(
        kms.create_key().policy("{ not json").send().await,
        "MalformedPolicyDocumentException",
    );
    let long = "d".repeat(8193);
    assert_error(
        kms.create_key().description(&long).send().await,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{long}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"
        ),
    );
    let f = failure(
        kms.create_key()
            .key_usage(KeyUsageType::from("RANDOM"))
            .send()
            .await,
    );
    assert_eq!((f.code.as_str(), f.status), ("ValidationException", 400));
    assert!(
        f.message_text().starts_with(
            "1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: ["
        ),
        "{f:?}"
    );

    let keys = kms.list_keys().send().await.unwrap();
    assert!(
        keys.keys().is_empty(),
        "a failed CreateKey left a key: {keys:?}"
    );
}

#[tokio::test]
async fn create_key_sm2_is_refused_outside_china() {
    let server = Server::dev();
    let kms = server.client();
    let f = assert_code(
        kms.create_key()
            .key_spec(KeySpec::Sm2)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await,
        "ValidationException",
    );
    assert_eq!(
        f.message.as_deref(),
        Some("KeySpec SM2 is only available in the China Regions.")
    );
    assert!(f.request_id.is_some(), "x-amzn-RequestId on errors too");
    assert!(kms.list_keys().send().await.unwrap().keys().is_empty());
}

// ---------------------------------------------------------------------------------------------
// identifiers and regions

#[tokio::test]
async fn unknown_and_malformed_key_ids_are_not_found() {
    let server = Server::dev();
    let kms = server.client();
    let missing = "0b8e4e5c-5d0b-4a8e-9d2c-6f3a1b2c3d4e";

    assert_error(
        kms.describe_key().key_id(missing).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    assert_error(
        kms.describe_key().key_id(arn(missing)).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    assert_error(
        kms.encrypt()
            .key_id(missing)
            .plaintext(Blob::new("x"))
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    assert_error(
        kms.enable_key().key_id(missing).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    assert_error(
        kms.describe_key().key_id("fake-key-id").send().await,
        "NotFoundException",
        "Invalid keyId 'fake-key-id'",
    );
    assert_error(
        kms.describe_key()
            .key_id(key_arn(OTHER_REGION, ACCOUNT, missing))
            .send()
            .await,
        "NotFoundException",
        &format!("Invalid arn {OTHER_REGION}"),
    );
    assert_error(
        kms.describe_key().key_id("alias/nope").send().await,
        "NotFoundException",
        &format!("Alias {} is not found.", alias_arn_of("alias/nope")),
    );
    assert_error(
        kms.encrypt()
            .key_id(alias_arn_of("alias/nope"))
            .plaintext(Blob::new("x"))
            .send()
            .await,
        "NotFoundException",
        &format!("Alias {} is not found.", alias_arn_of("alias/nope")),
    );

    // Typed error, as SDK users match on it.
    let err = kms
        .describe_key()
        .key_id(missing)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn keys_are_regional() {
    let server = Server::dev();
    let east = server.client();
    let west = server.client_in(OTHER_REGION);
    let key = create_key(&east).await;
    let id = key.key_id();
    create_alias(&east, "alias/regional", id).await;
    let blob = encrypt(&east, id, b"stays in us-east-1").await;

    assert_error(
        west.describe_key().key_id(id).send().await,
        "NotFoundException",
        &not_found_message(OTHER_REGION, ACCOUNT, id),
    );
    assert_error(
        west.describe_key().key_id(arn(id)).send().await,
        "NotFoundException",
        &format!("Invalid arn {REGION}"),
    );
    assert_error(
        west.describe_key().key_id("alias/regional").send().await,
        "NotFoundException",
        &format!(
            "Alias {} is not found.",
            alias_arn(OTHER_REGION, ACCOUNT, "alias/regional")
        ),
    );
    assert!(west.list_keys().send().await.unwrap().keys().is_empty());
    let f = failure(
        west.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await,
    );
    assert_eq!(f.status, 400, "{f:?}");
    assert!(
        ["InvalidCiphertextException", "NotFoundException"].contains(&f.code.as_str()),
        "a us-east-1 ciphertext decrypted in {OTHER_REGION}: {f:?}"
    );

    // A key made in the other region lives there, and the alias name is free there.
    let west_key = create_key(&west).await;
    assert_eq!(
        west_key.arn(),
        Some(key_arn(OTHER_REGION, ACCOUNT, west_key.key_id()).as_str())
    );
    create_alias(&west, "alias/regional", west_key.key_id()).await;
    assert_eq!(
        describe(&west, "alias/regional").await.key_id(),
        west_key.key_id()
    );
    assert_eq!(describe(&east, "alias/regional").await.key_id(), id);
    let east_keys = east.list_keys().send().await.unwrap();
    assert_eq!(east_keys.keys().len(), 1);
    assert_eq!(decrypt(&east, &blob).await, b"stays in us-east-1");
}

// ---------------------------------------------------------------------------------------------
// ListKeys / UpdateKeyDescription

#[tokio::test]
async fn list_keys_paginates() {
    let server = Server::dev();
    let kms = server.client();
    let mut created = BTreeMap::new();
    for _ in 0..5 {
        let md = create_key(&kms).await;
        created.insert(md.key_id().to_owned(), md.arn().unwrap().to_owned());
    }

    let all = kms.list_keys().send().await.unwrap();
    assert!(!all.truncated());
    assert_eq!(all.next_marker(), None);
    let listed: BTreeMap<String, String> = all
        .keys()
        .iter()
        .map(|k| {
            (
                k.key_id().unwrap().to_owned(),
                k.key_arn().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed, created);

    let mut seen = BTreeMap::new();
    let mut pages = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = kms
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages.push((page.keys().len(), page.truncated()));
        for k in page.keys() {
            assert!(
                seen.insert(
                    k.key_id().unwrap().to_owned(),
                    k.key_arn().unwrap().to_owned()
                )
                .is_none(),
                "key listed twice"
            );
        }
        if !page.truncated() {
            assert_eq!(page.next_marker(), None);
            break;
        }
        marker = Some(
            page.next_marker()
                .expect("NextMarker when Truncated")
                .to_owned(),
        );
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(pages, vec![(2, true), (2, true), (1, false)]);
    assert_eq!(seen, created);

    assert_error(
        kms.list_keys().limit(0).send().await,
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    assert_error(
        kms.list_keys().limit(1001).send().await,
        "ValidationException",
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000",
    );
    assert_code(
        kms.list_keys().marker("not-a-marker").send().await,
        "InvalidMarkerException",
    );
    let one = kms.list_keys().limit(1).send().await.unwrap();
    assert_eq!((one.keys().len(), one.truncated()), (1, true));
    let most = kms.list_keys().limit(1000).send().await.unwrap();
    assert_eq!((most.keys().len(), most.truncated()), (5, false));
}

#[tokio::test]
async fn update_key_description() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    kms.update_key_description()
        .key_id(&id)
        .description("first")
        .send()
        .await
        .unwrap();
    assert_eq!(describe(&kms, &id).await.description(), Some("first"));
    kms.update_key_description()
        .key_id(arn(&id))
        .description("d".repeat(8192))
        .send()
        .await
        .unwrap();
    assert_eq!(
        describe(&kms, &id).await.description(),
        Some("d".repeat(8192).as_str())
    );
    kms.update_key_description()
        .key_id(&id)
        .description("")
        .send()
        .await
        .unwrap();
    assert_eq!(describe(&kms, &id).await.description(), Some(""));

    let long = "x".repeat(8193);
    assert_error(
        kms.update_key_description()
            .key_id(&id)
            .description(&long)
            .send()
            .await,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{long}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"
        ),
    );
    let missing = "11111111-2222-4333-8444-555555555555";
    assert_error(
        kms.update_key_description()
            .key_id(missing)
            .description("x")
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    // Only key id or key ARN: an alias does not name a key here.
    create_alias(&kms, "alias/desc", &id).await;
    assert_code(
        kms.update_key_description()
            .key_id("alias/desc")
            .description("x")
            .send()
            .await,
        "NotFoundException",
    );
    assert_eq!(describe(&kms, &id).await.description(), Some(""));
}

// ---------------------------------------------------------------------------------------------
// key states

/// Every cryptographic operation on key `id` (by every identifier form, `alias` among them)
/// fails with `code` and `msg`: Encrypt, GenerateDataKey (by KeySpec and by NumberOfBytes),
/// Decrypt of `blob`, and ReEncrypt with the key as source (to `other`) and as destination (of
/// `other_blob`).
#[allow(clippy::too_many_arguments)]
async fn assert_crypto_refused(
    kms: &Client,
    id: &str,
    alias: &str,
    blob: &[u8],
    other: &str,
    other_blob: &[u8],
    code: &str,
    msg: &str,
) {
    for key in every_form(id, alias) {
        assert_error(
            kms.encrypt()
                .key_id(&key)
                .plaintext(Blob::new("x"))
                .send()
                .await,
            code,
            msg,
        );
        assert_error(
            kms.generate_data_key()
                .key_id(&key)
                .key_spec(DataKeySpec::Aes256)
                .send()
                .await,
            code,
            msg,
        );
        assert_error(
            kms.generate_data_key_without_plaintext()
                .key_id(&key)
                .number_of_bytes(16)
                .send()
                .await,
            code,
            msg,
        );
        assert_error(
            kms.generate_data_key()
                .key_id(&key)
                .number_of_bytes(32)
                .send()
                .await,
            code,
            msg,
        );
        assert_error(
            kms.generate_data_key_without_plaintext()
                .key_id(&key)
                .key_spec(DataKeySpec::Aes128)
                .send()
                .await,
            code,
            msg,
        );
    }
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob.to_vec()))
            .send()
            .await,
        code,
        msg,
    );
    assert_error(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(blob.to_vec()))
            .destination_key_id(other)
            .send()
            .await,
        code,
        msg,
    );
    for destination in [id.to_string(), alias.to_string()] {
        assert_error(
            kms.re_encrypt()
                .ciphertext_blob(Blob::new(other_blob.to_vec()))
                .destination_key_id(&destination)
                .send()
                .await,
            code,
            msg,
        );
    }
}

#[tokio::test]
async fn disable_and_enable_key() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let other = create_key(&kms).await.key_id().to_owned();
    create_alias(&kms, "alias/toggle", &id).await;
    let blob = encrypt(&kms, &id, b"before").await;
    let other_blob = encrypt(&kms, &other, b"other").await;

    kms.disable_key().key_id(&id).send().await.unwrap();
    kms.disable_key().key_id(arn(&id)).send().await.unwrap(); // idempotent
    let md = describe(&kms, &id).await;
    assert_eq!(md.key_state(), Some(&KeyState::Disabled));
    assert!(!md.enabled());

    let msg = disabled_msg(&id);
    assert_crypto_refused(
        &kms,
        &id,
        "alias/toggle",
        &blob,
        &other,
        &other_blob,
        "DisabledException",
        &msg,
    )
    .await;
    // The state check comes before the DryRun answer.
    assert_error(
        kms.encrypt()
            .key_id(&id)
            .plaintext(Blob::new("x"))
            .dry_run(true)
            .send()
            .await,
        "DisabledException",
        &msg,
    );
    // GenerateRandom is not tied to a key; management calls keep working.
    kms.generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap();
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap();
    kms.update_key_description()
        .key_id(&id)
        .description("disabled")
        .send()
        .await
        .unwrap();

    kms.enable_key().key_id(arn(&id)).send().await.unwrap();
    kms.enable_key().key_id(&id).send().await.unwrap(); // idempotent
    let md = describe(&kms, &id).await;
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert!(md.enabled());
    assert_eq!(decrypt(&kms, &blob).await, b"before");
    let again = encrypt(&kms, "alias/toggle", b"after").await;
    assert_eq!(decrypt(&kms, &again).await, b"after");
}

#[tokio::test]
async fn schedule_key_deletion_defaults_to_30_days() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let before = now_secs();
    let out = kms
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&id).as_str()));
    assert_eq!(out.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(out.pending_window_in_days(), Some(30));
    let when = out.deletion_date().expect("DeletionDate").secs();
    let window = 30 * 86_400;
    assert!(
        (before + window - 60..=now_secs() + window + 86_400).contains(&when),
        "DeletionDate {when} is not 30 days after {before}"
    );

    let md = describe(&kms, &id).await;
    assert_eq!(md.key_state(), Some(&KeyState::PendingDeletion));
    assert!(!md.enabled());
    assert_eq!(md.deletion_date(), out.deletion_date());
}

#[tokio::test]
async fn schedule_key_deletion_window_is_7_to_30_days() {
    let server = Server::dev();
    let kms = server.client();
    for days in [7, 30, 18] {
        let id = create_key(&kms).await.key_id().to_owned();
        let before = now_secs();
        let out = kms
            .schedule_key_deletion()
            .key_id(arn(&id))
            .pending_window_in_days(days)
            .send()
            .await
            .unwrap_or_else(|e| panic!("window {days}: {e:?}"));
        assert_eq!(out.pending_window_in_days(), Some(days));
        let when = out.deletion_date().unwrap().secs();
        let window = i64::from(days) * 86_400;
        assert!(
            (before + window - 60..=now_secs() + window + 86_400).contains(&when),
            "window {days}: DeletionDate {when}, scheduled at {before}"
        );
    }
    let id = create_key(&kms).await.key_id().to_owned();
    for days in [6, 31, 0, -1, 365] {
        assert_code(
            kms.schedule_key_deletion()
                .key_id(&id)
                .pending_window_in_days(days)
                .send()
                .await,
            "ValidationException",
        );
    }
    assert_eq!(
        describe(&kms, &id).await.key_state(),
        Some(&KeyState::Enabled)
    );
}

#[tokio::test]
async fn cancel_key_deletion_leaves_key_disabled() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let blob = encrypt(&kms, &id, b"survives").await;
    let not_pending = format!("{} is not pending deletion.", arn(&id));

    assert_error(
        kms.cancel_key_deletion().key_id(&id).send().await,
        "KMSInvalidStateException",
        &not_pending,
    );
    kms.disable_key().key_id(&id).send().await.unwrap();
    assert_error(
        kms.cancel_key_deletion().key_id(&id).send().await,
        "KMSInvalidStateException",
        &not_pending,
    );

    kms.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let out = kms
        .cancel_key_deletion()
        .key_id(arn(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&id).as_str()));
    let md = describe(&kms, &id).await;
    assert_eq!(md.key_state(), Some(&KeyState::Disabled));
    assert!(!md.enabled());
    assert_eq!(md.deletion_date(), None);
    assert_error(
        kms.cancel_key_deletion().key_id(&id).send().await,
        "KMSInvalidStateException",
        &not_pending,
    );

    kms.enable_key().key_id(&id).send().await.unwrap();
    assert_eq!(decrypt(&kms, &blob).await, b"survives");
}

#[tokio::test]
async fn pending_deletion_key_refuses_use_and_most_changes() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let other = create_key(&kms).await.key_id().to_owned();
    create_alias(&kms, "alias/doomed", &id).await;
    create_alias(&kms, "alias/doomed-2", &id).await;
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("keep", "1"))
        .send()
        .await
        .unwrap();
    let blob = encrypt(&kms, &id, b"last words").await;
    let other_blob = encrypt(&kms, &other, b"other").await;
    kms.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let msg = pending_deletion_msg(&id);

    // Crypto, by every identifier form.
    assert_crypto_refused(
        &kms,
        &id,
        "alias/doomed",
        &blob,
        &other,
        &other_blob,
        "KMSInvalidStateException",
        &msg,
    )
    .await;

    // Management calls refused in PendingDeletion.
    assert_error(
        kms.enable_key().key_id(&id).send().await,
        "KMSInvalidStateException",
        &msg,
    );
    assert_error(
        kms.disable_key().key_id(&id).send().await,
        "KMSInvalidStateException",
        &msg,
    );
    assert_error(
        kms.schedule_key_deletion().key_id(&id).send().await,
        "KMSInvalidStateException",
        &msg,
    );
    assert_error(
        kms.create_alias()
            .alias_name("alias/too-late")
            .target_key_id(&id)
            .send()
            .await,
        "KMSInvalidStateException",
        &msg,
    );
    create_alias(&kms, "alias/elsewhere", &other).await;
    assert_error(
        kms.update_alias()
            .alias_name("alias/elsewhere")
            .target_key_id(&id)
            .send()
            .await,
        "KMSInvalidStateException",
        &msg,
    );
    assert_error(
        kms.tag_resource()
            .key_id(&id)
            .tags(tag("k", "v"))
            .send()
            .await,
        "KMSInvalidStateException",
        &msg,
    );
    assert_error(
        kms.untag_resource()
            .key_id(&id)
            .tag_keys("keep")
            .send()
            .await,
        "KMSInvalidStateException",
        &msg,
    );
    assert_error(
        kms.update_key_description()
            .key_id(&id)
            .description("x")
            .send()
            .await,
        "KMSInvalidStateException",
        &msg,
    );

    // Calls that work in every state.
    assert_eq!(
        describe(&kms, "alias/doomed").await.key_state(),
        Some(&KeyState::PendingDeletion)
    );
    kms.get_key_policy().key_id(&id).send().await.unwrap();
    kms.put_key_policy()
        .key_id(&id)
        .policy(custom_policy("StillMine"))
        .send()
        .await
        .unwrap();
    kms.list_key_policies().key_id(&id).send().await.unwrap();
    assert_eq!(tags_of(&kms, &id).await.len(), 1);
    assert_eq!(aliases_of(&kms, &id).await.len(), 2);
    kms.delete_alias()
        .alias_name("alias/doomed-2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        aliases_of(&kms, &id).await,
        BTreeSet::from(["alias/doomed".to_owned()])
    );
    assert!(
        kms.list_keys()
            .send()
            .await
            .unwrap()
            .keys()
            .iter()
            .any(|k| k.key_id() == Some(id.as_str())),
        "a key pending deletion is still listed"
    );
}

// ---------------------------------------------------------------------------------------------
// aliases

#[tokio::test]
async fn alias_names_follow_the_rules() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    let f = failure(
        kms.create_alias()
            .alias_name("no-prefix")
            .target_key_id(&id)
            .send()
            .await,
    );
    assert_eq!((f.code.as_str(), f.status), ("ValidationException", 400));
    assert!(
        f.message_text()
            .starts_with(r#"Alias must start with the prefix "alias/"."#),
        "{f:?}"
    );

    assert_code(
        kms.create_alias()
            .alias_name("alias/aws/mine")
            .target_key_id(&id)
            .send()
            .await,
        "NotAuthorizedException",
    );

    assert_error(
        kms.create_alias()
            .alias_name("alias/bad name")
            .target_key_id(&id)
            .send()
            .await,
        "ValidationException",
        "1 validation error detected: Value 'alias/bad name' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    );
    let too_long = format!("alias/{}", "a".repeat(251));
    assert_eq!(too_long.len(), 257);
    assert_error(
        kms.create_alias()
            .alias_name(&too_long)
            .target_key_id(&id)
            .send()
            .await,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{too_long}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"
        ),
    );

    let longest = format!("alias/{}", "b".repeat(250));
    create_alias(&kms, &longest, &id).await;
    create_alias(&kms, "alias/Team_A/key-1", &id).await;
    assert_eq!(describe(&kms, &longest).await.key_id(), id);
    assert_eq!(describe(&kms, "alias/Team_A/key-1").await.key_id(), id);

    // Unique per account and region, whatever key it would point to.
    let other = create_key(&kms).await.key_id().to_owned();
    assert_error(
        kms.create_alias()
            .alias_name("alias/Team_A/key-1")
            .target_key_id(&other)
            .send()
            .await,
        "AlreadyExistsException",
        &format!(
            "An alias with the name {} already exists",
            alias_arn_of("alias/Team_A/key-1")
        ),
    );
    // Names are case-sensitive.
    create_alias(&kms, "alias/team_a/key-1", &other).await;
    assert_eq!(describe(&kms, "alias/team_a/key-1").await.key_id(), other);

    let missing = "22222222-3333-4444-8555-666666666666";
    assert_error(
        kms.create_alias()
            .alias_name("alias/orphan")
            .target_key_id(missing)
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
}

#[tokio::test]
async fn update_and_delete_alias() {
    let server = Server::dev();
    let kms = server.client();
    let first = create_key(&kms).await.key_id().to_owned();
    let second = create_key(&kms).await.key_id().to_owned();
    create_alias(&kms, "alias/moving", &first).await;
    let old_blob = encrypt(&kms, "alias/moving", b"under first").await;

    kms.update_alias()
        .alias_name("alias/moving")
        .target_key_id(arn(&second))
        .send()
        .await
        .unwrap();
    assert_eq!(describe(&kms, "alias/moving").await.key_id(), second);
    let out = kms
        .encrypt()
        .key_id("alias/moving")
        .plaintext(Blob::new("under second"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&second).as_str()));
    // Ciphertexts name their key, not the alias.
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(old_blob))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&first).as_str()));
    assert_eq!(aliases_of(&kms, &first).await, BTreeSet::new());
    assert_eq!(
        aliases_of(&kms, &second).await,
        BTreeSet::from(["alias/moving".to_owned()])
    );

    let not_found = format!("Alias {} is not found.", alias_arn_of("alias/absent"));
    assert_error(
        kms.update_alias()
            .alias_name("alias/absent")
            .target_key_id(&first)
            .send()
            .await,
        "NotFoundException",
        &not_found,
    );
    let missing = "33333333-4444-4555-8666-777777777777";
    assert_error(
        kms.update_alias()
            .alias_name("alias/moving")
            .target_key_id(missing)
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );

    kms.delete_alias()
        .alias_name("alias/moving")
        .send()
        .await
        .unwrap();
    let gone = format!("Alias {} is not found.", alias_arn_of("alias/moving"));
    assert_error(
        kms.describe_key().key_id("alias/moving").send().await,
        "NotFoundException",
        &gone,
    );
    assert_error(
        kms.delete_alias().alias_name("alias/moving").send().await,
        "NotFoundException",
        &gone,
    );
    // The keys themselves are untouched, and the name is free again.
    describe(&kms, &second).await;
    create_alias(&kms, "alias/moving", &first).await;
    assert_eq!(describe(&kms, "alias/moving").await.key_id(), first);
}

#[tokio::test]
async fn list_aliases_filters_by_key_and_paginates() {
    let server = Server::dev();
    let kms = server.client();
    let first = create_key(&kms).await.key_id().to_owned();
    let second = create_key(&kms).await.key_id().to_owned();
    for name in ["alias/a1", "alias/a2", "alias/a3"] {
        create_alias(&kms, name, &first).await;
    }
    for name in ["alias/b1", "alias/b2"] {
        create_alias(&kms, name, &second).await;
    }

    let out = kms.list_aliases().key_id(&first).send().await.unwrap();
    assert!(!out.truncated());
    let mut names = Vec::new();
    for a in out.aliases() {
        let name = a.alias_name().unwrap();
        names.push(name.to_owned());
        assert_eq!(a.alias_arn(), Some(alias_arn_of(name).as_str()));
        assert_eq!(a.target_key_id(), Some(first.as_str()));
        assert!(a.creation_date().is_some(), "CreationDate of {name}");
        assert!(a.last_updated_date().is_some(), "LastUpdatedDate of {name}");
    }
    names.sort();
    assert_eq!(names, ["alias/a1", "alias/a2", "alias/a3"]);
    assert_eq!(
        aliases_of(&kms, &arn(&second)).await,
        BTreeSet::from(["alias/b1".to_owned(), "alias/b2".to_owned()])
    );

    // All customer aliases, two per page. (AWS also lists its own alias/aws/* names; skip those.)
    let mut seen = BTreeMap::new();
    let mut marker: Option<String> = None;
    for _ in 0..20 {
        let page = kms
            .list_aliases()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert!(page.aliases().len() <= 2);
        for a in page.aliases() {
            let name = a.alias_name().unwrap().to_owned();
            if name.starts_with("alias/aws/") {
                continue;
            }
            assert!(
                seen.insert(name, a.target_key_id().unwrap().to_owned())
                    .is_none(),
                "alias listed twice"
            );
        }
        if !page.truncated() {
            assert_eq!(page.next_marker(), None);
            marker = None;
            break;
        }
        marker = Some(page.next_marker().expect("NextMarker").to_owned());
    }
    assert!(marker.is_none(), "pagination does not end");
    let expected: BTreeMap<String, String> = [
        ("alias/a1", &first),
        ("alias/a2", &first),
        ("alias/a3", &first),
        ("alias/b1", &second),
        ("alias/b2", &second),
    ]
    .into_iter()
    .map(|(n, k)| (n.to_owned(), k.clone()))
    .collect();
    assert_eq!(seen, expected);

    assert_error(
        kms.list_aliases().limit(101).send().await,
        "ValidationException",
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100",
    );
    assert_error(
        kms.list_aliases().limit(0).send().await,
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    assert_code(
        kms.list_aliases().marker("not-a-marker").send().await,
        "InvalidMarkerException",
    );
    let missing = "88888888-9999-4aaa-8bbb-cccccccccccc";
    assert_error(
        kms.list_aliases().key_id(missing).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
}

#[tokio::test]
async fn at_most_50_aliases_per_key() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    for i in 0..50 {
        create_alias(&kms, &format!("alias/many-{i}"), &id).await;
    }
    assert_code(
        kms.create_alias()
            .alias_name("alias/many-50")
            .target_key_id(&id)
            .send()
            .await,
        "LimitExceededException",
    );
    assert_eq!(aliases_of(&kms, &id).await.len(), 50);
    // Another key is not affected.
    let other = create_key(&kms).await.key_id().to_owned();
    create_alias(&kms, "alias/many-50", &other).await;
}

// ---------------------------------------------------------------------------------------------
// tags

#[tokio::test]
async fn tag_untag_and_list_tags() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    kms.tag_resource()
        .key_id(&id)
        .tags(tag("env", "prod"))
        .tags(tag("team", "a"))
        .send()
        .await
        .unwrap();
    // Tagging an existing key replaces its value; by key ARN too.
    kms.tag_resource()
        .key_id(arn(&id))
        .tags(tag("team", "b"))
        .tags(tag("blank", ""))
        .send()
        .await
        .unwrap();
    let expected: BTreeMap<String, String> = [("blank", ""), ("env", "prod"), ("team", "b")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(tags_of(&kms, &id).await, expected);

    // Untagging a missing tag is a no-op.
    kms.untag_resource()
        .key_id(&id)
        .tag_keys("env")
        .tag_keys("never-there")
        .send()
        .await
        .unwrap();
    let expected: BTreeMap<String, String> = [("blank", ""), ("team", "b")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(tags_of(&kms, &id).await, expected);

    // Pagination of ListResourceTags.
    let page = kms
        .list_resource_tags()
        .key_id(&id)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.tags().len(), 1);
    assert!(page.truncated());
    let rest = kms
        .list_resource_tags()
        .key_id(&id)
        .limit(1)
        .marker(page.next_marker().expect("NextMarker"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags().len(), 1);
    assert!(!rest.truncated());
    assert_ne!(page.tags()[0].tag_key(), rest.tags()[0].tag_key());
    assert_error(
        kms.list_resource_tags().key_id(&id).limit(51).send().await,
        "ValidationException",
        "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50",
    );

    let missing = "44444444-5555-4666-8777-888888888888";
    assert_error(
        kms.tag_resource()
            .key_id(missing)
            .tags(tag("k", "v"))
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    assert_error(
        kms.list_resource_tags().key_id(missing).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
}

#[tokio::test]
async fn tag_errors() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    assert_error(
        kms.tag_resource()
            .key_id(&id)
            .tags(tag("dup", "1"))
            .tags(tag("dup", "2"))
            .send()
            .await,
        "TagException",
        "Duplicate tag keys",
    );
    assert_error(
        kms.tag_resource()
            .key_id(&id)
            .tags(tag("aws:reserved", "x"))
            .send()
            .await,
        "TagException",
        "Tags beginning with aws: are reserved",
    );
    let long_key = "k".repeat(129);
    assert_error(
        kms.tag_resource()
            .key_id(&id)
            .tags(tag(&long_key, "v"))
            .send()
            .await,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{long_key}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"
        ),
    );
    let long_value = "v".repeat(257);
    assert_error(
        kms.tag_resource()
            .key_id(&id)
            .tags(tag("ok", "1"))
            .tags(tag("k", &long_value))
            .send()
            .await,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{long_value}' at 'tags.2.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"
        ),
    );
    // The limits themselves are fine.
    kms.tag_resource()
        .key_id(&id)
        .tags(tag(&"k".repeat(128), &"v".repeat(256)))
        .send()
        .await
        .unwrap();

    // 51 tags in one request.
    let mut req = kms.tag_resource().key_id(&id);
    for i in 0..51 {
        req = req.tags(tag(&format!("t{i}"), "x"));
    }
    assert_error(req.send().await, "TagException", "Too many tags");
    assert_eq!(
        tags_of(&kms, &id).await.len(),
        1,
        "a refused request changed tags"
    );

    // 50 in all is the limit; replacing an existing tag's value at the limit is fine.
    let mut req = kms.tag_resource().key_id(&id);
    for i in 0..49 {
        req = req.tags(tag(&format!("t{i}"), "x"));
    }
    req.send().await.unwrap();
    assert_eq!(tags_of(&kms, &id).await.len(), 50);
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("t0", "replaced"))
        .send()
        .await
        .unwrap();
    assert_error(
        kms.tag_resource()
            .key_id(&id)
            .tags(tag("one-more", "x"))
            .send()
            .await,
        "TagException",
        "Too many tags",
    );
    let tags = tags_of(&kms, &id).await;
    assert_eq!(tags.len(), 50);
    assert_eq!(tags.get("t0").map(String::as_str), Some("replaced"));
}

// ---------------------------------------------------------------------------------------------
// key policies

#[tokio::test]
async fn default_key_policy_and_put_key_policy() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    let policy = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .expect("Policy");
    let parsed: serde_json::Value = serde_json::from_str(&policy).expect("policy is JSON");
    let expected: serde_json::Value = serde_json::from_str(DEFAULT_POLICY).unwrap();
    assert_eq!(parsed, expected, "default policy content");
    assert_eq!(
        policy, DEFAULT_POLICY,
        "default policy text, as AWS prints it"
    );
    // PolicyName may be left out: it defaults to "default".
    let implicit = kms.get_key_policy().key_id(arn(&id)).send().await.unwrap();
    assert_eq!(implicit.policy(), Some(DEFAULT_POLICY));

    let names = kms.list_key_policies().key_id(&id).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default".to_owned()]);
    assert!(!names.truncated());

    let new_policy = custom_policy("Replaced");
    kms.put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(&new_policy)
        .send()
        .await
        .unwrap();
    let got = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(got.policy(), Some(new_policy.as_str()), "stored verbatim");

    for bad in ["{ not json", "", "[1,2,3]"] {
        assert_code(
            kms.put_key_policy()
                .key_id(&id)
                .policy_name("default")
                .policy(bad)
                .send()
                .await,
            if bad.is_empty() {
                "ValidationException"
            } else {
                "MalformedPolicyDocumentException"
            },
        );
    }
    let got = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(
        got.policy(),
        Some(new_policy.as_str()),
        "refused policy changed nothing"
    );

    // The only policy name is "default".
    assert_code(
        kms.get_key_policy()
            .key_id(&id)
            .policy_name("other")
            .send()
            .await,
        "NotFoundException",
    );
    assert_code(
        kms.put_key_policy()
            .key_id(&id)
            .policy_name("other")
            .policy(custom_policy("Other"))
            .send()
            .await,
        "NotFoundException",
    );

    let missing = "55555555-6666-4777-8888-999999999999";
    assert_error(
        kms.get_key_policy().key_id(missing).send().await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
}

// ---------------------------------------------------------------------------------------------
// data plane

#[tokio::test]
async fn encrypt_decrypt_with_every_key_id_form() {
    let server = Server::dev();
    let kms = server.client();
    let md = create_key(&kms).await;
    let id = md.key_id().to_owned();
    let material = md.current_key_material_id().map(str::to_owned);
    create_alias(&kms, "alias/forms", &id).await;
    let plaintext = test_bytes(fresh_seed(), 100);

    let mut blobs = Vec::new();
    for form in every_form(&id, "alias/forms") {
        let out = kms
            .encrypt()
            .key_id(&form)
            .plaintext(Blob::new(plaintext.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.key_id(),
            Some(arn(&id).as_str()),
            "Encrypt({form}).KeyId"
        );
        assert_eq!(
            out.encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
        assert!(blob.len() <= 6144);
        assert!(
            !blob.windows(plaintext.len()).any(|w| w == plaintext),
            "plaintext visible in the ciphertext"
        );
        blobs.push(blob);
    }
    let distinct: BTreeSet<&Vec<u8>> = blobs.iter().collect();
    assert_eq!(distinct.len(), blobs.len(), "ciphertexts repeat");

    for blob in &blobs {
        // Without KeyId: the blob names its key.
        let out = kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_slice());
        assert_eq!(out.key_id(), Some(arn(&id).as_str()));
        assert_eq!(
            out.encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        let kmid = out.key_material_id().expect("KeyMaterialId");
        assert!(is_hex64(kmid), "KeyMaterialId {kmid:?}");
        assert_eq!(
            Some(kmid.to_owned()),
            material,
            "KeyMaterialId = CurrentKeyMaterialId"
        );
        // With KeyId in every form.
        for form in every_form(&id, "alias/forms") {
            let out = kms
                .decrypt()
                .ciphertext_blob(Blob::new(blob.clone()))
                .key_id(&form)
                .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
                .send()
                .await
                .unwrap();
            assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_slice());
            assert_eq!(out.key_id(), Some(arn(&id).as_str()));
        }
    }
}

#[tokio::test]
async fn plaintext_size_limits() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    for len in [1, 4096] {
        let pt = test_bytes(len as u64, len);
        let blob = encrypt(&kms, &id, &pt).await;
        assert!(
            blob.len() <= 6144,
            "blob of {len} bytes is {} long",
            blob.len()
        );
        assert_eq!(decrypt(&kms, &blob).await, pt);
    }
    assert_error(
        kms.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(vec![7u8; 4097]))
            .send()
            .await,
        "ValidationException",
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    assert_error(
        kms.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(Vec::new()))
            .send()
            .await,
        "ValidationException",
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
    // Required members (the SDK does not check them; the service does).
    assert_error(
        kms.encrypt().plaintext(Blob::new("x")).send().await,
        "ValidationException",
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
    );
    assert_error(
        kms.encrypt().key_id(&id).send().await,
        "ValidationException",
        "1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
    );
}

#[tokio::test]
async fn encryption_context_must_match_exactly() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let ctx = context(&[("Department", "Engineering"), ("Project", "trent")]);
    let blob = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("secret"))
        .set_encryption_context(Some(ctx.clone()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();

    // Same pairs, other order.
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("Project", "trent")
        .encryption_context("Department", "Engineering")
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"secret");

    let wrong: Vec<Option<HashMap<String, String>>> = vec![
        None,
        Some(HashMap::new()),
        Some(context(&[("Department", "Engineering")])),
        Some(context(&[
            ("Department", "Engineering"),
            ("Project", "trent"),
            ("Extra", "1"),
        ])),
        Some(context(&[
            ("department", "Engineering"),
            ("Project", "trent"),
        ])),
        Some(context(&[
            ("Department", "engineering"),
            ("Project", "trent"),
        ])),
        Some(context(&[
            ("Department", "Engineering"),
            ("Project", "trenT"),
        ])),
    ];
    for ctx in wrong {
        let f = assert_error(
            kms.decrypt()
                .ciphertext_blob(Blob::new(blob.clone()))
                .set_encryption_context(ctx.clone())
                .send()
                .await,
            "InvalidCiphertextException",
            "",
        );
        assert!(f.request_id.is_some());
    }

    // The context encoding is unambiguous: {"ab":"c"} is not {"a":"bc"}.
    let blob = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .encryption_context("ab", "c")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .encryption_context("a", "bc")
            .send()
            .await,
        "InvalidCiphertextException",
        "",
    );

    // No context and an empty context are the same thing.
    let blob = encrypt(&kms, &id, b"no context").await;
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .set_encryption_context(Some(HashMap::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"no context");
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob))
            .encryption_context("k", "v")
            .send()
            .await,
        "InvalidCiphertextException",
        "",
    );
}

#[tokio::test]
async fn tampered_truncated_and_random_ciphertexts_are_invalid() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let blob = encrypt(&kms, &id, &test_bytes(1, 32)).await;
    let n = blob.len();

    let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
    // Flip one bit in the version byte and in each of the last 60 bytes (tag, ciphertext, IV).
    for pos in std::iter::once(0).chain(n.saturating_sub(60)..n) {
        let mut b = blob.clone();
        b[pos] ^= 0x01;
        bad.push((format!("bit flipped at {pos}"), b));
    }
    for len in [1, 10, n / 2, n - 16, n - 1] {
        bad.push((format!("truncated to {len}"), blob[..len].to_vec()));
    }
    let mut longer = blob.clone();
    longer.push(0);
    bad.push(("one byte appended".into(), longer));
    for (seed, len) in [(11u64, 1usize), (12, 16), (13, 100), (14, n), (15, 6144)] {
        bad.push((format!("{len} random bytes"), test_bytes(seed, len)));
    }
    let mut forged = test_bytes(16, n);
    forged[..10].copy_from_slice(&blob[..10]);
    bad.push(("random bytes behind a real prefix".into(), forged));

    for (what, b) in bad {
        let f = failure(kms.decrypt().ciphertext_blob(Blob::new(b)).send().await);
        assert_eq!(
            (f.code.as_str(), f.message_text(), f.status),
            ("InvalidCiphertextException", "", 400),
            "{what}: {f:?}"
        );
    }
    // Blob lengths are checked before anything else. (Coral prints blob values oddly, if at all,
    // so only the constraint part of the message is pinned.)
    for (len, constraint) in [
        (6145, "Member must have length less than or equal to 6144"),
        (0, "Member must have length greater than or equal to 1"),
    ] {
        let f = assert_code(
            kms.decrypt()
                .ciphertext_blob(Blob::new(vec![1u8; len]))
                .send()
                .await,
            "ValidationException",
        );
        assert!(
            f.message_text()
                .starts_with("1 validation error detected: Value ")
                && f.message_text().ends_with(&format!(
                    "at 'ciphertextBlob' failed to satisfy constraint: {constraint}"
                )),
            "{len} bytes: {f:?}"
        );
    }
    // The genuine blob still decrypts.
    assert_eq!(decrypt(&kms, &blob).await, test_bytes(1, 32));
}

#[tokio::test]
async fn decrypt_with_another_key_is_incorrect_key() {
    let server = Server::dev();
    let kms = server.client();
    let right = create_key(&kms).await.key_id().to_owned();
    let wrong = create_key(&kms).await.key_id().to_owned();
    create_alias(&kms, "alias/wrong", &wrong).await;
    let blob = encrypt(&kms, &right, b"mine").await;

    for form in every_form(&wrong, "alias/wrong") {
        let f = failure(
            kms.decrypt()
                .ciphertext_blob(Blob::new(blob.clone()))
                .key_id(&form)
                .send()
                .await,
        );
        assert_eq!(
            (f.code.as_str(), f.status),
            ("IncorrectKeyException", 400),
            "{form}: {f:?}"
        );
        assert!(
            INCORRECT_KEY_MESSAGES.contains(&f.message_text()),
            "{form}: {f:?}"
        );
    }
    let f = failure(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .source_key_id(&wrong)
            .destination_key_id(&wrong)
            .send()
            .await,
    );
    assert_eq!(
        (f.code.as_str(), f.status),
        ("IncorrectKeyException", 400),
        "{f:?}"
    );
    assert!(INCORRECT_KEY_MESSAGES.contains(&f.message_text()), "{f:?}");

    let missing = "66666666-7777-4888-8999-aaaaaaaaaaaa";
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .key_id(missing)
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
    let err = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .key_id(&wrong)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_incorrect_key_exception(), "{err:?}");
}

#[tokio::test]
async fn generate_data_key_variants() {
    let server = Server::dev();
    let kms = server.client();
    let md = create_key(&kms).await;
    let id = md.key_id().to_owned();
    create_alias(&kms, "alias/dk", &id).await;
    let material = md.current_key_material_id().map(str::to_owned);

    for form in every_form(&id, "alias/dk") {
        for (spec, bytes, len) in [
            (Some(DataKeySpec::Aes256), None, 32usize),
            (Some(DataKeySpec::Aes128), None, 16),
            (None, Some(1), 1),
            (None, Some(64), 64),
            (None, Some(1024), 1024),
        ] {
            let out = kms
                .generate_data_key()
                .key_id(&form)
                .set_key_spec(spec.clone())
                .set_number_of_bytes(bytes)
                .encryption_context("purpose", "test")
                .send()
                .await
                .unwrap();
            assert_eq!(out.key_id(), Some(arn(&id).as_str()));
            let kmid = out.key_material_id().expect("KeyMaterialId");
            assert!(is_hex64(kmid), "{kmid:?}");
            assert_eq!(Some(kmid.to_owned()), material);
            let pt = out.plaintext().unwrap().as_ref().to_vec();
            assert_eq!(pt.len(), len, "{form} {spec:?} {bytes:?}");
            let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
            let dec = kms
                .decrypt()
                .ciphertext_blob(Blob::new(blob.clone()))
                .encryption_context("purpose", "test")
                .send()
                .await
                .unwrap();
            assert_eq!(dec.plaintext().unwrap().as_ref(), pt.as_slice());
            assert_error(
                kms.decrypt().ciphertext_blob(Blob::new(blob)).send().await,
                "InvalidCiphertextException",
                "",
            );
        }

        let out = kms
            .generate_data_key_without_plaintext()
            .key_id(&form)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn(&id).as_str()));
        let kmid = out.key_material_id().expect("KeyMaterialId");
        assert!(is_hex64(kmid), "{kmid:?}");
        let dec = decrypt(&kms, out.ciphertext_blob().unwrap().as_ref()).await;
        assert_eq!(dec.len(), 32);
    }

    // Two data keys differ.
    let a = kms
        .generate_data_key()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let b = kms
        .generate_data_key()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    assert_ne!(a.plaintext(), b.plaintext());
}

#[tokio::test]
async fn generate_data_key_validation() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();

    assert_code(
        kms.generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .number_of_bytes(32)
            .send()
            .await,
        "ValidationException",
    );
    assert_error(
        kms.generate_data_key().key_id(&id).send().await,
        "ValidationException",
        "Please specify either number of bytes or key spec.",
    );
    assert_code(
        kms.generate_data_key_without_plaintext()
            .key_id(&id)
            .send()
            .await,
        "ValidationException",
    );
    for (n, bound) in [
        (0, "greater than or equal to 1"),
        (1025, "less than or equal to 1024"),
    ] {
        let msg = format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value {bound}"
        );
        assert_error(
            kms.generate_data_key()
                .key_id(&id)
                .number_of_bytes(n)
                .send()
                .await,
            "ValidationException",
            &msg,
        );
        assert_error(
            kms.generate_data_key_without_plaintext()
                .key_id(&id)
                .number_of_bytes(n)
                .send()
                .await,
            "ValidationException",
            &msg,
        );
    }
    let f = failure(
        kms.generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::from("AES_512"))
            .send()
            .await,
    );
    assert_eq!((f.code.as_str(), f.status), ("ValidationException", 400));
    assert!(
        f.message_text().starts_with(
            "1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["
        ),
        "{f:?}"
    );
}

#[tokio::test]
async fn generate_random() {
    let server = Server::dev();
    let kms = server.client();
    for n in [1, 32, 1024] {
        let out = kms
            .generate_random()
            .number_of_bytes(n)
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref().len(), n as usize);
    }
    let a = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let b = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_ne!(a.plaintext(), b.plaintext());

    assert_error(
        kms.generate_random().send().await,
        "ValidationException",
        "NumberOfBytes is required.",
    );
    assert_error(
        kms.generate_random().number_of_bytes(0).send().await,
        "ValidationException",
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    assert_error(
        kms.generate_random().number_of_bytes(1025).send().await,
        "ValidationException",
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    );
}

#[tokio::test]
async fn re_encrypt_moves_ciphertext_between_keys_and_contexts() {
    let server = Server::dev();
    let kms = server.client();
    let src = create_key(&kms).await;
    let dst = create_key(&kms).await;
    let (src_id, dst_id) = (src.key_id().to_owned(), dst.key_id().to_owned());
    create_alias(&kms, "alias/src", &src_id).await;
    create_alias(&kms, "alias/dst", &dst_id).await;
    let blob = kms
        .encrypt()
        .key_id(&src_id)
        .plaintext(Blob::new("moving"))
        .encryption_context("stage", "one")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();

    for (src_form, dst_form) in every_form(&src_id, "alias/src")
        .into_iter()
        .zip(every_form(&dst_id, "alias/dst"))
    {
        let out = kms
            .re_encrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .source_key_id(&src_form)
            .source_encryption_context("stage", "one")
            .destination_key_id(&dst_form)
            .destination_encryption_context("stage", "two")
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn(&dst_id).as_str()));
        assert_eq!(out.source_key_id(), Some(arn(&src_id).as_str()));
        assert_eq!(
            out.source_encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        assert_eq!(
            out.destination_encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        assert_eq!(out.source_key_material_id(), src.current_key_material_id());
        assert_eq!(
            out.destination_key_material_id(),
            dst.current_key_material_id()
        );
        assert!(is_hex64(out.source_key_material_id().unwrap()));
        assert!(is_hex64(out.destination_key_material_id().unwrap()));
        let new_blob = out.ciphertext_blob().unwrap().as_ref().to_vec();

        let dec = kms
            .decrypt()
            .ciphertext_blob(Blob::new(new_blob.clone()))
            .encryption_context("stage", "two")
            .send()
            .await
            .unwrap();
        assert_eq!(dec.plaintext().unwrap().as_ref(), b"moving");
        assert_eq!(dec.key_id(), Some(arn(&dst_id).as_str()));
        assert_error(
            kms.decrypt()
                .ciphertext_blob(Blob::new(new_blob))
                .encryption_context("stage", "one")
                .send()
                .await,
            "InvalidCiphertextException",
            "",
        );
    }

    // Source context wrong.
    assert_error(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .destination_key_id(&dst_id)
            .send()
            .await,
        "InvalidCiphertextException",
        "",
    );
    // Same key, new context.
    let out = kms
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .source_encryption_context("stage", "one")
        .destination_key_id(&src_id)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&src_id).as_str()));
    assert_eq!(
        decrypt(&kms, out.ciphertext_blob().unwrap().as_ref()).await,
        b"moving"
    );
    let missing = "77777777-8888-4999-8aaa-bbbbbbbbbbbb";
    assert_error(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(blob))
            .source_encryption_context("stage", "one")
            .destination_key_id(missing)
            .send()
            .await,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, missing),
    );
}

#[tokio::test]
async fn dry_run_reports_success_without_doing_it() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key(&kms).await.key_id().to_owned();
    let other = create_key(&kms).await.key_id().to_owned();
    let blob = encrypt(&kms, &id, b"dry").await;
    let msg = "The request would have succeeded, but the DryRun option is set.";

    assert_error(
        kms.encrypt()
            .key_id(&id)
            .plaintext(Blob::new("x"))
            .dry_run(true)
            .send()
            .await,
        "DryRunOperationException",
        msg,
    );
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .dry_run(true)
            .send()
            .await,
        "DryRunOperationException",
        msg,
    );
    assert_error(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .destination_key_id(&other)
            .dry_run(true)
            .send()
            .await,
        "DryRunOperationException",
        msg,
    );
    assert_error(
        kms.generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .dry_run(true)
            .send()
            .await,
        "DryRunOperationException",
        msg,
    );
    assert_error(
        kms.generate_data_key_without_plaintext()
            .key_id(&id)
            .number_of_bytes(16)
            .dry_run(true)
            .send()
            .await,
        "DryRunOperationException",
        msg,
    );
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .dry_run(true)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_dry_run_operation_exception(), "{err:?}");

    // A DryRun of a request that would fail reports that failure instead.
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(test_bytes(3, 120)))
            .dry_run(true)
            .send()
            .await,
        "InvalidCiphertextException",
        "",
    );
    // dry_run(false) is an ordinary call.
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .dry_run(false)
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"dry");
}
