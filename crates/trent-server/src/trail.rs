//! Audit records in the CloudTrail shape: one per request (including those refused, invalid or
//! failed) and one per event the server causes itself (a key deleted at the end of its window,
//! a rotation, imported material expiring).
//!
//! `requestParameters` are the request's members in lowerCamelCase, without any secret: no
//! plaintext, ciphertext, message, signature, MAC, key material, import token or grant token.
//! Encryption contexts keep their own keys. `responseElements` is null for read-only and
//! cryptographic operations, and for the others the response without secrets.
//!
//! A record holds a bounded amount of what the caller sent, so that a caller with no permission
//! cannot fill the log: `requestParameters` and `responseElements` are cut past
//! [`PARAMETERS_MAX_BYTES`] (a failed request's past [`FAILED_PARAMETERS_MAX_BYTES`]) and then
//! say so (`"omitted":true`, as CloudTrail marks a field it truncates), and every other string
//! the caller chooses has a bound of its own.

use base64::Engine;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trent_kms::{Caller, KmsError};

/// Members never written to a record: they are or may be secret, or are ciphertexts.
const SECRET_MEMBERS: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "CiphertextForRecipient",
    "EncryptedKeyMaterial",
    "ImportToken",
    "GrantToken",
    "GrantTokens",
    "Message",
    "Signature",
    "Mac",
    "PublicKey",
    "PrivateKeyPlaintext",
    "PrivateKeyCiphertextBlob",
    "SharedSecret",
    "SharedSecretCiphertextBlob",
    "CiphertextBlobForRecipient",
    "Recipient",
    "KeyMaterial",
    // Custom key store credentials (the operations are refused, but the members are sent).
    "KeyStorePassword",
    "XksProxyAuthenticationCredential",
];

/// Members whose value is a map of the caller's own keys, kept as they are.
const USER_MAPS: &[&str] = &[
    "EncryptionContext",
    "SourceEncryptionContext",
    "DestinationEncryptionContext",
    "EncryptionContextSubset",
    "EncryptionContextEquals",
];

/// Most bytes a successful request's `requestParameters`, and its `responseElements`, take in a
/// record: CloudTrail's bound on these fields (100 KB). A key policy (32 KB at most) and every
/// other member a permitted request can hold fit whole.
pub const PARAMETERS_MAX_BYTES: usize = 100 * 1024;

/// Most bytes a failed request's `requestParameters` take (refused, invalid or failed for any
/// other reason: nothing was done, and the caller may hold no permission at all).
pub const FAILED_PARAMETERS_MAX_BYTES: usize = 4 * 1024;

/// Most bytes of `errorMessage` kept (messages can quote what the caller sent); a longer one is
/// cut there and ends with `… (cut from N bytes)`.
pub const ERROR_MESSAGE_MAX_BYTES: usize = 1024;

/// Most bytes of `userAgent` kept (a header value, so ASCII: as many characters).
const USER_AGENT_MAX_BYTES: usize = 1024;

/// Most bytes kept of the access key id and region an unauthenticated request claims (AWS access
/// key ids have at most 128 characters, region names far fewer).
const ACCESS_KEY_ID_MAX_BYTES: usize = 128;
const REGION_MAX_BYTES: usize = 64;

/// A key ARN longer than this, named in a request, is not put in `resources`: no real one is.
const KEY_ARN_MAX_BYTES: usize = 256;

/// The members a cut object starts with; never taken from the caller.
const MARKER_MEMBERS: [&str; 2] = ["omitted", "originalSize"];

/// `s` cut to at most `max` bytes, at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    &s[..at]
}

/// An error message as a record keeps it: whole, or its first [`ERROR_MESSAGE_MAX_BYTES`] and a
/// note of how long it was.
fn bounded_message(message: String) -> String {
    if message.len() <= ERROR_MESSAGE_MAX_BYTES {
        return message;
    }
    format!(
        "{}… (cut from {} bytes)",
        clip(&message, ERROR_MESSAGE_MAX_BYTES),
        message.len()
    )
}

/// Operations CloudTrail marks `readOnly` (and whose `responseElements` are null).
fn read_only(op: &str) -> bool {
    op.starts_with("Describe")
        || op.starts_with("Get")
        || op.starts_with("List")
        || op == "GenerateRandom"
        || is_cryptographic(op)
}

