//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases, with every naming rule.

use super::*;
use crate::api::*;
use crate::ids::Caller;
use crate::keyspec::{self, KeyKind};
use crate::managed::AWS_MANAGED_SERVICES;
use crate::service::{Kms, alias_not_found};
use crate::validate::Violations;
use trent_store::{AliasRow, Write};

/// Most aliases one key may have.
pub const MAX_ALIASES_PER_KEY: usize = 50;
const ALIAS_PATTERN: &str = "^[a-zA-Z0-9:/_-]+$";

fn alias_chars_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'))
}

/// The model constraints of an alias name, added to `v`, which is then finished (so every
/// violation collected before is reported first); then the naming rules.
fn check_alias_name(v: &mut Violations, name: &Option<String>) -> Result<(), KmsError> {
    v.required("AliasName", name)
        .str_len("AliasName", name.as_deref(), 1, 256)
        .pattern("AliasName", name.as_deref(), alias_chars_ok, ALIAS_PATTERN);
    v.finish()?;
    let name = name.as_deref().unwrap_or_default();
    if !name.starts_with("alias/") {
        return Err(KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    }
    // Reserved for AWS managed keys, whose aliases nobody may create, move or delete. AWS's
    // words: "The alias/aws/ prefix is reserved for Amazon Web Services managed keys"; its error
    // code is unconfirmed, NotAuthorizedException (no message) is what moto answers.
    if name.starts_with("alias/aws/") || name == "alias/aws" {
        return Err(KmsError::NotAuthorized);
    }
    if name == "alias/" {
        return Err(KmsError::InvalidAliasName(
            "Alias name must contain at least one character after \"alias/\".".into(),
        ));
    }
    Ok(())
}

/// The alias name and target key of a valid CreateAlias or UpdateAlias request. Beyond the
/// model's pattern (which lets `:` through), AWS allows only letters, digits, `/`, `_` and `-` in
/// a name it creates or moves: `alias/my:alias contains invalid characters for an alias`.
fn checked_alias_request(req: AliasRequest) -> Result<(String, String), KmsError> {
    let mut v = Violations::new();
    check_key_id(&mut v, "TargetKeyId", &req.target_key_id);
    check_alias_name(&mut v, &req.alias_name)?;
    let name = req.alias_name.unwrap_or_default();
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    {
        return Err(KmsError::Validation(format!(
            "{name} contains invalid characters for an alias"
        )));
    }
    Ok((name, req.target_key_id.unwrap_or_default()))
}

/// Whether a TargetKeyId names an alias (an alias name or an alias ARN) rather than a key.
fn names_an_alias(target: &str) -> bool {
    target.starts_with("alias/")
        || (target.starts_with("arn:")
            && target
                .splitn(6, ':')
                .nth(5)
                .is_some_and(|r| r.starts_with("alias/")))
}

/// `AlreadyExistsException` for an alias name taken in the caller's scope.
fn alias_exists(caller: &Caller, name: &str) -> KmsError {
    KmsError::AlreadyExists(format!(
        "An alias with the name {} already exists",
        caller.alias_arn(name)
    ))
}

impl Kms {
    pub async fn create_alias(
        &self,
        caller: &Caller,
        req: AliasRequest,
    ) -> Result<Empty, KmsError> {
        let (name, target) = checked_alias_request(req)?;
        if names_an_alias(&target) {
            return Err(KmsError::Validation(
                "Aliases must refer to keys. Not aliases".into(),
            ));
        }
        let now = self.clock.now();
        let access = Access::new("CreateAlias");
        self.write_aliases(|kms| {
            // Permission on the key (its key policy) and on the alias (identity policies).
            let key = kms.resolve_key(caller, &target, &access)?;
            kms.authorize_identity(caller, &access, &caller.alias_arn(&name))?;
            refuse_pending_deletion(key.record.state, &key.arn)?;
            let view = kms.view.read();
            let aliases = view
                .scope(&caller.account, &caller.region)
                .map(|s| &s.aliases);
            if aliases.is_some_and(|a| a.contains_key(&name)) {
                return Err(alias_exists(caller, &name));
            }
            let count = aliases.map_or(0, |a| {
                a.values().filter(|a| a.key_id == key.record.key_id).count()
            });
            if count >= MAX_ALIASES_PER_KEY {
                return Err(KmsError::LimitExceeded(format!(
                    "Key {} already has {MAX_ALIASES_PER_KEY} aliases, the most a key may have.",
                    key.arn
                )));
            }
            Ok(vec![Write::PutAlias {
                row: AliasRow {
                    scope: caller.scope(),
                    alias_name: name.clone(),
                    key_id: key.record.key_id.clone(),
                    created_at: (now * 1000.0) as i64,
                    updated_at: (now * 1000.0) as i64,
                },
                replace: false,
            }])
        })
        .await
        .map(|_| Empty {})
        .map_err(|e| match e {
            KmsError::AlreadyExists(_) => alias_exists(caller, &name),
            other => other,
        })
    }

    pub async fn update_alias(
        &self,
        caller: &Caller,
        req: AliasRequest,
    ) -> Result<Empty, KmsError> {
        let (name, target) = checked_alias_request(req)?;
        let now = self.clock.now();
        self.write_aliases(|kms| {
            let existing = kms
                .view
                .read()
                .scope(&caller.account, &caller.region)
                .and_then(|s| s.aliases.get(&name).cloned())
                .ok_or_else(|| alias_not_found(&caller.alias_arn(&name)))?;
            // Permission on the alias, on the key it points to now and on the new key.
            let access = Access::new("UpdateAlias");
            let key = kms.resolve_key(caller, &target, &access)?;
            kms.authorize_identity(caller, &access, &caller.alias_arn(&name))?;
            refuse_pending_deletion(key.record.state, &key.arn)?;
            let current = match kms.resolve_key(caller, &existing.key_id, &access) {
                Ok(k) => Some(k),
                Err(KmsError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            // AWS: both keys of one type (symmetric, asymmetric or HMAC) and one usage.
            let class = |spec: &str| match keyspec::kind(spec) {
                Some(KeyKind::Asymmetric(_)) => "asymmetric",
                Some(KeyKind::Hmac(_)) => "HMAC",
                _ => "symmetric",
            };
            if let Some(current) = current
                && (class(&current.record.key_spec) != class(&key.record.key_spec)
                    || current.record.key_usage != key.record.key_usage)
            {
                return Err(KmsError::Validation(format!(
                    "Alias {} points to a key of spec {} and usage {}; it cannot be moved to a key of spec {} and usage {}.",
                    caller.alias_arn(&name),
                    current.record.key_spec,
                    current.record.key_usage,
                    key.record.key_spec,
                    key.record.key_usage
                )));
            }
            Ok(vec![Write::PutAlias {
                row: AliasRow {
                    key_id: key.record.key_id.clone(),
                    updated_at: (now * 1000.0) as i64,
                    ..existing
                },
                replace: true,
            }])
        })
        .await?;
        Ok(Empty {})
    }

    pub async fn delete_alias(
        &self,
        caller: &Caller,
        req: DeleteAliasRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_alias_name(&mut v, &req.alias_name)?;
        let name = req.alias_name.unwrap_or_default();
        self.write_aliases(|kms| {
            let target = kms
                .view
                .read()
                .scope(&caller.account, &caller.region)
                .and_then(|s| s.aliases.get(&name).map(|a| a.key_id.clone()));
            let Some(target) = target else {
                return Err(alias_not_found(&caller.alias_arn(&name)));
            };
            // Permission on the alias and on the key it points to.
            let access = Access::new("DeleteAlias");
            kms.authorize_identity(caller, &access, &caller.alias_arn(&name))?;
            match kms.resolve_key(caller, &target, &access) {
                Ok(_) | Err(KmsError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            Ok(vec![Write::DeleteAlias {
                scope: caller.scope(),
                alias_name: name.clone(),
            }])
        })
        .await?;
        Ok(Empty {})
    }

    pub async fn list_aliases(
        &self,
        caller: &Caller,
        req: ListAliasesRequest,
    ) -> Result<ListAliasesResponse, KmsError> {
        let mut v = Violations::new();
        v.str_len("KeyId", req.key_id.as_deref(), 1, 2048);
        check_paging(&mut v, req.limit, &req.marker, 100);
        v.finish()?;
        self.authorize_identity(caller, &Access::new("ListAliases"), "*")?;
        let filter = match &req.key_id {
            Some(k) => Some(
                self.find_key(caller, k, "ListAliases")?
                    .record
                    .key_id
                    .clone(),
            ),
            None => None,
        };
        let mut aliases: Vec<AliasListEntry> = self
            .view
            .read()
            .scope(&caller.account, &caller.region)
            .map(|s| {
                s.aliases
                    .values()
                    .filter(|a| filter.as_ref().is_none_or(|f| *f == a.key_id))
                    .map(|a| AliasListEntry {
                        alias_name: a.alias_name.clone(),
                        alias_arn: caller.alias_arn(&a.alias_name),
                        target_key_id: Some(a.key_id.clone()),
                        creation_date: Some(a.created_at as f64 / 1000.0),
                        last_updated_date: Some(a.updated_at as f64 / 1000.0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if filter.is_none() {
            // AWS: "The response might also include aliases that have no TargetKeyId field.
            // These are predefined aliases that AWS has created but has not yet associated with
            // a KMS key." A KeyId filter leaves them out (they point to no key).
            let predefined: Vec<AliasListEntry> = AWS_MANAGED_SERVICES
                .iter()
                .map(|s| format!("alias/aws/{}", s.name))
                .filter(|name| !aliases.iter().any(|a| a.alias_name == *name))
                .map(|name| AliasListEntry {
                    alias_arn: caller.alias_arn(&name),
                    alias_name: name,
                    target_key_id: None,
                    creation_date: None,
                    last_updated_date: None,
                })
                .collect();
            aliases.extend(predefined);
            // Pages follow the alias name (markers hold the last one listed).
            aliases.sort_by(|a, b| a.alias_name.cmp(&b.alias_name));
        }
        let (aliases, next_marker) = page(
            aliases,
            |a| &a.alias_name,
            &req.marker,
            req.limit.unwrap_or(50) as usize,
        )?;
        Ok(ListAliasesResponse {
            aliases,
            truncated: next_marker.is_some(),
            next_marker,
        })
    }
}
