//! Symmetric keys end to end through `aws-sdk-kms`: key lifecycle, aliases, tags, key policies,
//! the symmetric data plane, and every error of the reference's sections 2, 3, 5 and 6, each with
//! its exact code, message and HTTP status. Every test runs its own dev-mode, in-memory server.

mod common;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::operation::create_alias::{CreateAliasError, CreateAliasOutput};
use aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
use aws_sdk_kms::operation::encrypt::builders::EncryptFluentBuilder;
use aws_sdk_kms::operation::re_encrypt::builders::ReEncryptFluentBuilder;
use aws_sdk_kms::operation::schedule_key_deletion::ScheduleKeyDeletionOutput;
use aws_sdk_kms::operation::tag_resource::builders::TagResourceFluentBuilder;
use aws_sdk_kms::operation::update_alias::{UpdateAliasError, UpdateAliasOutput};
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
use std::fmt::{Debug, Display};

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

/// The out-of-range values of a `limit` (or `numberOfBytes`) from 1 to `max`, each with the rule
/// it breaks.
fn limit_cases(max: i32) -> [(i32, String); 2] {
    [
        (0, "have value greater than or equal to 1".to_owned()),
        (max + 1, format!("have value less than or equal to {max}")),
    ]
}

/// Asserts a List operation refuses a Limit outside 1..=`max` and a Marker it did not issue.
/// `list(limit, marker)` sends the request.
async fn assert_paging_input_checked<Fut, O, E>(
    max: i32,
    list: impl Fn(Option<i32>, Option<&str>) -> Fut,
) where
    Fut: Future<Output = Result<O, SdkError<E>>>,
    O: Debug,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    for (limit, rule) in limit_cases(max) {
        assert_error(
            list(Some(limit), None).await,
            "ValidationException",
            &validation_msg(limit, "limit", &rule),
        );
    }
    assert_code(
        list(None, Some("not-a-marker")).await,
        "InvalidMarkerException",
    );
}

fn alias_not_found_msg(name: &str) -> String {
    format!("Alias {} is not found.", alias_arn_of(name))
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

/// A map of string pairs: an encryption context, or the tags a key should have.
fn string_map<M: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> M {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `1 validation error detected: Value '<value>' at '<field>' failed to satisfy constraint: Member must <rule>`
fn validation_msg(value: impl Display, field: &str, rule: &str) -> String {
    format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must {rule}"
    )
}

/// Asserts `result` failed with HTTP 400, `NotFoundException` and the message for the missing key
/// `key_id` in this account and us-east-1.
#[track_caller]
fn assert_not_found<O, E>(result: Result<O, SdkError<E>>, key_id: &str)
where
    O: Debug,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    assert_error(
        result,
        "NotFoundException",
        &not_found_message(REGION, ACCOUNT, key_id),
    );
}

/// Asserts `result` failed with HTTP 400, `InvalidCiphertextException` and no message.
#[track_caller]
fn assert_invalid_ciphertext<O, E>(result: Result<O, SdkError<E>>) -> ServiceFailure
where
    O: Debug,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    assert_error(result, "InvalidCiphertextException", "")
}

/// Asserts every failure is HTTP 400 with error `code` and exactly `msg`; `what` names the case.
#[track_caller]
fn assert_failures<W: Display>(
    failures: impl IntoIterator<Item = (W, ServiceFailure)>,
    code: &str,
    msg: &str,
) {
    for (what, f) in failures {
        assert_eq!(
            (f.code.as_str(), f.message_text(), f.status),
            (code, msg, 400),
            "{what}: unexpected error {f:?}"
        );
    }
}

/// Asserts `f` is HTTP 400 `IncorrectKeyException` with one of the messages AWS uses for it.
#[track_caller]
fn assert_incorrect_key(f: &ServiceFailure, what: &str) {
    assert_eq!(
        (f.code.as_str(), f.status),
        ("IncorrectKeyException", 400),
        "{what}: {f:?}"
    );
    assert!(
        INCORRECT_KEY_MESSAGES.contains(&f.message_text()),
        "{what}: {f:?}"
    );
}