/// The operations that use a key's material.
pub fn is_cryptographic(op: &str) -> bool {
    matches!(
        op,
        "Encrypt"
            | "Decrypt"
            | "ReEncrypt"
            | "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext"
            | "Sign"
            | "Verify"
            | "GenerateMac"
            | "VerifyMac"
            | "DeriveSharedSecret"
            | "Encapsulate"
            | "Decapsulate"
    )
}

/// Timestamps (epoch seconds in the API) that CloudTrail writes as dates: "Aug 10, 2022,
/// 10:38:27 PM", UTC.
const DATE_MEMBERS: &[&str] = &[
    "CreationDate",
    "DeletionDate",
    "ValidTo",
    "ParametersValidTo",
    "LastUpdatedDate",
    "NextRotationDate",
    "OnDemandRotationStartDate",
    "RotationDate",
    "TrackingStartDate",
    "KeyCreationDate",
];

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A timestamp as CloudTrail shows it in request parameters and response elements.
fn cloudtrail_date(epoch_seconds: f64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp(epoch_seconds.floor() as i64).ok()?;
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year], [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    t.format(&format).ok()
}

/// A request or response object as CloudTrail shows it, written straight out: member names in
/// lowerCamelCase (user maps kept as they are), secrets left out. No copy is made.
struct Shown<'a>(&'a Value);

/// A member's name as a record writes it: lowerCamelCase, except that, by CloudTrail's rule
/// (Java's decapitalize), a name that starts with two capitals, such as AWSAccountId, stays.
fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => name.into(),
        (Some(a), _) if a.is_ascii_uppercase() => lower_camel(name).into(),
        _ => name.into(),
    }
}

/// A member name in lowerCamelCase.
struct LowerCamel<'a>(&'a str);

impl Serialize for LowerCamel<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&shown_name(self.0))
    }
}

/// Write member `k` of an object as a record shows it (nothing, for a secret).
fn write_member<M: SerializeMap>(map: &mut M, k: &str, v: &Value) -> Result<(), M::Error> {
    if SECRET_MEMBERS.contains(&k) {
        return Ok(());
    }
    if USER_MAPS.contains(&k) {
        map.serialize_entry(&LowerCamel(k), v)
    } else if let Some(date) = DATE_MEMBERS
        .contains(&k)
        .then(|| v.as_f64().and_then(cloudtrail_date))
        .flatten()
    {
        map.serialize_entry(&LowerCamel(k), &date)
    } else {
        map.serialize_entry(&LowerCamel(k), &Shown(v))
    }
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(obj) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in obj {
                    write_member(&mut map, k, v)?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Shown(item))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// How many bytes a value takes, serialized.
fn written_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// One member of an object, alone: `{"name":value}`, or `{}` when it is not shown.
struct OneMember<'a>(&'a str, &'a Value);

impl Serialize for OneMember<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        write_member(&mut map, self.0, self.1)?;
        map.end()
    }
}

/// `requestParameters` or `responseElements`: the object as [`Shown`], whole when it takes at
/// most its bound, else cut. A cut object begins with `"omitted":true` and `"originalSize"` (the
/// bytes the whole would have taken), then keeps, in their order, the members that still fit
/// whole; the others are left out. At the top level no member the caller sent is ever written
/// under those two names.
struct Bounded<'a> {
    value: &'a Value,
    /// When cut: the size of the whole, and which members are kept.
    cut: Option<(usize, Vec<bool>)>,
}

fn is_marker_name(k: &str) -> bool {
    MARKER_MEMBERS.contains(&shown_name(k).as_ref())
}

impl<'a> Bounded<'a> {
    fn new(value: &'a Value, max: usize) -> Self {
        let Value::Object(obj) = value else {
            let whole = written_len(&Shown(value));
            let cut = (whole > max).then(Vec::new).map(|keep| (whole, keep));
            return Self { value, cut };
        };
        // What each member takes: `"name":value`, 0 when it is not written.
        let sizes: Vec<usize> = obj
            .iter()
            .map(|(k, v)| {
                if is_marker_name(k) {
                    0
                } else {
                    written_len(&OneMember(k, v)) - 2
                }
            })
            .collect();
        let shown = sizes.iter().filter(|n| **n > 0).count();
        let whole = 2 + sizes.iter().sum::<usize>() + shown.saturating_sub(1);
        if whole <= max {
            return Self { value, cut: None };
        }
        let marker = format!("{{\"omitted\":true,\"originalSize\":{whole}}}").len();
        let mut room = max.saturating_sub(marker);
        let keep = sizes
            .iter()
            .map(|&n| {
                let fits = n > 0 && n < room;
                if fits {
                    room -= n + 1;
                }
                fits
            })
            .collect();
        Self {
            value,
            cut: Some((whole, keep)),
        }
    }
}

