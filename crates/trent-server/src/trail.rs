//! Audit records in the CloudTrail shape: one per request (including those refused, invalid or
//! failed) and one per event the server causes itself (a key deleted at the end of its window,
//! a rotation, imported material expiring).
//!
//! `requestParameters` are the request's members in lowerCamelCase, without any secret: no
//! plaintext, ciphertext, message, signature, MAC, key material, import token or grant token.
//! Encryption contexts keep their own keys. `responseElements` is null for read-only and
//! cryptographic operations, and for the others the response without secrets.

use base64::Engine;
use serde_json::{Map, Value, json};
use std::net::IpAddr;
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

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A request or response object as CloudTrail shows it: member names in lowerCamelCase (user
/// maps kept as they are), secrets left out.
fn shown(value: &Value) -> Value {
    match value {
        Value::Object(obj) => Value::Object(
            obj.iter()
                .filter(|(k, _)| !SECRET_MEMBERS.contains(&k.as_str()))
                .map(|(k, v)| {
                    let v = if USER_MAPS.contains(&k.as_str()) {
                        v.clone()
                    } else {
                        shown(v)
                    };
                    (lower_camel(k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shown).collect()),
        other => other.clone(),
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
fn user_identity(caller: Option<&Caller>, access_key_id: Option<&str>) -> Value {
    let Some(c) = caller else {
        let mut id = json!({"type": "Unknown"});
        if let Some(k) = access_key_id {
            id["accessKeyId"] = k.into();
        }
        return id;
    };
    let resource = c
        .principal_arn
        .split_once(":iam::")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(_, r)| r)
        .unwrap_or_default();
    let mut id = Map::new();
    let kind = if resource == "root" {
        "Root"
    } else if resource.starts_with("role/") {
        "AssumedRole"
    } else {
        "IAMUser"
    };
    id.insert("type".into(), kind.into());
    id.insert("arn".into(), c.principal_arn.clone().into());
    id.insert("accountId".into(), c.account.clone().into());
    if let Some(k) = access_key_id {
        id.insert("accessKeyId".into(), k.into());
    }
    if let Some(name) = resource.strip_prefix("user/") {
        id.insert(
            "userName".into(),
            name.rsplit('/').next().unwrap_or(name).into(),
        );
    }
    Value::Object(id)
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
    if is_key_arn(asked) {
        return Some(asked.to_string());
    }
    let c = caller?;
    let bare_id = !asked.starts_with("alias/") && !asked.starts_with("arn:") && asked.len() <= 64;
    bare_id.then(|| format!("arn:aws:kms:{}:{}:key/{asked}", c.region, c.account))
}

fn event_id() -> String {
    trent_kms::ids::new_key_id().unwrap_or_default()
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

/// The CloudTrail record of one request.
pub fn request_record(e: &RequestEvent<'_>) -> Map<String, Value> {
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
    let account = e.caller.map(|c| c.account.clone());
    let mut r = Map::new();
    r.insert("eventVersion".into(), "1.11".into());
    r.insert(
        "userIdentity".into(),
        user_identity(e.caller, e.access_key_id),
    );
    r.insert("eventTime".into(), iso(e.time).into());
    r.insert("eventSource".into(), "kms.amazonaws.com".into());
    r.insert("eventName".into(), e.event_name.into());
    r.insert(
        "awsRegion".into(),
        e.caller
            .map(|c| c.region.as_str())
            .or(e.region)
            .unwrap_or("us-east-1")
            .into(),
    );
    r.insert("sourceIPAddress".into(), e.source_ip.to_string().into());
    r.insert(
        "userAgent".into(),
        e.user_agent
            .map(|u| Value::from(u.chars().take(1024).collect::<String>()))
            .unwrap_or(Value::Null),
    );
    if let Err(err) = e.outcome {
        r.insert("errorCode".into(), err.name().into());
        if let Some(m) = err.message() {
            r.insert("errorMessage".into(), m.into());
        }
    }
    // Only an authenticated caller's members are recorded: an anonymous request could
    // otherwise fill the log with whatever it sends.
    r.insert(
        "requestParameters".into(),
        if request.is_null() || e.caller.is_none() {
            Value::Null
        } else {
            shown(&request)
        },
    );
    r.insert(
        "responseElements".into(),
        if read_only || response.is_null() {
            Value::Null
        } else {
            shown(response)
        },
    );
    let mut additional = Map::new();
    for (from, to) in [
        ("KeyMaterialId", "keyMaterialId"),
        ("SourceKeyMaterialId", "sourceKeyMaterialId"),
        ("DestinationKeyMaterialId", "destinationKeyMaterialId"),
    ] {
        if let Some(id) = response[from].as_str().filter(|s| !s.is_empty()) {
            additional.insert(to.into(), id.into());
        }
    }
    if additional.is_empty() && e.event_name == "Encrypt" {
        // Encrypt's response names no material; a symmetric ciphertext's header does.
        let header = response["CiphertextBlob"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|blob| trent_crypto::BlobHeader::parse(&blob).ok());
        if let Some((h, _)) = header {
            additional.insert("keyMaterialId".into(), h.material_id.to_hex().into());
        }
    }
    if !additional.is_empty() {
        r.insert("additionalEventData".into(), Value::Object(additional));
    }
    r.insert("requestID".into(), e.request_id.into());
    r.insert("eventID".into(), event_id().into());
    r.insert("readOnly".into(), read_only.into());
    if let Some(arn) = &key {
        r.insert(
            "resources".into(),
            json!([{"accountId": account_of(arn), "type": "AWS::KMS::Key", "ARN": arn}]),
        );
    }
    r.insert("eventType".into(), "AwsApiCall".into());
    r.insert("managementEvent".into(), true.into());
    let recipient = key
        .as_deref()
        .and_then(account_of)
        .map(str::to_string)
        .or(account);
    if let Some(a) = recipient {
        r.insert("recipientAccountId".into(), a.into());
    }
    r.insert("eventCategory".into(), "Management".into());
    r
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
        let v = Value::Object(r);
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
    fn a_failed_management_call_names_its_error_and_the_key() {
        let c = caller();
        let err = KmsError::NotFound("Key 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' does not exist".into());
        let r = Value::Object(request_record(&RequestEvent {
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
        }));
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
        let r = Value::Object(request_record(&RequestEvent {
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
        }));
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
        let r = Value::Object(request_record(&RequestEvent {
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
        }));
        assert_eq!(r["responseElements"], json!({"grantId": "g1"}));
        assert_eq!(
            r["requestParameters"]["constraints"],
            json!({"encryptionContextSubset": {"Tenant": "a"}})
        );
        assert!(!r.to_string().contains("secret-token"));
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
