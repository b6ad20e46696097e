//! Deciding a request as AWS KMS does: an explicit deny wins; otherwise the request needs an
//! allow from the key policy for the caller, or from the key policy for the caller's account
//! together with the caller's identity policies, or from a grant.

use crate::api::{EncryptionContext, Tag};
use crate::condition::{Readings, RequestContext, arn_like, glob};
use crate::grant::Grant;
use crate::ids::Caller;
use crate::model::KeyRecord;
use crate::policy::{Effect, Policy, Principals, Statement, account_root};
use std::borrow::Cow;
use std::sync::Arc;

/// Why a request was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// The key policy allows the caller itself (or, for an account's root user, its account).
    KeyPolicy,
    /// The key policy allows the caller's account, and the caller's identity policy allows it.
    KeyPolicyAndIdentity,
    /// No key is involved (CreateKey, ListKeys, an alias) and the identity policy allows it.
    Identity,
    /// A grant for the caller covers the operation.
    Grant,
}

/// Why a request was refused; each reason has AWS's message form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A Deny statement of the key policy applies.
    KeyPolicyDeny,
    /// A Deny statement of one of the caller's identity policies applies.
    IdentityDeny,
    /// Nothing in the key policy allows the caller or its account.
    NoKeyPolicyAllow,
    /// The key policy defers to the caller's account (or the action has no key), and no identity
    /// policy of the caller allows the action.
    NoIdentityAllow,
}

impl Denied {
    /// The AccessDeniedException message for `principal` doing `action` (`kms:Encrypt`).
    pub fn message(self, principal: &str, action: &str, resource: &str) -> String {
        let head = format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource}"
        );
        match self {
            Denied::KeyPolicyDeny => {
                format!("{head} with an explicit deny in a resource-based policy")
            }
            Denied::IdentityDeny => {
                format!("{head} with an explicit deny in an identity-based policy")
            }
            Denied::NoKeyPolicyAllow => {
                format!("{head} because no resource-based policy allows the {action} action")
            }
            Denied::NoIdentityAllow => {
                format!("{head} because no identity-based policy allows the {action} action")
            }
        }
    }
}

pub type Decision = Result<Allowed, Denied>;

/// Everything a decision depends on.
pub struct Question<'a> {
    /// The caller's ARN and account.
    pub principal: &'a str,
    pub account: &'a str,
    /// `kms:Encrypt`, `kms:ReEncryptFrom`, ...
    pub action: &'a str,
    /// The key ARN, an alias ARN, or `*` for actions on no resource.
    pub resource: &'a str,
    /// The key's policy and account, when the resource is a key.
    pub key: Option<(&'a Policy, &'a str)>,
    /// The caller's identity policies.
    pub identity: &'a [Policy],
    /// The key's grants whose grantee is the caller.
    pub grants: &'a [Arc<Grant>],
    /// The request's encryption context, for grant constraints.
    pub encryption_context: Option<&'a EncryptionContext>,
    /// Condition keys.
    pub context: &'a dyn RequestContext,
    /// A further test a grant must pass (CreateGrant through a grant: the new grant must be
    /// within it).
    pub grant_check: Option<&'a (dyn Fn(&Grant) -> bool + Sync)>,
}

/// What a key policy says about one request.
#[derive(Debug, Default)]
struct KeyPolicyOutcome {
    deny: bool,
    /// Allows the caller itself.
    direct: bool,
    /// Allows the caller's account, leaving the rest to its identity policies.
    account: bool,
}

/// How a statement's principal element applies to the caller.
#[derive(Debug, PartialEq, Eq)]
enum Applies {
    No,
    Caller,
    Account,
}

fn principal_applies(p: &Principals, principal: &str, account_root_arn: &str) -> Applies {
    let is_root = principal == account_root_arn;
    let names = |arn: &str| p.aws.iter().any(|a| a == arn);
    if p.negated {
        // NotPrincipal leaves out a user only when its account is left out too, as AWS does
        // (the request is made by the user and, through it, by the account).
        let left_out = names(principal) && (is_root || names(account_root_arn));
        return if left_out {
            Applies::No
        } else {
            Applies::Caller
        };
    }
    if p.anyone || names(principal) {
        Applies::Caller
    } else if names(account_root_arn) {
        if is_root {
            Applies::Caller
        } else {
            Applies::Account
        }
    } else {
        Applies::No
    }
}