/// Asserts `f` is HTTP 400 `ValidationException` with a message that starts with `prefix`.
#[track_caller]
fn assert_validation_prefix(f: &ServiceFailure, prefix: &str) {
    assert_eq!((f.code.as_str(), f.status), ("ValidationException", 400));
    assert!(f.message_text().starts_with(prefix), "{f:?}");
}

/// The start of the message for a value outside the enum of `field`.
fn enum_msg_prefix(value: &str, field: &str) -> String {
    format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: ["
    )
}

/// Encrypt of `plaintext` under `key_id`, to be completed and sent.
fn encrypt_req(kms: &Client, key_id: &str, plaintext: impl Into<Vec<u8>>) -> EncryptFluentBuilder {
    kms.encrypt().key_id(key_id).plaintext(Blob::new(plaintext))
}

/// Decrypt of `blob`, to be completed and sent.
fn decrypt_req(kms: &Client, blob: impl Into<Vec<u8>>) -> DecryptFluentBuilder {
    kms.decrypt().ciphertext_blob(Blob::new(blob))
}

/// ReEncrypt of `blob` to `destination`, to be completed and sent.
fn re_encrypt_req(
    kms: &Client,
    blob: impl Into<Vec<u8>>,
    destination: &str,
) -> ReEncryptFluentBuilder {
    kms.re_encrypt()
        .ciphertext_blob(Blob::new(blob))
        .destination_key_id(destination)
}

/// TagResource of `key_id` with `tags`, in order, to be sent.
fn tag_req(
    kms: &Client,
    key_id: &str,
    tags: impl IntoIterator<Item = Tag>,
) -> TagResourceFluentBuilder {
    tags.into_iter()
        .fold(kms.tag_resource().key_id(key_id), |req, t| req.tags(t))
}

async fn create_key(kms: &Client) -> KeyMetadata {
    created_key(kms.create_key()).await
}

async fn create_key_id(kms: &Client) -> String {
    create_key(kms).await.key_id().to_owned()
}

async fn try_create_alias(
    kms: &Client,
    name: &str,
    key_id: &str,
) -> Result<CreateAliasOutput, SdkError<CreateAliasError>> {
    kms.create_alias()
        .alias_name(name)
        .target_key_id(key_id)
        .send()
        .await
}

async fn create_alias(kms: &Client, name: &str, key_id: &str) {
    try_create_alias(kms, name, key_id)
        .await
        .unwrap_or_else(|e| panic!("CreateAlias {name}: {e:?}"));
}

async fn try_update_alias(
    kms: &Client,
    name: &str,
    key_id: &str,
) -> Result<UpdateAliasOutput, SdkError<UpdateAliasError>> {
    kms.update_alias()
        .alias_name(name)
        .target_key_id(key_id)
        .send()
        .await
}

/// Encrypt of `plaintext` under `key_id` with the encryption context `pairs` (none if empty).
async fn encrypt_in_context(
    kms: &Client,
    key_id: &str,
    plaintext: &[u8],
    pairs: &[(&str, &str)],
) -> Vec<u8> {
    pairs
        .iter()
        .fold(encrypt_req(kms, key_id, plaintext), |req, (k, v)| {
            req.encryption_context(*k, *v)
        })
        .send()
        .await
        .expect("Encrypt")
        .ciphertext_blob
        .expect("CiphertextBlob")
        .into_inner()
}

