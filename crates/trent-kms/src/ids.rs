//! Key identifiers: key ids, key ARNs, alias names and alias ARNs, parsed once at the edge.

use crate::error::KmsError;
use crate::policy::Policy;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use trent_crypto::primitives;

/// The AWS partition this process serves. A deployment serves one partition: every ARN it makes
/// (keys, aliases, account roots, default and AWS managed key policies, grants) and every ARN it
/// accepts is in it. That is a fact fixed before the first request and the same for every part of
/// the process, so it is kept here, set once at start ([`set_partition`]), rather than carried by
/// every caller, record and policy, where two of them could disagree.
static PARTITION: OnceLock<String> = OnceLock::new();

/// The partition served when none is set.
pub const DEFAULT_PARTITION: &str = "aws";

/// The partition this process serves: [`DEFAULT_PARTITION`] unless [`set_partition`] said
/// otherwise.
pub fn partition() -> &'static str {
    PARTITION.get().map_or(DEFAULT_PARTITION, String::as_str)
}

/// Whether `name` can be a partition: `aws`, or `aws-` and lowercase letters, digits and `-`
/// (`aws-cn`, `aws-us-gov`, `aws-iso-b`, `aws-eusc`, ...), at most 32 characters.
pub fn is_partition_name(name: &str) -> bool {
    name == "aws"
        || name.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && name.len() <= 32
                && !rest.ends_with('-')
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Serve `name` as the partition, once, before any ARN is made. Setting the same partition again
/// is harmless; another one is refused.
pub fn set_partition(name: &str) -> Result<(), String> {
    if !is_partition_name(name) {
        return Err(format!(
            "'{name}' is not a partition name (aws, aws-cn, aws-us-gov, ...)"
        ));
    }
    match PARTITION.set(name.to_string()) {
        Ok(()) => Ok(()),
        Err(_) if partition() == name => Ok(()),
        Err(_) => Err(format!(
            "this process already serves partition {}",
            partition()
        )),
    }
}

/// `arn:<partition>:iam::<account>:`, the start of every principal ARN of an account.
pub fn iam_prefix(account: &str) -> String {
    format!("arn:{}:iam::{account}:", partition())
}

/// Who is calling, from where, and in which region: every resource is scoped by account and
/// region.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub region: String,
    /// `arn:aws:iam::<account>:user/<name>`, `...:role/<name>` or `...:root`.
    pub principal_arn: String,
    /// The caller's identity policies.
    pub identity: Arc<[Policy]>,
    /// The address the request came from (aws:SourceIp).
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (aws:SecureTransport).
    pub secure_transport: bool,
    /// The request's id (x-amzn-RequestId), when it came over HTTP.
    pub request_id: Option<String>,
}

impl Caller {
    /// A caller with no identity policies, no known address and no TLS.
    pub fn new(account: &str, region: &str, principal_arn: &str) -> Self {
        Caller {
            account: account.to_string(),
            region: region.to_string(),
            principal_arn: principal_arn.to_string(),
            identity: Arc::from(Vec::new()),
            source_ip: None,
            secure_transport: false,
            request_id: None,
        }
    }

    /// Whether the caller is its account's root user.
    pub fn is_root(&self) -> bool {
        self.principal_arn
            .strip_prefix(iam_prefix(&self.account).as_str())
            == Some("root")
    }

    /// aws:PrincipalType.
    pub fn principal_type(&self) -> &'static str {
        if self.is_root() {
            "Account"
        } else if self.principal_arn.contains(":role/") {
            "AssumedRole"
        } else {
            "User"
        }
    }

    /// aws:username: the name of an IAM user.
    pub fn user_name(&self) -> Option<&str> {
        let (_, path) = self.principal_arn.split_once(":user/")?;
        path.rsplit('/').next()
    }

    pub fn scope(&self) -> trent_store::Scope {
        trent_store::Scope {
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }

    pub fn key_arn(&self, key_id: &str) -> String {
        key_arn(&self.region, &self.account, key_id)
    }

    pub fn alias_arn(&self, alias_name: &str) -> String {
        format!(
            "arn:{}:kms:{}:{}:{}",
            partition(),
            self.region,
            self.account,
            alias_name
        )
    }
}

pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:{}:kms:{region}:{account}:key/{key_id}", partition())
}

/// How a request named a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A bare key id.
    Id(String),
    /// A key ARN, with the account it names.
    KeyArn { account: String, key_id: String },
    /// `alias/<name>`, in the caller's scope.
    AliasName(String),
    /// An alias ARN, with the account it names.
    AliasArn { account: String, alias_name: String },
}

