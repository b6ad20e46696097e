//! Grants: permissions on one key delegated to one principal, as stored and as checked on the
//! hot path; and grant tokens, which name a grant so that it can be used before a node has seen it.

use crate::api::{EncryptionContext, GrantConstraints, GrantListEntry};
use crate::error::KmsError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use trent_crypto::primitives;

/// Every operation a grant can allow (the GrantOperation enum, in the model's order).
pub const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

/// The operations that take an encryption context, the only ones grant constraints apply to.
pub const CONTEXT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

/// Grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// A grant, as stored (JSON) and cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// 64 lowercase hex characters.
    pub grant_id: String,
    pub key_id: String,
    pub key_arn: String,
    #[serde(default)]
    pub name: Option<String>,
    pub grantee_principal: String,
    #[serde(default)]
    pub retiring_principal: Option<String>,
    /// `arn:<partition>:iam::<account>:root` of the account that created the grant.
    pub issuing_account: String,
    pub operations: Vec<String>,
    #[serde(default)]
    pub constraints: Option<GrantConstraints>,
    /// Epoch seconds.
    pub creation_date: f64,
}

impl Grant {
    /// Whether the grant allows `operation` (a grant operation name) with this encryption context.
    pub fn allows(&self, operation: &str, context: Option<&EncryptionContext>) -> bool {
        self.operations.iter().any(|o| o == operation)
            && (!CONTEXT_OPERATIONS.contains(&operation)
                || self.constraints.as_ref().is_none_or(|c| c.admit(context)))
    }

    /// The grant as ListGrants shows it.
    pub fn entry(&self) -> GrantListEntry {
        GrantListEntry {
            key_id: self.key_arn.clone(),
            grant_id: self.grant_id.clone(),
            name: Some(self.name.clone().unwrap_or_default()),
            creation_date: self.creation_date,
            grantee_principal: self.grantee_principal.clone(),
            retiring_principal: self.retiring_principal.clone(),
            issuing_account: self.issuing_account.clone(),
            operations: self.operations.clone(),
            constraints: self.constraints.clone(),
        }
    }

    /// Whether `other` (a CreateGrant with the same Name) asks for this very grant: a retry.
    pub fn same_request(&self, other: &Grant) -> bool {
        let sorted = |ops: &[String]| {
            let mut v = ops.to_vec();
            v.sort();
            v.dedup();
            v
        };
        self.name == other.name
            && self.grantee_principal == other.grantee_principal
            && self.retiring_principal == other.retiring_principal
            && sorted(&self.operations) == sorted(&other.operations)
            && self.constraints == other.constraints
    }
}

/// A context pair is found in `context` when a key equal but for case has the same value: in a
/// grant constraint, keys are not case-sensitive and values are. A context that holds the key in
/// several cases must give every one of them the value: the caller cannot choose which one the
/// constraint reads.
fn has_pair(context: &EncryptionContext, key: &str, value: &str) -> bool {
    let mut matching = context
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .peekable();
    matching.peek().is_some() && matching.all(|(_, v)| v == value)
}

fn contains_all(context: &EncryptionContext, pairs: &EncryptionContext) -> bool {
    pairs.iter().all(|(k, v)| has_pair(context, k, v))
}

/// Whether two contexts are the same but for the case of their keys: each holds every pair of
/// the other. Both ways, so that a pair of one that the other's case variants stand in for (an
/// EncryptionContextEquals of `{"a":"1","A":"1"}`) cannot leave room for a pair of its own
/// (`{"a":"1","b":"2"}`, of the same size).
fn same_context(a: &EncryptionContext, b: &EncryptionContext) -> bool {
    a.len() == b.len() && contains_all(a, b) && contains_all(b, a)
}

impl GrantConstraints {
    /// Whether a request's encryption context satisfies the constraints.
    pub fn admit(&self, context: Option<&EncryptionContext>) -> bool {
        let empty = EncryptionContext::new();
        let context = context.unwrap_or(&empty);
        let equals = self
            .encryption_context_equals
            .as_ref()
            .is_none_or(|eq| same_context(context, eq));
        let subset = self
            .encryption_context_subset
            .as_ref()
            .is_none_or(|sub| contains_all(context, sub));
        equals && subset
    }

    /// The constraint types present, for kms:GrantConstraintType.
    pub fn types(&self) -> Vec<&'static str> {
        let mut t = Vec::new();
        if self.encryption_context_equals.is_some() {
            t.push("EncryptionContextEquals");
        }
        if self.encryption_context_subset.is_some() {
            t.push("EncryptionContextSubset");
        }
        t
    }
}