async fn decrypt(kms: &Client, blob: &[u8]) -> Vec<u8> {
    decrypt_req(kms, blob)
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

const DESCRIPTION_RULE: &str = "have length less than or equal to 8192";

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
    let md = created_key(
        kms.create_key()
            .description("payments key")
            .policy(&policy)
            .tags(tag("team", "payments"))
            .tags(tag("empty", "")),
    )
    .await;
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

    assert_eq!(
        tags_of(&kms, id).await,
        string_map(&[("empty", ""), ("team", "payments")])
    );
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
        &validation_msg(&long, "description", DESCRIPTION_RULE),
    );
    let f = failure(
        kms.create_key()
            .key_usage(KeyUsageType::from("RANDOM"))
            .send()
            .await,
    );
    assert_validation_prefix(&f, &enum_msg_prefix("RANDOM", "keyUsage"));

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

    for key in [missing.to_owned(), arn(missing)] {
        assert_not_found(kms.describe_key().key_id(key).send().await, missing);
    }
    assert_not_found(encrypt_req(&kms, missing, "x").send().await, missing);
    assert_not_found(kms.enable_key().key_id(missing).send().await, missing);
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
    let no_alias = alias_not_found_msg("alias/nope");
    assert_error(
        kms.describe_key().key_id("alias/nope").send().await,
        "NotFoundException",
        &no_alias,
    );
    assert_error(
        encrypt_req(&kms, &alias_arn_of("alias/nope"), "x")
            .send()
            .await,
        "NotFoundException",
        &no_alias,
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
    let f = failure(decrypt_req(&west, blob.clone()).send().await);
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

    assert_paging_input_checked(1000, |limit, marker| {
        kms.list_keys()
            .set_limit(limit)
            .set_marker(marker.map(str::to_owned))
            .send()
    })
    .await;
    let one = kms.list_keys().limit(1).send().await.unwrap();
    assert_eq!((one.keys().len(), one.truncated()), (1, true));
    let most = kms.list_keys().limit(1000).send().await.unwrap();
    assert_eq!((most.keys().len(), most.truncated()), (5, false));
}

#[tokio::test]
async fn update_key_description() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;

    let update = |key: &str, description: &str| {
        kms.update_key_description()
            .key_id(key)
            .description(description)
            .send()
    };

    for (key, description) in [
        (id.clone(), "first".to_owned()),
        (arn(&id), "d".repeat(8192)),
        (id.clone(), String::new()),
    ] {
        update(&key, &description).await.unwrap();
        assert_eq!(
            describe(&kms, &id).await.description(),
            Some(description.as_str())
        );
    }

    let long = "x".repeat(8193);
    assert_error(
        update(&id, &long).await,
        "ValidationException",
        &validation_msg(&long, "description", DESCRIPTION_RULE),
    );
    let missing = "11111111-2222-4333-8444-555555555555";
    assert_not_found(update(missing, "x").await, missing);
    // Only key id or key ARN: an alias does not name a key here.
    create_alias(&kms, "alias/desc", &id).await;
    assert_code(update("alias/desc", "x").await, "NotFoundException");
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
        let mut failures = vec![(
            format!("Encrypt({key})"),
            failure(encrypt_req(kms, &key, "x").send().await),
        )];
        // GenerateDataKey and GenerateDataKeyWithoutPlaintext, by KeySpec and by NumberOfBytes.
        for (with_plaintext, spec, bytes) in [
            (true, Some(DataKeySpec::Aes256), None),
            (false, None, Some(16)),
            (true, None, Some(32)),
            (false, Some(DataKeySpec::Aes128), None),
        ] {
            let what = format!("GenerateDataKey({key}, {with_plaintext}, {spec:?}, {bytes:?})");
            let f = if with_plaintext {
                let request = kms.generate_data_key().key_id(&key).set_key_spec(spec);
                failure(request.set_number_of_bytes(bytes).send().await)
            } else {
                let request = kms
                    .generate_data_key_without_plaintext()
                    .key_id(&key)
                    .set_key_spec(spec);
                failure(request.set_number_of_bytes(bytes).send().await)
            };
            failures.push((what, f));
        }
        assert_failures(failures, code, msg);
    }
    let mut failures = vec![
        (
            "Decrypt".to_owned(),
            failure(decrypt_req(kms, blob).send().await),
        ),
        (
            "ReEncrypt from the key".to_owned(),
            failure(re_encrypt_req(kms, blob, other).send().await),
        ),
    ];
    for destination in [id, alias] {
        failures.push((
            format!("ReEncrypt to {destination}"),
            failure(re_encrypt_req(kms, other_blob, destination).send().await),
        ));
    }
    assert_failures(failures, code, msg);
}

