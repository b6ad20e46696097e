//! The one dispatch table: `TrentService.<Operation>` to the service function that answers it,
//! and the members of each request its quota class may depend on.

use serde::Serialize;
use serde::de::DeserializeOwned;
use trent_kms::{Caller, Kms, KmsError};

/// Every operation of the AWS KMS API (the 56 of the model).
pub const ALL_OPERATIONS: &[&str] = &[
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decapsulate",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

/// The operation named by an `X-Amz-Target` header, if it is one of the API's.
pub fn operation(target: &str) -> Option<&'static str> {
    let name = target.strip_prefix("TrentService.")?;
    ALL_OPERATIONS.iter().copied().find(|op| *op == name)
}

/// Decode a request body into a typed request. An empty body is an empty request.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, KmsError> {
    // serde would also read a struct from a JSON array: only an object is a request.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(KmsError::Serialization(
            "The request body must be a JSON object.".into(),
        ));
    }
    let body: &[u8] = if first.is_none() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| {
        // serde's own messages may quote the offending value, which could be secret: say where.
        let what = match e.classify() {
            serde_json::error::Category::Data => "Unexpected value type",
            _ => "Invalid JSON",
        };
        KmsError::Serialization(format!("{what} at line {} column {}", e.line(), e.column()))
    })
}

/// Decode `body` as the request `run` takes (so that its type is known before `run` is called).
fn decode_for<T: DeserializeOwned, R>(
    _run: &impl FnOnce(T) -> R,
    body: &[u8],
) -> Result<T, KmsError> {
    decode(body)
}

