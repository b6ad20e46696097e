//! Access-control decisions as AWS KMS makes them, case by case: key policies, identity
//! policies, grants and conditions, each case with the decision and its reason. One test runs
//! the whole table and reports every failure, not just the first.
//!
//! A case whose `aws` field is set expects what AWS documents where the engine was found to
//! differ; the field holds the evidence.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use trent_kms::access::{Allowed as A, Context, Decision, Denied as D, Facts, Question, decide};
use trent_kms::api::{EncryptionContext, GrantConstraints, Tag};
use trent_kms::condition::RequestContext;
use trent_kms::grant::Grant;
use trent_kms::model::{KeyRecord, KeyState};
use trent_kms::policy::{self, Kind, default_policy};
use trent_kms::{Caller, KmsError};

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const X_ROOT: &str = "arn:aws:iam::444455556666:root";
const CAROL: &str = "arn:aws:iam::444455556666:user/carol";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const X_KEY: &str = "arn:aws:kms:us-east-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321";
const ALIAS: &str = "arn:aws:kms:us-east-1:111122223333:alias/finance";

const KP: Decision = Ok(A::KeyPolicy);
const KPI: Decision = Ok(A::KeyPolicyAndIdentity);
const ID: Decision = Ok(A::Identity);
const GRANT: Decision = Ok(A::Grant);
const KP_DENY: Decision = Err(D::KeyPolicyDeny);
const ID_DENY: Decision = Err(D::IdentityDeny);
const NO_KP: Decision = Err(D::NoKeyPolicyAllow);
const NO_ID: Decision = Err(D::NoIdentityAllow);

// ---------------------------------------------------------------------------------------------
// Policy documents

/// A key policy statement about `principal` on the key (`Resource: "*"`).
fn stmt(effect: &str, principal: Value, action: &str) -> Value {
    json!({"Effect": effect, "Principal": principal, "Action": action, "Resource": "*"})
}

fn allow(principal: Value, action: &str) -> Value {
    stmt("Allow", principal, action)
}

fn deny(principal: Value, action: &str) -> Value {
    stmt("Deny", principal, action)
}

/// `{"AWS": arn}` or `{"AWS": [arns]}`.
fn aws(p: impl Into<Value>) -> Value {
    json!({ "AWS": p.into() })
}

fn anyone() -> Value {
    json!("*")
}