/// Whether a statement's action, resource and conditions cover the request. A request that can
/// be read several ways (a context key given in several cases) is read the way least favourable
/// to the caller: an Allow's condition must hold for every reading, a Deny's for one.
fn covers(s: &Statement, q: &Question<'_>) -> bool {
    let readings = match s.effect {
        Effect::Allow => Readings::All,
        Effect::Deny => Readings::Any,
    };
    s.action.covers(|p| glob(p, q.action, true))
        && s.resource.covers(|p| p == "*" || arn_like(p, q.resource))
        && s.conditions.iter().all(|c| c.holds(q.context, readings))
}

fn key_policy(policy: &Policy, q: &Question<'_>, root: &str) -> KeyPolicyOutcome {
    let mut out = KeyPolicyOutcome::default();
    for s in &policy.statements {
        let applies = match &s.principal {
            Some(p) => principal_applies(p, q.principal, root),
            None => Applies::No,
        };
        if applies == Applies::No || !covers(s, q) {
            continue;
        }
        match (s.effect, applies) {
            (Effect::Deny, _) => {
                out.deny = true;
                return out;
            }
            (Effect::Allow, Applies::Caller) => out.direct = true,
            (Effect::Allow, _) => out.account = true,
        }
    }
    out
}

/// (denied, allowed) by the caller's identity policies.
fn identity(policies: &[Policy], q: &Question<'_>) -> (bool, bool) {
    let mut allow = false;
    for s in policies.iter().flat_map(|p| &p.statements) {
        if covers(s, q) {
            match s.effect {
                Effect::Deny => return (true, allow),
                Effect::Allow => allow = true,
            }
        }
    }
    (false, allow)
}

/// Decide a request.
pub fn decide(q: &Question<'_>) -> Decision {
    let root = account_root(q.account);
    let kp = q
        .key
        .map(|(policy, _)| key_policy(policy, q, &root))
        .unwrap_or_default();
    if kp.deny {
        return Err(Denied::KeyPolicyDeny);
    }
    let (id_deny, id_allow) = identity(q.identity, q);
    if id_deny {
        return Err(Denied::IdentityDeny);
    }
    // An account's root user holds every permission its account can have.
    let identity_allows = q.principal == root || id_allow;
    let Some((_, key_account)) = q.key else {
        return if identity_allows {
            Ok(Allowed::Identity)
        } else {
            Err(Denied::NoIdentityAllow)
        };
    };
    // Another account's key needs both accounts to agree: its key policy, the caller's identity.
    let same_account = key_account == q.account;
    if kp.direct && (same_account || identity_allows) {
        return Ok(Allowed::KeyPolicy);
    }
    if kp.account && identity_allows {
        return Ok(Allowed::KeyPolicyAndIdentity);
    }
    let operation = q.action.strip_prefix("kms:").unwrap_or(q.action);
    if q.grants.iter().any(|g| {
        g.grantee_principal == q.principal
            && g.allows(operation, q.encryption_context)
            && q.grant_check.is_none_or(|check| check(g))
    }) {
        return Ok(Allowed::Grant);
    }
    if kp.direct || kp.account {
        Err(Denied::NoIdentityAllow)
    } else {
        Err(Denied::NoKeyPolicyAllow)
    }
}