#[tokio::test]
async fn disable_and_enable_key() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;
    let other = create_key_id(&kms).await;
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
        encrypt_req(&kms, &id, "x").dry_run(true).send().await,
        "DisabledException",
        &msg,
    );
    // GenerateRandom is not tied to a key; management calls keep working.
    kms.generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap();
    tag_req(&kms, &id, [tag("k", "v")]).send().await.unwrap();
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

/// Asserts the DeletionDate of `out` is `days` days after `before` (when the call was made).
#[track_caller]
fn assert_deletion_date(out: &ScheduleKeyDeletionOutput, days: i32, before: i64) {
    let when = out.deletion_date().expect("DeletionDate").secs();
    let window = i64::from(days) * 86_400;
    assert!(
        (before + window - 60..=now_secs() + window + 86_400).contains(&when),
        "DeletionDate {when} is not {days} days after {before}"
    );
}

#[tokio::test]
async fn schedule_key_deletion_defaults_to_30_days() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;
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
    assert_deletion_date(&out, 30, before);

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
        let id = create_key_id(&kms).await;
        let before = now_secs();
        let out = kms
            .schedule_key_deletion()
            .key_id(arn(&id))
            .pending_window_in_days(days)
            .send()
            .await
            .unwrap_or_else(|e| panic!("window {days}: {e:?}"));
        assert_eq!(out.pending_window_in_days(), Some(days));
        assert_deletion_date(&out, days, before);
    }
    let id = create_key_id(&kms).await;
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
    let id = create_key_id(&kms).await;
    let blob = encrypt(&kms, &id, b"survives").await;
    let not_pending = format!("{} is not pending deletion.", arn(&id));

    let assert_not_pending = async || {
        assert_error(
            kms.cancel_key_deletion().key_id(&id).send().await,
            "KMSInvalidStateException",
            &not_pending,
        );
    };

    assert_not_pending().await;
    kms.disable_key().key_id(&id).send().await.unwrap();
    assert_not_pending().await;

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
    assert_not_pending().await;

    kms.enable_key().key_id(&id).send().await.unwrap();
    assert_eq!(decrypt(&kms, &blob).await, b"survives");
}