/// What a request names that its quota class may depend on: the keys it names (KeyId; for
/// ReEncrypt its source and destination) and the KeyPairSpec of a data key pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Named<'a> {
    pub keys: [Option<&'a str>; 2],
    pub key_pair_spec: Option<&'a str>,
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, KmsError> {
    serde_json::to_vec(value).map_err(|e| KmsError::Internal(e.to_string()))
}

/// Run `op` for `caller` on `body`; the response body (empty for operations without output).
///
/// `admit` is asked, once the body is decoded and before the operation runs, whether the request
/// may go on (its quota); a body that does not decode is counted too (as naming nothing), so that
/// malformed requests are throttled like any other.
pub async fn dispatch(
    kms: &Kms,
    caller: &Caller,
    op: &str,
    body: &[u8],
    admit: impl FnOnce(Named<'_>) -> Result<(), KmsError>,
) -> Result<Vec<u8>, KmsError> {
    macro_rules! table {
        ($( $name:literal => $method:ident, $out:ident $(, $named:ident($($member:ident),*))? );* $(;)?) => {
            match op {
                $( $name => {
                    let run = |req| kms.$method(caller, req);
                    let req = match decode_for(&run, body) {
                        Ok(req) => req,
                        Err(e) => {
                            admit(Named::default())?;
                            return Err(e);
                        }
                    };
                    admit(table!(@named req $(, $named($($member),*))?))?;
                    let resp = run(req).await?;
                    table!(@out $out, resp)
                } )*
                other if ALL_OPERATIONS.contains(&other) => {
                    admit(Named::default())?;
                    Err(KmsError::UnsupportedOperation(format!(
                        "{other} is not supported by this trent server yet."
                    )))
                }
                _ => Err(KmsError::UnknownOperation),
            }
        };
        (@named $req:ident) => { Named::default() };
        (@named $req:ident, keys($($member:ident),*)) => {
            Named { keys: table!(@keys $req, $($member),*), key_pair_spec: None }
        };
        (@named $req:ident, pair($member:ident)) => {
            Named { keys: [None, None], key_pair_spec: $req.$member.as_deref() }
        };
        (@keys $req:ident, $a:ident) => { [$req.$a.as_deref(), None] };
        (@keys $req:ident, $a:ident, $b:ident) => { [$req.$a.as_deref(), $req.$b.as_deref()] };
        (@out json, $resp:ident) => { encode(&$resp) };
        (@out empty, $resp:ident) => {{ let _ = $resp; Ok(Vec::new()) }};
    }
    // The members named here are those whose value may change the request's quota class; which
    // class is decided in `crate::quota`.
    table! {
        "CreateKey" => create_key, json;
        "DescribeKey" => describe_key, json;
        "ListKeys" => list_keys, json;
        "UpdateKeyDescription" => update_key_description, empty;
        "EnableKey" => enable_key, empty;
        "DisableKey" => disable_key, empty;
        "ScheduleKeyDeletion" => schedule_key_deletion, json;
        "CancelKeyDeletion" => cancel_key_deletion, json;
        "CreateAlias" => create_alias, empty;
        "UpdateAlias" => update_alias, empty;
        "DeleteAlias" => delete_alias, empty;
        "ListAliases" => list_aliases, json;
        "TagResource" => tag_resource, empty;
        "UntagResource" => untag_resource, empty;
        "ListResourceTags" => list_resource_tags, json;
        "GetKeyPolicy" => get_key_policy, json;
        "PutKeyPolicy" => put_key_policy, empty;
        "ListKeyPolicies" => list_key_policies, json;
        "Encrypt" => encrypt, json, keys(key_id);
        "Decrypt" => decrypt, json, keys(key_id);
        "ReEncrypt" => re_encrypt, json, keys(source_key_id, destination_key_id);
        "GenerateDataKey" => generate_data_key, json;
        "GenerateDataKeyWithoutPlaintext" => generate_data_key_without_plaintext, json;
        "GenerateRandom" => generate_random, json;
        "Sign" => sign, json, keys(key_id);
        "Verify" => verify, json, keys(key_id);
        "GetPublicKey" => get_public_key, json;
        "GenerateMac" => generate_mac, json;
        "VerifyMac" => verify_mac, json;
        "DeriveSharedSecret" => derive_shared_secret, json;
        "Encapsulate" => encapsulate, json;
        "Decapsulate" => decapsulate, json;
        "GenerateDataKeyPair" => generate_data_key_pair, json, pair(key_pair_spec);
        "GenerateDataKeyPairWithoutPlaintext" => generate_data_key_pair_without_plaintext, json, pair(key_pair_spec);
        "CreateGrant" => create_grant, json;
        "ListGrants" => list_grants, json;
        "ListRetirableGrants" => list_retirable_grants, json;
        "RetireGrant" => retire_grant, empty;
        "RevokeGrant" => revoke_grant, empty;
        "EnableKeyRotation" => enable_key_rotation, empty;
        "DisableKeyRotation" => disable_key_rotation, empty;
        "GetKeyRotationStatus" => get_key_rotation_status, json;
        "GetKeyLastUsage" => get_key_last_usage, json;
        "RotateKeyOnDemand" => rotate_key_on_demand, json;
        "ListKeyRotations" => list_key_rotations, json;
        "ReplicateKey" => replicate_key, json;
        "UpdatePrimaryRegion" => update_primary_region, empty;
        "GetParametersForImport" => get_parameters_for_import, json;
        "ImportKeyMaterial" => import_key_material, json;
        "DeleteImportedKeyMaterial" => delete_imported_key_material, json;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_the_56_operations() {
        assert_eq!(ALL_OPERATIONS.len(), 56);
        assert_eq!(operation("TrentService.Encrypt"), Some("Encrypt"));
        assert_eq!(operation("TrentService.Nope"), None);
        assert_eq!(operation("Encrypt"), None);
    }

    #[test]
    fn decode_errors_never_quote_values() {
        let e =
            decode::<trent_kms::api::EncryptRequest>(br#"{"KeyId": 5, "Plaintext": "c2VjcmV0"}"#)
                .unwrap_err();
        assert_eq!(
            e,
            KmsError::Serialization("Unexpected value type at line 1 column 11".into())
        );
        let e =
            decode::<trent_kms::api::EncryptRequest>(br#"{"KeyId": "super-secret""#).unwrap_err();
        assert!(matches!(&e, KmsError::Serialization(m) if !m.contains("super-secret")));
        let e = decode::<trent_kms::api::EncryptRequest>(br#"{"Plaintext": "not base64!"}"#)
            .unwrap_err();
        assert!(matches!(e, KmsError::Serialization(_)));
        assert!(decode::<trent_kms::api::ListKeysRequest>(b"").is_ok());
        let e =
            decode::<trent_kms::api::TagResourceRequest>(br#"{"KeyId":"k","Tags":[["a","b"]]}"#)
                .unwrap_err();
        assert!(matches!(e, KmsError::Serialization(_)));
        let ok: trent_kms::api::TagResourceRequest =
            decode(br#"{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":"b"}]}"#).unwrap();
        assert_eq!(ok.tags.unwrap()[0].tag_key.as_deref(), Some("a"));
        for not_an_object in [&b"[]"[..], b"null", b"42", b"\"x\""] {
            assert_eq!(
                decode::<trent_kms::api::ListKeysRequest>(not_an_object).unwrap_err(),
                KmsError::Serialization("The request body must be a JSON object.".into())
            );
        }
    }
}