/// Request values the condition keys read, beyond who is calling and which key.
#[derive(Debug, Default, Clone, Copy)]
pub struct Facts<'a> {
    pub encryption_context: Option<&'a EncryptionContext>,
    pub encryption_algorithm: Option<&'a str>,
    pub signing_algorithm: Option<&'a str>,
    pub mac_algorithm: Option<&'a str>,
    pub message_type: Option<&'a str>,
    pub data_key_pair_spec: Option<&'a str>,
    pub key_agreement_algorithm: Option<&'a str>,
    /// CreateKey's KeySpec, KeyUsage, Origin and MultiRegion (other operations read the key's).
    pub key_spec: Option<&'a str>,
    pub key_usage: Option<&'a str>,
    pub key_origin: Option<&'a str>,
    pub multi_region: Option<bool>,
    pub bypass_lockout: Option<bool>,
    pub pending_window_days: Option<i64>,
    pub rotation_period_days: Option<i64>,
    pub wrapping_algorithm: Option<&'a str>,
    pub wrapping_key_spec: Option<&'a str>,
    pub expiration_model: Option<&'a str>,
    /// ImportKeyMaterial's ValidTo, epoch seconds.
    pub valid_to: Option<i64>,
    pub replica_region: Option<&'a str>,
    pub primary_region: Option<&'a str>,
    pub grant_operations: Option<&'a [String]>,
    pub grantee_principal: Option<&'a str>,
    pub retiring_principal: Option<&'a str>,
    pub grant_constraint_types: Option<&'a [&'static str]>,
    /// Set by the grant operations, where kms:GrantIsForAWSResource is defined (and false: no
    /// AWS service calls trent).
    pub grant_for_aws_resource: Option<bool>,
    pub request_tags: Option<&'a [Tag]>,
    pub tag_keys: Option<&'a [String]>,
}

/// The condition keys of one request.
pub struct Context<'a> {
    pub caller: &'a Caller,
    pub key: Option<&'a KeyRecord>,
    /// The alias the request named the key by, if it did.
    pub request_alias: Option<&'a str>,
    /// The key's aliases, computed only if a condition asks.
    pub resource_aliases: &'a dyn Fn() -> Vec<String>,
    pub facts: &'a Facts<'a>,
    /// Epoch seconds.
    pub now: f64,
}

fn one<'a>(s: impl Into<Cow<'a, str>>) -> Option<Vec<Cow<'a, str>>> {
    Some(vec![s.into()])
}

fn borrowed(list: &[String]) -> Vec<Cow<'_, str>> {
    list.iter().map(|s| Cow::Borrowed(s.as_str())).collect()
}

fn flag<'a>(b: bool) -> Option<Vec<Cow<'a, str>>> {
    one(if b { "true" } else { "false" })
}

impl Context<'_> {
    /// The values of a single-valued key named after a map entry whose name matches in any case
    /// (`kms:EncryptionContext:<k>`, `aws:ResourceTag/<k>`, `aws:RequestTag/<k>`): one for each
    /// entry of the request whose name matches, as the request may hold several that differ only
    /// in case. `None` for every other key.
    fn case_variants(&self, key: &str) -> Option<Vec<&str>> {
        let f = self.facts;
        if let Some(k) = key.strip_prefix("kms:encryptioncontext:") {
            return Some(
                f.encryption_context
                    .into_iter()
                    .flatten()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
                    .collect(),
            );
        }
        if let Some(k) = key.strip_prefix("aws:resourcetag/") {
            return Some(
                self.key
                    .into_iter()
                    .flat_map(|r| &r.tags)
                    .filter(|(name, _)| name.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
                    .collect(),
            );
        }
        if let Some(k) = key.strip_prefix("aws:requesttag/") {
            return Some(
                f.request_tags
                    .into_iter()
                    .flatten()
                    .filter(|t| {
                        t.tag_key
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(k))
                    })
                    .map(|t| t.tag_value.as_deref().unwrap_or_default())
                    .collect(),
            );
        }
        None
    }
}