#[tokio::test]
async fn pending_deletion_key_refuses_use_and_most_changes() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;
    let other = create_key_id(&kms).await;
    create_alias(&kms, "alias/doomed", &id).await;
    create_alias(&kms, "alias/doomed-2", &id).await;
    tag_req(&kms, &id, [tag("keep", "1")]).send().await.unwrap();
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
    create_alias(&kms, "alias/elsewhere", &other).await;
    let refused = [
        (
            "EnableKey",
            failure(kms.enable_key().key_id(&id).send().await),
        ),
        (
            "DisableKey",
            failure(kms.disable_key().key_id(&id).send().await),
        ),
        (
            "ScheduleKeyDeletion",
            failure(kms.schedule_key_deletion().key_id(&id).send().await),
        ),
        (
            "CreateAlias",
            failure(try_create_alias(&kms, "alias/too-late", &id).await),
        ),
        (
            "UpdateAlias",
            failure(try_update_alias(&kms, "alias/elsewhere", &id).await),
        ),
        (
            "TagResource",
            failure(tag_req(&kms, &id, [tag("k", "v")]).send().await),
        ),
        (
            "UntagResource",
            failure(
                kms.untag_resource()
                    .key_id(&id)
                    .tag_keys("keep")
                    .send()
                    .await,
            ),
        ),
        (
            "UpdateKeyDescription",
            failure(
                kms.update_key_description()
                    .key_id(&id)
                    .description("x")
                    .send()
                    .await,
            ),
        ),
    ];
    assert_failures(refused, "KMSInvalidStateException", &msg);

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
    let id = create_key_id(&kms).await;

    let f = failure(try_create_alias(&kms, "no-prefix", &id).await);
    assert_eq!((f.code.as_str(), f.status), ("ValidationException", 400));
    assert!(
        f.message_text()
            .starts_with(r#"Alias must start with the prefix "alias/"."#),
        "{f:?}"
    );

    assert_code(
        try_create_alias(&kms, "alias/aws/mine", &id).await,
        "NotAuthorizedException",
    );

    assert_error(
        try_create_alias(&kms, "alias/bad name", &id).await,
        "ValidationException",
        "1 validation error detected: Value 'alias/bad name' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    );
    let too_long = format!("alias/{}", "a".repeat(251));
    assert_eq!(too_long.len(), 257);
    assert_error(
        try_create_alias(&kms, &too_long, &id).await,
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
    let other = create_key_id(&kms).await;
    assert_error(
        try_create_alias(&kms, "alias/Team_A/key-1", &other).await,
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
    assert_not_found(
        try_create_alias(&kms, "alias/orphan", missing).await,
        missing,
    );
}

#[tokio::test]
async fn update_and_delete_alias() {
    let server = Server::dev();
    let kms = server.client();
    let first = create_key_id(&kms).await;
    let second = create_key_id(&kms).await;
    create_alias(&kms, "alias/moving", &first).await;
    let old_blob = encrypt(&kms, "alias/moving", b"under first").await;

    try_update_alias(&kms, "alias/moving", &arn(&second))
        .await
        .unwrap();
    assert_eq!(describe(&kms, "alias/moving").await.key_id(), second);
    let out = encrypt_req(&kms, "alias/moving", "under second")
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&second).as_str()));
    // Ciphertexts name their key, not the alias.
    let out = decrypt_req(&kms, old_blob).send().await.unwrap();
    assert_eq!(out.key_id(), Some(arn(&first).as_str()));
    assert_eq!(aliases_of(&kms, &first).await, BTreeSet::new());
    assert_eq!(
        aliases_of(&kms, &second).await,
        BTreeSet::from(["alias/moving".to_owned()])
    );

    let not_found = format!("Alias {} is not found.", alias_arn_of("alias/absent"));
    assert_error(
        try_update_alias(&kms, "alias/absent", &first).await,
        "NotFoundException",
        &not_found,
    );
    let missing = "33333333-4444-4555-8666-777777777777";
    assert_not_found(
        try_update_alias(&kms, "alias/moving", missing).await,
        missing,
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
    let first = create_key_id(&kms).await;
    let second = create_key_id(&kms).await;
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

    assert_paging_input_checked(100, |limit, marker| {
        kms.list_aliases()
            .set_limit(limit)
            .set_marker(marker.map(str::to_owned))
            .send()
    })
    .await;
    let missing = "88888888-9999-4aaa-8bbb-cccccccccccc";
    assert_not_found(kms.list_aliases().key_id(missing).send().await, missing);
}

#[tokio::test]
async fn at_most_50_aliases_per_key() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;
    for i in 0..50 {
        create_alias(&kms, &format!("alias/many-{i}"), &id).await;
    }
    assert_code(
        try_create_alias(&kms, "alias/many-50", &id).await,
        "LimitExceededException",
    );
    assert_eq!(aliases_of(&kms, &id).await.len(), 50);
    // Another key is not affected.
    let other = create_key_id(&kms).await;
    create_alias(&kms, "alias/many-50", &other).await;
}

// ---------------------------------------------------------------------------------------------
// tags