/// Whether a grant made through a parent grant's CreateGrant permission stays within it: some or
/// all of its operations, and constraints at least as strict (a subset may gain pairs or become
/// an equals; an equals must stay the same).
pub fn within(child_ops: &[String], child: Option<&GrantConstraints>, parent: &Grant) -> bool {
    if !child_ops.iter().all(|o| parent.operations.contains(o)) {
        return false;
    }
    let Some(p) = &parent.constraints else {
        return true;
    };
    let Some(c) = child else {
        return false;
    };
    let equals_ok = match (&p.encryption_context_equals, &c.encryption_context_equals) {
        (None, _) => true,
        (Some(pe), Some(ce)) => same_context(ce, pe),
        (Some(_), None) => false,
    };
    let subset_ok = match &p.encryption_context_subset {
        None => true,
        Some(ps) => [&c.encryption_context_subset, &c.encryption_context_equals]
            .iter()
            .any(|cs| cs.as_ref().is_some_and(|cs| contains_all(cs, ps))),
    };
    equals_ok && subset_ok
}

/// A new grant id: 64 hex characters, as AWS's.
pub fn new_grant_id() -> Result<String, KmsError> {
    Ok(hex::encode(primitives::random_array::<32>()?))
}

const TOKEN_VERSION: u8 = 1;

/// Grant tokens: `version | key ARN length (2 bytes) | key ARN | grant id (32 bytes) | nonce (16)
/// | HMAC-SHA256 of all that`, base64url. The MAC key is trent's own (kept under the root key), so
/// a token cannot be forged, and any node of a cluster can read one.
pub struct GrantTokens {
    /// In secret memory (out of core dumps and swap).
    key: trent_crypto::SecretBytes,
}

impl GrantTokens {
    pub fn new(key: zeroize::Zeroizing<Vec<u8>>) -> Self {
        Self {
            key: trent_crypto::SecretBytes::copy_from(&key),
        }
    }

    /// A new token for a grant (each CreateGrant gets its own, even for a retried grant).
    pub fn issue(&self, key_arn: &str, grant_id: &str) -> Result<String, KmsError> {
        let id = hex::decode(grant_id).map_err(|_| KmsError::Internal("bad grant id".into()))?;
        let mut body = vec![TOKEN_VERSION];
        body.extend_from_slice(&(key_arn.len() as u16).to_be_bytes());
        body.extend_from_slice(key_arn.as_bytes());
        body.extend_from_slice(&id);
        body.extend_from_slice(&primitives::random_array::<16>()?);
        let mac = primitives::hmac_sha256(self.key.expose(), &body);
        body.extend_from_slice(&mac);
        Ok(URL_SAFE_NO_PAD.encode(body))
    }