/// An identity policy statement.
fn id_allow(action: &str, resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

fn id_deny(action: &str, resource: &str) -> Value {
    json!({"Effect": "Deny", "Action": action, "Resource": resource})
}

/// A statement with one element set (Condition, NotAction, Resource, ...).
fn set(mut s: Value, element: &str, v: impl Into<Value>) -> Value {
    s[element] = v.into();
    s
}

/// A statement without one of its elements.
fn without(mut s: Value, element: &str) -> Value {
    s.as_object_mut().unwrap().remove(element);
    s
}

/// A statement with an element renamed (Principal -> NotPrincipal, Action -> NotAction, ...).
fn rename(mut s: Value, from: &str, to: &str) -> Value {
    let v = s.as_object_mut().unwrap().remove(from).unwrap();
    set(s, to, v)
}

fn cond(s: Value, condition: Value) -> Value {
    set(s, "Condition", condition)
}

/// A policy document from one statement, a list of them, or a whole document.
fn doc(v: Value) -> String {
    match &v {
        Value::Object(m) if m.contains_key("Statement") => v.to_string(),
        _ => json!({"Version": "2012-10-17", "Statement": v}).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Grants

fn grant(grantee: &str, ops: &[&str]) -> Grant {
    Grant {
        grant_id: "ab".repeat(32),
        key_id: KEY.rsplit('/').next().unwrap().into(),
        key_arn: KEY.into(),
        name: None,
        grantee_principal: grantee.into(),
        retiring_principal: None,
        issuing_account: ROOT.into(),
        operations: ops.iter().map(|o| o.to_string()).collect(),
        constraints: None,
        creation_date: 0.0,
    }
}

fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
}

fn subset(mut g: Grant, pairs: &[(&str, &str)]) -> Grant {
    let c = g.constraints.get_or_insert_with(GrantConstraints::default);
    c.encryption_context_subset = Some(context(pairs));
    g
}

fn equals(mut g: Grant, pairs: &[(&str, &str)]) -> Grant {
    let c = g.constraints.get_or_insert_with(GrantConstraints::default);
    c.encryption_context_equals = Some(context(pairs));
    g
}

// ---------------------------------------------------------------------------------------------
// Cases

/// Request facts for the real `access::Context` (caller, key record, `Facts`).
#[derive(Default)]
struct Real {
    /// The key record's KeySpec (SYMMETRIC_DEFAULT if not given).
    key_spec: Option<&'static str>,
    /// The key record's tags.
    tags: Vec<(&'static str, &'static str)>,
    source_ip: Option<&'static str>,
    secure_transport: bool,
    request_alias: Option<&'static str>,
    aliases: Vec<&'static str>,
    now: f64,
    encryption_algorithm: Option<&'static str>,
    /// CreateKey's KeySpec parameter.
    create_key_spec: Option<&'static str>,
    request_tags: Vec<(&'static str, &'static str)>,
}

enum Ctx {
    /// Condition keys and their values, as a `HashMap` (a key given twice has two values).
    Pairs(Vec<(String, String)>),
    Real(Box<Real>),
}

#[derive(Debug)]
enum Want {
    Decision(Decision),
    /// Parsing the policies fails with MalformedPolicyDocumentException and this message.
    Malformed(&'static str),
}

struct Case {
    name: &'static str,
    /// None: no key is involved (CreateKey, ListKeys, aliases).
    key_policy: Option<String>,
    identity: Vec<String>,
    caller: &'static str,
    action: &'static str,
    /// The key ARN (its account is the key's account), an alias ARN or `*`.
    resource: &'static str,
    context: Ctx,
    grants: Vec<Grant>,
    encryption_context: Option<EncryptionContext>,
    want: Option<Want>,
    /// The AccessDeniedException message expected for a refusal.
    says: Option<&'static str>,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        key_policy: None,
        identity: Vec::new(),
        caller: ALICE,
        action: "kms:Encrypt",
        resource: KEY,
        context: Ctx::Pairs(Vec::new()),
        grants: Vec::new(),
        encryption_context: None,
        want: None,
        says: None,
    }
}

impl Case {
    fn key(mut self, policy: Value) -> Self {
        self.key_policy = Some(doc(policy));
        self
    }

    fn key_text(mut self, text: &str) -> Self {
        self.key_policy = Some(text.to_string());
        self
    }

    /// The default key policy of the key's account.
    fn default_key(self) -> Self {
        let account = account_of(self.resource).to_string();
        self.key_text(&default_policy(&account))
    }

    /// No key: the request is on `resource` (`*` or an alias ARN).
    fn no_key(mut self, resource: &'static str) -> Self {
        self.key_policy = None;
        self.resource = resource;
        self
    }

    fn id(mut self, policy: Value) -> Self {
        self.identity.push(doc(policy));
        self
    }

    fn id_text(mut self, text: &str) -> Self {
        self.identity.push(text.to_string());
        self
    }

    fn by(mut self, caller: &'static str) -> Self {
        self.caller = caller;
        self
    }

    fn act(mut self, action: &'static str) -> Self {
        self.action = action;
        self
    }

    fn on(mut self, resource: &'static str) -> Self {
        self.resource = resource;
        self
    }

    /// Condition key values; a key given twice has both values.
    fn ctx(mut self, pairs: &[(&str, &str)]) -> Self {
        let Ctx::Pairs(list) = &mut self.context else {
            panic!("{}: a real context takes no pairs", self.name);
        };
        list.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    fn real(mut self, r: Real) -> Self {
        self.context = Ctx::Real(Box::new(r));
        self
    }

    fn ec(mut self, pairs: &[(&str, &str)]) -> Self {
        self.encryption_context = Some(context(pairs));
        self
    }

    fn grant(mut self, g: Grant) -> Self {
        self.grants.push(g);
        self
    }

    fn want(mut self, d: Decision) -> Self {
        self.want = Some(Want::Decision(d));
        self
    }

    fn refused(mut self, message: &'static str) -> Self {
        self.want = Some(Want::Malformed(message));
        self
    }

    fn says(mut self, message: &'static str) -> Self {
        self.says = Some(message);
        self
    }
}

/// alice may do anything with the key when `condition` holds, and nothing otherwise.
fn when(name: &'static str, condition: Value, ctx: &[(&str, &str)], holds: bool) -> Case {
    case(name)
        .key(cond(allow(aws(ALICE), "kms:*"), condition))
        .ctx(ctx)
        .want(if holds { KP } else { NO_KP })
}

/// Anyone may use the key, but a Deny applies when `condition` holds.
fn unless(name: &'static str, condition: Value, ctx: &[(&str, &str)], denied: bool) -> Case {
    case(name)
        .key(json!([
            allow(anyone(), "kms:*"),
            cond(deny(anyone(), "kms:*"), condition)
        ]))
        .ctx(ctx)
        .want(if denied { KP_DENY } else { KP })
}

/// The default key policy, and an identity policy that allows alice when `condition` holds.
fn id_when(name: &'static str, condition: Value, ctx: &[(&str, &str)], holds: bool) -> Case {
    case(name)
        .default_key()
        .id(cond(id_allow("kms:*", "*"), condition))
        .ctx(ctx)
        .want(if holds { KPI } else { NO_ID })
}

/// A key policy that lets only bob use the key: alice gets in through grants or not at all.
fn only_bob() -> Value {
    allow(aws(BOB), "kms:*")
}

fn principal_cases() -> Vec<Case> {
    vec![
        case("key policy names the caller's ARN").key(allow(aws(ALICE), "kms:Encrypt")).want(KP),
        case("key policy Principal \"*\"").key(allow(anyone(), "kms:Encrypt")).want(KP),
        case("key policy Principal {AWS: \"*\"}").key(allow(aws("*"), "kms:Encrypt")).want(KP),
        case("key policy names the caller among several").key(allow(aws(json!([BOB, ALICE])), "kms:Encrypt")).want(KP),
        case("key policy names a role caller").by(ROLE).key(allow(aws(ROLE), "kms:*")).want(KP),
        case("account root ARN delegates to a user's identity policy")
            .key(allow(aws(ROOT), "kms:*")).id(id_allow("kms:Encrypt", KEY)).want(KPI),
        case("account id delegates to a user's identity policy")
            .key(allow(aws(ACCT), "kms:*")).id(id_allow("kms:Encrypt", KEY)).want(KPI),
        case("account delegates to a role's identity policy")
            .by(ROLE).key(allow(aws(ROOT), "kms:*")).id(id_allow("kms:*", "*")).want(KPI),
        case("account delegates, user has no identity policy")
            .key(allow(aws(ROOT), "kms:*"))
            .want(NO_ID)
            .says("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:Encrypt action"),
        case("account delegates, identity policy allows another action")
            .key(allow(aws(ROOT), "kms:*")).id(id_allow("kms:Decrypt", "*")).want(NO_ID),
        case("account id allows its root user").by(ROOT).key(allow(aws(ACCT), "kms:*")).want(KP),
        case("account root ARN allows its root user").by(ROOT).key(allow(aws(ROOT), "kms:*")).want(KP),
        case("default key policy: root user").by(ROOT).default_key().want(KP),
        case("default key policy: user with identity policy").default_key().id(id_allow("kms:*", "*")).want(KPI),
        case("default key policy: user without identity policy").default_key().want(NO_ID),
        case("key policy names the caller and its account: the caller wins")
            .key(json!([allow(aws(ROOT), "kms:*"), allow(aws(ALICE), "kms:Encrypt")])).want(KP),
        case("key policy names the caller, identity also allows")
            .key(allow(aws(ALICE), "kms:*")).id(id_allow("kms:*", "*")).want(KP),
        case("key policy names another user only")
            .key(only_bob())
            .want(NO_KP)
            .says("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no resource-based policy allows the kms:Encrypt action"),
        case("identity policy cannot help without the key policy")
            .key(only_bob()).id(id_allow("kms:*", "*")).want(NO_KP),
        case("root user is not let in by a policy naming a user").by(ROOT).key(only_bob()).want(NO_KP),
        case("key policy names another account only")
            .key(allow(aws(OTHER), "kms:*")).id(id_allow("kms:*", "*")).want(NO_KP),
        case("key policy names a service principal only")
            .key(allow(json!({"Service": "logs.amazonaws.com"}), "kms:*")).id(id_allow("kms:*", "*")).want(NO_KP),
        case("key policy statement without Action has no effect")
            .key(without(allow(anyone(), "kms:*"), "Action")).want(NO_KP),
        case("key policy statement without Resource has no effect")
            .key(without(allow(anyone(), "kms:*"), "Resource")).want(NO_KP),
        case("key policy Deny without Action has no effect")
            .key(json!([allow(anyone(), "kms:*"), without(deny(anyone(), "kms:*"), "Action")])).want(KP),
        case("key policy Deny without Resource has no effect")
            .key(json!([allow(anyone(), "kms:*"), without(deny(anyone(), "kms:*"), "Resource")])).want(KP),
        case("key policy with Version 2008-10-17 and one statement object")
            .key_text(&json!({"Version": "2008-10-17", "Statement": allow(aws(ALICE), "kms:*")}).to_string()).want(KP),
        case("key policy allows the caller when a condition holds, else its account")
            .key(json!([
                allow(aws(ROOT), "kms:*"),
                cond(allow(aws(ALICE), "kms:*"), json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}))
            ]))
            .id(id_allow("kms:*", KEY))
            .want(KPI),
    ]
}

fn deny_cases() -> Vec<Case> {
    vec![
        case("key policy Deny for the caller beats an Allow for everyone")
            .key(json!([allow(anyone(), "kms:*"), deny(aws(ALICE), "kms:Encrypt")]))
            .want(KP_DENY)
            .says("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in a resource-based policy"),
        case("key policy Deny before the Allow")
            .key(json!([deny(aws(ALICE), "kms:Encrypt"), allow(aws(ALICE), "kms:*")])).want(KP_DENY),
        case("key policy Deny for another user does not apply")
            .key(json!([allow(anyone(), "kms:*"), deny(aws(BOB), "kms:*")])).want(KP),
        case("key policy Deny for the account applies to its users")
            .key(json!([allow(aws(ALICE), "kms:*"), deny(aws(ROOT), "kms:Encrypt")])).want(KP_DENY),
        case("key policy Deny for the account id applies to its root user")
            .by(ROOT).key(json!([allow(aws(ROOT), "kms:*"), deny(aws(ACCT), "kms:*")])).want(KP_DENY),
        case("key policy Deny for another account does not apply")
            .key(json!([allow(aws(ALICE), "kms:*"), deny(aws(OTHER), "kms:*")])).want(KP),
        case("key policy Deny for another action does not apply")
            .key(json!([allow(aws(ALICE), "kms:*"), deny(aws(ALICE), "kms:Decrypt")])).want(KP),
        case("key policy Deny beats account delegation and identity allow")
            .key(json!([allow(aws(ROOT), "kms:*"), deny(anyone(), "kms:Encrypt")])).id(id_allow("kms:*", "*")).want(KP_DENY),
        case("key policy Deny and identity Deny: the key policy's is reported")
            .key(json!([allow(anyone(), "kms:*"), deny(anyone(), "kms:*")])).id(id_deny("kms:*", "*")).want(KP_DENY),
        case("key policy Deny for everyone applies to another account's user")
            .by(CAROL).key(json!([allow(anyone(), "kms:*"), deny(anyone(), "kms:*")])).id(id_allow("kms:*", "*")).want(KP_DENY),
        case("key policy Deny with NotAction denies what is not listed")
            .key(json!([allow(anyone(), "kms:*"), rename(deny(anyone(), "kms:Describe*"), "Action", "NotAction")])).want(KP_DENY),
        case("key policy Deny with NotAction spares what is listed")
            .act("kms:DescribeKey")
            .key(json!([allow(anyone(), "kms:*"), rename(deny(anyone(), "kms:Describe*"), "Action", "NotAction")])).want(KP),
        case("identity Deny beats a key policy Allow for the caller")
            .key(allow(aws(ALICE), "kms:*"))
            .id(id_deny("kms:Encrypt", "*"))
            .want(ID_DENY)
            .says("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in an identity-based policy"),
        case("identity Deny beats its own Allow")
            .default_key().id(json!([id_allow("kms:*", "*"), id_deny("kms:Enc*", KEY)])).want(ID_DENY),
        case("identity Deny in a second policy")
            .default_key().id(id_allow("kms:*", "*")).id(id_deny("kms:*", "*")).want(ID_DENY),
        case("identity Deny for another action does not apply")
            .key(allow(aws(ALICE), "kms:*")).id(id_deny("kms:Decrypt", "*")).want(KP),
        case("identity Deny on another key does not apply")
            .default_key()
            .id(json!([id_allow("kms:*", "*"), id_deny("kms:*", "arn:aws:kms:us-east-1:111122223333:key/other")]))
            .want(KPI),
        case("identity Deny with NotAction denies what is not listed")
            .default_key()
            .id(json!([id_allow("kms:*", "*"), rename(id_deny("kms:Decrypt", "*"), "Action", "NotAction")]))
            .want(ID_DENY),
    ]
}

fn not_principal_cases() -> Vec<Case> {
    // Anyone may use the key, but the Deny applies to everyone NotPrincipal leaves in.
    let deny_but = |listed: Value| {
        json!([
            allow(anyone(), "kms:*"),
            rename(deny(aws(listed), "kms:*"), "Principal", "NotPrincipal")
        ])
    };
    vec![
        case("NotPrincipal listing the user and its account root spares the user")
            .key(deny_but(json!([ALICE, ROOT])))
            .want(KP),
        case("NotPrincipal listing the user and its account id spares the user")
            .key(deny_but(json!([ACCT, ALICE])))
            .want(KP),
        case("NotPrincipal listing only the user denies the user")
            .key(deny_but(json!(ALICE)))
            .want(KP_DENY),
        case("NotPrincipal listing only the account denies its user")
            .key(deny_but(json!(ROOT)))
            .want(KP_DENY),
        case("NotPrincipal listing the account root ARN spares the root user")
            .by(ROOT)
            .key(deny_but(json!(ROOT)))
            .want(KP),
        case("NotPrincipal listing the account id spares the root user")
            .by(ROOT)
            .key(deny_but(json!(ACCT)))
            .want(KP),
        case("NotPrincipal listing another user denies the caller")
            .key(deny_but(json!([BOB, ROOT])))
            .want(KP_DENY),
        case("NotPrincipal listing a role and its account spares the role")
            .by(ROLE)
            .key(deny_but(json!([ROLE, ACCT])))
            .want(KP),
        case("NotPrincipal denies another account's user")
            .by(CAROL)
            .key(deny_but(json!([ALICE, ROOT])))
            .id(id_allow("kms:*", "*"))
            .want(KP_DENY),
        case("NotPrincipal spares another account's user listed with its account")
            .by(CAROL)
            .key(deny_but(json!([CAROL, X_ROOT])))
            .id(id_allow("kms:*", "*"))
            .want(KP),
    ]
}

fn cross_account_cases() -> Vec<Case> {
    let x = |name| case(name).on(X_KEY);
    vec![
        x("cross-account: key names the caller, identity allows")
            .key(allow(aws(ALICE), "kms:Encrypt"))
            .id(id_allow("kms:Encrypt", X_KEY))
            .want(KP),
        x("cross-account: key names the caller, no identity policy")
            .key(allow(aws(ALICE), "kms:Encrypt"))
            .want(NO_ID),
        x("cross-account: key names the account, identity allows")
            .key(allow(aws(ROOT), "kms:*"))
            .id(id_allow("kms:Encrypt", "*"))
            .want(KPI),
        x("cross-account: key names the account id, identity allows")
            .key(allow(aws(ACCT), "kms:*"))
            .id(id_allow("kms:*", "arn:aws:kms:*:444455556666:key/*"))
            .want(KPI),
        x("cross-account: key names the account, no identity policy")
            .key(allow(aws(ROOT), "kms:*"))
            .want(NO_ID),
        x("cross-account: key names the account, caller is its root")
            .by(ROOT)
            .key(allow(aws(ACCT), "kms:*"))
            .want(KP),
        x("cross-account: Principal \"*\" and identity allows")
            .key(allow(anyone(), "kms:*"))
            .id(id_allow("kms:*", "*"))
            .want(KP),
        x("cross-account: Principal \"*\" but no identity policy")
            .key(allow(anyone(), "kms:*"))
            .want(NO_ID),
        x("cross-account: the key's default policy names only its own account")
            .default_key()
            .id(id_allow("kms:*", "*"))
            .want(NO_KP),
        x("cross-account: identity policy names keys of the caller's own account only")
            .key(allow(aws(ROOT), "kms:*"))
            .id(id_allow("kms:*", "arn:aws:kms:*:111122223333:key/*"))
            .want(NO_ID),
        x("cross-account: identity Deny")
            .key(allow(aws(ALICE), "kms:*"))
            .id(json!([id_allow("kms:*", "*"), id_deny("kms:Encrypt", "*")]))
            .want(ID_DENY),
        x("cross-account: AWS managed key pattern, kms:CallerAccount matches")
            .key(cond(
                allow(anyone(), "kms:*"),
                json!({"StringEquals": {"kms:CallerAccount": ACCT}}),
            ))
            .id(id_allow("kms:*", "*"))
            .ctx(&[("kms:CallerAccount", ACCT)])
            .want(KP),
        x("cross-account: AWS managed key pattern, kms:CallerAccount differs")
            .key(cond(
                allow(anyone(), "kms:*"),
                json!({"StringEquals": {"kms:CallerAccount": OTHER}}),
            ))
            .id(id_allow("kms:*", "*"))
            .ctx(&[("kms:CallerAccount", ACCT)])
            .want(NO_KP),
        case("cross-account: another account's root on our key named by account id")
            .by(X_ROOT)
            .key(allow(aws(OTHER), "kms:*"))
            .want(KP),
        case("cross-account: another account's user on our key, its identity allows")
            .by(CAROL)
            .key(allow(aws(X_ROOT), "kms:*"))
            .id(id_allow("kms:*", KEY))
            .want(KPI),
        case("cross-account: another account's user not named by our key")
            .by(CAROL)
            .default_key()
            .id(id_allow("kms:*", "*"))
            .want(NO_KP),
    ]
}

fn no_key_cases() -> Vec<Case> {
    vec![
        case("no key: root user may CreateKey")
            .by(ROOT)
            .act("kms:CreateKey")
            .no_key("*")
            .want(ID),
        case("no key: identity policy allows CreateKey")
            .act("kms:CreateKey")
            .no_key("*")
            .id(id_allow("kms:CreateKey", "*"))
            .want(ID),
        case("no key: no identity policy for CreateKey")
            .act("kms:CreateKey")
            .no_key("*")
            .want(NO_ID),
        case("no key: identity Deny on CreateKey")
            .act("kms:CreateKey")
            .no_key("*")
            .id(json!([id_allow("kms:*", "*"), id_deny("kms:Create*", "*")]))
            .want(ID_DENY),
        case("no key: ListKeys through kms:List*")
            .act("kms:ListKeys")
            .no_key("*")
            .id(id_allow("kms:List*", "*"))
            .want(ID),
        case("no key: a key ARN pattern does not cover resource *")
            .act("kms:CreateKey")
            .no_key("*")
            .id(id_allow("kms:*", "arn:aws:kms:*:111122223333:key/*"))
            .want(NO_ID),
        case("no key: CreateAlias on an alias ARN pattern")
            .act("kms:CreateAlias")
            .no_key(ALIAS)
            .id(id_allow(
                "kms:CreateAlias",
                "arn:aws:kms:us-east-1:111122223333:alias/fin*",
            ))
            .want(ID),
        case("no key: CreateAlias on another alias")
            .act("kms:CreateAlias")
            .no_key(ALIAS)
            .id(id_allow(
                "kms:CreateAlias",
                "arn:aws:kms:us-east-1:111122223333:alias/hr-*",
            ))
            .want(NO_ID),
        case("no key: ListAliases denied by identity")
            .act("kms:ListAliases")
            .no_key("*")
            .id(id_deny("kms:ListAliases", "*"))
            .want(ID_DENY),
        case("no key: GenerateRandom through NotAction")
            .act("kms:GenerateRandom")
            .no_key("*")
            .id(rename(
                id_allow("kms:ScheduleKeyDeletion", "*"),
                "Action",
                "NotAction",
            ))
            .want(ID),
        case("no key: a role needs an identity policy too")
            .by(ROLE)
            .act("kms:ListKeys")
            .no_key("*")
            .want(NO_ID),
    ]
}

fn action_cases() -> Vec<Case> {
    let acts = |name, pattern: Value, action| {
        case(name)
            .act(action)
            .key(set(allow(aws(ALICE), "x:y"), "Action", pattern))
    };
    vec![
        acts(
            "Action kms:gen* covers GenerateDataKey",
            json!("kms:gen*"),
            "kms:GenerateDataKey",
        )
        .want(KP),
        acts(
            "Action KMS:GENERATE* covers GenerateDataKeyPair",
            json!("KMS:GENERATE*"),
            "kms:GenerateDataKeyPair",
        )
        .want(KP),
        acts(
            "Action KMS:Encrypt in capitals",
            json!("KMS:Encrypt"),
            "kms:Encrypt",
        )
        .want(KP),
        acts(
            "Action kms:GenerateDataKey is not GenerateDataKeyWithoutPlaintext",
            json!("kms:GenerateDataKey"),
            "kms:GenerateDataKeyWithoutPlaintext",
        )
        .want(NO_KP),
        acts(
            "Action kms:GenerateDataKey* covers GenerateDataKeyWithoutPlaintext",
            json!("kms:GenerateDataKey*"),
            "kms:GenerateDataKeyWithoutPlaintext",
        )
        .want(KP),
        acts(
            "Action * covers everything",
            json!("*"),
            "kms:ScheduleKeyDeletion",
        )
        .want(KP),
        acts(
            "Action kms:* covers every KMS action",
            json!("kms:*"),
            "kms:PutKeyPolicy",
        )
        .want(KP),
        acts(
            "Action s3:* does not cover KMS",
            json!("s3:*"),
            "kms:Encrypt",
        )
        .want(NO_KP),
        acts(
            "Action kms:?ncrypt covers Encrypt",
            json!("kms:?ncrypt"),
            "kms:Encrypt",
        )
        .want(KP),
        acts(
            "Action kms:?ncrypt does not cover Decrypt",
            json!("kms:?ncrypt"),
            "kms:Decrypt",
        )
        .want(NO_KP),
        acts(
            "Action kms:ReEncrypt* covers ReEncryptTo",
            json!("kms:ReEncrypt*"),
            "kms:ReEncryptTo",
        )
        .want(KP),
        acts(
            "Action kms:*crypt covers Decrypt",
            json!("kms:*crypt"),
            "kms:Decrypt",
        )
        .want(KP),
        acts(
            "Action list covers its second entry",
            json!(["kms:Decrypt", "kms:Encrypt"]),
            "kms:Encrypt",
        )
        .want(KP),
        acts(
            "Action list does not cover others",
            json!(["kms:Decrypt", "kms:Encrypt"]),
            "kms:Sign",
        )
        .want(NO_KP),
        case("NotAction Allow covers what is not listed")
            .key(rename(
                allow(aws(ALICE), "kms:Decrypt"),
                "Action",
                "NotAction",
            ))
            .want(KP),
        case("NotAction Allow does not cover what is listed")
            .key(rename(
                allow(aws(ALICE), "kms:Encrypt"),
                "Action",
                "NotAction",
            ))
            .want(NO_KP),
        case("NotAction of another service covers KMS actions")
            .act("kms:Sign")
            .key(rename(allow(aws(ALICE), "s3:*"), "Action", "NotAction"))
            .want(KP),
        case("identity Action wildcard kms:Enc*")
            .default_key()
            .id(id_allow("kms:Enc*", "*"))
            .want(KPI),
        case("identity NotAction covers the rest")
            .default_key()
            .id(rename(
                id_allow("kms:ScheduleKeyDeletion", "*"),
                "Action",
                "NotAction",
            ))
            .want(KPI),
        case("identity NotAction excludes what is listed")
            .act("kms:ScheduleKeyDeletion")
            .default_key()
            .id(rename(
                id_allow("kms:ScheduleKeyDeletion", "*"),
                "Action",
                "NotAction",
            ))
            .want(NO_ID),
    ]
}

fn resource_cases() -> Vec<Case> {
    let kres = |name, resource: Value| {
        case(name).key(set(allow(aws(ALICE), "kms:*"), "Resource", resource))
    };
    let ires = |name, resource: &str| case(name).default_key().id(id_allow("kms:*", resource));
    vec![
        kres("key policy Resource is the key's ARN", json!(KEY)).want(KP),
        kres(
            "key policy Resource pattern of the account's keys",
            json!("arn:aws:kms:*:111122223333:key/*"),
        )
        .want(KP),
        kres(
            "key policy Resource pattern of another account's keys",
            json!("arn:aws:kms:*:444455556666:key/*"),
        )
        .want(NO_KP),
        kres(
            "key policy Resource list with *",
            json!(["arn:aws:kms:*:444455556666:key/*", "*"]),
        )
        .want(KP),
        case("key policy NotResource of aliases covers the key")
            .key(rename(
                set(
                    allow(aws(ALICE), "kms:*"),
                    "Resource",
                    "arn:aws:kms:*:111122223333:alias/*",
                ),
                "Resource",
                "NotResource",
            ))
            .want(KP),
        case("key policy NotResource * covers nothing")
            .key(rename(
                allow(aws(ALICE), "kms:*"),
                "Resource",
                "NotResource",
            ))
            .want(NO_KP),
        ires("identity Resource is the key's ARN", KEY).want(KPI),
        ires(
            "identity Resource is another key",
            "arn:aws:kms:us-east-1:111122223333:key/ffffffff-0000-0000-0000-000000000000",
        )
        .want(NO_ID),
        ires(
            "identity Resource in another Region",
            "arn:aws:kms:us-west-2:111122223333:key/*",
        )
        .want(NO_ID),
        ires(
            "identity Resource with a key id prefix",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-*",
        )
        .want(KPI),
        ires(
            "identity Resource with ? wildcards",
            "arn:aws:kms:us-east-?:111122223333:key/*",
        )
        .want(KPI),
        ires(
            "identity Resource with any account",
            "arn:aws:kms:us-east-1:*:key/*",
        )
        .want(KPI),
        ires(
            "identity Resource wildcard does not cross a colon",
            "arn:aws:kms:*:key/*",
        )
        .want(NO_ID),
        ires(
            "identity Resource as an alias ARN does not name the key",
            ALIAS,
        )
        .want(NO_ID),
        case("identity NotResource of aliases covers the key")
            .default_key()
            .id(rename(
                id_allow("kms:*", "arn:aws:kms:*:111122223333:alias/*"),
                "Resource",
                "NotResource",
            ))
            .want(KPI),
        case("identity NotResource of the key excludes it")
            .default_key()
            .id(rename(id_allow("kms:*", KEY), "Resource", "NotResource"))
            .want(NO_ID),
    ]
}

fn string_cases() -> Vec<Case> {
    vec![
        when(
            "StringEquals kms:CallerAccount matches",
            json!({"StringEquals": {"kms:CallerAccount": ACCT}}),
            &[("kms:CallerAccount", ACCT)],
            true,
        ),
        when(
            "StringEquals kms:CallerAccount differs",
            json!({"StringEquals": {"kms:CallerAccount": OTHER}}),
            &[("kms:CallerAccount", ACCT)],
            false,
        ),
        when(
            "StringEquals is case-sensitive (kms:ViaService)",
            json!({"StringEquals": {"kms:ViaService": "EC2.us-east-1.amazonaws.com"}}),
            &[("kms:ViaService", "ec2.us-east-1.amazonaws.com")],
            false,
        ),
        when(
            "StringEqualsIgnoreCase kms:ViaService",
            json!({"StringEqualsIgnoreCase": {"kms:ViaService": "EC2.US-EAST-1.amazonaws.com"}}),
            &[("kms:ViaService", "ec2.us-east-1.amazonaws.com")],
            true,
        ),
        when(
            "StringEquals with a missing key is false",
            json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[],
            false,
        ),
        when(
            "StringEquals values OR (kms:KeyUsage)",
            json!({"StringEquals": {"kms:KeyUsage": ["SIGN_VERIFY", "ENCRYPT_DECRYPT"]}}),
            &[("kms:KeyUsage", "ENCRYPT_DECRYPT")],
            true,
        ),
        when(
            "StringEquals kms:KeyOrigin",
            json!({"StringEquals": {"kms:KeyOrigin": "AWS_KMS"}}),
            &[("kms:KeyOrigin", "AWS_KMS")],
            true,
        ),
        when(
            "StringNotEquals kms:EncryptionAlgorithm, other value",
            json!({"StringNotEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}}),
            &[("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")],
            true,
        ),
        when(
            "StringNotEquals kms:EncryptionAlgorithm, same value",
            json!({"StringNotEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}),
            &[("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")],
            false,
        ),
        when(
            "StringNotEquals with a missing key is true",
            json!({"StringNotEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}),
            &[],
            true,
        ),
        when(
            "StringNotEquals values NOR, one matches",
            json!({"StringNotEquals": {"kms:EncryptionAlgorithm": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]}}),
            &[("kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_256")],
            false,
        ),
        when(
            "StringNotEquals values NOR, none matches",
            json!({"StringNotEquals": {"kms:EncryptionAlgorithm": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]}}),
            &[("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")],
            true,
        ),
        when(
            "StringNotEqualsIgnoreCase kms:SigningAlgorithm",
            json!({"StringNotEqualsIgnoreCase": {"kms:SigningAlgorithm": "rsassa_pss_sha_256"}}),
            &[("kms:SigningAlgorithm", "RSASSA_PSS_SHA_256")],
            false,
        )
        .act("kms:Sign"),
        when(
            "StringNotEqualsIgnoreCase, different value",
            json!({"StringNotEqualsIgnoreCase": {"kms:SigningAlgorithm": "rsassa_pss_sha_256"}}),
            &[("kms:SigningAlgorithm", "ECDSA_SHA_256")],
            true,
        )
        .act("kms:Sign"),
        when(
            "StringLike kms:RequestAlias with *",
            json!({"StringLike": {"kms:RequestAlias": "alias/finance-*"}}),
            &[("kms:RequestAlias", "alias/finance-key")],
            true,
        ),
        when(
            "StringLike is case-sensitive",
            json!({"StringLike": {"kms:RequestAlias": "alias/Finance*"}}),
            &[("kms:RequestAlias", "alias/finance-key")],
            false,
        ),
        when(
            "StringLike ? is one character (kms:MacAlgorithm)",
            json!({"StringLike": {"kms:MacAlgorithm": "HMAC_SHA_???"}}),
            &[("kms:MacAlgorithm", "HMAC_SHA_384")],
            true,
        )
        .act("kms:GenerateMac"),
        when(
            "StringLike ? is exactly one character",
            json!({"StringLike": {"kms:MacAlgorithm": "HMAC_SHA_??"}}),
            &[("kms:MacAlgorithm", "HMAC_SHA_384")],
            false,
        )
        .act("kms:GenerateMac"),
        when(
            "StringNotLike kms:KeySpec, no match",
            json!({"StringNotLike": {"kms:KeySpec": "RSA_*"}}),
            &[("kms:KeySpec", "SYMMETRIC_DEFAULT")],
            true,
        ),
        when(
            "StringNotLike kms:KeySpec, match",
            json!({"StringNotLike": {"kms:KeySpec": "RSA_*"}}),
            &[("kms:KeySpec", "RSA_2048")],
            false,
        ),
        when(
            "StringEquals kms:DataKeyPairSpec",
            json!({"StringEquals": {"kms:DataKeyPairSpec": "ECC_NIST_P256"}}),
            &[("kms:DataKeyPairSpec", "ECC_NIST_P256")],
            true,
        )
        .act("kms:GenerateDataKeyPair"),
        when(
            "StringEquals kms:MessageType differs",
            json!({"StringEquals": {"kms:MessageType": "DIGEST"}}),
            &[("kms:MessageType", "RAW")],
            false,
        )
        .act("kms:Sign"),
        when(
            "StringEquals kms:GranteePrincipal",
            json!({"StringEquals": {"kms:GranteePrincipal": ROLE}}),
            &[("kms:GranteePrincipal", ROLE)],
            true,
        )
        .act("kms:CreateGrant"),
        when(
            "StringLike kms:RetiringPrincipal differs",
            json!({"StringLike": {"kms:RetiringPrincipal": "arn:aws:iam::111122223333:role/*"}}),
            &[("kms:RetiringPrincipal", BOB)],
            false,
        )
        .act("kms:CreateGrant"),
        when(
            "StringEquals aws:PrincipalAccount",
            json!({"StringEquals": {"aws:PrincipalAccount": ACCT}}),
            &[("aws:PrincipalAccount", ACCT)],
            true,
        ),
        when(
            "StringEquals aws:RequestTag/Project",
            json!({"StringEquals": {"aws:RequestTag/Project": "Alpha"}}),
            &[("aws:RequestTag/Project", "Alpha")],
            true,
        )
        .act("kms:TagResource"),
        when(
            "StringEquals aws:RequestTag/Project differs",
            json!({"StringEquals": {"aws:RequestTag/Project": "Alpha"}}),
            &[("aws:RequestTag/Project", "Beta")],
            false,
        )
        .act("kms:TagResource"),
        when(
            "StringEquals aws:ResourceTag/Env",
            json!({"StringEquals": {"aws:ResourceTag/Env": "prod"}}),
            &[("aws:ResourceTag/Env", "prod")],
            true,
        ),
        when(
            "StringEquals aws:ResourceTag/Env on an untagged key",
            json!({"StringEquals": {"aws:ResourceTag/Env": "prod"}}),
            &[],
            false,
        ),
        when(
            "StringEquals kms:EncryptionContext:Dept",
            json!({"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}),
            &[("kms:EncryptionContext:Dept", "IT")],
            true,
        ),
        when(
            "StringEquals kms:EncryptionContext value is case-sensitive",
            json!({"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}),
            &[("kms:EncryptionContext:Dept", "it")],
            false,
        ),
        when(
            "StringEqualsIgnoreCase kms:EncryptionContext value",
            json!({"StringEqualsIgnoreCase": {"kms:EncryptionContext:Dept": "IT"}}),
            &[("kms:EncryptionContext:Dept", "it")],
            true,
        ),
        when(
            "kms:EncryptionContext: missing pair",
            json!({"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}),
            &[("kms:EncryptionContext:Project", "IT")],
            false,
        ),
        when(
            "condition key name in other case in the policy",
            json!({"StringEquals": {"KMS:ENCRYPTIONCONTEXT:DEPT": "IT"}}),
            &[("kms:EncryptionContext:Dept", "IT")],
            true,
        ),
        when(
            "condition key name in other case in the request",
            json!({"StringEquals": {"kms:CallerAccount": ACCT}}),
            &[("KMS:calleraccount", ACCT)],
            true,
        ),
        when(
            "BinaryEquals on a base64 value",
            json!({"BinaryEquals": {"kms:EncryptionContext:Blob": "QmluYXJ5VmFsdWU="}}),
            &[("kms:EncryptionContext:Blob", "QmluYXJ5VmFsdWU=")],
            true,
        ),
        when(
            "BinaryEquals on another value",
            json!({"BinaryEquals": {"kms:EncryptionContext:Blob": "QmluYXJ5VmFsdWU="}}),
            &[("kms:EncryptionContext:Blob", "T3RoZXI=")],
            false,
        ),
    ]
}

fn numeric_cases() -> Vec<Case> {
    const K: &str = "kms:ScheduleKeyDeletionPendingWindowInDays";
    let n = |name, op: &str, policy: Value, request: Option<&str>, holds| {
        let pairs: Vec<(&str, &str)> = request.map(|v| (K, v)).into_iter().collect();
        when(name, json!({ op: { K: policy } }), &pairs, holds).act("kms:ScheduleKeyDeletion")
    };
    vec![
        n(
            "NumericEquals, equal",
            "NumericEquals",
            json!(7),
            Some("7"),
            true,
        ),
        n(
            "NumericEquals, different",
            "NumericEquals",
            json!("7"),
            Some("30"),
            false,
        ),
        n(
            "NumericEquals compares numbers, not text",
            "NumericEquals",
            json!("7"),
            Some("7.0"),
            true,
        ),
        n(
            "NumericNotEquals, different",
            "NumericNotEquals",
            json!(7),
            Some("30"),
            true,
        ),
        n(
            "NumericNotEquals values NOR",
            "NumericNotEquals",
            json!([7, 30]),
            Some("30"),
            false,
        ),
        n(
            "NumericNotEquals with a missing key is true",
            "NumericNotEquals",
            json!(7),
            None,
            true,
        ),
        n(
            "NumericLessThan, equal is not less",
            "NumericLessThan",
            json!(7),
            Some("7"),
            false,
        ),
        n(
            "NumericLessThan, less",
            "NumericLessThan",
            json!(10),
            Some("7"),
            true,
        ),
        n(
            "NumericLessThan with a missing key is false",
            "NumericLessThan",
            json!(10),
            None,
            false,
        ),
        n(
            "NumericLessThanEquals, equal",
            "NumericLessThanEquals",
            json!(7),
            Some("7"),
            true,
        ),
        n(
            "NumericGreaterThan, greater",
            "NumericGreaterThan",
            json!(7),
            Some("30"),
            true,
        ),
        n(
            "NumericGreaterThan, equal is not greater",
            "NumericGreaterThan",
            json!(30),
            Some("30"),
            false,
        ),
        n(
            "NumericGreaterThanEquals, less",
            "NumericGreaterThanEquals",
            json!(30),
            Some("7"),
            false,
        ),
        n(
            "NumericGreaterThanEquals, decimal policy value",
            "NumericGreaterThanEquals",
            json!("6.5"),
            Some("7"),
            true,
        ),
        n(
            "Numeric operator on a non-numeric request value",
            "NumericLessThan",
            json!(30),
            Some("seven"),
            false,
        ),
        n(
            "NumericLessThanIfExists with a missing key is true",
            "NumericLessThanIfExists",
            json!(10),
            None,
            true,
        ),
        n(
            "NumericLessThanIfExists with a present key applies",
            "NumericLessThanIfExists",
            json!(10),
            Some("30"),
            false,
        ),
        when(
            "Numeric range inside (two operators AND)",
            json!({"NumericGreaterThanEquals": {K: 7}, "NumericLessThanEquals": {K: 30}}),
            &[(K, "10")],
            true,
        )
        .act("kms:ScheduleKeyDeletion"),
        when(
            "Numeric range outside (two operators AND)",
            json!({"NumericGreaterThanEquals": {K: 7}, "NumericLessThanEquals": {K: 30}}),
            &[(K, "31")],
            false,
        )
        .act("kms:ScheduleKeyDeletion"),
    ]
}

fn date_cases() -> Vec<Case> {
    const NOW: &str = "2026-03-01T12:00:00Z";
    // 2026-03-01T12:00:00Z in epoch seconds.
    const NOW_EPOCH: &str = "1772366400";
    let d = |name, op: &str, policy: &str, holds| {
        when(
            name,
            json!({ op: { "aws:CurrentTime": policy } }),
            &[("aws:CurrentTime", NOW)],
            holds,
        )
    };
    vec![
        d(
            "DateLessThan, before",
            "DateLessThan",
            "2030-01-01T00:00:00Z",
            true,
        ),
        d(
            "DateLessThan, after",
            "DateLessThan",
            "2026-01-01T00:00:00Z",
            false,
        ),
        d(
            "DateGreaterThan a date without time",
            "DateGreaterThan",
            "2026-01-01",
            true,
        ),
        d(
            "DateGreaterThan, not yet",
            "DateGreaterThan",
            "2026-06-01",
            false,
        ),
        d(
            "DateGreaterThanEquals epoch, equal",
            "DateGreaterThanEquals",
            NOW_EPOCH,
            true,
        ),
        d(
            "DateLessThanEquals epoch, equal",
            "DateLessThanEquals",
            NOW_EPOCH,
            true,
        ),
        d(
            "DateLessThanEquals, one second early",
            "DateLessThanEquals",
            "2026-03-01T11:59:59Z",
            false,
        ),
        d("DateEquals epoch", "DateEquals", NOW_EPOCH, true),
        d(
            "DateEquals with a time-zone offset",
            "DateEquals",
            "2026-03-01T13:00:00+01:00",
            true,
        ),
        d(
            "DateEquals, one second off",
            "DateEquals",
            "2026-03-01T12:00:01Z",
            false,
        ),
        d("DateNotEquals, equal", "DateNotEquals", NOW, false),
        d(
            "DateNotEquals, different",
            "DateNotEquals",
            "2026-03-02",
            true,
        ),
        when(
            "DateNotEquals with a missing key is true",
            json!({"DateNotEquals": {"aws:CurrentTime": NOW}}),
            &[],
            true,
        ),
        when(
            "DateLessThan with a missing key is false",
            json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}),
            &[],
            false,
        ),
        when(
            "DateLessThan with an epoch request value",
            json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
            &[("aws:CurrentTime", NOW_EPOCH)],
            true,
        ),
        d(
            "DateLessThan, W3C ISO 8601 date with hours and minutes",
            "DateLessThan",
            "2030-01-01T00:00Z",
            true,
        ),
    ]
}

fn bool_ip_arn_null_cases() -> Vec<Case> {
    let ip = |name, op: &str, policy: Value, request: Option<&str>, holds| {
        let pairs: Vec<(&str, &str)> = request.map(|v| ("aws:SourceIp", v)).into_iter().collect();
        when(
            name,
            json!({ op: { "aws:SourceIp": policy } }),
            &pairs,
            holds,
        )
    };
    let arn = |name, op: &str, policy: &str, request: Option<&str>, holds| {
        let pairs: Vec<(&str, &str)> = request
            .map(|v| ("aws:PrincipalArn", v))
            .into_iter()
            .collect();
        when(
            name,
            json!({ op: { "aws:PrincipalArn": policy } }),
            &pairs,
            holds,
        )
    };
    vec![
        when(
            "Bool aws:SecureTransport true",
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            &[("aws:SecureTransport", "true")],
            true,
        ),
        when(
            "Bool aws:SecureTransport false request",
            json!({"Bool": {"aws:SecureTransport": true}}),
            &[("aws:SecureTransport", "false")],
            false,
        ),
        when(
            "Bool with a missing key is false",
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            &[],
            false,
        ),
        when(
            "BoolIfExists with a missing key is true",
            json!({"BoolIfExists": {"aws:SecureTransport": "true"}}),
            &[],
            true,
        ),
        when(
            "Bool kms:GrantIsForAWSResource true",
            json!({"Bool": {"kms:GrantIsForAWSResource": true}}),
            &[("kms:GrantIsForAWSResource", "true")],
            true,
        )
        .act("kms:CreateGrant"),
        when(
            "Bool kms:GrantIsForAWSResource false request",
            json!({"Bool": {"kms:GrantIsForAWSResource": true}}),
            &[("kms:GrantIsForAWSResource", "false")],
            false,
        )
        .act("kms:CreateGrant"),
        when(
            "Bool kms:BypassPolicyLockoutSafetyCheck false",
            json!({"Bool": {"kms:BypassPolicyLockoutSafetyCheck": false}}),
            &[("kms:BypassPolicyLockoutSafetyCheck", "false")],
            true,
        )
        .act("kms:PutKeyPolicy"),
        when(
            "Null kms:BypassPolicyLockoutSafetyCheck true, parameter absent",
            json!({"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}),
            &[],
            true,
        )
        .act("kms:PutKeyPolicy"),
        when(
            "Null kms:BypassPolicyLockoutSafetyCheck true, parameter sent",
            json!({"Null": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}),
            &[("kms:BypassPolicyLockoutSafetyCheck", "true")],
            false,
        )
        .act("kms:PutKeyPolicy"),
        when(
            "Null kms:EncryptionContextKeys false, context present",
            json!({"Null": {"kms:EncryptionContextKeys": "false"}}),
            &[("kms:EncryptionContextKeys", "Dept")],
            true,
        ),
        when(
            "Null kms:EncryptionContextKeys false, no context",
            json!({"Null": {"kms:EncryptionContextKeys": false}}),
            &[],
            false,
        ),
        ip(
            "IpAddress inside a CIDR",
            "IpAddress",
            json!("203.0.113.0/24"),
            Some("203.0.113.7"),
            true,
        ),
        ip(
            "IpAddress outside a CIDR",
            "IpAddress",
            json!("203.0.113.0/24"),
            Some("198.51.100.7"),
            false,
        ),
        ip(
            "IpAddress bare IP is /32, same",
            "IpAddress",
            json!("203.0.113.7"),
            Some("203.0.113.7"),
            true,
        ),
        ip(
            "IpAddress bare IP is /32, neighbour",
            "IpAddress",
            json!("203.0.113.7"),
            Some("203.0.113.8"),
            false,
        ),
        ip(
            "IpAddress IPv6 CIDR",
            "IpAddress",
            json!("2001:db8::/32"),
            Some("2001:db8:1::5"),
            true,
        ),
        ip(
            "IpAddress IPv6 outside",
            "IpAddress",
            json!("2001:db8::/32"),
            Some("2001:db9::1"),
            false,
        ),
        ip(
            "IpAddress IPv4 CIDR, IPv6 request",
            "IpAddress",
            json!("203.0.113.0/24"),
            Some("2001:db8::1"),
            false,
        ),
        ip(
            "IpAddress CIDR list OR",
            "IpAddress",
            json!(["10.0.0.0/8", "203.0.113.0/24"]),
            Some("10.9.8.7"),
            true,
        ),
        ip(
            "IpAddress with a missing key is false",
            "IpAddress",
            json!("0.0.0.0/0"),
            None,
            false,
        ),
        ip(
            "NotIpAddress outside",
            "NotIpAddress",
            json!("10.0.0.0/8"),
            Some("203.0.113.7"),
            true,
        ),
        ip(
            "NotIpAddress inside",
            "NotIpAddress",
            json!("10.0.0.0/8"),
            Some("10.1.1.1"),
            false,
        ),
        ip(
            "NotIpAddress CIDR list NOR",
            "NotIpAddress",
            json!(["10.0.0.0/8", "192.168.0.0/16"]),
            Some("192.168.1.1"),
            false,
        ),
        ip(
            "NotIpAddress with a missing key is true",
            "NotIpAddress",
            json!("10.0.0.0/8"),
            None,
            true,
        ),
        arn(
            "ArnEquals aws:PrincipalArn",
            "ArnEquals",
            ALICE,
            Some(ALICE),
            true,
        ),
        arn(
            "ArnEquals is case-sensitive",
            "ArnEquals",
            "arn:aws:iam::111122223333:user/Alice",
            Some(ALICE),
            false,
        ),
        arn(
            "ArnEquals takes wildcards like ArnLike",
            "ArnEquals",
            "arn:aws:iam::*:user/*",
            Some(ALICE),
            true,
        ),
        arn(
            "ArnLike on the account's users",
            "ArnLike",
            "arn:aws:iam::111122223333:user/*",
            Some(ALICE),
            true,
        ),
        arn(
            "ArnLike on the account's roles",
            "ArnLike",
            "arn:aws:iam::111122223333:role/*",
            Some(ALICE),
            false,
        ),
        arn(
            "ArnLike with a missing key is false",
            "ArnLike",
            "arn:aws:iam::111122223333:*",
            None,
            false,
        ),
        arn(
            "ArnNotEquals another user",
            "ArnNotEquals",
            BOB,
            Some(ALICE),
            true,
        ),
        arn(
            "ArnNotLike roles, caller is a role",
            "ArnNotLike",
            "arn:aws:iam::111122223333:role/*",
            Some(ROLE),
            false,
        ),
        arn(
            "ArnNotLike with a missing key is true",
            "ArnNotLike",
            "arn:aws:iam::111122223333:role/*",
            None,
            true,
        ),
        when(
            "ArnLike wildcard stays within its ARN part",
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}),
            &[(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            )],
            false,
        ),
        when(
            "StringLike wildcard runs across ARN parts",
            json!({"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}),
            &[(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            )],
            true,
        ),
    ]
}

fn combination_cases() -> Vec<Case> {
    const KEYS: &str = "kms:EncryptionContextKeys";
    const TAGS: &str = "aws:TagKeys";
    vec![
        when(
            "ForAllValues: every request value is listed",
            json!({"ForAllValues:StringEquals": {KEYS: ["Dept", "Project"]}}),
            &[(KEYS, "Dept"), (KEYS, "Project")],
            true,
        ),
        when(
            "ForAllValues: one request value is not listed",
            json!({"ForAllValues:StringEquals": {KEYS: ["Dept", "Project"]}}),
            &[(KEYS, "Dept"), (KEYS, "Secret")],
            false,
        ),
        when(
            "ForAllValues: a missing key is true",
            json!({"ForAllValues:StringEquals": {KEYS: ["Dept"]}}),
            &[],
            true,
        ),
        when(
            "ForAnyValue: one request value is listed",
            json!({"ForAnyValue:StringEquals": {KEYS: "Dept"}}),
            &[(KEYS, "Other"), (KEYS, "Dept")],
            true,
        ),
        when(
            "ForAnyValue: no request value is listed",
            json!({"ForAnyValue:StringEquals": {KEYS: "Dept"}}),
            &[(KEYS, "Other")],
            false,
        ),
        when(
            "ForAnyValue: a missing key is false",
            json!({"ForAnyValue:StringEquals": {KEYS: "Dept"}}),
            &[],
            false,
        ),
        when(
            "ForAnyValue:StringLikeIfExists: a missing key is true",
            json!({"ForAnyValue:StringLikeIfExists": {KEYS: "D*"}}),
            &[],
            true,
        ),
        when(
            "ForAllValues kms:GrantOperations within the list",
            json!({"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}}),
            &[("kms:GrantOperations", "Encrypt")],
            true,
        )
        .act("kms:CreateGrant"),
        when(
            "ForAllValues kms:GrantOperations beyond the list",
            json!({"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}}),
            &[
                ("kms:GrantOperations", "Encrypt"),
                ("kms:GrantOperations", "CreateGrant"),
            ],
            false,
        )
        .act("kms:CreateGrant"),
        when(
            "ForAnyValue kms:ResourceAliases",
            json!({"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/finance*"}}),
            &[
                ("kms:ResourceAliases", "alias/other"),
                ("kms:ResourceAliases", "alias/finance-key"),
            ],
            true,
        ),
        when(
            "ForAnyValue kms:ResourceAliases, key without aliases",
            json!({"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/finance*"}}),
            &[],
            false,
        ),
        when(
            "ForAllValues aws:TagKeys within the list",
            json!({"ForAllValues:StringEquals": {TAGS: ["Project", "Owner"]}}),
            &[(TAGS, "Project")],
            true,
        )
        .act("kms:TagResource"),
        when(
            "ForAllValues aws:TagKeys beyond the list",
            json!({"ForAllValues:StringEquals": {TAGS: ["Project", "Owner"]}}),
            &[(TAGS, "Project"), (TAGS, "Secret")],
            false,
        )
        .act("kms:TagResource"),
        when(
            "ForAllValues:StringNotLike, no value matches",
            json!({"ForAllValues:StringNotLike": {TAGS: "key1*"}}),
            &[(TAGS, "key2")],
            true,
        )
        .act("kms:TagResource"),
        when(
            "ForAllValues:StringNotLike, a value matches",
            json!({"ForAllValues:StringNotLike": {TAGS: "key1*"}}),
            &[(TAGS, "key1a"), (TAGS, "key2")],
            false,
        )
        .act("kms:TagResource"),
        when(
            "ForAllValues:StringNotLike, a missing key is true",
            json!({"ForAllValues:StringNotLike": {TAGS: "key1*"}}),
            &[],
            true,
        )
        .act("kms:TagResource"),
        when(
            "ForAnyValue:StringNotEquals, one value unlisted",
            json!({"ForAnyValue:StringNotEquals": {KEYS: "Dept"}}),
            &[(KEYS, "Dept"), (KEYS, "Other")],
            true,
        ),
        when(
            "ForAnyValue:StringNotEquals, all values listed",
            json!({"ForAnyValue:StringNotEquals": {KEYS: "Dept"}}),
            &[(KEYS, "Dept")],
            false,
        ),
        when(
            "ForAnyValue:StringNotEquals, a missing key is false",
            json!({"ForAnyValue:StringNotEquals": {KEYS: "Dept"}}),
            &[],
            false,
        ),
        when(
            "StringEqualsIfExists with a missing key is true",
            json!({"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[],
            true,
        ),
        when(
            "StringEqualsIfExists with another value is false",
            json!({"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[("kms:ViaService", "rds.us-east-1.amazonaws.com")],
            false,
        ),
        when(
            "two keys under one operator AND, both match",
            json!({"StringEquals": {"kms:CallerAccount": ACCT, "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[
                ("kms:CallerAccount", ACCT),
                ("kms:ViaService", "ec2.us-east-1.amazonaws.com"),
            ],
            true,
        ),
        when(
            "two keys under one operator AND, one differs",
            json!({"StringEquals": {"kms:CallerAccount": ACCT, "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[
                ("kms:CallerAccount", ACCT),
                ("kms:ViaService", "s3.us-east-1.amazonaws.com"),
            ],
            false,
        ),
        when(
            "two operators AND, one fails",
            json!({"StringEquals": {"kms:CallerAccount": ACCT}, "Bool": {"aws:SecureTransport": true}}),
            &[
                ("kms:CallerAccount", ACCT),
                ("aws:SecureTransport", "false"),
            ],
            false,
        ),
        when(
            "two operators AND, both hold",
            json!({"StringEquals": {"kms:CallerAccount": ACCT}, "Bool": {"aws:SecureTransport": true}}),
            &[("kms:CallerAccount", ACCT), ("aws:SecureTransport", "true")],
            true,
        ),
        unless(
            "Deny when aws:SecureTransport is false, plain HTTP",
            json!({"Bool": {"aws:SecureTransport": false}}),
            &[("aws:SecureTransport", "false")],
            true,
        ),
        unless(
            "Deny when aws:SecureTransport is false, TLS",
            json!({"Bool": {"aws:SecureTransport": false}}),
            &[("aws:SecureTransport", "true")],
            false,
        ),
        unless(
            "Deny when aws:SecureTransport is false, key missing",
            json!({"Bool": {"aws:SecureTransport": false}}),
            &[],
            false,
        ),
        unless(
            "Deny NotIpAddress, inside the network",
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            &[("aws:SourceIp", "10.1.2.3")],
            false,
        ),
        unless(
            "Deny NotIpAddress, outside the network",
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            &[("aws:SourceIp", "192.0.2.1")],
            true,
        ),
        unless(
            "Deny NotIpAddress, address unknown",
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            &[],
            true,
        ),
        unless(
            "Deny StringNotEqualsIfExists still denies when the key is missing",
            json!({"StringNotEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[],
            true,
        ),
        unless(
            "Deny StringNotEqualsIfExists, right service",
            json!({"StringNotEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}),
            &[("kms:ViaService", "ec2.us-east-1.amazonaws.com")],
            false,
        ),
        unless(
            "Deny without an encryption context (Null true)",
            json!({"Null": {"kms:EncryptionContextKeys": true}}),
            &[],
            true,
        ),
        unless(
            "Deny without an encryption context, context given",
            json!({"Null": {"kms:EncryptionContextKeys": true}}),
            &[("kms:EncryptionContextKeys", "Dept")],
            false,
        ),
        unless(
            "Deny after a date",
            json!({"DateGreaterThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"}}),
            &[("aws:CurrentTime", "2026-07-01T00:00:00Z")],
            true,
        ),
        unless(
            "Deny on one of several context values (DG example)",
            json!({"StringEquals": {"kms:EncryptionContext:Stage": ["Restricted", "Production"]}}),
            &[("kms:EncryptionContext:Stage", "Production")],
            true,
        ),
        unless(
            "Deny on several context values, another value (DG example)",
            json!({"StringEquals": {"kms:EncryptionContext:Stage": ["Restricted", "Production"]}}),
            &[("kms:EncryptionContext:Stage", "Test")],
            false,
        ),
        unless(
            "Deny on a resource tag",
            json!({"StringEquals": {"aws:ResourceTag/Env": "quarantine"}}),
            &[("aws:ResourceTag/Env", "quarantine")],
            true,
        ),
        unless(
            "Deny on other principals by aws:PrincipalArn",
            json!({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/*"}}),
            &[("aws:PrincipalArn", ROLE)],
            true,
        )
        .by(ROLE),
        id_when(
            "identity condition aws:ResourceTag matches",
            json!({"StringEquals": {"aws:ResourceTag/Env": "prod"}}),
            &[("aws:ResourceTag/Env", "prod")],
            true,
        ),
        id_when(
            "identity condition aws:ResourceTag differs",
            json!({"StringEquals": {"aws:ResourceTag/Env": "prod"}}),
            &[("aws:ResourceTag/Env", "dev")],
            false,
        ),
        id_when(
            "identity condition kms:RequestAlias",
            json!({"StringEquals": {"kms:RequestAlias": "alias/finance"}}),
            &[("kms:RequestAlias", "alias/finance")],
            true,
        ),
        id_when(
            "identity condition kms:RequestAlias when named by key id",
            json!({"StringEquals": {"kms:RequestAlias": "alias/finance"}}),
            &[],
            false,
        ),
        id_when(
            "identity condition aws:SourceIp",
            json!({"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}}),
            &[("aws:SourceIp", "198.51.100.20")],
            true,
        ),
        case("identity Deny conditioned on kms:EncryptionAlgorithm")
            .default_key()
            .id(json!([
                id_allow("kms:*", "*"),
                cond(
                    id_deny("kms:Encrypt", "*"),
                    json!({"StringNotEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}})
                )
            ]))
            .ctx(&[("kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_256")])
            .want(ID_DENY),
        case("identity condition on CreateKey's kms:KeySpec")
            .act("kms:CreateKey")
            .no_key("*")
            .id(cond(
                id_allow("kms:CreateKey", "*"),
                json!({"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}),
            ))
            .ctx(&[("kms:KeySpec", "RSA_4096")])
            .want(NO_ID),
    ]
}

fn grant_cases() -> Vec<Case> {
    let g = |name| case(name).key(only_bob());
    vec![
        g("grant for the caller allows its operation")
            .grant(grant(ALICE, &["Encrypt", "Decrypt"]))
            .want(GRANT),
        g("grant for the caller, another operation")
            .grant(grant(ALICE, &["Decrypt"]))
            .want(NO_KP),
        g("grant GenerateDataKey is not GenerateDataKeyWithoutPlaintext")
            .act("kms:GenerateDataKeyWithoutPlaintext")
            .grant(grant(ALICE, &["GenerateDataKey"]))
            .want(NO_KP),
        g("grant ReEncryptFrom")
            .act("kms:ReEncryptFrom")
            .grant(grant(ALICE, &["ReEncryptFrom"]))
            .ec(&[])
            .want(GRANT),
        g("grant for another grantee does nothing")
            .grant(grant(BOB, &["Encrypt"]))
            .want(NO_KP),
        g("grant for a role caller")
            .by(ROLE)
            .grant(grant(ROLE, &["Encrypt"]))
            .want(GRANT),
        g("second of several grants matches")
            .grant(grant(BOB, &["Encrypt"]))
            .grant(grant(ALICE, &["Sign"]))
            .grant(grant(ALICE, &["Encrypt"]))
            .want(GRANT),
        g("grant without constraints, any context")
            .act("kms:Decrypt")
            .grant(grant(ALICE, &["Decrypt"]))
            .ec(&[("anything", "goes")])
            .want(GRANT),
        g("subset constraint, exact context")
            .grant(subset(grant(ALICE, &["Encrypt"]), &[("Dept", "IT")]))
            .ec(&[("Dept", "IT")])
            .want(GRANT),
        g("subset constraint, context with more pairs")
            .grant(subset(grant(ALICE, &["Encrypt"]), &[("Dept", "IT")]))
            .ec(&[("Dept", "IT"), ("Project", "x")])
            .want(GRANT),
        g("subset constraint, a pair missing")
            .grant(subset(
                grant(ALICE, &["Encrypt"]),
                &[("Dept", "IT"), ("Project", "x")],
            ))
            .ec(&[("Dept", "IT")])
            .want(NO_KP),
        g("subset constraint, no context")
            .grant(subset(grant(ALICE, &["Encrypt"]), &[("Dept", "IT")]))
            .want(NO_KP),
        g("subset constraint, key in other case")
            .grant(subset(grant(ALICE, &["Encrypt"]), &[("Dept", "IT")]))
            .ec(&[("DEPT", "IT")])
            .want(GRANT),
        g("subset constraint, value in other case")
            .grant(subset(grant(ALICE, &["Encrypt"]), &[("Dept", "IT")]))
            .ec(&[("Dept", "it")])
            .want(NO_KP),
        g("equals constraint, exact context")
            .act("kms:Decrypt")
            .grant(equals(
                grant(ALICE, &["Decrypt"]),
                &[("Dept", "IT"), ("Project", "x")],
            ))
            .ec(&[("Project", "x"), ("Dept", "IT")])
            .want(GRANT),
        g("equals constraint, an extra pair")
            .act("kms:Decrypt")
            .grant(equals(grant(ALICE, &["Decrypt"]), &[("Dept", "IT")]))
            .ec(&[("Dept", "IT"), ("Project", "x")])
            .want(NO_KP),
        g("equals constraint, a pair missing")
            .act("kms:Decrypt")
            .grant(equals(
                grant(ALICE, &["Decrypt"]),
                &[("Dept", "IT"), ("Project", "x")],
            ))
            .ec(&[("Dept", "IT")])
            .want(NO_KP),
        g("equals constraint, key in other case")
            .act("kms:Decrypt")
            .grant(equals(grant(ALICE, &["Decrypt"]), &[("Dept", "IT")]))
            .ec(&[("dept", "IT")])
            .want(GRANT),
        g("equals constraint, value in other case")
            .act("kms:Decrypt")
            .grant(equals(grant(ALICE, &["Decrypt"]), &[("Dept", "IT")]))
            .ec(&[("Dept", "It")])
            .want(NO_KP),
        g("subset and equals constraints both hold")
            .grant(equals(
                subset(grant(ALICE, &["Encrypt"]), &[("Dept", "IT")]),
                &[("Dept", "IT"), ("Project", "x")],
            ))
            .ec(&[("Dept", "IT"), ("Project", "x")])
            .want(GRANT),
        g("constraints do not apply to DescribeKey")
            .act("kms:DescribeKey")
            .grant(subset(grant(ALICE, &["DescribeKey"]), &[("Dept", "IT")]))
            .want(GRANT),
        g("constraints do not apply to RetireGrant")
            .act("kms:RetireGrant")
            .grant(equals(grant(ALICE, &["RetireGrant"]), &[("Dept", "IT")]))
            .want(GRANT),
        g("constraints apply to GenerateDataKeyPair")
            .act("kms:GenerateDataKeyPair")
            .grant(subset(
                grant(ALICE, &["GenerateDataKeyPair"]),
                &[("Dept", "IT")],
            ))
            .want(NO_KP),
        case("grant when the key policy delegates to the account without identity allow")
            .default_key()
            .grant(grant(ALICE, &["Encrypt"]))
            .want(GRANT),
        case("key policy allow comes before a grant")
            .key(allow(aws(ALICE), "kms:*"))
            .grant(grant(ALICE, &["Encrypt"]))
            .want(KP),
        case("grant never overrides a key policy Deny")
            .key(json!([only_bob(), deny(aws(ALICE), "kms:*")]))
            .grant(grant(ALICE, &["Encrypt"]))
            .want(KP_DENY),
        case("grant never overrides an identity Deny")
            .key(only_bob())
            .id(id_deny("kms:Encrypt", "*"))
            .grant(grant(ALICE, &["Encrypt"]))
            .want(ID_DENY),
        case("key policy Deny of another action leaves the grant")
            .key(json!([only_bob(), deny(aws(ALICE), "kms:Decrypt")]))
            .grant(grant(ALICE, &["Encrypt"]))
            .want(GRANT),
    ]
}

fn real_context_cases() -> Vec<Case> {
    let r = |name| case(name).key(allow(aws(ALICE), "kms:*"));
    let rc = |name, condition: Value| case(name).key(cond(allow(aws(ALICE), "kms:*"), condition));
    const JAN_1_2026: f64 = 1_767_225_600.0;
    vec![
        rc("Context: kms:EncryptionContext key part is case-insensitive", json!({"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}))
            .ec(&[("dept", "IT")]).real(Real::default()).want(KP),
        rc("Context: kms:EncryptionContext value is case-sensitive", json!({"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}))
            .ec(&[("Dept", "it")]).real(Real::default()).want(NO_KP),
        rc("Context: kms:EncryptionContextKeys from the context", json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Dept", "Project"]}}))
            .ec(&[("Dept", "IT"), ("Other", "x")]).real(Real::default()).want(NO_KP),
        rc("Context: kms:KeySpec from the key record", json!({"StringEquals": {"kms:KeySpec": "RSA_2048"}}))
            .real(Real { key_spec: Some("RSA_2048"), ..Real::default() }).want(KP),
        rc("Context: kms:KeySpec of a symmetric key", json!({"StringEquals": {"kms:KeySpec": "RSA_2048"}}))
            .real(Real::default()).want(NO_KP),
        rc("Context: aws:ResourceTag from the key's tags", json!({"StringEquals": {"aws:ResourceTag/Env": "prod"}}))
            .real(Real { tags: vec![("Owner", "ops"), ("Env", "prod")], ..Real::default() }).want(KP),
        rc("Context: aws:SourceIp from the caller", json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
            .real(Real { source_ip: Some("203.0.113.9"), ..Real::default() }).want(KP),
        rc("Context: aws:SourceIp unknown", json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
            .real(Real::default()).want(NO_KP),
        rc("Context: kms:ResourceAliases from the key's aliases", json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/finance"}}))
            .real(Real { aliases: vec!["alias/hr", "alias/finance"], ..Real::default() }).want(KP),
        rc("Context: kms:RequestAlias from the request", json!({"StringLike": {"kms:RequestAlias": "alias/fin*"}}))
            .real(Real { request_alias: Some("alias/finance"), ..Real::default() }).want(KP),
        rc("Context: aws:CurrentTime from now, before the date", json!({"DateLessThan": {"aws:CurrentTime": "2026-01-02T00:00:00Z"}}))
            .real(Real { now: JAN_1_2026, ..Real::default() }).want(KP),
        rc("Context: aws:CurrentTime from now, after the date", json!({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:01Z"}}))
            .real(Real { now: JAN_1_2026, ..Real::default() }).want(NO_KP),
        r("Context: aws:SecureTransport from the caller")
            .key(json!([allow(aws(ALICE), "kms:*"), cond(deny(anyone(), "kms:*"), json!({"Bool": {"aws:SecureTransport": false}}))]))
            .real(Real { secure_transport: true, ..Real::default() }).want(KP),
        r("Context: plain HTTP meets the SecureTransport Deny")
            .key(json!([allow(aws(ALICE), "kms:*"), cond(deny(anyone(), "kms:*"), json!({"Bool": {"aws:SecureTransport": false}}))]))
            .real(Real::default()).want(KP_DENY),
        case("Context: kms:CallerAccount and aws:PrincipalArn from the caller, cross-account")
            .on(X_KEY)
            .key(cond(allow(anyone(), "kms:*"), json!({"StringEquals": {"kms:CallerAccount": ACCT}, "ArnEquals": {"aws:PrincipalArn": ALICE}})))
            .id(id_allow("kms:*", "*")).real(Real::default()).want(KP),
        rc("Context: kms:EncryptionAlgorithm from the request", json!({"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}))
            .real(Real { encryption_algorithm: Some("SYMMETRIC_DEFAULT"), ..Real::default() }).want(KP),
        case("Context: CreateKey's kms:KeySpec from the request")
            .act("kms:CreateKey").no_key("*")
            .id(cond(id_allow("kms:CreateKey", "*"), json!({"StringEquals": {"kms:KeySpec": "ECC_NIST_P256"}})))
            .real(Real { create_key_spec: Some("ECC_NIST_P256"), ..Real::default() }).want(ID),
        case("Context: aws:RequestTag and aws:TagKeys from the request tags")
            .act("kms:CreateKey").no_key("*")
            .id(cond(id_allow("kms:CreateKey", "*"), json!({"StringEquals": {"aws:RequestTag/Project": "Alpha"}, "ForAllValues:StringEquals": {"aws:TagKeys": ["Project", "Owner"]}})))
            .real(Real { request_tags: vec![("Project", "Alpha"), ("Owner", "ops")], ..Real::default() }).want(ID),
        rc("Context: encryption context key with colons (CloudWatch Logs pattern)", json!({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:*"}}))
            .ec(&[("aws:logs:arn", "arn:aws:logs:us-east-1:111122223333:log-group:/app/web")]).real(Real::default()).want(KP),
        rc("Context: ForAnyValue kms:EncryptionContextKeys, one key listed (DG example)", json!({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}))
            .ec(&[("AppName", "Helper"), ("Project", "Alpha")]).real(Real::default()).want(KP),
        rc("Context: ForAnyValue kms:EncryptionContextKeys, no context (DG example)", json!({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}))
            .real(Real::default()).want(NO_KP),
        rc("Context: required pair plus ForAllValues keys, no context (DG example)",
            json!({"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}, "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["AppName"]}}))
            .real(Real::default()).want(NO_KP),
        rc("Context: required pair plus ForAllValues keys, exact context (DG example)",
            json!({"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"}, "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["AppName"]}}))
            .ec(&[("AppName", "ExampleApp")]).real(Real::default()).want(KP),
        rc("Context: policy variable ${aws:username} in an encryption context condition", json!({"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}))
            .ec(&[("user", "alice")]).real(Real::default()).want(KP),
        rc("Context: policy variable ${aws:username}, another user's context", json!({"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}))
            .ec(&[("user", "bob")]).real(Real::default()).want(NO_KP),
    ]
}

/// A request can hold a single-valued key under several names that differ only in case (an
/// encryption context `{"DEPT": "x", "Dept": "Finance"}`, tags `Dept` and `DEPT`). A condition
/// is decided with every one of them: an Allow holds only if each satisfies it, a Deny applies if
/// one does. Before, the first in byte order decided, so the caller chose what a Deny saw.
fn case_variant_cases() -> Vec<Case> {
    const EC: &[(&str, &str)] = &[("DEPT", "x"), ("Dept", "Finance")];
    let allow_when = |name, condition: Value| {
        case(name)
            .key(cond(allow(aws(ALICE), "kms:*"), condition))
            .ec(EC)
            .real(Real::default())
    };
    let deny_when = |name, condition: Value| {
        case(name)
            .key(json!([
                allow(aws(ALICE), "kms:*"),
                cond(deny(anyone(), "kms:*"), condition)
            ]))
            .ec(EC)
            .real(Real::default())
    };
    let tagged = |name, effect: &str, condition: Value| {
        let statements = if effect == "Allow" {
            json!([cond(allow(aws(ALICE), "kms:*"), condition)])
        } else {
            json!([
                allow(aws(ALICE), "kms:*"),
                cond(deny(anyone(), "kms:*"), condition)
            ])
        };
        case(name).key(statements).real(Real {
            tags: vec![("DEPT", "x"), ("Dept", "Finance")],
            ..Real::default()
        })
    };
    let ec_key = "kms:EncryptionContext:Dept";
    vec![
        // String operators.
        allow_when("Case variants: Allow StringEquals needs every value", json!({"StringEquals": {ec_key: "x"}})).want(NO_KP),
        allow_when("Case variants: Allow StringEquals listing both values", json!({"StringEquals": {ec_key: ["x", "Finance"]}})).want(KP),
        deny_when("Case variants: Deny StringEquals matches any value", json!({"StringEquals": {ec_key: "Finance"}})).want(KP_DENY),
        deny_when("Case variants: Deny StringEquals matching none", json!({"StringEquals": {ec_key: "HR"}})).want(KP),
        allow_when("Case variants: Allow StringNotEquals needs every value", json!({"StringNotEquals": {ec_key: "Finance"}})).want(NO_KP),
        deny_when("Case variants: Deny StringNotEquals matches any value", json!({"StringNotEquals": {ec_key: "x"}})).want(KP_DENY),
        allow_when("Case variants: Allow StringEqualsIgnoreCase needs every value", json!({"StringEqualsIgnoreCase": {ec_key: "X"}})).want(NO_KP),
        deny_when("Case variants: Deny StringEqualsIgnoreCase matches any value", json!({"StringEqualsIgnoreCase": {ec_key: "FINANCE"}})).want(KP_DENY),
        allow_when("Case variants: Allow StringNotEqualsIgnoreCase needs every value", json!({"StringNotEqualsIgnoreCase": {ec_key: "FINANCE"}})).want(NO_KP),
        allow_when("Case variants: Allow StringLike needs every value", json!({"StringLike": {ec_key: "x*"}})).want(NO_KP),
        deny_when("Case variants: Deny StringLike matches any value", json!({"StringLike": {ec_key: "Fin*"}})).want(KP_DENY),
        allow_when("Case variants: Allow StringNotLike needs every value", json!({"StringNotLike": {ec_key: "Fin*"}})).want(NO_KP),
        deny_when("Case variants: Deny StringNotLike matches any value", json!({"StringNotLike": {ec_key: "x"}})).want(KP_DENY),
        // Set operators.
        allow_when("Case variants: Allow ForAnyValue needs every value", json!({"ForAnyValue:StringEquals": {ec_key: "x"}})).want(NO_KP),
        deny_when("Case variants: Deny ForAnyValue matches any value", json!({"ForAnyValue:StringEquals": {ec_key: "Finance"}})).want(KP_DENY),
        tagged("Case variants: Allow ForAllValues on aws:ResourceTag needs every value", "Allow",
            json!({"ForAllValues:StringEquals": {"aws:ResourceTag/Dept": "x"}})).want(NO_KP),
        tagged("Case variants: Deny ForAllValues on aws:ResourceTag matches any value", "Deny",
            json!({"ForAllValues:StringEquals": {"aws:ResourceTag/Dept": "Finance"}})).want(KP_DENY),
        // IfExists and Null.
        allow_when("Case variants: Allow StringEqualsIfExists needs every value", json!({"StringEqualsIfExists": {ec_key: "x"}})).want(NO_KP),
        deny_when("Case variants: Deny StringEqualsIfExists matches any value", json!({"StringEqualsIfExists": {ec_key: "Finance"}})).want(KP_DENY),
        allow_when("Case variants: Null false holds (the key is there)", json!({"Null": {ec_key: "false"}})).want(KP),
        deny_when("Case variants: Deny Null true does not apply", json!({"Null": {ec_key: "true"}})).want(KP),
        // Numeric values.
        case("Case variants: Allow NumericLessThan needs every value")
            .key(cond(allow(aws(ALICE), "kms:*"), json!({"NumericLessThan": {"kms:EncryptionContext:Level": "5"}})))
            .ec(&[("LEVEL", "1"), ("Level", "9")]).real(Real::default()).want(NO_KP),
        case("Case variants: Deny NumericGreaterThan matches any value")
            .key(json!([allow(aws(ALICE), "kms:*"), cond(deny(anyone(), "kms:*"), json!({"NumericGreaterThan": {"kms:EncryptionContext:Level": "5"}}))]))
            .ec(&[("LEVEL", "1"), ("Level", "9")]).real(Real::default()).want(KP_DENY),
        // Tags of the key and of the request.
        tagged("Case variants: Allow on aws:ResourceTag needs every tag", "Allow",
            json!({"StringEquals": {"aws:ResourceTag/dept": "x"}})).want(NO_KP),
        tagged("Case variants: Deny on aws:ResourceTag matches any tag", "Deny",
            json!({"StringEquals": {"aws:ResourceTag/dept": "Finance"}})).want(KP_DENY),
        case("Case variants: Allow on aws:RequestTag needs every tag")
            .act("kms:CreateKey").no_key("*")
            .id(cond(id_allow("kms:CreateKey", "*"), json!({"StringEquals": {"aws:RequestTag/Dept": "x"}})))
            .real(Real { request_tags: vec![("DEPT", "x"), ("Dept", "Finance")], ..Real::default() }).want(NO_ID),
        case("Case variants: Deny on aws:RequestTag matches any tag")
            .act("kms:CreateKey").no_key("*")
            .id(id_allow("kms:CreateKey", "*"))
            .id(cond(id_deny("kms:CreateKey", "*"), json!({"StringEquals": {"aws:RequestTag/Dept": "Finance"}})))
            .real(Real { request_tags: vec![("DEPT", "x"), ("Dept", "Finance")], ..Real::default() }).want(ID_DENY),
        // Policy variables that name such a key.
        case("Case variants: Allow with a variable needs every value it names")
            .key(cond(allow(aws(ALICE), "kms:*"), json!({"StringEquals": {"aws:ResourceTag/Owner": "${kms:EncryptionContext:Owner}"}})))
            .ec(&[("OWNER", "alice"), ("Owner", "mallory")])
            .real(Real { tags: vec![("Owner", "alice")], ..Real::default() }).want(NO_KP),
        case("Case variants: Deny with a variable matches any value it names")
            .key(json!([allow(aws(ALICE), "kms:*"), cond(deny(anyone(), "kms:*"), json!({"StringNotEquals": {ec_key: "${aws:ResourceTag/Dept}"}}))]))
            .ec(&[("DEPT", "Finance"), ("Dept", "HR")])
            .real(Real { tags: vec![("Dept", "Finance")], ..Real::default() }).want(KP_DENY),
        case("Case variants: a variable naming the condition's own key reads the same value")
            .key(cond(allow(aws(ALICE), "kms:*"), json!({"StringEquals": {ec_key: "${kms:EncryptionContext:Dept}"}})))
            .ec(EC).real(Real::default()).want(KP),
        // One spelling only: nothing changes.
        case("Case variants: a single spelling decides as before")
            .key(cond(allow(aws(ALICE), "kms:*"), json!({"StringEquals": {ec_key: "Finance"}})))
            .ec(&[("dept", "Finance"), ("Project", "x")]).real(Real::default()).want(KP),
    ]
}

fn refusal_cases() -> Vec<Case> {
    let bad = |name, text: &str, message| case(name).key_text(text).refused(message);
    let bad_cond = |name, condition: Value, message| {
        case(name)
            .key(cond(allow(anyone(), "kms:*"), condition))
            .refused(message)
    };
    vec![
        bad("refused: not JSON", "{", "The policy is not valid JSON."),
        bad(
            "refused: Version 2020-01-01",
            &json!({"Version": "2020-01-01", "Statement": allow(anyone(), "kms:*")}).to_string(),
            "The policy Version must be 2012-10-17 or 2008-10-17.",
        ),
        bad(
            "refused: Effect Maybe",
            &doc(stmt("Maybe", anyone(), "kms:*")),
            "Effect must be Allow or Deny.",
        ),
        bad(
            "refused: key policy statement with no principal",
            &doc(without(allow(anyone(), "kms:*"), "Principal")),
            "Policy contains a statement with no principal.",
        ),
        bad(
            "refused: principal that is no ARN",
            &doc(allow(aws("bob"), "kms:*")),
            "Policy contains a statement with one or more invalid principals.",
        ),
        bad(
            "refused: action without a service",
            &doc(allow(anyone(), "encrypt")),
            "Policy contains a statement with one or more invalid actions: encrypt",
        ),
        bad(
            "refused: both Action and NotAction",
            &doc(set(allow(anyone(), "kms:*"), "NotAction", "kms:Encrypt")),
            "A statement cannot have both Action and NotAction.",
        ),
        bad_cond(
            "refused: unknown condition operator",
            json!({"StringSorta": {"kms:CallerAccount": ACCT}}),
            "Policy contains a statement with an invalid condition operator: StringSorta",
        ),
        bad_cond(
            "refused: IfExists on Null",
            json!({"NullIfExists": {"kms:CallerAccount": true}}),
            "Policy contains a statement with an invalid condition operator: NullIfExists",
        ),
        bad_cond(
            "refused: ForAllValues with kms:EncryptionContext:<key>",
            json!({"ForAllValues:StringEquals": {"kms:EncryptionContext:Dept": "IT"}}),
            "OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified encryption context or with an unspecified encryption context. To fix, remove ForAllValues.",
        ),
        bad_cond(
            "refused: ForAllValues with aws:RequestTag/<key>",
            json!({"ForAllValues:StringLike": {"aws:RequestTag/Project": "*"}}),
            "OverlyPermissiveCondition:RequestTag: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified tag or with an unspecified tag. To fix, remove ForAllValues.",
        ),
        bad_cond(
            "refused: Numeric value that is no number",
            json!({"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "ten"}}),
            "Policy contains a statement with an invalid value for condition key kms:ScheduleKeyDeletionPendingWindowInDays under NumericLessThan.",
        ),
        bad_cond(
            "refused: Date value that is no date",
            json!({"DateLessThan": {"aws:CurrentTime": "soon"}}),
            "Policy contains a statement with an invalid value for condition key aws:CurrentTime under DateLessThan.",
        ),
        bad_cond(
            "refused: Bool value that is no boolean",
            json!({"Bool": {"aws:SecureTransport": "maybe"}}),
            "Policy contains a statement with an invalid value for condition key aws:SecureTransport under Bool.",
        ),
        bad_cond(
            "refused: IpAddress with a /33 prefix",
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
            "Policy contains a statement with an invalid value for condition key aws:SourceIp under NotIpAddress.",
        ),
        case("refused: identity policy naming a Principal")
            .act("kms:CreateKey")
            .no_key("*")
            .id_text(&doc(allow(anyone(), "kms:*")))
            .refused("An identity policy statement cannot name a Principal or NotPrincipal."),
        case("refused: identity policy statement with no Resource")
            .act("kms:CreateKey")
            .no_key("*")
            .id(without(id_allow("kms:*", "*"), "Resource"))
            .refused("Policy contains a statement with no resource."),
    ]
}

fn cases() -> Vec<Case> {
    [
        principal_cases(),
        deny_cases(),
        not_principal_cases(),
        cross_account_cases(),
        no_key_cases(),
        action_cases(),
        resource_cases(),
        string_cases(),
        numeric_cases(),
        date_cases(),
        bool_ip_arn_null_cases(),
        combination_cases(),
        grant_cases(),
        real_context_cases(),
        case_variant_cases(),
        refusal_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Running the table

/// The account of an ARN (its fifth part).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// Call `f` with the case's condition keys: its pairs, or a real `access::Context`.
fn with_context<R>(case: &Case, f: impl FnOnce(&dyn RequestContext) -> R) -> R {
    match &case.context {
        Ctx::Pairs(pairs) => {
            let mut map: HashMap<String, Vec<String>> = HashMap::new();
            for (k, v) in pairs {
                map.entry(k.clone()).or_default().push(v.clone());
            }
            f(&map)
        }
        Ctx::Real(r) => {
            let mut caller = Caller::new(account_of(case.caller), "us-east-1", case.caller);
            caller.source_ip = r.source_ip.map(|ip| ip.parse().expect("an IP address"));
            caller.secure_transport = r.secure_transport;
            let record = KeyRecord {
                key_id: case.resource.rsplit('/').next().unwrap().into(),
                account: account_of(case.resource).into(),
                region: "us-east-1".into(),
                creation_date: 0.0,
                description: String::new(),
                key_usage: "ENCRYPT_DECRYPT".into(),
                key_spec: r.key_spec.unwrap_or("SYMMETRIC_DEFAULT").into(),
                origin: "AWS_KMS".into(),
                key_manager: "CUSTOMER".into(),
                state: KeyState::Enabled,
                deletion_date: None,
                pending_window_days: None,
                policy: case.key_policy.clone().unwrap_or_default(),
                tags: r
                    .tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                current_material: None,
                multi_region: false,
                materials: Vec::new(),
                rotation: None,
                on_demand_rotation_start: None,
                on_demand_rotations: 0,
                primary_region: None,
            };
            let tags: Vec<Tag> = r
                .request_tags
                .iter()
                .map(|(k, v)| Tag {
                    tag_key: Some(k.to_string()),
                    tag_value: Some(v.to_string()),
                })
                .collect();
            let facts = Facts {
                encryption_context: case.encryption_context.as_ref(),
                encryption_algorithm: r.encryption_algorithm,
                key_spec: r.create_key_spec,
                request_tags: (!tags.is_empty()).then_some(tags.as_slice()),
                ..Facts::default()
            };
            let aliases = || r.aliases.iter().map(|a| a.to_string()).collect::<Vec<_>>();
            let ctx = Context {
                caller: &caller,
                key: case.key_policy.is_some().then_some(&record),
                request_alias: r.request_alias,
                resource_aliases: &aliases,
                facts: &facts,
                now: r.now,
            };
            f(&ctx)
        }
    }
}

/// The case's policies, parsed: (key policy, identity policies).
fn parse(case: &Case) -> Result<(Option<policy::Policy>, Vec<policy::Policy>), KmsError> {
    let key = case.key_policy.as_deref().map(policy::parse).transpose()?;
    let identity = case
        .identity
        .iter()
        .map(|p| policy::parse_kind(p, Kind::Identity))
        .collect::<Result<_, _>>()?;
    Ok((key, identity))
}

/// Run one case: None if it passed, else what went wrong.
fn run(case: &Case) -> Option<String> {
    let want = case.want.as_ref().expect("every case says what it expects");
    let parsed = parse(case);
    let (key, identity) = match (want, parsed) {
        (Want::Malformed(m), Err(KmsError::MalformedPolicyDocument(got))) if got == *m => {
            return None;
        }
        (Want::Malformed(_), other) => {
            return Some(format!(
                "expected {want:?}, got {:?}",
                other.map(|_| "parsed")
            ));
        }
        (Want::Decision(_), Err(e)) => return Some(format!("expected {want:?}, got {e}")),
        (Want::Decision(_), Ok(p)) => p,
    };
    let Want::Decision(expected) = want else {
        unreachable!()
    };
    let grants: Vec<Arc<Grant>> = case.grants.iter().cloned().map(Arc::new).collect();
    let key_account = account_of(case.resource);
    let got = with_context(case, |context| {
        decide(&Question {
            principal: case.caller,
            account: account_of(case.caller),
            action: case.action,
            resource: case.resource,
            key: key.as_ref().map(|p| (p, key_account)),
            identity: &identity,
            grants: &grants,
            encryption_context: case.encryption_context.as_ref(),
            context,
            grant_check: None,
        })
    });
    if got != *expected {
        return Some(format!("expected {expected:?}, got {got:?}"));
    }
    if let (Some(says), Err(denied)) = (case.says, got) {
        let message = denied.message(case.caller, case.action, case.resource);
        if message != says {
            return Some(format!(
                "message:\n      expected {says}\n      got      {message}"
            ));
        }
    }
    None
}

#[test]
fn every_case_decides_as_aws_does() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        if let Some(why) = run(case) {
            failures.push(format!("  {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_is_large_and_its_names_unique() {
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut seen = std::collections::HashSet::new();
    for c in &cases {
        assert!(seen.insert(c.name), "two cases are named {:?}", c.name);
    }
}

#[test]
fn every_named_condition_key_is_exercised() {
    const KEYS: &[&str] = &[
        "kms:EncryptionContext:",
        "kms:EncryptionContextKeys",
        "kms:CallerAccount",
        "kms:ViaService",
        "kms:EncryptionAlgorithm",
        "kms:SigningAlgorithm",
        "kms:MacAlgorithm",
        "kms:KeySpec",
        "kms:KeyUsage",
        "kms:KeyOrigin",
        "kms:GrantOperations",
        "kms:GranteePrincipal",
        "kms:RetiringPrincipal",
        "kms:GrantIsForAWSResource",
        "kms:RequestAlias",
        "kms:ResourceAliases",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "kms:DataKeyPairSpec",
        "kms:MessageType",
        "kms:BypassPolicyLockoutSafetyCheck",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:SourceIp",
        "aws:CurrentTime",
        "aws:SecureTransport",
        "aws:RequestTag/",
        "aws:ResourceTag/",
        "aws:TagKeys",
    ];
    let texts: Vec<String> = cases()
        .iter()
        .filter(|c| matches!(c.want, Some(Want::Decision(_))))
        .flat_map(|c| c.key_policy.iter().chain(&c.identity).cloned())
        .map(|t| t.to_ascii_lowercase())
        .collect();
    for key in KEYS {
        let k = key.to_ascii_lowercase();
        assert!(
            texts.iter().any(|t| t.contains(&format!("\"{k}"))),
            "no case uses {key}"
        );
    }
}