#[tokio::test]
async fn tag_untag_and_list_tags() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;

    tag_req(&kms, &id, [tag("env", "prod"), tag("team", "a")])
        .send()
        .await
        .unwrap();
    // Tagging an existing key replaces its value; by key ARN too.
    tag_req(&kms, &arn(&id), [tag("team", "b"), tag("blank", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&kms, &id).await,
        string_map(&[("blank", ""), ("env", "prod"), ("team", "b")])
    );

    // Untagging a missing tag is a no-op.
    kms.untag_resource()
        .key_id(&id)
        .tag_keys("env")
        .tag_keys("never-there")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&kms, &id).await,
        string_map(&[("blank", ""), ("team", "b")])
    );

    // Pagination of ListResourceTags.
    let one_tag = |marker: Option<&str>| {
        kms.list_resource_tags()
            .key_id(&id)
            .limit(1)
            .set_marker(marker.map(str::to_owned))
            .send()
    };
    let page = one_tag(None).await.unwrap();
    assert_eq!(page.tags().len(), 1);
    assert!(page.truncated());
    let rest = one_tag(Some(page.next_marker().expect("NextMarker")))
        .await
        .unwrap();
    assert_eq!(rest.tags().len(), 1);
    assert!(!rest.truncated());
    assert_ne!(page.tags()[0].tag_key(), rest.tags()[0].tag_key());
    assert_error(
        kms.list_resource_tags().key_id(&id).limit(51).send().await,
        "ValidationException",
        &validation_msg(51, "limit", "have value less than or equal to 50"),
    );

    let missing = "44444444-5555-4666-8777-888888888888";
    assert_not_found(
        tag_req(&kms, missing, [tag("k", "v")]).send().await,
        missing,
    );
    assert_not_found(
        kms.list_resource_tags().key_id(missing).send().await,
        missing,
    );
}

