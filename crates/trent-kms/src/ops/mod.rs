//! The operations, one function each from a typed request to a typed response, grouped by area.

mod aliases;
mod asymmetric;
mod crypto;
mod grants;
mod import;
mod keys;
mod multiregion;
mod policies;
mod rotation;
mod tags;
mod usage;

pub(crate) use crate::access::Facts;
use crate::error::KmsError;
use crate::model::KeyState;
pub(crate) use crate::service::Access;
use crate::service::CachedKey;
use crate::validate::Violations;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The KeyUsageType enum in the order AWS lists it in a validation message, which follows no rule
/// found (neither the model's order nor [`crate::validate::aws_order`]): AWS's recorded answer is
/// `[ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC]`, the order the values were added in;
/// the two added since follow in that order too.
pub const KEY_USAGES: &[&str] = &[
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
];
/// Enumerations of the model, in the model's order (validation messages list them in AWS's:
/// [`crate::validate::aws_order`]).
pub const KEY_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];
/// The deprecated CustomerMasterKeySpec enum: the KeySpec enum up to SM2.
pub const CUSTOMER_MASTER_KEY_SPECS: &[&str] = KEY_SPECS.split_at(13).0;
pub const ORIGINS: &[&str] = &["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];
pub const ENCRYPTION_ALGORITHMS: &[&str] = &[
    "SYMMETRIC_DEFAULT",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "SM2PKE",
];
pub const DATA_KEY_SPECS: &[&str] = &["AES_256", "AES_128"];
pub const SIGNING_ALGORITHMS: &[&str] = &[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "SM2DSA",
    "ML_DSA_SHAKE_256",
    "ED25519_SHA_512",
    "ED25519_PH_SHA_512",
];
pub const MESSAGE_TYPES: &[&str] = &["RAW", "DIGEST", "EXTERNAL_MU"];
pub const MAC_ALGORITHMS: &[&str] = &[
    "HMAC_SHA_224",
    "HMAC_SHA_256",
    "HMAC_SHA_384",
    "HMAC_SHA_512",
];
pub const KEY_AGREEMENT_ALGORITHMS: &[&str] = &["ECDH"];
pub const ENCAPSULATION_ALGORITHMS: &[&str] = &["ML_KEM"];
pub const DATA_KEY_PAIR_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SM2",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];

/// A request's encryption context as a condition value: none when it is empty.
pub(crate) fn some_context(
    context: &crate::api::EncryptionContext,
) -> Option<&crate::api::EncryptionContext> {
    (!context.is_empty()).then_some(context)
}

/// `InvalidKeyUsageException` unless `key` has `usage`.
pub(crate) fn require_usage(key: &CachedKey, usage: &str, op: &str) -> Result<(), KmsError> {
    if key.record.key_usage != usage {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {op}.",
            key.arn, key.record.key_usage
        )));
    }
    Ok(())
}

/// `InvalidKeyUsageException` for an algorithm the key's spec does not offer.
pub(crate) fn incompatible_algorithm(algorithm: &str, key: &CachedKey) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {}.",
        key.record.key_spec
    ))
}

/// `DryRunOperationException` once every check has passed, if the request asked for a dry run.
pub(crate) fn dry_run(flag: Option<bool>) -> Result<(), KmsError> {
    if flag == Some(true) {
        return Err(KmsError::DryRun);
    }
    Ok(())
}

/// Recipient (Nitro Enclaves attestation) is not offered by trent.
pub(crate) fn refuse_recipient(recipient: &Option<serde_json::Value>) -> Result<(), KmsError> {
    if recipient.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by trent.".into(),
        ));
    }
    Ok(())
}

/// KeyId: required, 1..2048.
fn check_key_id(v: &mut Violations, path: &str, key_id: &Option<String>) {
    v.required(path, key_id)
        .str_len(path, key_id.as_deref(), 1, 2048);
}

impl crate::service::Kms {
    /// The key named (by key id or key ARN) by the KeyId member of a request that has no other
    /// member to check, authorized for `action`.
    fn key_of_request(
        &self,
        caller: &crate::ids::Caller,
        key_id: &Option<String>,
        action: &'static str,
    ) -> Result<std::sync::Arc<CachedKey>, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", key_id);
        v.finish()?;
        self.resolve_key(
            caller,
            key_id.as_deref().unwrap_or_default(),
            &Access::new(action),
        )
    }
}