/// Whether `s` is an AWS account id: 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` is a key id trent could have made: a UUID, or `mrk-` and 32 hex digits.
pub fn is_key_id(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

/// A new key id: a version 4 UUID from the crypto library's CSPRNG.
pub fn new_key_id() -> Result<String, KmsError> {
    let bytes: [u8; 16] = primitives::random_array()?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// A new multi-Region key id: `mrk-` and 32 random hex digits.
pub fn new_multi_region_key_id() -> Result<String, KmsError> {
    let bytes: [u8; 16] = primitives::random_array()?;
    Ok(format!("mrk-{}", hex::encode(bytes)))
}

fn invalid_key_id(s: &str) -> KmsError {
    KmsError::NotFound(format!("Invalid keyId '{s}'"))
}

/// Parse any of the four forms, for operations that accept aliases.
pub fn parse_key_or_alias(caller: &Caller, s: &str) -> Result<KeyRef, KmsError> {
    if s.starts_with("arn:") {
        return parse_arn(caller, s);
    }
    if s.starts_with("alias/") {
        return Ok(KeyRef::AliasName(s.to_string()));
    }
    if is_key_id(s) {
        return Ok(KeyRef::Id(s.to_string()));
    }
    Err(invalid_key_id(s))
}

/// Parse a key id or key ARN, for operations that do not accept aliases.
pub fn parse_key_only(caller: &Caller, s: &str) -> Result<KeyRef, KmsError> {
    match parse_key_or_alias(caller, s)? {
        r @ (KeyRef::Id(_) | KeyRef::KeyArn { .. }) => Ok(r),
        _ => Err(invalid_key_id(s)),
    }
}

fn parse_arn(caller: &Caller, s: &str) -> Result<KeyRef, KmsError> {
    // arn:<partition>:kms:<region>:<account>:<resource>
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "kms" || parts[1].is_empty() {
        return Err(KmsError::NotFound(format!("Invalid arn {s}")));
    }
    let (region, account, resource) = (parts[3], parts[4], parts[5]);
    // Another partition's ARN names nothing here: refused as AWS refuses another region's,
    // naming the part that does not match (the wording is trent's choice: unconfirmed).
    if parts[1] != partition() {
        return Err(KmsError::NotFound(format!("Invalid arn {}", parts[1])));
    }
    if region != caller.region {
        return Err(KmsError::NotFound(format!("Invalid arn {region}")));
    }
    if !is_account_id(account) {
        return Err(KmsError::NotFound(format!("Invalid arn {s}")));
    }
    if let Some(id) = resource.strip_prefix("key/") {
        if is_key_id(id) {
            return Ok(KeyRef::KeyArn {
                account: account.to_string(),
                key_id: id.to_string(),
            });
        }
        return Err(invalid_key_id(s));
    }
    if resource.starts_with("alias/") {
        return Ok(KeyRef::AliasArn {
            account: account.to_string(),
            alias_name: resource.to_string(),
        });
    }
    Err(KmsError::NotFound(format!("Invalid arn {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:user/alice",
        )
    }

    #[test]
    fn who_the_caller_is() {
        let alice = caller();
        assert!(!alice.is_root());
        assert_eq!(alice.principal_type(), "User");
        assert_eq!(alice.user_name(), Some("alice"));
        let root = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:root",
        );
        assert!(root.is_root());
        assert_eq!(root.principal_type(), "Account");
        let other_root = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::444455556666:root",
        );
        assert!(!other_root.is_root());
        let role = Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:role/ops/app",
        );
        assert_eq!(
            (role.principal_type(), role.user_name()),
            ("AssumedRole", None)
        );
    }

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn all_four_forms() {
        let c = caller();
        assert_eq!(parse_key_or_alias(&c, ID), Ok(KeyRef::Id(ID.into())));
        assert_eq!(
            parse_key_or_alias(&c, &format!("arn:aws:kms:us-east-1:111122223333:key/{ID}")),
            Ok(KeyRef::KeyArn {
                account: "111122223333".into(),
                key_id: ID.into()
            })
        );
        assert_eq!(
            parse_key_or_alias(&c, "alias/x"),
            Ok(KeyRef::AliasName("alias/x".into()))
        );
        assert_eq!(
            parse_key_or_alias(&c, "arn:aws:kms:us-east-1:111122223333:alias/x"),
            Ok(KeyRef::AliasArn {
                account: "111122223333".into(),
                alias_name: "alias/x".into()
            })
        );
    }

    #[test]
    fn malformed_ids_and_foreign_regions() {
        let c = caller();
        assert_eq!(
            parse_key_or_alias(&c, "nope"),
            Err(KmsError::NotFound("Invalid keyId 'nope'".into()))
        );
        assert_eq!(
            parse_key_or_alias(&c, &format!("arn:aws:kms:eu-west-1:111122223333:key/{ID}")),
            Err(KmsError::NotFound("Invalid arn eu-west-1".into()))
        );
        assert_eq!(
            parse_key_only(&c, "alias/x"),
            Err(KmsError::NotFound("Invalid keyId 'alias/x'".into()))
        );
    }

    #[test]
    fn another_partitions_arn_is_invalid() {
        let c = caller();
        assert_eq!(partition(), "aws");
        assert_eq!(
            parse_key_or_alias(
                &c,
                &format!("arn:aws-cn:kms:us-east-1:111122223333:key/{ID}")
            ),
            Err(KmsError::NotFound("Invalid arn aws-cn".into()))
        );
        assert_eq!(
            parse_key_or_alias(&c, "arn:aws-us-gov:kms:us-east-1:111122223333:alias/x"),
            Err(KmsError::NotFound("Invalid arn aws-us-gov".into()))
        );
        for ok in ["aws", "aws-cn", "aws-us-gov", "aws-iso-b", "aws-eusc"] {
            assert!(is_partition_name(ok), "{ok}");
        }
        for bad in ["", "AWS", "aws-", "gcp", "aws-CN", "aws_cn", "aws-cn-"] {
            assert!(!is_partition_name(bad), "{bad}");
        }
        assert!(set_partition("aws cn").is_err());
    }

    #[test]
    fn new_ids_are_v4_uuids() {
        let id = new_key_id().unwrap();
        assert!(is_key_id(&id));
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert!(is_key_id("mrk-1234abcd12ab34cd56ef1234567890ab"));
        assert!(!is_key_id("mrk-1234"));
    }
}