#[tokio::test]
async fn tag_errors() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;

    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    for (tags, code, msg) in [
        (
            vec![tag("dup", "1"), tag("dup", "2")],
            "TagException",
            "Duplicate tag keys".to_owned(),
        ),
        (
            vec![tag("aws:reserved", "x")],
            "TagException",
            "Tags beginning with aws: are reserved".to_owned(),
        ),
        (
            vec![tag(&long_key, "v")],
            "ValidationException",
            validation_msg(
                &long_key,
                "tags.1.member.tagKey",
                "have length less than or equal to 128",
            ),
        ),
        (
            vec![tag("ok", "1"), tag("k", &long_value)],
            "ValidationException",
            validation_msg(
                &long_value,
                "tags.2.member.tagValue",
                "have length less than or equal to 256",
            ),
        ),
    ] {
        assert_error(tag_req(&kms, &id, tags).send().await, code, &msg);
    }
    // The limits themselves are fine.
    tag_req(&kms, &id, [tag(&"k".repeat(128), &"v".repeat(256))])
        .send()
        .await
        .unwrap();

    // 51 tags in one request.
    let numbered = |n| (0..n).map(|i| tag(&format!("t{i}"), "x"));
    assert_error(
        tag_req(&kms, &id, numbered(51)).send().await,
        "TagException",
        "Too many tags",
    );
    assert_eq!(
        tags_of(&kms, &id).await.len(),
        1,
        "a refused request changed tags"
    );

    // 50 in all is the limit; replacing an existing tag's value at the limit is fine.
    tag_req(&kms, &id, numbered(49)).send().await.unwrap();
    assert_eq!(tags_of(&kms, &id).await.len(), 50);
    tag_req(&kms, &id, [tag("t0", "replaced")])
        .send()
        .await
        .unwrap();
    assert_error(
        tag_req(&kms, &id, [tag("one-more", "x")]).send().await,
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
    let id = create_key_id(&kms).await;

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

    let put = |name: &str, policy: &str| {
        kms.put_key_policy()
            .key_id(&id)
            .policy_name(name)
            .policy(policy)
            .send()
    };
    let new_policy = custom_policy("Replaced");
    put("default", &new_policy).await.unwrap();
    let got = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(got.policy(), Some(new_policy.as_str()), "stored verbatim");

    for bad in ["{ not json", "", "[1,2,3]"] {
        assert_code(
            put("default", bad).await,
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
        put("other", &custom_policy("Other")).await,
        "NotFoundException",
    );

    let missing = "55555555-6666-4777-8888-999999999999";
    assert_not_found(kms.get_key_policy().key_id(missing).send().await, missing);
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
        let out = encrypt_req(&kms, &form, plaintext.clone())
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
        let out = decrypt_req(&kms, blob.clone()).send().await.unwrap();
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
            let out = decrypt_req(&kms, blob.clone())
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
    let id = create_key_id(&kms).await;

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
        encrypt_req(&kms, &id, vec![7u8; 4097]).send().await,
        "ValidationException",
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    assert_error(
        encrypt_req(&kms, &id, Vec::new()).send().await,
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
    let id = create_key_id(&kms).await;
    let ctx = [("Department", "Engineering"), ("Project", "trent")];
    let blob = encrypt_in_context(&kms, &id, b"secret", &ctx).await;

    // Same pairs, other order.
    let out = decrypt_req(&kms, blob.clone())
        .encryption_context("Project", "trent")
        .encryption_context("Department", "Engineering")
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"secret");

    let wrong: Vec<Option<HashMap<String, String>>> = vec![
        None,
        Some(HashMap::new()),
        Some(string_map(&[("Department", "Engineering")])),
        Some(string_map(&[
            ("Department", "Engineering"),
            ("Project", "trent"),
            ("Extra", "1"),
        ])),
        Some(string_map(&[
            ("department", "Engineering"),
            ("Project", "trent"),
        ])),
        Some(string_map(&[
            ("Department", "engineering"),
            ("Project", "trent"),
        ])),
        Some(string_map(&[
            ("Department", "Engineering"),
            ("Project", "trenT"),
        ])),
    ];
    for ctx in wrong {
        let f = assert_invalid_ciphertext(
            decrypt_req(&kms, blob.clone())
                .set_encryption_context(ctx.clone())
                .send()
                .await,
        );
        assert!(f.request_id.is_some());
    }

    // The context encoding is unambiguous: {"ab":"c"} is not {"a":"bc"}.
    let blob = encrypt_in_context(&kms, &id, b"x", &[("ab", "c")]).await;
    assert_invalid_ciphertext(
        decrypt_req(&kms, blob.clone())
            .encryption_context("a", "bc")
            .send()
            .await,
    );

    // No context and an empty context are the same thing.
    let blob = encrypt(&kms, &id, b"no context").await;
    let out = decrypt_req(&kms, blob.clone())
        .set_encryption_context(Some(HashMap::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"no context");
    assert_invalid_ciphertext(
        decrypt_req(&kms, blob)
            .encryption_context("k", "v")
            .send()
            .await,
    );
}

#[tokio::test]
async fn tampered_truncated_and_random_ciphertexts_are_invalid() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;
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
        let f = failure(decrypt_req(&kms, b).send().await);
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
            decrypt_req(&kms, vec![1u8; len]).send().await,
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
    let right = create_key_id(&kms).await;
    let wrong = create_key_id(&kms).await;
    create_alias(&kms, "alias/wrong", &wrong).await;
    let blob = encrypt(&kms, &right, b"mine").await;

    for form in every_form(&wrong, "alias/wrong") {
        let f = failure(decrypt_req(&kms, blob.clone()).key_id(&form).send().await);
        assert_incorrect_key(&f, &form);
    }
    let f = failure(
        re_encrypt_req(&kms, blob.clone(), &wrong)
            .source_key_id(&wrong)
            .send()
            .await,
    );
    assert_incorrect_key(&f, "ReEncrypt");

    let missing = "66666666-7777-4888-8999-aaaaaaaaaaaa";
    assert_not_found(
        decrypt_req(&kms, blob.clone()).key_id(missing).send().await,
        missing,
    );
    let err = decrypt_req(&kms, blob)
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
            let dec = decrypt_req(&kms, blob.clone())
                .encryption_context("purpose", "test")
                .send()
                .await
                .unwrap();
            assert_eq!(dec.plaintext().unwrap().as_ref(), pt.as_slice());
            assert_invalid_ciphertext(decrypt_req(&kms, blob).send().await);
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
    let data_key = || {
        kms.generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .send()
    };
    let (a, b) = (data_key().await.unwrap(), data_key().await.unwrap());
    assert_ne!(a.plaintext(), b.plaintext());
}

#[tokio::test]
async fn generate_data_key_validation() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;

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
    for (n, rule) in limit_cases(1024) {
        let msg = validation_msg(n, "numberOfBytes", &rule);
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
    assert_validation_prefix(&f, &enum_msg_prefix("AES_512", "keySpec"));
}

#[tokio::test]
async fn generate_random() {
    let server = Server::dev();
    let kms = server.client();
    let random = |n: i32| kms.generate_random().number_of_bytes(n).send();
    for n in [1, 32, 1024] {
        let out = random(n).await.unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref().len(), n as usize);
    }
    let (a, b) = (random(32).await.unwrap(), random(32).await.unwrap());
    assert_ne!(a.plaintext(), b.plaintext());

    assert_error(
        kms.generate_random().send().await,
        "ValidationException",
        "NumberOfBytes is required.",
    );
    for (n, rule) in limit_cases(1024) {
        assert_error(
            random(n).await,
            "ValidationException",
            &validation_msg(n, "numberOfBytes", &rule),
        );
    }
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
    let blob = encrypt_in_context(&kms, &src_id, b"moving", &[("stage", "one")]).await;

    for (src_form, dst_form) in every_form(&src_id, "alias/src")
        .into_iter()
        .zip(every_form(&dst_id, "alias/dst"))
    {
        let out = re_encrypt_req(&kms, blob.clone(), &dst_form)
            .source_key_id(&src_form)
            .source_encryption_context("stage", "one")
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

        let dec = decrypt_req(&kms, new_blob.clone())
            .encryption_context("stage", "two")
            .send()
            .await
            .unwrap();
        assert_eq!(dec.plaintext().unwrap().as_ref(), b"moving");
        assert_eq!(dec.key_id(), Some(arn(&dst_id).as_str()));
        assert_invalid_ciphertext(
            decrypt_req(&kms, new_blob)
                .encryption_context("stage", "one")
                .send()
                .await,
        );
    }

    // Source context wrong.
    assert_invalid_ciphertext(re_encrypt_req(&kms, blob.clone(), &dst_id).send().await);
    // Same key, new context.
    let out = re_encrypt_req(&kms, blob.clone(), &src_id)
        .source_encryption_context("stage", "one")
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&src_id).as_str()));
    assert_eq!(
        decrypt(&kms, out.ciphertext_blob().unwrap().as_ref()).await,
        b"moving"
    );
    let missing = "77777777-8888-4999-8aaa-bbbbbbbbbbbb";
    assert_not_found(
        re_encrypt_req(&kms, blob, missing)
            .source_encryption_context("stage", "one")
            .send()
            .await,
        missing,
    );
}