    /// The key ARN and grant id a token names, or InvalidGrantTokenException.
    pub fn read(&self, token: &str) -> Result<(String, String), KmsError> {
        let invalid = || KmsError::InvalidGrantToken("Invalid grant token".into());
        let raw = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| invalid())?;
        if raw.len() < 1 + 2 + 32 + 16 + 32 || raw[0] != TOKEN_VERSION {
            return Err(invalid());
        }
        let (body, mac) = raw.split_at(raw.len() - 32);
        if !primitives::constant_time_eq(&primitives::hmac_sha256(self.key.expose(), body), mac) {
            return Err(invalid());
        }
        let arn_len = u16::from_be_bytes([body[1], body[2]]) as usize;
        if body.len() != 3 + arn_len + 32 + 16 {
            return Err(invalid());
        }
        let arn = String::from_utf8(body[3..3 + arn_len].to_vec()).map_err(|_| invalid())?;
        Ok((arn, hex::encode(&body[3 + arn_len..3 + arn_len + 32])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn grant(ops: &[&str], c: Option<GrantConstraints>) -> Grant {
        Grant {
            grant_id: "00".repeat(32),
            key_id: "k".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            name: None,
            grantee_principal: "arn:aws:iam::111122223333:user/a".into(),
            retiring_principal: None,
            issuing_account: "arn:aws:iam::111122223333:root".into(),
            operations: ops.iter().map(|s| s.to_string()).collect(),
            constraints: c,
            creation_date: 0.0,
        }
    }

    fn subset(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
        Some(GrantConstraints {
            encryption_context_subset: Some(ctx(pairs)),
            encryption_context_equals: None,
        })
    }

    fn equals(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
        Some(GrantConstraints {
            encryption_context_subset: None,
            encryption_context_equals: Some(ctx(pairs)),
        })
    }

    #[test]
    fn constraints_apply_to_context_operations_only() {
        let g = grant(&["Encrypt", "DescribeKey"], subset(&[("Dept", "IT")]));
        assert!(g.allows("Encrypt", Some(&ctx(&[("Dept", "IT"), ("x", "y")]))));
        assert!(g.allows("Encrypt", Some(&ctx(&[("dept", "IT")]))));
        assert!(!g.allows("Encrypt", Some(&ctx(&[("Dept", "it")]))));
        assert!(!g.allows("Encrypt", None));
        assert!(g.allows("DescribeKey", None));
        assert!(!g.allows("Decrypt", Some(&ctx(&[("Dept", "IT")]))));
        // The key in several cases: every one must have the value.
        assert!(!g.allows("Encrypt", Some(&ctx(&[("Dept", "IT"), ("DEPT", "HR")]))));
        assert!(g.allows("Encrypt", Some(&ctx(&[("Dept", "IT"), ("DEPT", "IT")]))));
        let e = grant(&["Decrypt"], equals(&[("a", "1")]));
        assert!(e.allows("Decrypt", Some(&ctx(&[("A", "1")]))));
        assert!(!e.allows("Decrypt", Some(&ctx(&[("a", "1"), ("b", "2")]))));
        // An equals constraint holding its key in two cases leaves no room for another pair.
        let twice = grant(&["Decrypt"], equals(&[("a", "1"), ("A", "1")]));
        assert!(!twice.allows("Decrypt", Some(&ctx(&[("a", "1"), ("b", "2")]))));
        assert!(twice.allows("Decrypt", Some(&ctx(&[("A", "1"), ("a", "1")]))));
    }

    #[test]
    fn child_grants_stay_within_their_parent() {
        let parent_subset = grant(&["Encrypt", "CreateGrant"], subset(&[("a", "1")]));
        let parent_equals = grant(&["Encrypt", "CreateGrant"], equals(&[("a", "1")]));
        let parent_open = grant(&["Encrypt", "CreateGrant"], None);
        let parent_equals_twice = grant(
            &["Encrypt", "CreateGrant"],
            equals(&[("a", "1"), ("A", "1")]),
        );
        // (parent, child operations, child constraints, within?)
        let cases = [
            (
                &parent_subset,
                "Encrypt",
                subset(&[("a", "1"), ("b", "2")]),
                true,
            ),
            (&parent_subset, "Encrypt", equals(&[("a", "1")]), true),
            (&parent_subset, "Encrypt", None, false),
            (&parent_subset, "Decrypt", subset(&[("a", "1")]), false),
            (&parent_subset, "Encrypt", subset(&[("b", "2")]), false),
            (&parent_equals, "Encrypt", equals(&[("a", "1")]), true),
            (&parent_equals, "Encrypt", subset(&[("a", "1")]), false),
            (
                &parent_equals_twice,
                "Encrypt",
                equals(&[("a", "1"), ("b", "2")]),
                false,
            ),
            (&parent_open, "Encrypt", None, true),
        ];
        for (parent, op, child, want) in cases {
            let ops = vec![op.to_string()];
            assert_eq!(within(&ops, child.as_ref(), parent), want, "{op} {child:?}");
        }
    }

    #[test]
    fn tokens_name_their_grant_and_cannot_be_forged() {
        let tokens = GrantTokens::new(zeroize::Zeroizing::new(vec![7; 32]));
        let id = "ab".repeat(32);
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k";
        let t1 = tokens.issue(arn, &id).unwrap();
        let t2 = tokens.issue(arn, &id).unwrap();
        assert_ne!(t1, t2, "every token is new");
        assert_eq!(tokens.read(&t1).unwrap(), (arn.to_string(), id.clone()));
        let other = GrantTokens::new(zeroize::Zeroizing::new(vec![8; 32]));
        assert!(matches!(
            other.read(&t1),
            Err(KmsError::InvalidGrantToken(_))
        ));
        let mut bytes = URL_SAFE_NO_PAD.decode(&t1).unwrap();
        bytes[5] ^= 1;
        assert!(tokens.read(&URL_SAFE_NO_PAD.encode(bytes)).is_err());
        assert!(tokens.read("not a token").is_err());
        assert!(tokens.read("").is_err());
    }
}
