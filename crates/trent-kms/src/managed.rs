//! AWS managed keys: the keys behind the predefined `alias/aws/<service>` aliases.
//!
//! As in AWS, each account and region has a fixed set of predefined aliases. ListAliases shows
//! them without a TargetKeyId until they are used; the first request that names one (DescribeKey,
//! Encrypt, GenerateDataKey*, ReEncrypt, ... any operation that accepts an alias) creates its key,
//! if the caller would be allowed that request on it: a symmetric encryption key with KeyManager
//! `AWS`, rotated every year, under its service's AWS managed key policy (AWS's text, one per
//! service). No such policy allows management, so every management operation (PutKeyPolicy,
//! ScheduleKeyDeletion, DisableKey, EnableKeyRotation, TagResource, CreateAlias to it, ...) is
//! refused with AccessDeniedException by the ordinary authorization, as in AWS.
//!
//! Departure from AWS: AWS's policies also require `kms:ViaService` (the request must come
//! through the owning service, such as `ec2.<region>.amazonaws.com`). trent hosts no AWS
//! services, so the condition is left out: any principal of the account may use the key directly
//! as far as its service's policy allows.

use crate::error::KmsError;
use crate::ids::{self, Caller, KeyRef};
use crate::model::{KeyRecord, KeyState, RotationSchedule};
use crate::policy;
use crate::service::{Access, CachedKey, KeyChange, Kms};
use std::sync::Arc;
use trent_crypto::KeyMaterial;
use trent_store::{AliasRow, Write};

/// The key manager of AWS managed keys.
pub const AWS_KEY_MANAGER: &str = "AWS";

/// Days between automatic rotations of an AWS managed key ("every year").
pub const AWS_MANAGED_ROTATION_DAYS: i64 = 365;

/// A predefined AWS managed alias, `alias/aws/<service>`, and the key policy AWS gives its key.
#[derive(Debug)]
pub struct ManagedService {
    /// The alias suffix, `s3` for `alias/aws/s3`.
    pub name: &'static str,
    /// What the key protects, in its description.
    pub protects: &'static str,
    /// The policy's `Id`.
    policy_id: &'static str,
    /// The policy's statements, in AWS's order.
    statements: &'static [Stmt],
}

/// One statement of an AWS managed key policy.
#[derive(Debug)]
struct Stmt {
    sid: &'static str,
    effect: &'static str,
    principal: Who,
    /// Written as a string when there is one, as a list otherwise (as AWS writes them).
    actions: &'static [&'static str],
    /// Whether the first condition is `"StringEquals" : { "kms:CallerAccount" : <account> }`.
    caller_account: bool,
    /// Further condition operators, each with one key: (operator, key, values).
    conditions: &'static [(&'static str, &'static str, &'static [&'static str])],
}

#[derive(Debug, Clone, Copy)]
enum Who {
    /// `"AWS" : "*"`.
    Anyone,
    /// The account's root ARN.
    Account,
    /// A service principal (`"Service" : "xray.amazonaws.com"`): no trent caller is one.
    Service(&'static str),
}

/// Any principal whose account is the key's (AWS adds the owning service's `kms:ViaService`).
const fn through(sid: &'static str, actions: &'static [&'static str]) -> Stmt {
    Stmt {
        sid,
        effect: "Allow",
        principal: Who::Anyone,
        actions,
        caller_account: true,
        conditions: &[],
    }
}

/// The account, when its identity policies allow it.
const fn metadata(actions: &'static [&'static str]) -> Stmt {
    Stmt {
        sid: "Allow direct access to key metadata to the account",
        effect: "Allow",
        principal: Who::Account,
        actions,
        caller_account: false,
        conditions: &[],
    }
}

/// The owning service's own principal may read the key.
const fn service_reads(sid: &'static str, service: &'static str) -> Stmt {
    Stmt {
        sid,
        effect: "Allow",
        principal: Who::Service(service),
        actions: READ,
        caller_account: false,
        conditions: &[],
    }
}

const USE: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:CreateGrant",
    "kms:DescribeKey",
];
const USE_WITHOUT_GRANTS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
];
const READ: &[&str] = &["kms:Describe*", "kms:Get*", "kms:List*"];
const READ_AND_REVOKE: &[&str] = &["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"];
const SECRETS_MANAGER_SID: &str = "Allow access through AWS Secrets Manager for all principals in the account that are authorized to use AWS Secrets Manager";