#[tokio::test]
async fn dry_run_reports_success_without_doing_it() {
    let server = Server::dev();
    let kms = server.client();
    let id = create_key_id(&kms).await;
    let other = create_key_id(&kms).await;
    let blob = encrypt(&kms, &id, b"dry").await;
    let msg = "The request would have succeeded, but the DryRun option is set.";

    let dry_runs = [
        (
            "Encrypt",
            failure(encrypt_req(&kms, &id, "x").dry_run(true).send().await),
        ),
        (
            "Decrypt",
            failure(decrypt_req(&kms, blob.clone()).dry_run(true).send().await),
        ),
        (
            "ReEncrypt",
            failure(
                re_encrypt_req(&kms, blob.clone(), &other)
                    .dry_run(true)
                    .send()
                    .await,
            ),
        ),
        (
            "GenerateDataKey",
            failure(
                kms.generate_data_key()
                    .key_id(&id)
                    .key_spec(DataKeySpec::Aes256)
                    .dry_run(true)
                    .send()
                    .await,
            ),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            failure(
                kms.generate_data_key_without_plaintext()
                    .key_id(&id)
                    .number_of_bytes(16)
                    .dry_run(true)
                    .send()
                    .await,
            ),
        ),
    ];
    assert_failures(dry_runs, "DryRunOperationException", msg);
    let err = encrypt_req(&kms, &id, "x")
        .dry_run(true)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_dry_run_operation_exception(), "{err:?}");

    // A DryRun of a request that would fail reports that failure instead.
    assert_invalid_ciphertext(
        decrypt_req(&kms, test_bytes(3, 120))
            .dry_run(true)
            .send()
            .await,
    );
    // dry_run(false) is an ordinary call.
    let out = decrypt_req(&kms, blob).dry_run(false).send().await.unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"dry");
}