impl Serialize for Bounded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let empty = Map::new();
        let obj = match self.value {
            Value::Object(obj) => obj,
            _ if self.cut.is_none() => return Shown(self.value).serialize(s),
            _ => &empty,
        };
        let mut map = s.serialize_map(None)?;
        match &self.cut {
            None => {
                for (k, v) in obj {
                    if !is_marker_name(k) {
                        write_member(&mut map, k, v)?;
                    }
                }
            }
            Some((whole, keep)) => {
                map.serialize_entry("omitted", &true)?;
                map.serialize_entry("originalSize", whole)?;
                for ((k, v), kept) in obj.iter().zip(keep) {
                    if *kept {
                        write_member(&mut map, k, v)?;
                    }
                }
            }
        }
        map.end()
    }
}

fn iso(t: OffsetDateTime) -> String {
    // CloudTrail's eventTime has whole seconds.
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Who made a request, as CloudTrail's `userIdentity`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
}

fn user_identity<'a>(caller: Option<&'a Caller>, access_key_id: Option<&'a str>) -> Identity<'a> {
    let Some(c) = caller else {
        return Identity {
            kind: "Unknown",
            arn: None,
            account_id: None,
            access_key_id,
            user_name: None,
        };
    };
    let resource = c
        .principal_arn
        .split_once(":iam::")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(_, r)| r)
        .unwrap_or_default();
    let kind = if resource == "root" {
        "Root"
    } else if resource.starts_with("role/") {
        "AssumedRole"
    } else {
        "IAMUser"
    };
    Identity {
        kind,
        arn: Some(&c.principal_arn),
        account_id: Some(&c.account),
        access_key_id,
        user_name: resource
            .strip_prefix("user/")
            .map(|name| name.rsplit('/').next().unwrap_or(name)),
    }
}

/// The key a request was about: the key ARN the response names, or the one the request names
/// (by ARN, or by key id in the caller's account and region).
fn key_arn(request: &Value, response: &Value, caller: Option<&Caller>) -> Option<String> {
    let is_key_arn = |s: &str| s.starts_with("arn:") && s.contains(":key/");
    for v in [
        &response["KeyMetadata"]["Arn"],
        &response["KeyId"],
        &response["KeyArn"],
    ] {
        if let Some(s) = v.as_str().filter(|s| is_key_arn(s)) {
            return Some(s.to_string());
        }
    }
    let asked = request["KeyId"]
        .as_str()
        .or_else(|| request["DestinationKeyId"].as_str())
        .or_else(|| request["TargetKeyId"].as_str())?;
    if is_key_arn(asked) && asked.len() <= KEY_ARN_MAX_BYTES {
        return Some(asked.to_string());
    }
    let c = caller?;
    let bare_id = !asked.starts_with("alias/") && !asked.starts_with("arn:") && asked.len() <= 64;
    bare_id.then(|| trent_kms::ids::key_arn(&c.region, &c.account, asked))
}

/// A unique event id in the layout of a version 4 UUID (its version and variant bits set): 60
/// random bits drawn once per process, then a count.
fn event_id() -> String {
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let p = PREFIX.get_or_init(|| {
        let mut p = trent_crypto::primitives::random_array::<8>().unwrap_or([0; 8]);
        p[6] = 0x40 | (p[6] & 0x0f);
        p
    });
    let mut n = COUNT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    // The variant (10xx) takes the count's top two bits, which it never reaches.
    n[0] = 0x80 | (n[0] & 0x3f);
    format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&p[..4]),
        hex::encode(&p[4..6]),
        hex::encode(&p[6..8]),
        hex::encode(&n[..2]),
        hex::encode(&n[2..])
    )
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

