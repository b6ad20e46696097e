//! AWS managed keys: the keys behind the predefined `alias/aws/<service>` aliases.
//!
//! As in AWS, each account and region has a fixed set of predefined aliases. ListAliases shows
//! them without a TargetKeyId until they are used; the first request that names one (DescribeKey,
//! Encrypt, GenerateDataKey*, ReEncrypt, ... any operation that accepts an alias) creates its key:
//! a symmetric encryption key with KeyManager `AWS`, rotated every year, under the AWS managed
//! key policy. That policy lets the account use the key and read it, and nothing else, so every
//! management operation (PutKeyPolicy, ScheduleKeyDeletion, DisableKey, EnableKeyRotation,
//! TagResource, CreateAlias to it, ...) is refused with AccessDeniedException by the ordinary
//! authorization, as in AWS.
//!
//! Departure from AWS: AWS's policy also requires `kms:ViaService` (the request must come through
//! the owning service, such as `ec2.<region>.amazonaws.com`). trent hosts no AWS services, so the
//! condition is left out: any principal of the account may use the key directly.

use crate::error::KmsError;
use crate::ids::{self, Caller, KeyRef};
use crate::model::{KeyRecord, KeyState, RotationSchedule};
use crate::service::{KeyChange, Kms};
use trent_crypto::KeyMaterial;
use trent_store::{AliasRow, Write};

/// The key manager of AWS managed keys.
pub const AWS_KEY_MANAGER: &str = "AWS";

/// Days between automatic rotations of an AWS managed key ("every year").
pub const AWS_MANAGED_ROTATION_DAYS: i64 = 365;

/// A predefined AWS managed alias: `alias/aws/<service>`.
#[derive(Debug, Clone, Copy)]
pub struct ManagedService {
    /// The alias suffix, `s3` for `alias/aws/s3`.
    pub name: &'static str,
    /// How the policy's first statement names the service.
    pub display: &'static str,
    /// What the key protects, in its description.
    pub protects: &'static str,
}

const fn svc(name: &'static str, display: &'static str, protects: &'static str) -> ManagedService {
    ManagedService {
        name,
        display,
        protects,
    }
}

/// The predefined aliases, sorted by name. AWS publishes no list; this is the set an account
/// shows (as moto has it). The descriptions follow AWS's current wording, "Default key that
/// protects my ... when no other key is defined"; only the S3, SSM, RDS, Glue and Secrets
/// Manager objects were seen on real keys, the others are unconfirmed.
pub const AWS_MANAGED_SERVICES: &[ManagedService] = &[
    svc("acm", "ACM", "ACM private keys"),
    svc("dynamodb", "DynamoDB", "DynamoDB tables"),
    svc("ebs", "EBS", "EBS volumes"),
    svc("elasticfilesystem", "EFS", "EFS file systems"),
    svc("es", "Elasticsearch", "Elasticsearch data"),
    svc("glue", "Glue", "Glue data"),
    svc(
        "kinesisvideo",
        "Kinesis Video Streams",
        "Kinesis Video Streams data",
    ),
    svc("lambda", "Lambda", "Lambda functions"),
    svc("rds", "RDS", "RDS database volumes"),
    svc("redshift", "Redshift", "Redshift data"),
    svc("s3", "S3", "S3 objects"),
    svc("secretsmanager", "Secrets Manager", "Secrets Manager data"),
    svc("ssm", "SSM", "SSM parameters"),
    svc("xray", "X-Ray", "X-Ray data"),
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

/// The AWS managed key policy of `service` in `account` (AWS's shape, `Id` `auto-<service>-2`,
/// without the `kms:ViaService` condition, see the module documentation).
pub fn managed_policy(service: &ManagedService, account: &str) -> String {
    let (name, display) = (service.name, service.display);
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{name}-2",
  "Statement" : [ {{
    "Sid" : "Allow access through {display} for all principals in the account that are authorized to use {display}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  }} ]
}}"#
    )
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
    fn alias_known(&self, caller: &Caller, alias_name: &str) -> bool {
        self.view
            .read()
            .scope(&caller.account, &caller.region)
            .is_some_and(|s| s.aliases.contains_key(alias_name))
    }

    /// Create the AWS managed key `key_id` names, if it names a predefined `alias/aws/<service>`
    /// alias (by name or by alias ARN in the caller's account) that has no key yet. Every
    /// operation that accepts an alias calls this before it resolves its key; anything else is a
    /// no-op. The key, its material and its alias are written in one transaction.
    pub async fn ensure_aws_managed(&self, caller: &Caller, key_id: &str) -> Result<(), KmsError> {
        let Some(service) = named_managed_alias(caller, key_id) else {
            return Ok(());
        };
        let alias_name = format!("alias/aws/{}", service.name);
        if self.alias_known(caller, &alias_name) {
            return Ok(());
        }
        let _guard = self.writer.lock().await;
        // Another request may have made it while this one waited for the lock.
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
        if let Err(e) = self.commit_keys(vec![change], tx).await {
            // Another node may have made it first (the alias is then taken in the store): take
            // the store's view and use that key.
            if self.reload().await.is_ok() && self.alias_known(caller, &alias_name) {
                return Ok(());
            }
            return Err(e);
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

    fn caller() -> Caller {
        Caller::new(
            "111122223333",
            "us-east-1",
            "arn:aws:iam::111122223333:root",
        )
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
        for s in AWS_MANAGED_SERVICES {
            let text = managed_policy(s, "111122223333");
            crate::policy::parse(&text).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["Id"], format!("auto-{}-2", s.name));
        }
    }
}