/// GrantTokens: at most 10, each 1..8192.
fn check_grant_tokens(v: &mut Violations, tokens: &Option<Vec<String>>) {
    if let Some(tokens) = tokens {
        v.list_len("GrantTokens", Some(tokens.as_slice()), 0, 10);
        for (i, t) in tokens.iter().enumerate() {
            // A grant token is a bearer credential: checked without echoing it.
            v.str_len_hidden(
                &format!("GrantTokens.{}.member", i + 1),
                t.chars().count(),
                1,
                8192,
            );
        }
    }
}

/// Limit and Marker of a list operation whose Limit may go up to `max`.
fn check_paging(v: &mut Violations, limit: Option<i64>, marker: &Option<String>, max: i64) {
    v.range("Limit", limit, 1, max)
        .str_len("Marker", marker.as_deref(), 1, 1024)
        .pattern(
            "Marker",
            marker.as_deref(),
            |s| s.chars().all(|c| ('\u{20}'..='\u{ff}').contains(&c)),
            "[\\u0020-\\u00FF]*",
        );
}

/// Markers are opaque to clients: the position after which the next page starts.
fn encode_marker(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("trent1:{last}"))
}

fn decode_marker(marker: &Option<String>) -> Result<Option<String>, KmsError> {
    let Some(m) = marker else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(m)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("trent1:").map(str::to_string))
        .map(Some)
        .ok_or_else(|| {
            KmsError::InvalidMarker(
                "The request was rejected because the marker that specifies where pagination should next begin is not valid.".into(),
            )
        })
}

/// One page of `items` (sorted by `position`) after `marker`.
fn page<T>(
    items: Vec<T>,
    position: impl Fn(&T) -> &str,
    marker: &Option<String>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), KmsError> {
    let after = decode_marker(marker)?;
    let mut rest: Vec<T> = match after {
        Some(a) => items
            .into_iter()
            .filter(|i| position(i) > a.as_str())
            .collect(),
        None => items,
    };
    if rest.len() > limit {
        rest.truncate(limit);
        let next = encode_marker(position(rest.last().expect("limit is at least 1")));
        Ok((rest, Some(next)))
    } else {
        Ok((rest, None))
    }
}

/// Custom key stores do not exist in trent (yet): every id names none.
fn custom_key_store_not_found(id: &str) -> KmsError {
    KmsError::CustomKeyStoreNotFound(format!("Custom key store '{id}' does not exist"))
}

/// The key-state rule for cryptographic operations (section 5 of the reference).
pub(crate) fn require_enabled(key: &CachedKey) -> Result<(), KmsError> {
    match key.record.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", key.arn))),
        other => Err(invalid_state(&key.arn, other)),
    }
}

/// KMSInternalException for a key whose stored material could not be loaded (see
/// [`CachedKey::unusable`]): checked by every operation that uses a key's material, after its
/// key-state rule. The message names the key and nothing of its material.
pub(crate) fn require_usable(key: &CachedKey) -> Result<(), KmsError> {
    if key.unusable {
        return Err(KmsError::Internal(format!(
            "{} is unusable: its key material cannot be read from the store.",
            key.arn
        )));
    }
    Ok(())
}

/// `KMSInvalidStateException` for a key in `state`.
pub(crate) fn invalid_state(arn: &str, state: KeyState) -> KmsError {
    let what = match state {
        KeyState::PendingDeletion => "pending deletion",
        KeyState::PendingImport => "pending import",
        KeyState::PendingReplicaDeletion => "pending replica deletion",
        KeyState::Creating => "being created",
        KeyState::Updating => "being updated",
        KeyState::Unavailable => "unavailable",
        KeyState::Enabled => "enabled",
        KeyState::Disabled => "disabled",
    };
    KmsError::InvalidState(format!("{arn} is {what}."))
}

/// The rule for management operations that refuse only keys pending deletion.
pub(crate) fn refuse_pending_deletion(state: KeyState, arn: &str) -> Result<(), KmsError> {
    if state == KeyState::PendingDeletion {
        return Err(invalid_state(arn, state));
    }
    Ok(())
}