impl RequestContext for Context<'_> {
    fn readings(&self, key: &str) -> Option<Vec<Vec<Cow<'_, str>>>> {
        match self.case_variants(key) {
            Some(values) if values.is_empty() => None,
            Some(values) => Some(values.into_iter().map(|v| vec![Cow::Borrowed(v)]).collect()),
            None => self.values(key).map(|v| vec![v]),
        }
    }

    /// For a key with several readings, the first (conditions read them all: see `readings`).
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
        let f = self.facts;
        let caller = self.caller;
        if let Some(values) = self.case_variants(key) {
            return values.into_iter().next().and_then(one);
        }
        match key {
            "aws:principalarn" => one(caller.principal_arn.as_str()),
            "aws:principalaccount" | "kms:calleraccount" => one(caller.account.as_str()),
            "aws:principaltype" => one(caller.principal_type()),
            "aws:username" => caller.user_name().and_then(one),
            "aws:sourceip" => one(caller.source_ip?.to_string()),
            "aws:securetransport" => flag(caller.secure_transport),
            "aws:requestedregion" => one(caller.region.as_str()),
            "aws:currenttime" => {
                let t = time::OffsetDateTime::from_unix_timestamp(self.now as i64).ok()?;
                one(t
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()?)
            }
            "aws:epochtime" => one((self.now as i64).to_string()),
            "aws:tagkeys" => match (f.tag_keys, f.request_tags) {
                (Some(keys), _) => Some(borrowed(keys)),
                (None, Some(tags)) => Some(
                    tags.iter()
                        .filter_map(|t| t.tag_key.as_deref().map(Cow::Borrowed))
                        .collect(),
                ),
                (None, None) => None,
            },
            "kms:encryptioncontextkeys" => Some(
                f.encryption_context?
                    .keys()
                    .map(|k| Cow::Borrowed(k.as_str()))
                    .collect(),
            ),
            "kms:encryptionalgorithm" => f.encryption_algorithm.and_then(one),
            "kms:signingalgorithm" => f.signing_algorithm.and_then(one),
            "kms:macalgorithm" => f.mac_algorithm.and_then(one),
            "kms:messagetype" => f.message_type.and_then(one),
            "kms:datakeypairspec" => f.data_key_pair_spec.and_then(one),
            "kms:keyagreementalgorithm" => f.key_agreement_algorithm.and_then(one),
            "kms:keyspec" => f
                .key_spec
                .or(self.key.map(|k| k.key_spec.as_str()))
                .and_then(one),
            "kms:keyusage" => f
                .key_usage
                .or(self.key.map(|k| k.key_usage.as_str()))
                .and_then(one),
            "kms:keyorigin" => f
                .key_origin
                .or(self.key.map(|k| k.origin.as_str()))
                .and_then(one),
            "kms:multiregion" => f
                .multi_region
                .or(self.key.map(|k| k.multi_region))
                .and_then(flag),
            "kms:bypasspolicylockoutsafetycheck" => f.bypass_lockout.and_then(flag),
            "kms:schedulekeydeletionpendingwindowindays" => {
                f.pending_window_days.and_then(|d| one(d.to_string()))
            }
            "kms:rotationperiodindays" => f.rotation_period_days.and_then(|d| one(d.to_string())),
            "kms:wrappingalgorithm" => f.wrapping_algorithm.and_then(one),
            "kms:wrappingkeyspec" => f.wrapping_key_spec.and_then(one),
            "kms:expirationmodel" => f.expiration_model.and_then(one),
            "kms:validto" => f.valid_to.and_then(|t| one(t.to_string())),
            "kms:replicaregion" => f.replica_region.and_then(one),
            "kms:primaryregion" => f.primary_region.and_then(one),
            "kms:multiregionkeytype" => self
                .key
                .filter(|k| k.multi_region)
                .and_then(|k| one(if k.is_replica() { "REPLICA" } else { "PRIMARY" })),
            "kms:grantoperations" => f.grant_operations.map(borrowed),
            "kms:granteeprincipal" => f.grantee_principal.and_then(one),
            "kms:retiringprincipal" => f.retiring_principal.and_then(one),
            "kms:grantconstrainttype" => f
                .grant_constraint_types
                .map(|t| t.iter().map(|s| Cow::Borrowed(*s)).collect()),
            "kms:grantisforawsresource" => f.grant_for_aws_resource.and_then(flag),
            "kms:requestalias" => self.request_alias.and_then(one),
            "kms:resourcealiases" => {
                let aliases = (self.resource_aliases)();
                Some(aliases.into_iter().map(Cow::Owned).collect())
            }
            _ => None,
        }
    }
}
