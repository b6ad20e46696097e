//! Key lifecycles that play out over time, end to end through `aws-sdk-kms`: automatic and
//! on-demand rotation, imported key material that expires and is imported again, multi-Region
//! replicas, GetKeyLastUsage, and the AWS managed keys behind `alias/aws/<service>`. Dev mode's
//! `POST /trent-dev/advance-clock` moves the service clock and runs the scheduled work
//! (rotations, expiry, replicas that finish creating) before it answers, so months pass in
//! milliseconds. Every test runs its own server.

mod common;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_sdk_kms::Client;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, KeyLastUsageData, KeyLastUsageTrackingOperation,
    KeyManagerType, KeyMaterialState, KeyState, MultiRegionKey, MultiRegionKeyType, OriginType,
    RotationType, RotationsListEntry, WrappingKeySpec,
};
use common::*;
use std::collections::HashMap;

const DAY: i64 = 86_400;

/// trent's ConflictException message for RotateKeyOnDemand (docs/rotation.md).
fn rotation_conflict_msg(arn: &str) -> String {
    format!(
        "{arn} cannot be rotated now: a rotation of this key is in progress or an automatic rotation is scheduled to begin within the next 20 minutes."
    )
}

/// AWS's AccessDeniedException message when no key policy statement allows `action`.
fn no_resource_policy_msg(action: &str, resource: &str) -> String {
    format!(
        "User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: kms:{action} on resource: {resource} because no resource-based policy allows the kms:{action} action"
    )
}

const INVALID_TOKEN_MSG: &str = "The import token is invalid or belongs to another KMS key.";

