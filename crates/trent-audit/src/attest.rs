//! Signature files and digests: a signed statement of what a log file held.

use crate::signer::{AuditPublicKey, AuditSigner};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a signature file (a closed log file) or a digest (the open file, so far) states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    /// `file` (a closed file's signature) or `digest`.
    #[serde(rename = "type")]
    pub kind: String,
    pub file: String,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub last_hash: String,
    /// The file's length the statement covers.
    pub bytes: u64,
    /// SHA-256 of those bytes, hex.
    pub sha256: String,
    pub time: String,
    pub node: String,
    pub algorithm: String,
    pub key_id: String,
}

/// A statement and its signature, as a file holds them: one JSON object, the statement's members
/// and `signature` (base64, over the statement serialized compactly).
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
struct Signed<T> {
    #[serde(flatten)]
    statement: T,
    signature: String,
}

/// `statement` signed, as the file holds it.
pub(crate) fn sign_statement<T: Serialize>(
    statement: &T,
    signer: &AuditSigner,
) -> Result<Vec<u8>, String> {
    let message = serde_json::to_vec(statement).map_err(|e| e.to_string())?;
    let signature = B64.encode(signer.sign(&message)?);
    let mut out = serde_json::to_vec_pretty(&Signed {
        statement,
        signature,
    })
    .map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

/// Read a signed statement; `Ok(None)` when it parses but its signature does not verify with
/// `key`.
pub(crate) fn open_statement<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    key: &AuditPublicKey,
) -> Result<Option<T>, String> {
    let signed: Signed<T> =
        serde_json::from_slice(bytes).map_err(|_| "not a signed audit statement")?;
    let message = serde_json::to_vec(&signed.statement).map_err(|e| e.to_string())?;
    let signature = B64
        .decode(&signed.signature)
        .map_err(|_| "its signature is not base64")?;
    Ok(key.verify(&message, &signature).then_some(signed.statement))
}

impl Attestation {
    /// The statement and its signature, as the file holds them (one JSON object).
    pub fn sign(&self, signer: &AuditSigner) -> Result<Vec<u8>, String> {
        sign_statement(self, signer)
    }

    /// Read a signed statement; `Ok(None)` when it parses but its signature does not verify
    /// with `key`.
    pub fn open(bytes: &[u8], key: &AuditPublicKey) -> Result<Option<Attestation>, String> {
        open_statement(bytes, key)
    }
}