/// What one request was and how it ended.
pub struct RequestEvent<'a> {
    pub request_id: &'a str,
    pub time: OffsetDateTime,
    /// The operation, or the dev endpoint's path, or "-" when the target named none.
    pub event_name: &'a str,
    pub caller: Option<&'a Caller>,
    pub access_key_id: Option<&'a str>,
    /// The region the request was signed for, when known.
    pub region: Option<&'a str>,
    pub source_ip: IpAddr,
    pub user_agent: Option<&'a str>,
    pub request_body: &'a [u8],
    /// The response body parsed (null when empty or not JSON), or the error.
    pub outcome: Result<&'a Value, &'a KmsError>,
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(rename = "accountId")]
    account_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ARN")]
    arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Additional<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key_material_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_key_material_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_key_material_id: Option<&'a str>,
}

/// One request's record, in CloudTrail's member order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    user_identity: Identity<'a>,
    event_time: String,
    event_source: &'static str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: String,
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    request_parameters: Option<Bounded<'a>>,
    response_elements: Option<Bounded<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<Additional<'a>>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<[Resource<'a>; 1]>,
    event_type: &'static str,
    management_event: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_account_id: Option<&'a str>,
    event_category: &'static str,
}

/// The CloudTrail record of one request, as one JSON object.
pub fn request_record(e: &RequestEvent<'_>) -> String {
    let request: Value = serde_json::from_slice(e.request_body)
        .ok()
        .filter(Value::is_object)
        .unwrap_or(Value::Null);
    let response: &Value = match e.outcome {
        Ok(v) => v,
        Err(_) => &Value::Null,
    };
    let read_only = read_only(e.event_name);
    let key = key_arn(&request, response, e.caller);
    let str_of = |member: &str| response[member].as_str().filter(|s| !s.is_empty());
    let mut material = str_of("KeyMaterialId").map(std::borrow::Cow::Borrowed);
    if material.is_none() && e.event_name == "Encrypt" {
        // Encrypt's response names no material; a symmetric ciphertext's header does.
        material = str_of("CiphertextBlob")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|blob| trent_crypto::BlobHeader::parse(&blob).ok())
            .map(|(h, _)| std::borrow::Cow::Owned(h.material_id.to_hex()));
    }
    let additional = Additional {
        key_material_id: material,
        source_key_material_id: str_of("SourceKeyMaterialId"),
        destination_key_material_id: str_of("DestinationKeyMaterialId"),
    };
    let has_additional = additional.key_material_id.is_some()
        || additional.source_key_material_id.is_some()
        || additional.destination_key_material_id.is_some();
    // A failed request did nothing: what it sent is kept only up to the smaller bound.
    let parameters_max = match e.outcome {
        Ok(_) => PARAMETERS_MAX_BYTES,
        Err(_) => FAILED_PARAMETERS_MAX_BYTES,
    };
    let record = Record {
        event_version: "1.11",
        user_identity: user_identity(
            e.caller,
            e.access_key_id.map(|k| clip(k, ACCESS_KEY_ID_MAX_BYTES)),
        ),
        event_time: iso(e.time),
        event_source: "kms.amazonaws.com",
        event_name: e.event_name,
        aws_region: e
            .caller
            .map(|c| c.region.as_str())
            .or(e.region.map(|r| clip(r, REGION_MAX_BYTES)))
            .unwrap_or("us-east-1"),
        source_ip_address: e.source_ip.to_string(),
        user_agent: e.user_agent.map(|u| clip(u, USER_AGENT_MAX_BYTES)),
        error_code: e.outcome.err().map(KmsError::name),
        error_message: e
            .outcome
            .err()
            .and_then(KmsError::message)
            .map(bounded_message),
        // Only an authenticated caller's members are recorded: an anonymous request could
        // otherwise fill the log with whatever it sends.
        request_parameters: (!request.is_null() && e.caller.is_some())
            .then(|| Bounded::new(&request, parameters_max)),
        response_elements: (!read_only && !response.is_null())
            .then(|| Bounded::new(response, PARAMETERS_MAX_BYTES)),
        additional_event_data: has_additional.then_some(additional),
        request_id: e.request_id,
        event_id: event_id(),
        read_only,
        resources: key.as_deref().map(|arn| {
            [Resource {
                account_id: account_of(arn).unwrap_or_default(),
                kind: "AWS::KMS::Key",
                arn,
            }]
        }),
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: key
            .as_deref()
            .and_then(account_of)
            .or(e.caller.map(|c| c.account.as_str())),
        event_category: "Management",
    };
    serde_json::to_string(&record).unwrap_or_else(|_| "{}".into())
}