/// Moves the dev server's clock `seconds` ahead (0: only run the scheduled work now) and returns
/// the service time afterwards, in epoch seconds. The scheduled work is done before the answer.
async fn advance(server: &Server, seconds: i64) -> f64 {
    let body = format!(r#"{{"Seconds": {seconds}}}"#);
    let resp = http_post(
        server.authority(),
        "/trent-dev/advance-clock",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200, "advance-clock: {}", resp.body_text());
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON answer");
    v["Now"]
        .as_f64()
        .unwrap_or_else(|| panic!("no Now in {}", resp.body_text()))
}

async fn current_material(kms: &Client, key_id: &str) -> String {
    let md = describe(kms, key_id).await;
    let id = md.current_key_material_id().expect("CurrentKeyMaterialId");
    assert!(is_hex64(id), "{id}");
    id.to_owned()
}

/// Decrypt of `blob` that must succeed: (plaintext, KeyId, KeyMaterialId).
async fn decrypt(kms: &Client, blob: &[u8]) -> (Vec<u8>, String, String) {
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .expect("Decrypt");
    (
        out.plaintext().expect("Plaintext").as_ref().to_vec(),
        out.key_id().expect("KeyId").to_owned(),
        out.key_material_id().expect("KeyMaterialId").to_owned(),
    )
}

async fn rotations(kms: &Client, key_id: &str) -> Vec<RotationsListEntry> {
    let out = kms
        .list_key_rotations()
        .key_id(key_id)
        .send()
        .await
        .expect("ListKeyRotations");
    assert!(!out.truncated() && out.next_marker().is_none(), "{out:?}");
    out.rotations().to_vec()
}

fn secs(t: Option<&DateTime>) -> f64 {
    t.expect("timestamp").as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// Rotation

#[tokio::test]
async fn automatic_rotation_end_to_end() {
    let server = Server::dev();
    let kms = server.client();
    let md = created_key(kms.create_key()).await;
    let (id, arn) = (md.key_id(), md.arn().unwrap());
    let first = current_material(&kms, id).await;

    let before = advance(&server, 0).await;
    kms.enable_key_rotation()
        .key_id(id)
        .rotation_period_in_days(90)
        .send()
        .await
        .expect("EnableKeyRotation");
    let after = advance(&server, 0).await;
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.key_id(), Some(arn));
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert_eq!(status.on_demand_rotation_start_date(), None);
    let next = secs(status.next_rotation_date());
    let period = (90 * DAY) as f64;
    assert!(
        before + period - 1.0 <= next && next <= after + period + 1.0,
        "NextRotationDate {next} is not 90 days after the call ({before}..{after})"
    );

    let blob_a = encrypt(&kms, id, b"before the rotation").await;
    assert_eq!(decrypt(&kms, &blob_a).await.2, first);
    // Not due yet.
    advance(&server, 89 * DAY).await;
    assert!(rotations(&kms, id).await.is_empty());

    let now = advance(&server, 2 * DAY).await;
    let rots = rotations(&kms, id).await;
    assert_eq!(rots.len(), 1, "{rots:?}");
    let second = current_material(&kms, id).await;
    assert_ne!(second, first);
    let r = &rots[0];
    assert_eq!(r.key_id(), Some(id));
    assert_eq!(r.key_material_id(), Some(second.as_str()));
    assert_eq!(r.key_material_state(), Some(&KeyMaterialState::Current));
    assert_eq!(r.rotation_type(), Some(&RotationType::Automatic));
    let rotated_at = secs(r.rotation_date());
    assert!(
        (rotated_at - now).abs() <= 2.0,
        "RotationDate {rotated_at}, now {now}"
    );
    // The next rotation is one period after this one.
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert!((secs(status.next_rotation_date()) - (rotated_at + period)).abs() < 0.002);

    // The old ciphertext decrypts with the old material, a new one with the new material.
    assert_eq!(
        decrypt(&kms, &blob_a).await,
        (
            b"before the rotation".to_vec(),
            arn.to_owned(),
            first.clone()
        )
    );
    let blob_b = encrypt(&kms, id, b"after the rotation").await;
    assert_eq!(
        decrypt(&kms, &blob_b).await,
        (
            b"after the rotation".to_vec(),
            arn.to_owned(),
            second.clone()
        )
    );

    kms.disable_key_rotation()
        .key_id(id)
        .send()
        .await
        .expect("DisableKeyRotation");
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    assert_eq!(status.key_id(), Some(arn));
    assert_eq!(status.rotation_period_in_days(), None);
    assert_eq!(status.next_rotation_date(), None);
    // The schedule is forgotten: a year later nothing more has rotated.
    advance(&server, 365 * DAY).await;
    assert_eq!(rotations(&kms, id).await, rots);
}

#[tokio::test]
async fn on_demand_rotation_and_its_conflict_with_a_due_automatic_rotation() {
    let server = Server::dev();
    let kms = server.client();
    let md = created_key(kms.create_key()).await;
    let (id, arn) = (md.key_id(), md.arn().unwrap());
    let first = current_material(&kms, id).await;
    let blob_a = encrypt(&kms, id, b"A").await;

    let out = kms
        .rotate_key_on_demand()
        .key_id(id)
        .send()
        .await
        .expect("RotateKeyOnDemand");
    assert_eq!(out.key_id(), Some(arn));
    // The rotation is background work; running the scheduled work now finishes it.
    advance(&server, 0).await;
    let rots = rotations(&kms, id).await;
    assert_eq!(rots.len(), 1, "{rots:?}");
    let second = current_material(&kms, id).await;
    assert_ne!(second, first);
    assert_eq!(rots[0].key_id(), Some(id));
    assert_eq!(rots[0].key_material_id(), Some(second.as_str()));
    assert_eq!(
        rots[0].key_material_state(),
        Some(&KeyMaterialState::Current)
    );
    assert_eq!(rots[0].rotation_type(), Some(&RotationType::OnDemand));
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    // On demand works without automatic rotation, and is no longer in progress.
    assert!(!status.key_rotation_enabled());
    assert_eq!(status.on_demand_rotation_start_date(), None);
    assert_eq!(decrypt(&kms, &blob_a).await.2, first);
    let blob_b = encrypt(&kms, id, b"B").await;
    assert_eq!(decrypt(&kms, &blob_b).await.2, second);

    // Ten minutes before an automatic rotation is due, on demand is refused.
    kms.enable_key_rotation()
        .key_id(id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    let due = secs(status.next_rotation_date());
    let now = advance(&server, 0).await;
    advance(&server, (due - now) as i64 - 10 * 60).await;
    assert_error(
        kms.rotate_key_on_demand().key_id(id).send().await,
        "ConflictException",
        &rotation_conflict_msg(arn),
    );
    assert_eq!(rotations(&kms, id).await, rots);
}

/// A second RotateKeyOnDemand while the first is still in progress. The rotation is background
/// work that a server finishes within milliseconds, so to hold it in progress the request goes to
/// a second node on the same store that does not hold the `scheduler` lease: the first node took
/// it at start and, with a check interval of an hour, keeps it for the lease's 60 s. One data
/// directory takes one server (it holds the directory's lock), so the second node has a data
/// directory of its own whose store, root key and credentials are links to the first's: a
/// stand-in for the shared store a cluster has.
#[tokio::test]
async fn on_demand_rotation_in_progress_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let args = ["--deletion-check-secs", "3600"];
    let leader = Server::on_dir_with(&dir, &args);
    // The node id is derived from host and data directory, and two nodes with one id would both
    // count as the lease holder: another directory gives another id.
    let node2 = tmp.path().join("node2");
    std::fs::create_dir(&node2).unwrap();
    std::fs::set_permissions(&node2, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for name in ["trent.db", "root.key", "credentials"] {
        std::os::unix::fs::symlink(dir.join(name), node2.join(name)).unwrap();
    }
    let follower = Server::on_dir_with(&node2, &args);

    let kms = follower.client();
    let md = created_key(kms.create_key()).await;
    let (id, arn) = (md.key_id(), md.arn().unwrap());
    let first = current_material(&kms, id).await;
    let out = kms
        .rotate_key_on_demand()
        .key_id(id)
        .send()
        .await
        .expect("RotateKeyOnDemand");
    assert_eq!(out.key_id(), Some(arn));
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    let started = secs(status.on_demand_rotation_start_date());
    assert!(
        (started - now_secs() as f64).abs() < 60.0,
        "OnDemandRotationStartDate {started}"
    );

    assert_error(
        kms.rotate_key_on_demand().key_id(id).send().await,
        "ConflictException",
        &rotation_conflict_msg(arn),
    );
    assert!(rotations(&kms, id).await.is_empty());
    assert_eq!(current_material(&kms, id).await, first);
    drop(leader);
}

// ---------------------------------------------------------------------------------------------
// Imported key material

/// RSAES_OAEP_SHA_256 of `material` under a DER SubjectPublicKeyInfo, as AWS documents it.
fn wrap_oaep_sha256(public_key_der: &[u8], material: &[u8]) -> Vec<u8> {
    let key = OaepPublicEncryptingKey::new(
        PublicEncryptingKey::from_der(public_key_der).expect("RSA public key"),
    )
    .unwrap();
    let mut out = vec![0; key.ciphertext_size()];
    key.encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut out, None)
        .expect("RSA-OAEP")
        .to_vec()
}

/// GetParametersForImport (RSA_2048, RSAES_OAEP_SHA_256): (import token, public key, the
/// server's time when it answered: tokens live 24 hours).
async fn import_parameters(kms: &Client, key_id: &str) -> (Vec<u8>, Vec<u8>, i64) {
    let params = kms
        .get_parameters_for_import()
        .key_id(key_id)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .expect("GetParametersForImport");
    (
        params
            .import_token()
            .expect("ImportToken")
            .as_ref()
            .to_vec(),
        params.public_key().expect("PublicKey").as_ref().to_vec(),
        params
            .parameters_valid_to()
            .expect("ParametersValidTo")
            .secs()
            - DAY,
    )
}

#[tokio::test]
async fn imported_material_expires_and_is_imported_again() {
    let server = Server::dev();
    let kms = server.client();
    let md = created_key(kms.create_key().origin(OriginType::External)).await;
    let (id, arn) = (md.key_id(), md.arn().unwrap());
    assert_eq!(md.key_state(), Some(&KeyState::PendingImport));
    assert!(!md.enabled());
    assert_eq!(md.expiration_model(), None);
    let pending_import = format!("{arn} is pending import.");
    assert_error(
        kms.encrypt()
            .key_id(id)
            .plaintext(Blob::new("x"))
            .send()
            .await,
        "KMSInvalidStateException",
        &pending_import,
    );

    let mut material = [0u8; 32];
    aws_lc_rs::rand::fill(&mut material).unwrap();
    let (token, public_key, server_now) = import_parameters(&kms, id).await;
    assert_eq!(
        public_key.len(),
        294,
        "DER SubjectPublicKeyInfo of RSA 2048"
    );
    let valid_to = DateTime::from_secs(server_now + 2 * DAY);
    let imported = kms
        .import_key_material()
        .key_id(id)
        .import_token(Blob::new(token))
        .encrypted_key_material(Blob::new(wrap_oaep_sha256(&public_key, &material)))
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .valid_to(valid_to)
        .send()
        .await
        .expect("ImportKeyMaterial");
    assert_eq!(imported.key_id(), Some(arn));
    let material_id = imported
        .key_material_id()
        .expect("KeyMaterialId")
        .to_owned();
    assert!(is_hex64(&material_id), "{material_id}");
    let md = describe(&kms, id).await;
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert!(md.enabled());
    assert_eq!(
        md.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialExpires)
    );
    assert_eq!(md.valid_to(), Some(&valid_to));
    assert_eq!(md.current_key_material_id(), Some(material_id.as_str()));

    let blob = encrypt(&kms, id, b"brought my own key").await;
    assert_eq!(
        decrypt(&kms, &blob).await,
        (
            b"brought my own key".to_vec(),
            arn.to_owned(),
            material_id.clone()
        )
    );

    advance(&server, DAY).await;
    assert_eq!(
        describe(&kms, id).await.key_state(),
        Some(&KeyState::Enabled)
    );
    advance(&server, 2 * DAY).await;
    let md = describe(&kms, id).await;
    assert_eq!(md.key_state(), Some(&KeyState::PendingImport));
    assert!(!md.enabled());
    assert_eq!(md.valid_to(), None);
    assert_error(
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await,
        "KMSInvalidStateException",
        &pending_import,
    );

    // A token that is not one trent issued is refused, and changes nothing.
    let (token, public_key, _) = import_parameters(&kms, id).await;
    let mut garbage = vec![0u8; token.len()];
    aws_lc_rs::rand::fill(&mut garbage).unwrap();
    let wrapped = wrap_oaep_sha256(&public_key, &material);
    assert_error(
        kms.import_key_material()
            .key_id(id)
            .import_token(Blob::new(garbage))
            .encrypted_key_material(Blob::new(wrapped.clone()))
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await,
        "InvalidImportTokenException",
        INVALID_TOKEN_MSG,
    );
    assert_eq!(
        describe(&kms, id).await.key_state(),
        Some(&KeyState::PendingImport)
    );

    // The same material with a fresh token brings the key and its ciphertexts back.
    let again = kms
        .import_key_material()
        .key_id(id)
        .import_token(Blob::new(token))
        .encrypted_key_material(Blob::new(wrapped))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .expect("ImportKeyMaterial again");
    assert_eq!(again.key_material_id(), Some(material_id.as_str()));
    let md = describe(&kms, id).await;
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(
        md.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
    );
    assert_eq!(md.valid_to(), None);
    assert_eq!(
        decrypt(&kms, &blob).await,
        (b"brought my own key".to_vec(), arn.to_owned(), material_id)
    );
}

