//! CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, and the grant tokens
//! every operation that takes them honours.

use super::*;
use crate::access::Denied;
use crate::api::*;
use crate::grant::{self, GRANT_OPERATIONS, Grant, MAX_GRANTS_PER_KEY};
use crate::ids::{self, Caller};
use crate::keyspec;
use crate::policy::account_root;
use crate::service::{CachedKey, GrantWrite, Kms, denied_error, hidden_key};
use crate::validate::Violations;
use std::sync::Arc;

/// `^[\w+=,.@:/-]+$`: a principal as CreateGrant and the grant list filters take it.
fn principal_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c == '_' || "+=,.@:/-".contains(c))
}

fn check_principal(v: &mut Violations, path: &str, value: Option<&str>) {
    v.str_len(path, value, 1, 256)
        .pattern(path, value, principal_chars_ok, "^[\\w+=,.@:/-]+$");
}

/// The account of a grant's principal: an account id, or the account of an ARN (none for a
/// service principal).
fn principal_account(p: &str) -> Option<&str> {
    if ids::is_account_id(p) {
        return Some(p);
    }
    match p.splitn(6, ':').collect::<Vec<_>>()[..] {
        ["arn", _, _, _, account, _] => Some(account),
        _ => None,
    }
}

/// The operations a grant may allow on a key of this spec and usage.
fn operations_for(key: &CachedKey) -> &'static [&'static str] {
    match key.record.key_usage.as_str() {
        keyspec::ENCRYPT_DECRYPT if key.record.is_symmetric_encryption() => &[
            "Encrypt",
            "Decrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
        ],
        keyspec::ENCRYPT_DECRYPT => &[
            "Encrypt",
            "Decrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GetPublicKey",
        ],
        keyspec::SIGN_VERIFY => &["Sign", "Verify", "GetPublicKey"],
        keyspec::GENERATE_VERIFY_MAC => &["GenerateMac", "VerifyMac"],
        keyspec::KEY_AGREEMENT => &["DeriveSharedSecret", "GetPublicKey"],
        keyspec::ENCAPSULATE_DECAPSULATE => &["Encapsulate", "Decapsulate", "GetPublicKey"],
        _ => &[],
    }
}

/// Operations every grant may allow, whatever the key.
const ANY_KEY_OPERATIONS: &[&str] = &["CreateGrant", "RetireGrant", "DescribeKey"];

fn check_constraints(v: &mut Violations, c: &Option<GrantConstraints>) {
    let Some(c) = c else { return };
    for (name, map) in [
        ("EncryptionContextSubset", &c.encryption_context_subset),
        ("EncryptionContextEquals", &c.encryption_context_equals),
    ] {
        let Some(map) = map else { continue };
        let path = format!("Constraints.{name}");
        if map.len() > 8 {
            v.constraint(&path, "Map must have at most 8 entries");
        }
        if map.values().any(|val| val.chars().count() > 384) {
            v.constraint(
                &path,
                "Map value must have length less than or equal to 384",
            );
        }
    }
}

/// The grant-id member of RetireGrant, RevokeGrant and ListGrants.
fn check_grant_id(v: &mut Violations, id: Option<&str>) {
    v.str_len("GrantId", id, 1, 128);
}

fn grant_not_found(grant_id: &str) -> KmsError {
    KmsError::NotFound(format!("Grant ID {grant_id} not found"))
}

/// Sort position of a grant: creation order, then id.
fn position(g: &Grant) -> String {
    format!("{:017.6}/{}", g.creation_date, g.grant_id)
}

fn list(
    grants: Vec<Arc<Grant>>,
    marker: &Option<String>,
    limit: Option<i64>,
) -> Result<ListGrantsResponse, KmsError> {
    let mut items: Vec<(String, Arc<Grant>)> =
        grants.into_iter().map(|g| (position(&g), g)).collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (items, next_marker) = page(items, |i| &i.0, marker, limit.unwrap_or(50) as usize)?;
    Ok(ListGrantsResponse {
        grants: items.into_iter().map(|(_, g)| g.entry()).collect(),
        truncated: next_marker.is_some(),
        next_marker,
    })
}