/// The record of an event the server caused itself (`DeleteKey` at the end of a deletion
/// window, `RotateKey`, `DeleteExpiredKeyMaterial`, `SynchronizeMultiRegionKey` when a replica
/// is created, `ScheduleKeyDeletion` when a primary's last replica is gone) on `key_arn`.
pub fn service_event(event_name: &str, key_arn: &str, time: OffsetDateTime) -> Map<String, Value> {
    let mut parts = key_arn.split(':');
    let region = parts.nth(3).unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let key_id = key_arn.rsplit('/').next().unwrap_or_default();
    json!({
        "eventVersion": "1.11",
        "userIdentity": {"accountId": account, "invokedBy": "kms.amazonaws.com"},
        "eventTime": iso(time),
        "eventSource": "kms.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "kms.amazonaws.com",
        "userAgent": "kms.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "eventID": event_id(),
        "readOnly": false,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsServiceEvent",
        "recipientAccountId": account,
        "serviceEventDetails": {"keyId": key_id},
        "managementEvent": true,
        "eventCategory": "Management",
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// The records of what one run of the scheduled work did.
pub fn schedule_events(
    report: &trent_kms::lifecycle::ScheduleReport,
    time: OffsetDateTime,
) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for arn in &report.rotated {
        out.push(service_event("RotateKey", arn, time));
    }
    for arn in &report.expired {
        out.push(service_event("DeleteExpiredKeyMaterial", arn, time));
    }
    for arn in &report.replicas_created {
        out.push(service_event("SynchronizeMultiRegionKey", arn, time));
    }
    for arn in &report.deletion_windows_started {
        out.push(service_event("ScheduleKeyDeletion", arn, time));
    }
    for arn in &report.destroyed {
        out.push(service_event("DeleteKey", arn, time));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller::new(
            "111122223333",
            "eu-west-1",
            "arn:aws:iam::111122223333:user/ops/alice",
        )
    }

    #[test]
    fn event_ids_are_distinct_and_laid_out_as_version_4_uuids() {
        let ids: Vec<String> = (0..1000).map(|_| event_id()).collect();
        for id in &ids {
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(
                id.bytes()
                    .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{id}");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn an_encrypt_record_has_no_plaintext_and_the_cloudtrail_fields() {
        let c = caller();
        let body = br#"{"KeyId":"alias/app","Plaintext":"c2VjcmV0","EncryptionContext":{"Dept":"Eng","KeyId":"x"},"GrantTokens":["tok"]}"#;
        let resp = br#"{"CiphertextBlob":"AQID","KeyId":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","EncryptionAlgorithm":"SYMMETRIC_DEFAULT","KeyMaterialId":"ab12"}"#;
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let r = request_record(&RequestEvent {
            request_id: "req-1",
            time: t,
            event_name: "Encrypt",
            caller: Some(&c),
            access_key_id: Some("AKIAEXAMPLE"),
            region: Some("eu-west-1"),
            source_ip: "192.0.2.7".parse().unwrap(),
            user_agent: Some("aws-cli/2"),
            request_body: body,
            outcome: Ok(&serde_json::from_slice(resp).unwrap()),
        });
        let v: Value = serde_json::from_str(&r).unwrap();
        let text = v.to_string();
        assert!(!text.contains("c2VjcmV0") && !text.contains("AQID") && !text.contains("tok"));
        assert_eq!(
            v["requestParameters"],
            json!({"keyId": "alias/app", "encryptionContext": {"Dept": "Eng", "KeyId": "x"}})
        );
        assert_eq!(v["responseElements"], Value::Null);
        assert_eq!(v["additionalEventData"], json!({"keyMaterialId": "ab12"}));
        assert_eq!(v["eventTime"], "2023-11-14T22:13:20Z");
        assert_eq!(v["readOnly"], true);
        assert_eq!(v["requestID"], "req-1");
        assert_eq!(
            v["userIdentity"],
            json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops/alice", "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"})
        );
        assert_eq!(
            v["resources"],
            json!([{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}])
        );
        assert_eq!(v["eventType"], "AwsApiCall");
        assert_eq!(v["recipientAccountId"], "111122223333");
        assert!(v.get("errorCode").is_none());
    }

    #[test]
    fn response_elements_name_members_and_show_dates_as_cloudtrail_does() {
        let c = caller();
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let resp = json!({"KeyMetadata": {
            "AWSAccountId": "111122223333", "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "Arn": arn, "CreationDate": 1_660_171_107.25, "ValidTo": 1_618_210_710,
            "Enabled": false, "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        }});
        let r: Value = serde_json::from_str(&request_record(&RequestEvent {
            request_id: "req-2",
            time: OffsetDateTime::from_unix_timestamp(1_660_171_107).unwrap(),
            event_name: "CreateKey",
            caller: Some(&c),
            access_key_id: Some("AKIAEXAMPLE"),
            region: Some("eu-west-1"),
            source_ip: "192.0.2.7".parse().unwrap(),
            user_agent: None,
            request_body: br#"{"Description":"","ValidTo":1618210710}"#,
            outcome: Ok(&resp),
        }))
        .unwrap();
        assert_eq!(
            r["responseElements"],
            json!({"keyMetadata": {
                "AWSAccountId": "111122223333", "keyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
                "arn": arn, "creationDate": "Aug 10, 2022, 10:38:27 PM",
                "validTo": "Apr 12, 2021, 6:58:30 AM",
                "enabled": false, "encryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            }})
        );
        assert_eq!(
            r["requestParameters"],
            json!({"description": "", "validTo": "Apr 12, 2021, 6:58:30 AM"})
        );
    }

    #[test]
    fn a_failed_management_call_names_its_error_and_the_key() {
        let c = caller();
        let err = KmsError::NotFound("Key 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' does not exist".into());
        let r: Value = serde_json::from_str(&request_record(&RequestEvent {
            request_id: "req-2",
            time: OffsetDateTime::now_utc(),
            event_name: "ScheduleKeyDeletion",
            caller: Some(&c),
            access_key_id: None,
            region: None,
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
            request_body:
                br#"{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","PendingWindowInDays":7}"#,
            outcome: Err(&err),
        }))
        .unwrap();
        assert_eq!(r["errorCode"], "NotFoundException");
        assert_eq!(r["errorMessage"], err.message().unwrap());
        assert_eq!(r["readOnly"], false);
        assert_eq!(r["responseElements"], Value::Null);
        assert_eq!(
            r["requestParameters"],
            json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "pendingWindowInDays": 7})
        );
        assert_eq!(
            r["resources"][0]["ARN"],
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
    }

    #[test]
    fn unauthenticated_and_unparsable_requests_are_recorded_too() {
        let err = KmsError::UnrecognizedClient;
        let r: Value = serde_json::from_str(&request_record(&RequestEvent {
            request_id: "req-3",
            time: OffsetDateTime::now_utc(),
            event_name: "Encrypt",
            caller: None,
            access_key_id: Some("AKIANOPE"),
            region: Some("us-west-2"),
            source_ip: "::1".parse().unwrap(),
            user_agent: Some("x"),
            request_body: b"not json",
            outcome: Err(&err),
        }))
        .unwrap();
        assert_eq!(
            r["userIdentity"],
            json!({"type": "Unknown", "accessKeyId": "AKIANOPE"})
        );
        assert_eq!(r["awsRegion"], "us-west-2");
        assert_eq!(r["requestParameters"], Value::Null);
        assert_eq!(r["errorCode"], "UnrecognizedClientException");
        assert!(r.get("resources").is_none());
    }

    #[test]
    fn management_responses_are_shown_without_secrets() {
        let c = caller();
        let r: Value = serde_json::from_str(&request_record(&RequestEvent {
            request_id: "req-4",
            time: OffsetDateTime::now_utc(),
            event_name: "CreateGrant",
            caller: Some(&c),
            access_key_id: None,
            region: None,
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
            request_body: br#"{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/k1","GranteePrincipal":"arn:aws:iam::111122223333:role/app","Operations":["Decrypt"],"Constraints":{"EncryptionContextSubset":{"Tenant":"a"}}}"#,
            outcome: Ok(&json!({"GrantId": "g1", "GrantToken": "secret-token"})),
        }))
        .unwrap();
        assert_eq!(r["responseElements"], json!({"grantId": "g1"}));
        assert_eq!(
            r["requestParameters"]["constraints"],
            json!({"encryptionContextSubset": {"Tenant": "a"}})
        );
        assert!(!r.to_string().contains("secret-token"));
    }

    /// The record of an Encrypt by `caller` with `body`, ended by `outcome`.
    fn encrypt_record(
        caller: Option<&Caller>,
        body: &[u8],
        outcome: Result<&Value, &KmsError>,
    ) -> String {
        request_record(&RequestEvent {
            request_id: "req-5",
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            event_name: "Encrypt",
            caller,
            access_key_id: Some("AKIAEXAMPLE"),
            region: Some("eu-west-1"),
            source_ip: "192.0.2.7".parse().unwrap(),
            user_agent: Some("aws-cli/2"),
            request_body: body,
            outcome,
        })
    }

    fn big_context_body(bytes: usize) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "KeyId": "alias/app",
            "Plaintext": "c2VjcmV0",
            "EncryptionContext": {"Pad": "x".repeat(bytes)},
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }))
        .unwrap()
    }

    /// The bytes `requestParameters` take in a record (as written: member order kept).
    fn parameters_bytes(record: &str) -> usize {
        let at = record.find(r#""requestParameters":"#).unwrap() + r#""requestParameters":"#.len();
        let end = record.find(r#","responseElements":"#).unwrap();
        end - at
    }

    #[test]
    fn a_refused_request_keeps_a_few_kilobytes_of_what_it_sent_and_says_it_was_cut() {
        let c = caller();
        let denied = KmsError::AccessDenied("not allowed".into());
        let body = big_context_body(60_000);
        let r = encrypt_record(Some(&c), &body, Err(&denied));
        let v: Value = serde_json::from_str(&r).unwrap();
        let whole = r#"{"keyId":"alias/app","encryptionContext":{"Pad":""#.len()
            + 60_000
            + 2
            + r#","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#.len();
        assert_eq!(
            v["requestParameters"],
            json!({"omitted": true, "originalSize": whole, "keyId": "alias/app",
                   "encryptionAlgorithm": "SYMMETRIC_DEFAULT"})
        );
        assert!(parameters_bytes(&r) <= FAILED_PARAMETERS_MAX_BYTES);
        // The marker comes first, then the members that fit, in the request's order.
        assert!(
            r.contains(r#""requestParameters":{"omitted":true,"originalSize":"#),
            "{r}"
        );
        assert!(r.len() < 2048, "{} bytes", r.len());
        assert_eq!(v["errorCode"], "AccessDeniedException");

        // Just under the bound, the same request is kept whole.
        let fits = FAILED_PARAMETERS_MAX_BYTES - (whole - 60_000);
        let r = encrypt_record(Some(&c), &big_context_body(fits), Err(&denied));
        assert_eq!(parameters_bytes(&r), FAILED_PARAMETERS_MAX_BYTES);
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(
            v["requestParameters"]["encryptionContext"]["Pad"]
                .as_str()
                .unwrap()
                .len(),
            fits
        );
        assert!(v["requestParameters"].get("omitted").is_none());
        let r = encrypt_record(Some(&c), &big_context_body(fits + 1), Err(&denied));
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["requestParameters"]["omitted"], true);
    }

    #[test]
    fn a_successful_request_keeps_up_to_cloudtrails_bound() {
        let c = caller();
        let ok = json!({"KeyId": "arn:aws:kms:eu-west-1:111122223333:key/k"});
        // 60 KB of context, permitted: whole, as CloudTrail keeps it.
        let r = encrypt_record(Some(&c), &big_context_body(60_000), Ok(&ok));
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(
            v["requestParameters"]["encryptionContext"]["Pad"]
                .as_str()
                .unwrap()
                .len(),
            60_000
        );
        // Past 100 KiB it is cut too.
        let r = encrypt_record(Some(&c), &big_context_body(PARAMETERS_MAX_BYTES), Ok(&ok));
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["requestParameters"]["omitted"], true);
        assert_eq!(v["requestParameters"]["keyId"], "alias/app");
        assert!(parameters_bytes(&r) <= PARAMETERS_MAX_BYTES);

        // The largest key policy, full of characters JSON escapes, is kept whole.
        let policy = "\"".repeat(trent_kms::policy::MAX_POLICY_BYTES);
        let body =
            serde_json::to_vec(&json!({"KeyId": "k1", "PolicyName": "default", "Policy": policy}))
                .unwrap();
        let r: Value = serde_json::from_str(&request_record(&RequestEvent {
            request_id: "req-6",
            time: OffsetDateTime::now_utc(),
            event_name: "PutKeyPolicy",
            caller: Some(&c),
            access_key_id: None,
            region: None,
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
            request_body: &body,
            outcome: Ok(&Value::Null),
        }))
        .unwrap();
        assert_eq!(r["requestParameters"]["policy"].as_str().unwrap(), policy);
    }

    #[test]
    fn a_caller_cannot_write_the_cut_marker() {
        let c = caller();
        let body = br#"{"KeyId":"k1","Omitted":true,"originalSize":5,"EncryptionContext":{"omitted":"kept"}}"#;
        let v: Value =
            serde_json::from_str(&encrypt_record(Some(&c), body, Ok(&Value::Null))).unwrap();
        assert_eq!(
            v["requestParameters"],
            json!({"keyId": "k1", "encryptionContext": {"omitted": "kept"}})
        );
    }

    #[test]
    fn every_string_the_caller_chooses_is_bounded() {
        let c = caller();
        let long = "A".repeat(100_000);
        let message = KmsError::Validation(format!(
            "Value '{long}' at 'keyId' failed to satisfy constraint"
        ));
        let body = serde_json::to_vec(&json!({
            "KeyId": format!("arn:aws:kms:eu-west-1:111122223333:key/{long}"),
            "EncryptionContext": {"Pad": long},
        }))
        .unwrap();
        for caller in [Some(&c), None] {
            let r = request_record(&RequestEvent {
                request_id: "req-7",
                time: OffsetDateTime::now_utc(),
                event_name: &long[..128],
                caller,
                access_key_id: Some(&long),
                region: Some(&long),
                source_ip: "2001:db8::1".parse().unwrap(),
                user_agent: Some(&long),
                request_body: &body,
                outcome: Err(&message),
            });
            assert!(r.len() < 7 * 1024, "{} bytes: {r}", r.len());
            let v: Value = serde_json::from_str(&r).unwrap();
            let msg = v["errorMessage"].as_str().unwrap();
            assert!(
                msg.ends_with(&format!(
                    "… (cut from {} bytes)",
                    message.message().unwrap().len()
                )),
                "{msg}"
            );
            assert!(msg.starts_with("Value 'AAAA"));
            assert_eq!(v["userAgent"].as_str().unwrap().len(), 1024);
            assert!(
                v.get("resources").is_none(),
                "an ARN no key has is not a resource"
            );
            if caller.is_none() {
                assert_eq!(
                    v["userIdentity"]["accessKeyId"].as_str().unwrap().len(),
                    128
                );
                assert_eq!(v["awsRegion"].as_str().unwrap().len(), 64);
            }
        }
    }

    #[test]
    fn a_cut_message_ends_on_a_character() {
        let m = bounded_message("é".repeat(ERROR_MESSAGE_MAX_BYTES));
        assert!(m.starts_with(&"é".repeat(ERROR_MESSAGE_MAX_BYTES / 2)));
        assert!(m.ends_with(&format!(
            "… (cut from {} bytes)",
            2 * ERROR_MESSAGE_MAX_BYTES
        )));
        let short = "x".repeat(ERROR_MESSAGE_MAX_BYTES);
        assert_eq!(bounded_message(short.clone()), short);
    }

    #[test]
    fn service_events_have_the_aws_service_event_shape() {
        let arn = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let r = Value::Object(service_event("DeleteKey", arn, OffsetDateTime::now_utc()));
        assert_eq!(r["eventType"], "AwsServiceEvent");
        assert_eq!(r["awsRegion"], "us-east-2");
        assert_eq!(
            r["userIdentity"],
            json!({"accountId": "111122223333", "invokedBy": "kms.amazonaws.com"})
        );
        assert_eq!(
            r["serviceEventDetails"],
            json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"})
        );
        assert_eq!(r["resources"][0]["ARN"], arn);
    }
}