// ---------------------------------------------------------------------------------------------
// Multi-Region keys

fn mrk_entry(key_id: &str, region: &str) -> MultiRegionKey {
    MultiRegionKey::builder()
        .arn(key_arn(region, ACCOUNT, key_id))
        .region(region)
        .build()
}

#[tokio::test]
async fn a_replica_decrypts_what_its_primary_encrypted() {
    let server = Server::dev();
    let east = server.client();
    let west = server.client_in(OTHER_REGION);
    let md = created_key(east.create_key().multi_region(true)).await;
    let id = md.key_id();
    let hex = id.strip_prefix("mrk-").expect("an mrk- key id");
    assert!(
        hex.len() == 32 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{id}"
    );
    assert_eq!(md.multi_region(), Some(true));

    let out = east
        .replicate_key()
        .key_id(id)
        .replica_region(OTHER_REGION)
        .send()
        .await
        .expect("ReplicateKey");
    let replica = out.replica_key_metadata().expect("ReplicaKeyMetadata");
    assert_eq!(replica.key_id(), id);
    assert_eq!(
        replica.arn(),
        Some(key_arn(OTHER_REGION, ACCOUNT, id).as_str())
    );
    assert_eq!(replica.key_state(), Some(&KeyState::Creating));
    assert!(!replica.enabled());
    // AWS shows no CurrentKeyMaterialId for a replica being created, nor ReplicaTags when none
    // were asked for (its recorded answer).
    assert_eq!(replica.current_key_material_id(), None);
    assert_eq!(out.replica_tags(), &[]);

    // The scheduled work makes the replica Enabled.
    advance(&server, 1).await;
    let replica = describe(&west, id).await;
    assert_eq!(replica.key_state(), Some(&KeyState::Enabled));
    assert!(replica.enabled());
    assert_eq!(
        replica.current_key_material_id(),
        md.current_key_material_id()
    );

    let context = HashMap::from([("purpose".to_owned(), "multi-region".to_owned())]);
    let blob = east
        .encrypt()
        .key_id(id)
        .plaintext(Blob::new("from the east"))
        .set_encryption_context(Some(context.clone()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let out = west
        .decrypt()
        .ciphertext_blob(blob)
        .set_encryption_context(Some(context))
        .send()
        .await
        .expect("Decrypt in the replica's region");
    assert_eq!(out.plaintext().unwrap().as_ref(), b"from the east");
    assert_eq!(
        out.key_id(),
        Some(key_arn(OTHER_REGION, ACCOUNT, id).as_str())
    );
    assert_eq!(out.key_material_id(), md.current_key_material_id());

    let blob = encrypt(&west, id, b"from the west").await;
    let (plaintext, key_id, _) = decrypt(&east, &blob).await;
    assert_eq!(plaintext, b"from the west");
    assert_eq!(key_id, key_arn(REGION, ACCOUNT, id));

    let primary = describe(&east, id).await;
    let mrc = primary
        .multi_region_configuration()
        .expect("MultiRegionConfiguration");
    assert_eq!(
        mrc.multi_region_key_type(),
        Some(&MultiRegionKeyType::Primary)
    );
    assert_eq!(mrc.primary_key(), Some(&mrk_entry(id, REGION)));
    assert_eq!(mrc.replica_keys(), [mrk_entry(id, OTHER_REGION)]);
    let mrc = replica.multi_region_configuration().unwrap();
    assert_eq!(
        mrc.multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    assert_eq!(mrc.primary_key(), Some(&mrk_entry(id, REGION)));
}

// ---------------------------------------------------------------------------------------------
// GetKeyLastUsage

#[tokio::test]
async fn key_last_usage_records_successful_cryptographic_use() {
    let server = Server::dev();
    let kms = server.client();
    let md = created_key(kms.create_key()).await;
    let id = md.key_id();
    let created = md.creation_date().unwrap();

    let last_usage = async |key_id: &str| {
        let out = kms
            .get_key_last_usage()
            .key_id(key_id)
            .send()
            .await
            .expect("GetKeyLastUsage");
        assert_eq!(out.key_id(), Some(id));
        assert_eq!(out.key_creation_date(), Some(created));
        assert_eq!(out.tracking_start_date(), Some(created));
        out.key_last_usage().expect("KeyLastUsage").clone()
    };
    // A new key: an empty KeyLastUsage. Management and reads are no use.
    assert_eq!(last_usage(id).await, KeyLastUsageData::builder().build());
    kms.update_key_description()
        .key_id(id)
        .description("still unused")
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(id).send().await.unwrap();
    kms.enable_key().key_id(id).send().await.unwrap();
    assert_eq!(
        last_usage(md.arn().unwrap()).await,
        KeyLastUsageData::builder().build()
    );

    let context = HashMap::from([("purpose".to_owned(), "test".to_owned())]);
    let before = advance(&server, 0).await;
    let enc = kms
        .encrypt()
        .key_id(id)
        .plaintext(Blob::new("secret"))
        .set_encryption_context(Some(context.clone()))
        .send()
        .await
        .unwrap();
    let after = advance(&server, 0).await;
    let used = last_usage(id).await;
    assert_eq!(
        used.operation(),
        Some(&KeyLastUsageTrackingOperation::Encrypt)
    );
    assert_eq!(used.kms_request_id(), enc.request_id());
    assert!(enc.request_id().is_some_and(|r| !r.is_empty()));
    assert_eq!(used.cloud_trail_event_id(), None);
    let at = secs(used.timestamp());
    assert!(
        before - 0.002 <= at && at <= after + 0.002,
        "Timestamp {at} outside {before}..{after}"
    );
    // Whole milliseconds (up to the error of the f64 the SDK reads epoch seconds into).
    let past_ms = used.timestamp().unwrap().subsec_nanos() % 1_000_000;
    assert!(
        !(1_000..=999_000).contains(&past_ms),
        "{:?}",
        used.timestamp()
    );

    // A failed Decrypt (other encryption context) is no use.
    let blob = enc.ciphertext_blob.unwrap();
    assert_error(
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("purpose", "other")
            .send()
            .await,
        "InvalidCiphertextException",
        "",
    );
    assert_eq!(last_usage(id).await, used);

    let dec = kms
        .decrypt()
        .ciphertext_blob(blob)
        .set_encryption_context(Some(context))
        .send()
        .await
        .unwrap();
    let used = last_usage(id).await;
    assert_eq!(
        used.operation(),
        Some(&KeyLastUsageTrackingOperation::Decrypt)
    );
    assert_eq!(used.kms_request_id(), dec.request_id());
}

// ---------------------------------------------------------------------------------------------
// AWS managed keys

const PREDEFINED: [&str; 14] = [
    "acm",
    "dynamodb",
    "ebs",
    "elasticfilesystem",
    "es",
    "glue",
    "kinesisvideo",
    "lambda",
    "rds",
    "redshift",
    "s3",
    "secretsmanager",
    "ssm",
    "xray",
];

/// ListAliases: alias name to TargetKeyId.
async fn alias_targets(kms: &Client) -> Vec<(String, Option<String>)> {
    let out = kms.list_aliases().send().await.expect("ListAliases");
    assert!(!out.truncated(), "{out:?}");
    out.aliases()
        .iter()
        .map(|a| {
            let name = a.alias_name().unwrap().to_owned();
            assert_eq!(
                a.alias_arn(),
                Some(alias_arn(REGION, ACCOUNT, &name).as_str())
            );
            (name, a.target_key_id().map(str::to_owned))
        })
        .collect()
}

#[tokio::test]
async fn aws_managed_keys_are_made_on_first_use_and_refuse_management() {
    let server = Server::dev();
    let kms = server.client();
    let untargeted: Vec<_> = PREDEFINED
        .iter()
        .map(|s| (format!("alias/aws/{s}"), None))
        .collect();
    assert_eq!(alias_targets(&kms).await, untargeted);
    assert!(kms.list_keys().send().await.unwrap().keys().is_empty());

    let s3 = describe(&kms, "alias/aws/s3").await;
    let s3_arn = s3.arn().unwrap();
    assert_eq!(s3.key_manager(), Some(&KeyManagerType::Aws));
    assert_eq!(s3.key_state(), Some(&KeyState::Enabled));
    assert_eq!(
        s3.description(),
        Some("Default key that protects my S3 objects when no other key is defined")
    );
    assert_eq!(describe(&kms, "alias/aws/s3").await.key_id(), s3.key_id());
    let targets: HashMap<_, _> = alias_targets(&kms).await.into_iter().collect();
    assert_eq!(targets.len(), PREDEFINED.len());
    assert_eq!(targets["alias/aws/s3"].as_deref(), Some(s3.key_id()));
    assert_eq!(targets["alias/aws/ebs"], None);

    // Encrypt with a predefined alias makes its key, and the key works.
    let blob = encrypt(&kms, "alias/aws/ebs", b"volume key").await;
    let ebs = describe(&kms, "alias/aws/ebs").await;
    assert_eq!(ebs.key_manager(), Some(&KeyManagerType::Aws));
    assert_ne!(ebs.key_id(), s3.key_id());
    let (plaintext, key_id, _) = decrypt(&kms, &blob).await;
    assert_eq!(
        (plaintext.as_slice(), key_id.as_str()),
        (&b"volume key"[..], ebs.arn().unwrap())
    );
    let targets: HashMap<_, _> = alias_targets(&kms).await.into_iter().collect();
    assert_eq!(targets["alias/aws/ebs"].as_deref(), Some(ebs.key_id()));

    // The AWS managed key policy allows no management, whoever asks.
    assert_error(
        kms.disable_key().key_id(s3.key_id()).send().await,
        "AccessDeniedException",
        &no_resource_policy_msg("DisableKey", s3_arn),
    );
    assert_error(
        kms.schedule_key_deletion()
            .key_id(s3_arn)
            .pending_window_in_days(7)
            .send()
            .await,
        "AccessDeniedException",
        &no_resource_policy_msg("ScheduleKeyDeletion", s3_arn),
    );
    assert_eq!(
        describe(&kms, s3.key_id()).await.key_state(),
        Some(&KeyState::Enabled)
    );

    // Rotated every year, always.
    let status = kms
        .get_key_rotation_status()
        .key_id(s3.key_id())
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.key_id(), Some(s3_arn));
    assert_eq!(status.rotation_period_in_days(), Some(365));
    let expected = secs(s3.creation_date()) + (365 * DAY) as f64;
    let next = secs(status.next_rotation_date());
    assert!(
        (next - expected).abs() < 5.0,
        "NextRotationDate {next}, expected {expected}"
    );
}