impl Kms {
    /// Read the grant tokens of a request: each must be one trent issued. A token naming a grant
    /// this node has not loaded (made on another node) loads it, so that it works at once.
    pub(crate) async fn honour_grant_tokens(
        &self,
        caller: &Caller,
        tokens: &Option<Vec<String>>,
    ) -> Result<(), KmsError> {
        for token in tokens.iter().flatten() {
            let (key_arn, grant_id) = self.grant_tokens.read(token)?;
            let Ok(ids::KeyRef::KeyArn { account, key_id }) = ids::parse_key_only(caller, &key_arn)
            else {
                return Err(KmsError::InvalidGrantToken("Invalid grant token".into()));
            };
            let known = self
                .view
                .read()
                .scope(&account, &caller.region)
                .and_then(|s| s.grants.get(&key_id))
                .is_some_and(|g| g.by_id.contains_key(&grant_id));
            if !known {
                self.load_grant(&account, &caller.region, &key_id, &grant_id)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn create_grant(
        &self,
        caller: &Caller,
        req: CreateGrantRequest,
    ) -> Result<CreateGrantResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("GranteePrincipal", &req.grantee_principal);
        check_principal(&mut v, "GranteePrincipal", req.grantee_principal.as_deref());
        check_principal(
            &mut v,
            "RetiringPrincipal",
            req.retiring_principal.as_deref(),
        );
        v.required("Operations", &req.operations);
        for (i, op) in req.operations.iter().flatten().enumerate() {
            v.one_of(
                &format!("Operations.{}.member", i + 1),
                Some(op),
                GRANT_OPERATIONS,
            );
        }
        v.str_len("Name", req.name.as_deref(), 1, 256).pattern(
            "Name",
            req.name.as_deref(),
            |s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'))
            },
            "^[a-zA-Z0-9:/_-]+$",
        );
        check_constraints(&mut v, &req.constraints);
        check_grant_tokens(&mut v, &req.grant_tokens);
        v.finish()?;
        let operations = req.operations.unwrap_or_default();
        if operations.is_empty() {
            return Err(KmsError::Validation(
                "A grant must allow at least one operation.".into(),
            ));
        }
        // An empty constraint map is no constraint.
        let constraints = req
            .constraints
            .map(|c| GrantConstraints {
                encryption_context_subset: c.encryption_context_subset.filter(|m| !m.is_empty()),
                encryption_context_equals: c.encryption_context_equals.filter(|m| !m.is_empty()),
            })
            .filter(|c| {
                c.encryption_context_subset.is_some() || c.encryption_context_equals.is_some()
            });
        self.honour_grant_tokens(caller, &req.grant_tokens).await?;
        let grantee = req.grantee_principal.unwrap_or_default();
        let types = constraints.as_ref().map(GrantConstraints::types);
        let within = |parent: &Grant| grant::within(&operations, constraints.as_ref(), parent);
        let mut access = Access::with(
            "CreateGrant",
            Facts {
                // kms:EncryptionContext: keys of CreateGrant read the grant's constraint.
                encryption_context: constraints.as_ref().and_then(|c| {
                    c.encryption_context_equals
                        .as_ref()
                        .or(c.encryption_context_subset.as_ref())
                }),
                grant_operations: Some(&operations),
                grantee_principal: Some(&grantee),
                retiring_principal: req.retiring_principal.as_deref(),
                grant_constraint_types: types.as_deref(),
                grant_for_aws_resource: Some(false),
                ..Facts::default()
            },
        );
        // Allowed through a grant, the new grant must stay within that grant.
        access.grant_check = Some(&within);
        let now = self.clock.now();
        let (key_arn, grant_id) = self
            .write_grants(|kms| {
                let key = kms.resolve_key(caller, req.key_id.as_deref().unwrap_or_default(), &access)?;
                // An AWS managed key is never used across accounts: no key policy statement
                // allows a grant to a principal of another account.
                if key.record.is_aws_managed() {
                    let outside = |p: &str| principal_account(p) != Some(key.record.account.as_str());
                    if outside(&grantee) || req.retiring_principal.as_deref().is_some_and(outside) {
                        return Err(denied_error(
                            Denied::NoKeyPolicyAllow,
                            caller,
                            access.action,
                            &key.arn,
                        ));
                    }
                }
                require_enabled(&key)?;
                let allowed = operations_for(&key);
                let refused: Vec<&str> = operations
                    .iter()
                    .map(String::as_str)
                    .filter(|op| !allowed.contains(op) && !ANY_KEY_OPERATIONS.contains(op))
                    .collect();
                if !refused.is_empty() {
                    return Err(KmsError::Validation(format!(
                        "Grant operations [{}] are not valid for key {}: its key spec is {} and its key usage {}.",
                        refused.join(", "),
                        key.arn,
                        key.record.key_spec,
                        key.record.key_usage
                    )));
                }
                if constraints.is_some() && !key.record.is_symmetric_encryption() {
                    return Err(KmsError::Validation(format!(
                        "Encryption context grant constraints are only valid for symmetric encryption keys; {} has key spec {}.",
                        key.arn, key.record.key_spec
                    )));
                }
                let mut new = Grant {
                    grant_id: String::new(),
                    key_id: key.record.key_id.clone(),
                    key_arn: key.arn.clone(),
                    name: req.name.clone(),
                    grantee_principal: grantee.clone(),
                    retiring_principal: req.retiring_principal.clone(),
                    issuing_account: account_root(&caller.account),
                    operations: operations.clone(),
                    constraints: constraints.clone(),
                    creation_date: now,
                };
                let view = kms.view.read();
                let existing = view
                    .scope(&key.record.account, &key.record.region)
                    .and_then(|s| s.grants.get(&key.record.key_id));
                // A CreateGrant with a Name that repeats an existing grant is a retry.
                let retry = new.name.as_ref().and_then(|_| {
                    existing.and_then(|g| g.by_id.values().find(|g| g.same_request(&new)).cloned())
                });
                if retry.is_none() && existing.map_or(0, |g| g.by_id.len()) >= MAX_GRANTS_PER_KEY {
                    return Err(KmsError::LimitExceeded(format!(
                        "Key {} already has {MAX_GRANTS_PER_KEY} grants, the most a key may have.",
                        key.arn
                    )));
                }
                dry_run(req.dry_run)?;
                if let Some(g) = retry {
                    return Ok(((key.arn.clone(), g.grant_id.clone()), None));
                }
                new.grant_id = grant::new_grant_id()?;
                let out = (key.arn.clone(), new.grant_id.clone());
                Ok((out, Some(GrantWrite::Put(Arc::new(new)))))
            })
            .await?;
        Ok(CreateGrantResponse {
            grant_token: Some(self.grant_tokens.issue(&key_arn, &grant_id)?),
            grant_id: Some(grant_id),
        })
    }

    pub async fn list_grants(
        &self,
        caller: &Caller,
        req: ListGrantsRequest,
    ) -> Result<ListGrantsResponse, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        check_paging(&mut v, req.limit, &req.marker, 100);
        check_grant_id(&mut v, req.grant_id.as_deref());
        check_principal(&mut v, "GranteePrincipal", req.grantee_principal.as_deref());
        v.finish()?;
        let access = Access::with(
            "ListGrants",
            Facts {
                grant_for_aws_resource: Some(false),
                ..Facts::default()
            },
        );
        let key = self.resolve_key(caller, req.key_id.as_deref().unwrap_or_default(), &access)?;
        let grants: Vec<Arc<Grant>> = self
            .view
            .read()
            .scope(&key.record.account, &key.record.region)
            .and_then(|s| s.grants.get(&key.record.key_id))
            .map(|g| {
                g.by_id
                    .values()
                    .filter(|g| req.grant_id.as_ref().is_none_or(|id| *id == g.grant_id))
                    .filter(|g| {
                        req.grantee_principal
                            .as_ref()
                            .is_none_or(|p| *p == g.grantee_principal)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        list(grants, &req.marker, req.limit)
    }

    pub async fn list_retirable_grants(
        &self,
        caller: &Caller,
        req: ListRetirableGrantsRequest,
    ) -> Result<ListGrantsResponse, KmsError> {
        let mut v = Violations::new();
        check_paging(&mut v, req.limit, &req.marker, 100);
        v.required("RetiringPrincipal", &req.retiring_principal);
        check_principal(
            &mut v,
            "RetiringPrincipal",
            req.retiring_principal.as_deref(),
        );
        v.finish()?;
        let retiring = req.retiring_principal.unwrap_or_default();
        let access = Access::new("ListRetirableGrants");
        self.authorize_identity(caller, &access, "*")?;
        // Only principals of the caller's own account.
        let prefix = ids::iam_prefix(&caller.account);
        if !retiring.starts_with(&prefix) && retiring != caller.account {
            return Err(denied_error(
                Denied::NoIdentityAllow,
                caller,
                access.action,
                &retiring,
            ));
        }
        let retiring = if retiring == caller.account {
            account_root(&caller.account)
        } else {
            retiring
        };
        let grants: Vec<Arc<Grant>> = self
            .view
            .read()
            .scopes_in(&caller.region)
            .flat_map(|s| s.grants.values())
            .flat_map(|g| g.by_id.values())
            .filter(|g| g.retiring_principal.as_deref() == Some(retiring.as_str()))
            .cloned()
            .collect();
        list(grants, &req.marker, req.limit)
    }

    pub async fn retire_grant(
        &self,
        caller: &Caller,
        req: RetireGrantRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        if let Some(t) = &req.grant_token {
            v.str_len_hidden("GrantToken", t.chars().count(), 1, 8192);
        }
        v.str_len("KeyId", req.key_id.as_deref(), 1, 2048);
        check_grant_id(&mut v, req.grant_id.as_deref());
        v.finish()?;
        let (key_id, grant_id) = match (&req.grant_token, &req.key_id, &req.grant_id) {
            (Some(token), _, _) => self.grant_tokens.read(token)?,
            (None, Some(k), Some(g)) => (k.clone(), g.clone()),
            _ => {
                return Err(KmsError::Validation(
                    "Grant token OR (grant ID, key ID) must be specified".into(),
                ));
            }
        };
        self.write_grants(|kms| {
            let access = Access::new("RetireGrant");
            // On another account's key, every refusal is the one answer AWS gives for a key that
            // does not exist: an outsider learns neither whether the key exists nor whether the
            // grant does (the key policy is not consulted here, so nothing else would hide it).
            let foreign = matches!(
                ids::parse_key_only(caller, &key_id)?,
                ids::KeyRef::KeyArn { ref account, .. } if *account != caller.account
            );
            let refuse = |denied: Denied, arn: &str| {
                if foreign {
                    hidden_key(caller, access.action)
                } else {
                    denied_error(denied, caller, access.action, arn)
                }
            };
            let key = kms.find_key(caller, &key_id, access.action)?;
            let Some(grant) = kms.grant(&key, &grant_id) else {
                return Err(if foreign {
                    hidden_key(caller, access.action)
                } else {
                    grant_not_found(&grant_id)
                });
            };
            // Who may retire: the retiring principal; the grantee, if the grant allows
            // RetireGrant; the key's account, and principals its identity policies allow (or those
            // of the retiring principal's account, when that is an account).
            let identity = kms.identity_decision(caller, &access, &key.arn);
            if identity == Err(Denied::IdentityDeny) {
                return Err(refuse(Denied::IdentityDeny, &key.arn));
            }
            let me = caller.principal_arn.as_str();
            let may = grant.retiring_principal.as_deref() == Some(me)
                || (grant.grantee_principal == me && grant.allows("RetireGrant", None))
                || (identity.is_ok()
                    && (key.record.account == caller.account
                        || grant.retiring_principal.as_deref()
                            == Some(account_root(&caller.account).as_str())));
            if !may {
                return Err(refuse(Denied::NoIdentityAllow, &key.arn));
            }
            dry_run(req.dry_run)?;
            Ok(((), Some(GrantWrite::Delete(grant))))
        })
        .await?;
        Ok(Empty {})
    }

    pub async fn revoke_grant(
        &self,
        caller: &Caller,
        req: RevokeGrantRequest,
    ) -> Result<Empty, KmsError> {
        let mut v = Violations::new();
        check_key_id(&mut v, "KeyId", &req.key_id);
        v.required("GrantId", &req.grant_id);
        check_grant_id(&mut v, req.grant_id.as_deref());
        v.finish()?;
        let grant_id = req.grant_id.unwrap_or_default();
        let access = Access::with(
            "RevokeGrant",
            Facts {
                grant_for_aws_resource: Some(false),
                ..Facts::default()
            },
        );
        self.write_grants(|kms| {
            let key =
                kms.resolve_key(caller, req.key_id.as_deref().unwrap_or_default(), &access)?;
            let grant = kms
                .grant(&key, &grant_id)
                .ok_or_else(|| grant_not_found(&grant_id))?;
            dry_run(req.dry_run)?;
            Ok(((), Some(GrantWrite::Delete(grant))))
        })
        .await?;
        Ok(Empty {})
    }
}