/// The predefined aliases, sorted by name, and their key policies. AWS publishes no list; this
/// is the set an account shows (as moto has it). The policies are AWS's, as read from real keys
/// in us-east-1 (github.com/FogSecurity/aws-managed-kms-keys, reference_key_policies/), less
/// `kms:ViaService`. The descriptions follow AWS's current wording, "Default key that protects
/// my ... when no other key is defined"; only the S3, SSM, RDS, Glue and Secrets Manager objects
/// were seen on real keys, the others are unconfirmed.
pub const AWS_MANAGED_SERVICES: &[ManagedService] = &[
    ManagedService {
        name: "acm",
        protects: "ACM private keys",
        policy_id: "auto-acm-4",
        statements: &[
            // CreateGrant only for an AWS resource (kms:GrantIsForAWSResource), which no
            // request to trent is: these two never allow anything here.
            Stmt {
                sid: "Allow creation of decryption grants",
                effect: "Allow",
                principal: Who::Anyone,
                actions: &["kms:CreateGrant"],
                caller_account: true,
                conditions: &[
                    (
                        "ForAllValues:StringEquals",
                        "kms:GrantOperations",
                        &["Decrypt"],
                    ),
                    ("Bool", "kms:GrantIsForAWSResource", &["true"]),
                ],
            },
            Stmt {
                sid: "Allow creation of encryption grant",
                effect: "Allow",
                principal: Who::Anyone,
                actions: &["kms:CreateGrant"],
                caller_account: true,
                conditions: &[
                    (
                        "ForAllValues:StringEquals",
                        "kms:GrantOperations",
                        &["Encrypt", "ReEncryptFrom", "ReEncryptTo"],
                    ),
                    ("Bool", "kms:GrantIsForAWSResource", &["true"]),
                ],
            },
            through(
                "Allowed operations for the key owner",
                &[
                    "kms:DescribeKey",
                    "kms:ListGrants",
                    "kms:RevokeGrant",
                    "kms:GetKeyPolicy",
                ],
            ),
            Stmt {
                sid: "Deny re-encryption to any other key",
                effect: "Deny",
                principal: Who::Anyone,
                actions: &["kms:ReEncrypt*"],
                caller_account: false,
                conditions: &[("Bool", "kms:ReEncryptOnSameKey", &["false"])],
            },
            through("Allow decrypt", &["kms:Decrypt"]),
        ],
    },
    ManagedService {
        name: "dynamodb",
        protects: "DynamoDB tables",
        policy_id: "auto-dynamodb-3",
        statements: &[
            through(
                "Allow access through Amazon DynamoDB for all principals in the account that are authorized to use Amazon DynamoDB",
                USE,
            ),
            metadata(READ_AND_REVOKE),
            service_reads(
                "Allow DynamoDB to directly describe the key",
                "dynamodb.amazonaws.com",
            ),
        ],
    },
    ManagedService {
        name: "ebs",
        protects: "EBS volumes",
        policy_id: "auto-ebs-2",
        statements: &[
            through(
                "Allow access through EBS for all principals in the account that are authorized to use EBS",
                USE,
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "elasticfilesystem",
        protects: "EFS file systems",
        policy_id: "auto-elasticfilesystem-1",
        statements: &[
            through(
                "Allow access to EFS for all principals in the account that are authorized to use EFS",
                USE,
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "es",
        protects: "Elasticsearch data",
        policy_id: "auto-es-2",
        statements: &[
            through(
                "Allow access through OpenSearch Service for all principals in the account that are authorized to use OpenSearch Service",
                USE,
            ),
            metadata(READ_AND_REVOKE),
            service_reads(
                "Allow OpenSearch service principals to describe the key directly",
                "es.amazonaws.com",
            ),
        ],
    },
    ManagedService {
        name: "glue",
        protects: "Glue data",
        policy_id: "auto-glue-1",
        statements: &[
            through(
                "Allow access through Glue for all principals in the account that are authorized to use Glue",
                USE,
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "kinesisvideo",
        protects: "Kinesis Video Streams data",
        policy_id: "auto-kinesisvideo-1",
        statements: &[
            through(
                "Allow access through Kinesis Video Streams for all principals in the account that are authorized to use Kinesis Video Streams",
                USE,
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "lambda",
        protects: "Lambda functions",
        policy_id: "auto-awslambda",
        statements: &[
            through(
                "Allow access through AWS Lambda for all principals in the account that are authorized to use AWS Lambda",
                USE,
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "rds",
        protects: "RDS database volumes",
        policy_id: "auto-rds-2",
        statements: &[
            through(
                "Allow access through RDS for all principals in the account that are authorized to use RDS",
                &[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:CreateGrant",
                    "kms:ListGrants",
                    "kms:DescribeKey",
                ],
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "redshift",
        protects: "Redshift data",
        policy_id: "auto-redshift-3",
        statements: &[
            through(
                "Allow access through RedShift for all principals in the account that are authorized to use RedShift",
                USE,
            ),
            through(
                "Allow access through RedShift-Serverless for all principals in the account that are authorized to use RedShift-Serverless",
                USE,
            ),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "s3",
        protects: "S3 objects",
        policy_id: "auto-s3-2",
        statements: &[
            through(
                "Allow access through S3 for all principals in the account that are authorized to use S3",
                USE_WITHOUT_GRANTS,
            ),
            metadata(READ),
        ],
    },
    ManagedService {
        name: "secretsmanager",
        protects: "Secrets Manager data",
        policy_id: "auto-secretsmanager-2",
        statements: &[
            through(
                SECRETS_MANAGER_SID,
                &[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
            ),
            through(SECRETS_MANAGER_SID, &["kms:GenerateDataKey*"]),
            metadata(READ_AND_REVOKE),
        ],
    },
    ManagedService {
        name: "ssm",
        protects: "SSM parameters",
        policy_id: "auto-ssm-1",
        statements: &[
            through(
                "Allow access through SSM for all principals in the account that are authorized to use SSM",
                USE_WITHOUT_GRANTS,
            ),
            metadata(READ),
        ],
    },
    ManagedService {
        name: "xray",
        protects: "X-Ray data",
        policy_id: "auto-xray-1",
        statements: &[
            through(
                "Allow access through X-Ray for all principals in the account that are authorized to use X-Ray",
                USE,
            ),
            metadata(READ_AND_REVOKE),
            service_reads(
                "Allow X-Ray Service with service principal name xray.amazonaws.com to describe the key directly",
                "xray.amazonaws.com",
            ),
        ],
    },
];

/// The predefined service an alias name (`alias/aws/<service>`) stands for.
pub fn managed_service(alias_name: &str) -> Option<&'static ManagedService> {
    let name = alias_name.strip_prefix("alias/aws/")?;
    AWS_MANAGED_SERVICES.iter().find(|s| s.name == name)
}

/// The description AWS gives the managed key of `service`.
pub fn managed_description(service: &ManagedService) -> String {
    format!(
        "Default key that protects my {} when no other key is defined",
        service.protects
    )
}

/// A policy document as AWS prints it (Jackson's pretty printer): objects one member a line,
/// `"Key" : value`, indented by two; lists on one line, `[ a, b ]`.
enum Doc {
    Text(String),
    Texts(Vec<String>),
    Object(Vec<(&'static str, Doc)>),
    Objects(Vec<Doc>),
}

impl Doc {
    /// One value as a string, several as a list (as AWS writes them in these policies).
    fn texts<S: ToString>(values: &[S]) -> Doc {
        match values {
            [one] => Doc::Text(one.to_string()),
            many => Doc::Texts(many.iter().map(ToString::to_string).collect()),
        }
    }

    fn write(&self, indent: usize, out: &mut String) {
        let quoted = |s: &str, out: &mut String| {
            out.push_str(&serde_json::Value::from(s).to_string());
        };
        match self {
            Doc::Text(s) => quoted(s, out),
            Doc::Texts(items) => {
                out.push_str("[ ");
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quoted(s, out);
                }
                out.push_str(" ]");
            }
            Doc::Objects(items) => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(indent, out);
                }
                out.push_str(" ]");
            }
            Doc::Object(members) => {
                out.push_str("{\n");
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    out.push_str(&" ".repeat(indent + 2));
                    quoted(name, out);
                    out.push_str(" : ");
                    value.write(indent + 2, out);
                }
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
        }
    }
}

impl Stmt {
    fn doc(&self, account: &str) -> Doc {
        let principal = match self.principal {
            Who::Anyone => ("AWS", "*".to_string()),
            Who::Account => ("AWS", policy::account_root(account)),
            Who::Service(s) => ("Service", s.to_string()),
        };
        let mut members = vec![
            ("Sid", Doc::Text(self.sid.into())),
            ("Effect", Doc::Text(self.effect.into())),
            (
                "Principal",
                Doc::Object(vec![(principal.0, Doc::Text(principal.1))]),
            ),
            ("Action", Doc::texts(self.actions)),
            ("Resource", Doc::Text("*".into())),
        ];
        let mut conditions = Vec::new();
        if self.caller_account {
            conditions.push((
                "StringEquals",
                Doc::Object(vec![("kms:CallerAccount", Doc::Text(account.into()))]),
            ));
        }
        for &(operator, key, values) in self.conditions {
            conditions.push((operator, Doc::Object(vec![(key, Doc::texts(values))])));
        }
        if !conditions.is_empty() {
            members.push(("Condition", Doc::Object(conditions)));
        }
        Doc::Object(members)
    }
}

/// The AWS managed key policy of `service` in `account`: AWS's document, without the
/// `kms:ViaService` condition (see the module documentation).
pub fn managed_policy(service: &ManagedService, account: &str) -> String {
    let doc = Doc::Object(vec![
        ("Version", Doc::Text("2012-10-17".into())),
        ("Id", Doc::Text(service.policy_id.into())),
        (
            "Statement",
            Doc::Objects(service.statements.iter().map(|s| s.doc(account)).collect()),
        ),
    ]);
    let mut out = String::new();
    doc.write(0, &mut out);
    out
}

/// The predefined AWS managed alias a request's KeyId names in the caller's own account and
/// region, if any. Anything else (a key, another alias, an unparsable id, another account's
/// alias) is left for key resolution to answer.
fn named_managed_alias(caller: &Caller, key_id: &str) -> Option<&'static ManagedService> {
    match ids::parse_key_or_alias(caller, key_id).ok()? {
        KeyRef::AliasName(name) => managed_service(&name),
        KeyRef::AliasArn {
            account,
            alias_name,
        } if account == caller.account => managed_service(&alias_name),
        _ => None,
    }
}

impl Kms {
    /// What every operation that uses a key named by id, ARN or alias does once its members are
    /// valid and before it resolves its keys: honour the request's grant tokens, then, for each
    /// `(KeyId, access)` of the request, create the AWS managed key the KeyId names by its
    /// predefined `alias/aws/<service>` alias, if it has none yet and the caller would be
    /// allowed `access` on it. `access` is what the operation then authorizes on that key (the
    /// action and the request's condition values), so a request that creates the key would also
    /// be allowed to use it. A DryRun creates the key as the request itself would: then it
    /// answers what it answers for any other key.
    pub(crate) async fn before_key_use(
        &self,
        caller: &Caller,
        tokens: &Option<Vec<String>>,
        uses: &[(Option<&str>, &Access<'_>)],
    ) -> Result<(), KmsError> {
        self.honour_grant_tokens(caller, tokens).await?;
        for &(key_id, access) in uses {
            if let Some(key_id) = key_id {
                self.ensure_aws_managed(caller, key_id, access).await?;
            }
        }
        Ok(())
    }

    /// `before_key_use` for a request naming one key.
    pub(crate) async fn before_using(
        &self,
        caller: &Caller,
        tokens: &Option<Vec<String>>,
        key_id: &Option<String>,
        access: &Access<'_>,
    ) -> Result<(), KmsError> {
        self.before_key_use(caller, tokens, &[(key_id.as_deref(), access)])
            .await
    }

    /// `before_using`, then the key `key_id` names (by id, ARN, alias or alias ARN), authorized
    /// for `access`.
    pub(crate) async fn key_for_use(
        &self,
        caller: &Caller,
        tokens: &Option<Vec<String>>,
        key_id: &Option<String>,
        access: &Access<'_>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        self.before_using(caller, tokens, key_id, access).await?;
        self.resolve_any(caller, key_id.as_deref().unwrap_or_default(), access)
    }

    fn alias_known(&self, caller: &Caller, alias_name: &str) -> bool {
        self.view
            .read()
            .scope(&caller.account, &caller.region)
            .is_some_and(|s| s.aliases.contains_key(alias_name))
    }

    /// Create the AWS managed key `key_id` names, if it names a predefined `alias/aws/<service>`
    /// alias (by name or by alias ARN in the caller's account) that has no key yet, and the
    /// caller would be allowed `access` on the key: its policy and the caller's identity
    /// policies decide, as they would once it exists. Otherwise nothing is made, and key
    /// resolution answers as for any alias without a key (NotFoundException; AWS answers
    /// AccessDeniedException only about a key that exists). The key, its material and its
    /// alias are written in one transaction.
    async fn ensure_aws_managed(
        &self,
        caller: &Caller,
        key_id: &str,
        access: &Access<'_>,
    ) -> Result<(), KmsError> {
        let Some(service) = named_managed_alias(caller, key_id) else {
            return Ok(());
        };
        let alias_name = format!("alias/aws/{}", service.name);
        if self.alias_known(caller, &alias_name) {
            return Ok(());
        }
        let now = self.clock.now();
        let mut record = KeyRecord {
            key_id: ids::new_key_id()?,
            account: caller.account.clone(),
            region: caller.region.clone(),
            creation_date: now,
            description: managed_description(service),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            origin: "AWS_KMS".into(),
            key_manager: AWS_KEY_MANAGER.into(),
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            policy: managed_policy(service, &caller.account),
            tags: Vec::new(),
            current_material: None,
            multi_region: false,
            materials: Vec::new(),
            rotation: Some(RotationSchedule::starting(now, AWS_MANAGED_ROTATION_DAYS)),
            on_demand_rotation_start: None,
            on_demand_rotations: 0,
            primary_region: None,
        };
        let policy = policy::parse(&record.policy).map_err(|e| {
            tracing::error!(alias = %alias_name, error = %e, "AWS managed key policy does not parse");
            KmsError::Internal("An internal error occurred. Retry the request.".into())
        })?;
        if self
            .decide_unstored(caller, access, &policy, &record, Some(&alias_name))
            .is_err()
        {
            return Ok(());
        }
        let _guard = self.writer.lock().await;
        // Another request may have made it while this one waited for the lock.
        if self.alias_known(caller, &alias_name) {
            return Ok(());
        }
        let (materials, tx) =
            self.first_material(&mut record, &KeyMaterial::generate_symmetric()?)?;
        let at_ms = (now * 1000.0) as i64;
        let alias = AliasRow {
            scope: caller.scope(),
            alias_name: alias_name.clone(),
            key_id: record.key_id.clone(),
            created_at: at_ms,
            updated_at: at_ms,
        };
        let tx = tx.push(Write::PutAlias {
            row: alias.clone(),
            replace: false,
        });
        let change = KeyChange {
            current: None,
            record,
            materials,
        };
        match self.commit_keys(vec![change], tx).await {
            Ok(_) => {}
            // Another node made it first: the alias is taken in the store, and nothing of this
            // key was written. Take the store's view, and with it that node's key.
            Err(KmsError::AlreadyExists(_)) => {
                tracing::debug!(alias = %alias_name, "another node made this AWS managed key first");
                return self.reload().await.map_err(|e| {
                    tracing::error!(error = %e, "reload failed");
                    KmsError::Internal("An internal error occurred. Retry the request.".into())
                });
            }
            Err(e) => return Err(e),
        }
        self.view
            .write()
            .scope_mut(&alias.scope)
            .aliases
            .insert(alias_name, alias);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Blob, CreateGrantRequest, DescribeKeyRequest, EncryptRequest};
    use crate::policy::{Kind, parse_kind};
    use std::sync::Arc;
    use trent_crypto::{LocalRootKey, RootKey};
    use trent_store::{SqliteStore, Store};

    const ACCOUNT: &str = "111122223333";

    fn caller() -> Caller {
        Caller::new(ACCOUNT, "us-east-1", "arn:aws:iam::111122223333:root")
    }

    /// A user of the account with one identity policy.
    fn user(name: &str, identity: &str) -> Caller {
        let mut c = Caller::new(
            ACCOUNT,
            "us-east-1",
            &format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        );
        c.identity = Arc::from(vec![parse_kind(identity, Kind::Identity).unwrap()]);
        c
    }

    async fn service() -> Kms {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let root: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
        Kms::open(store, root).await.unwrap()
    }

    async fn describe(kms: &Kms, c: &Caller, key_id: &str) -> Result<String, KmsError> {
        let req = DescribeKeyRequest {
            key_id: Some(key_id.into()),
            grant_tokens: None,
        };
        Ok(kms.describe_key(c, req).await?.key_metadata.unwrap().key_id)
    }

    fn target(kms: &Kms, alias_name: &str) -> Option<String> {
        let view = kms.view.read();
        let scope = view.scope(ACCOUNT, "us-east-1")?;
        scope.aliases.get(alias_name).map(|a| a.key_id.clone())
    }

    #[test]
    fn only_predefined_aliases_of_the_callers_scope_are_managed() {
        let c = caller();
        assert_eq!(named_managed_alias(&c, "alias/aws/s3").unwrap().name, "s3");
        assert_eq!(
            named_managed_alias(&c, "arn:aws:kms:us-east-1:111122223333:alias/aws/ebs")
                .unwrap()
                .name,
            "ebs"
        );
        for other in [
            "alias/aws/unknown",
            "alias/aws/",
            "alias/s3",
            "arn:aws:kms:us-east-1:444455556666:alias/aws/s3",
            "arn:aws:kms:eu-west-1:111122223333:alias/aws/s3",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "not a key",
        ] {
            assert!(named_managed_alias(&c, other).is_none(), "{other}");
        }
    }

    #[test]
    fn services_are_sorted_and_policies_parse() {
        let names: Vec<_> = AWS_MANAGED_SERVICES.iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 14);
        for s in AWS_MANAGED_SERVICES {
            let text = managed_policy(s, ACCOUNT);
            let parsed = crate::policy::parse(&text).unwrap();
            assert_eq!(parsed.statements.len(), s.statements.len(), "{}", s.name);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["Id"], s.policy_id);
            assert!(!text.contains("ViaService"), "{}", s.name);
            assert!(text.contains(&format!("\"kms:CallerAccount\" : \"{ACCOUNT}\"")));
        }
    }

    /// AWS's S3 policy, as GetKeyPolicy returns it (less kms:ViaService), byte for byte.
    #[test]
    fn s3_policy_is_awss_text() {
        let expected = r#"{
  "Version" : "2012-10-17",
  "Id" : "auto-s3-2",
  "Statement" : [ {
    "Sid" : "Allow access through S3 for all principals in the account that are authorized to use S3",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "111122223333"
      }
    }
  }, {
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  } ]
}"#;
        let s3 = managed_service("alias/aws/s3").unwrap();
        assert_eq!(managed_policy(s3, ACCOUNT), expected);
    }

    /// ACM's policy has AWS's five statements: single values as strings, several conditions.
    #[test]
    fn acm_policy_has_awss_statements() {
        let acm = managed_service("alias/aws/acm").unwrap();
        let text = managed_policy(acm, ACCOUNT);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let account = serde_json::json!({"StringEquals": {"kms:CallerAccount": ACCOUNT}});
        let expected = serde_json::json!({
            "Version": "2012-10-17",
            "Id": "auto-acm-4",
            "Statement": [
                {"Sid": "Allow creation of decryption grants", "Effect": "Allow",
                 "Principal": {"AWS": "*"}, "Action": "kms:CreateGrant", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT},
                               "ForAllValues:StringEquals": {"kms:GrantOperations": "Decrypt"},
                               "Bool": {"kms:GrantIsForAWSResource": "true"}}},
                {"Sid": "Allow creation of encryption grant", "Effect": "Allow",
                 "Principal": {"AWS": "*"}, "Action": "kms:CreateGrant", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT},
                               "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "ReEncryptFrom", "ReEncryptTo"]},
                               "Bool": {"kms:GrantIsForAWSResource": "true"}}},
                {"Sid": "Allowed operations for the key owner", "Effect": "Allow",
                 "Principal": {"AWS": "*"},
                 "Action": ["kms:DescribeKey", "kms:ListGrants", "kms:RevokeGrant", "kms:GetKeyPolicy"],
                 "Resource": "*", "Condition": account},
                {"Sid": "Deny re-encryption to any other key", "Effect": "Deny",
                 "Principal": {"AWS": "*"}, "Action": "kms:ReEncrypt*", "Resource": "*",
                 "Condition": {"Bool": {"kms:ReEncryptOnSameKey": "false"}}},
                {"Sid": "Allow decrypt", "Effect": "Allow", "Principal": {"AWS": "*"},
                 "Action": "kms:Decrypt", "Resource": "*", "Condition": account},
            ]
        });
        assert_eq!(v, expected);
        assert!(text.contains(
            "\"ForAllValues:StringEquals\" : {\n        \"kms:GrantOperations\" : [ \"Encrypt\", \"ReEncryptFrom\", \"ReEncryptTo\" ]\n      },"
        ));
    }

    #[tokio::test]
    async fn a_caller_that_may_not_use_the_key_makes_none() {
        let kms = service().await;
        let denied = user(
            "denied",
            r#"{"Statement":{"Effect":"Deny","Action":"kms:*","Resource":"*"}}"#,
        );
        let not_found = KmsError::NotFound(
            "Alias arn:aws:kms:us-east-1:111122223333:alias/aws/s3 is not found.".into(),
        );
        assert_eq!(
            describe(&kms, &denied, "alias/aws/s3").await,
            Err(not_found.clone())
        );
        let dry = EncryptRequest {
            key_id: Some("alias/aws/s3".into()),
            plaintext: Some(Blob::new(b"x".to_vec())),
            dry_run: Some(true),
            ..Default::default()
        };
        assert_eq!(
            kms.encrypt(&denied, dry.clone()).await.unwrap_err(),
            not_found
        );
        assert_eq!((kms.key_count(), target(&kms, "alias/aws/s3")), (0, None));

        // ACM's policy allows no Encrypt: not even the account's root user makes its key so.
        let acm = EncryptRequest {
            key_id: Some("alias/aws/acm".into()),
            ..dry.clone()
        };
        assert!(matches!(
            kms.encrypt(&caller(), acm).await,
            Err(KmsError::NotFound(_))
        ));
        assert_eq!(kms.key_count(), 0);

        // A DryRun the caller may make makes the key, then answers as for any key.
        assert_eq!(
            kms.encrypt(&caller(), dry).await.unwrap_err(),
            KmsError::DryRun
        );
        let made = target(&kms, "alias/aws/s3").unwrap();
        assert_eq!(describe(&kms, &caller(), "alias/aws/s3").await, Ok(made));
        assert_eq!(kms.key_count(), 1);
    }

    #[tokio::test]
    async fn grants_of_a_managed_key_stay_in_its_account() {
        let kms = service().await;
        let ebs = describe(&kms, &caller(), "alias/aws/ebs").await.unwrap();
        let grant = |grantee: &str, retiring: Option<&str>, key_id: &str| CreateGrantRequest {
            key_id: Some(key_id.into()),
            grantee_principal: Some(grantee.into()),
            retiring_principal: retiring.map(str::to_string),
            operations: Some(vec!["Decrypt".into()]),
            ..Default::default()
        };
        let arn = ids::key_arn("us-east-1", ACCOUNT, &ebs);
        let refused = KmsError::AccessDenied(format!(
            "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:CreateGrant on resource: {arn} because no resource-based policy allows the kms:CreateGrant action"
        ));
        let mine = "arn:aws:iam::111122223333:role/app";
        for (grantee, retiring) in [
            ("arn:aws:iam::444455556666:user/carol", None),
            ("444455556666", None),
            (mine, Some("arn:aws:iam::444455556666:root")),
            ("ec2.amazonaws.com", None),
        ] {
            let out = kms
                .create_grant(&caller(), grant(grantee, retiring, &ebs))
                .await;
            assert_eq!(out.unwrap_err(), refused, "{grantee} {retiring:?}");
        }
        let ok = kms
            .create_grant(&caller(), grant(mine, Some(ACCOUNT), &ebs))
            .await;
        assert!(ok.is_ok(), "{ok:?}");

        // S3's policy allows no CreateGrant at all.
        let s3 = describe(&kms, &caller(), "alias/aws/s3").await.unwrap();
        let out = kms.create_grant(&caller(), grant(mine, None, &s3)).await;
        assert!(matches!(out, Err(KmsError::AccessDenied(_))), "{out:?}");
    }

    #[tokio::test]
    async fn concurrent_first_uses_make_one_key() {
        let kms = Arc::new(service().await);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let kms = kms.clone();
                tokio::spawn(async move { describe(&kms, &caller(), "alias/aws/glue").await })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().unwrap());
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(kms.key_count(), 1);
    }

    /// Two nodes over one store: the second to make a managed key finds the alias taken in the
    /// store, and uses the first node's key without an error.
    #[tokio::test]
    async fn a_key_another_node_made_first_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("trent.db");
        let root: Arc<dyn RootKey> = Arc::new(LocalRootKey::ephemeral().unwrap());
        let a = Kms::open(Arc::new(SqliteStore::open(&db).unwrap()), root.clone())
            .await
            .unwrap();
        let b = Kms::open(Arc::new(SqliteStore::open(&db).unwrap()), root)
            .await
            .unwrap();
        let made = describe(&a, &caller(), "alias/aws/rds").await.unwrap();
        assert_eq!(target(&b, "alias/aws/rds"), None);
        assert_eq!(
            describe(&b, &caller(), "alias/aws/rds").await,
            Ok(made.clone())
        );
        assert_eq!(target(&b, "alias/aws/rds"), Some(made));
        assert_eq!((a.key_count(), b.key_count()), (1, 1));
    }
}
