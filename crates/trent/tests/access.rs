//! Access control end to end through `aws-sdk-kms` on a non-dev server: the default key policy,
//! key policies naming users, explicit denies and conditions, identity policies from the config
//! file (`[[principals]]`) and from `trent principal policy`, the key policy lockout safety check,
//! other accounts' keys, and grants. Refusals are checked with the exact code and message a client
//! sees. Every test runs its own server with the same cast of principals.

mod common;

use aws_sdk_kms::Client;
use aws_sdk_kms::operation::create_grant::builders::CreateGrantFluentBuilder;
use aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
use aws_sdk_kms::operation::encrypt::builders::EncryptFluentBuilder;
use aws_sdk_kms::operation::put_key_policy::builders::PutKeyPolicyFluentBuilder;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantListEntry, GrantOperation, KeyMetadata};
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends a request that must succeed; its output.
macro_rules! ok {
    ($request:expr) => {
        $request.send().await.unwrap_or_else(|e| {
            panic!(
                "{}: {}",
                stringify!($request),
                aws_sdk_kms::error::DisplayErrorContext(&e)
            )
        })
    };
}

/// Sends a request that must fail with error `code` and exactly `message`.
macro_rules! assert_fails {
    ($request:expr, $code:expr, $message:expr $(,)?) => {
        assert_error($request.send().await, $code, $message)
    };
}

/// Sends a request that must fail with a service error; the error.
macro_rules! fails {
    ($request:expr) => {
        failure($request.send().await)
    };
}

// ---------------------------------------------------------------------------------------------
// Principals

const OTHER_ACCOUNT: &str = "444455556666";
const ADMIN: &str = "arn:aws:iam::111122223333:user/admin";

/// A principal of the config file.
struct User {
    arn: &'static str,
    key: &'static str,
    secret: &'static str,
}

/// Identity policy: Encrypt and Decrypt on every key, and no Decrypt of `class=secret` data.
const ALICE: User = User {
    arn: "arn:aws:iam::111122223333:user/alice",
    key: "AKIAALICE00000000001",
    secret: "alice-secret",
};
/// No identity policy.
const BOB: User = User {
    arn: "arn:aws:iam::111122223333:user/bob",
    key: "AKIABOB0000000000001",
    secret: "bob-secret",
};
/// No identity policy (a grantee of grants bob makes).
const DAN: User = User {
    arn: "arn:aws:iam::111122223333:user/dan",
    key: "AKIADAN0000000000001",
    secret: "dan-secret",
};
/// Other account; identity policy: a few actions on every key of 111122223333 (not Decrypt).
const CAROL: User = User {
    arn: "arn:aws:iam::444455556666:user/carol",
    key: "AKIACAROL00000000001",
    secret: "carol-secret",
};
/// Other account, no identity policy.
const ERIN: User = User {
    arn: "arn:aws:iam::444455556666:user/erin",
    key: "AKIAERIN0000000000001",
    secret: "erin-secret",
};

/// Every principal with its identity policies (name, document).
fn cast() -> Vec<(&'static User, Vec<(&'static str, String)>)> {
    vec![
        (
            &ALICE,
            vec![
                (
                    "kms-user",
                    identity(&[id_allow(&["kms:Encrypt", "kms:Decrypt"], "*")]),
                ),
                (
                    "no-secrets",
                    identity(&[when(
                        id_deny(&["kms:Decrypt"], "*"),
                        json!({"StringEquals": {"kms:EncryptionContext:class": "secret"}}),
                    )]),
                ),
            ],
        ),
        (&BOB, vec![]),
        (&DAN, vec![]),
        (
            &CAROL,
            vec![(
                "shared-keys",
                identity(&[id_allow(
                    &[
                        "kms:Encrypt",
                        "kms:DescribeKey",
                        "kms:DisableKey",
                        "kms:GetKeyPolicy",
                    ],
                    &format!("arn:aws:kms:*:{ACCOUNT}:key/*"),
                )]),
            )],
        ),
        (&ERIN, vec![]),
    ]
}

/// The `[[principals]]` of a config file.
fn config_toml(users: &[(&User, Vec<(&str, String)>)]) -> String {
    let mut out = String::new();
    for (u, policies) in users {
        out.push_str(&format!(
            "[[principals]]\narn = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n[principals.policies]\n",
            u.arn, u.key, u.secret
        ));
        for (name, doc) in policies {
            assert!(!doc.contains('\''), "a TOML literal string holds no quote");
            out.push_str(&format!("{name} = '{doc}'\n"));
        }
    }
    out
}

/// A server on a fresh data directory with the given principals, and its admin's client.
struct Env {
    server: Server,
    admin: Client,
    _tmp: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        Env::with(&cast())
    }

    /// One start of a new data directory: the admin principal is made, and the config file's
    /// principals added.
    fn with(users: &[(&User, Vec<(&str, String)>)]) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let config = tmp.path().join("trent.toml");
        std::fs::write(&config, config_toml(users)).unwrap();
        let server = Server::on_dir_with(&dir, &["--config", config.to_str().unwrap()]);
        let admin = server.client();
        Env {
            server,
            admin,
            _tmp: tmp,
        }
    }

    fn client(&self, u: &User) -> Client {
        self.server.client_with(REGION, u.key, u.secret)
    }

    fn dir(&self) -> &Path {
        self.server.data_dir.as_deref().unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Policies

fn root(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

fn document(statements: &[Value]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// A key policy.
fn key_policy(statements: &[Value]) -> String {
    document(statements)
}

/// An identity policy.
fn identity(statements: &[Value]) -> String {
    document(statements)
}

fn key_statement(effect: &str, principal: &str, actions: &[&str]) -> Value {
    json!({"Effect": effect, "Principal": {"AWS": principal}, "Action": actions, "Resource": "*"})
}

fn allow(principal: &str, actions: &[&str]) -> Value {
    key_statement("Allow", principal, actions)
}

fn deny(principal: &str, actions: &[&str]) -> Value {
    key_statement("Deny", principal, actions)
}

fn id_allow(actions: &[&str], resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": actions, "Resource": resource})
}

fn id_deny(actions: &[&str], resource: &str) -> Value {
    json!({"Effect": "Deny", "Action": actions, "Resource": resource})
}

fn when(mut statement: Value, condition: Value) -> Value {
    statement["Condition"] = condition;
    statement
}

/// The key policy statement of the default policy: the account decides through identity policies.
fn account_statement() -> Value {
    allow(&root(ACCOUNT), &["kms:*"])
}

// ---------------------------------------------------------------------------------------------
// Refusals

const ACCESS_DENIED: &str = "AccessDeniedException";
const MALFORMED: &str = "MalformedPolicyDocumentException";
const LOCKOUT: &str =
    "The new key policy will not allow you to update the key policy in the future.";

/// Why a request is refused, in AWS's words.
#[derive(Debug, Clone, Copy)]
enum Why {
    NoIdentityAllow,
    NoKeyPolicyAllow,
    KeyPolicyDeny,
    IdentityDeny,
}
use Why::*;

fn denied(user: &str, action: &str, resource: &str, why: Why) -> String {
    let head =
        format!("User: {user} is not authorized to perform: kms:{action} on resource: {resource}");
    match why {
        NoIdentityAllow => {
            format!("{head} because no identity-based policy allows the kms:{action} action")
        }
        NoKeyPolicyAllow => {
            format!("{head} because no resource-based policy allows the kms:{action} action")
        }
        KeyPolicyDeny => format!("{head} with an explicit deny in a resource-based policy"),
        IdentityDeny => format!("{head} with an explicit deny in an identity-based policy"),
    }
}

/// The refusal of another account's key, the same whether the key exists or not.
fn hidden(user: &str, action: &str) -> String {
    format!(
        "User: {user} is not authorized to perform: kms:{action} on this resource because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access"
    )
}

/// Checks every `(failure, expected AccessDeniedException message)`, reporting all mismatches.
#[track_caller]
fn assert_refusals(cases: Vec<(ServiceFailure, String)>) {
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(f, msg)| {
            (f.code.as_str(), f.message_text(), f.status) != (ACCESS_DENIED, msg, 400)
        })
        .map(|(f, msg)| format!("expected {msg:?}\n     got {f:?}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Requests

const PLAINTEXT: &[u8] = b"access control";

fn context(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

fn encrypt(kms: &Client, key: &str, ctx: &[(&str, &str)]) -> EncryptFluentBuilder {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(PLAINTEXT))
        .set_encryption_context(context(ctx))
}

fn decrypt(kms: &Client, blob: &[u8], ctx: &[(&str, &str)]) -> DecryptFluentBuilder {
    kms.decrypt()
        .ciphertext_blob(Blob::new(blob))
        .set_encryption_context(context(ctx))
}

/// Encrypts under `key` with `ctx`, which must succeed; returns the ciphertext.
async fn sealed(kms: &Client, key: &str, ctx: &[(&str, &str)]) -> Vec<u8> {
    ok!(encrypt(kms, key, ctx))
        .ciphertext_blob
        .unwrap()
        .into_inner()
}

/// Encrypt then Decrypt, which must both succeed.
async fn round_trip(kms: &Client, key: &str, ctx: &[(&str, &str)]) {
    let blob = sealed(kms, key, ctx).await;
    let out = ok!(decrypt(kms, &blob, ctx));
    assert_eq!(out.plaintext().unwrap().as_ref(), PLAINTEXT);
}

/// A new symmetric key of the admin's, with `policy` or the default one.
async fn new_key(kms: &Client, policy: Option<String>) -> KeyMetadata {
    created_key(kms.create_key().set_policy(policy)).await
}

fn arn_of(md: &KeyMetadata) -> &str {
    md.arn().unwrap()
}

async fn key_policy_of(kms: &Client, key: &str) -> Value {
    let text = ok!(kms.get_key_policy().key_id(key)).policy.unwrap();
    serde_json::from_str(&text).unwrap()
}

fn put_policy(kms: &Client, key: &str, policy: impl Into<String>) -> PutKeyPolicyFluentBuilder {
    kms.put_key_policy().key_id(key).policy(policy)
}

fn grant(
    kms: &Client,
    key: &str,
    grantee: &User,
    ops: &[GrantOperation],
) -> CreateGrantFluentBuilder {
    kms.create_grant()
        .key_id(key)
        .grantee_principal(grantee.arn)
        .set_operations(Some(ops.to_vec()))
}

fn subset(pairs: &[(&str, &str)]) -> GrantConstraints {
    GrantConstraints::builder()
        .set_encryption_context_subset(context(pairs))
        .build()
}

/// Sends a CreateGrant that must succeed: (grant id, grant token).
async fn granted(request: CreateGrantFluentBuilder) -> (String, String) {
    let out = ok!(request);
    (out.grant_id.unwrap(), out.grant_token.unwrap())
}

async fn grants_of(kms: &Client, key: &str) -> Vec<GrantListEntry> {
    ok!(kms.list_grants().key_id(key))
        .grants
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The default key policy and identity policies

#[tokio::test]
async fn admin_holds_every_permission_under_the_default_key_policy() {
    let env = Env::start();
    let kms = &env.admin;
    let md = new_key(kms, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    assert_eq!(
        key_policy_of(kms, id).await,
        json!({
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [{
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": root(ACCOUNT)},
                "Action": "kms:*",
                "Resource": "*"
            }]
        })
    );
    round_trip(kms, arn, &[("k", "v")]).await;
    ok!(kms.describe_key().key_id(id));
    ok!(kms.list_keys());
    ok!(kms
        .create_alias()
        .alias_name("alias/admin")
        .target_key_id(id));
    round_trip(kms, "alias/admin", &[]).await;
    ok!(kms.tag_resource().key_id(id).tags(
        aws_sdk_kms::types::Tag::builder()
            .tag_key("t")
            .tag_value("v")
            .build()
            .unwrap(),
    ));
    ok!(kms.update_key_description().key_id(id).description("d"));
    ok!(kms.disable_key().key_id(id));
    ok!(kms.enable_key().key_id(id));
    ok!(put_policy(kms, id, key_policy(&[account_statement()])));
    let (grant_id, _) = granted(grant(kms, id, &BOB, &[GrantOperation::Encrypt])).await;
    ok!(kms.revoke_grant().key_id(id).grant_id(&grant_id));
    ok!(kms
        .schedule_key_deletion()
        .key_id(id)
        .pending_window_in_days(7));
    ok!(kms.cancel_key_deletion().key_id(id));
}

#[tokio::test]
async fn a_user_without_identity_policy_may_do_nothing_under_the_default_key_policy() {
    let env = Env::start();
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let blob = sealed(&env.admin, id, &[]).await;
    let bob = env.client(&BOB);
    let no = |action: &str, resource: &str| denied(BOB.arn, action, resource, NoIdentityAllow);
    assert_refusals(vec![
        (fails!(bob.create_key()), no("CreateKey", "*")),
        (fails!(bob.list_keys()), no("ListKeys", "*")),
        (fails!(encrypt(&bob, id, &[])), no("Encrypt", arn)),
        (fails!(encrypt(&bob, arn, &[])), no("Encrypt", arn)),
        (fails!(decrypt(&bob, &blob, &[])), no("Decrypt", arn)),
        (
            fails!(bob.describe_key().key_id(id)),
            no("DescribeKey", arn),
        ),
        (fails!(bob.disable_key().key_id(id)), no("DisableKey", arn)),
        (
            fails!(bob.get_key_policy().key_id(id)),
            no("GetKeyPolicy", arn),
        ),
        (
            fails!(grant(&bob, id, &BOB, &[GrantOperation::Encrypt])),
            no("CreateGrant", arn),
        ),
    ]);
    // Nothing was created on bob's behalf, and the key is untouched.
    let keys = ok!(env.admin.list_keys());
    assert_eq!(keys.keys().len(), 1, "{keys:?}");
    assert!(grants_of(&env.admin, id).await.is_empty());
}

#[tokio::test]
async fn identity_policy_allows_its_actions_and_its_deny_wins() {
    let env = Env::start();
    let alice = env.client(&ALICE);
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    round_trip(&alice, id, &[("class", "public")]).await;
    let secret = sealed(&alice, id, &[("class", "secret")]).await;
    assert_refusals(vec![
        (
            fails!(decrypt(&alice, &secret, &[("class", "secret")])),
            denied(ALICE.arn, "Decrypt", arn, IdentityDeny),
        ),
        (
            fails!(alice.describe_key().key_id(id)),
            denied(ALICE.arn, "DescribeKey", arn, NoIdentityAllow),
        ),
        (
            fails!(alice.create_key()),
            denied(ALICE.arn, "CreateKey", "*", NoIdentityAllow),
        ),
    ]);
    // The identity deny beats a key policy that names alice herself.
    let mine = new_key(
        &env.admin,
        Some(key_policy(&[
            account_statement(),
            allow(ALICE.arn, &["kms:*"]),
        ])),
    )
    .await;
    let blob = sealed(&alice, mine.key_id(), &[("class", "secret")]).await;
    assert_fails!(
        decrypt(&alice, &blob, &[("class", "secret")]),
        ACCESS_DENIED,
        &denied(ALICE.arn, "Decrypt", arn_of(&mine), IdentityDeny),
    );
    // ... and the admin, whose identity policy has no deny, decrypts it.
    ok!(decrypt(&env.admin, &secret, &[("class", "secret")]));
}

// ---------------------------------------------------------------------------------------------
// Key policies

#[tokio::test]
async fn key_policy_naming_a_user_needs_no_identity_policy() {
    let env = Env::start();
    let (bob, alice) = (env.client(&BOB), env.client(&ALICE));
    // With the account statement: bob's listed actions work; the rest is up to identity policies.
    let shared = new_key(
        &env.admin,
        Some(key_policy(&[
            account_statement(),
            allow(BOB.arn, &["kms:Encrypt", "kms:Decrypt"]),
        ])),
    )
    .await;
    round_trip(&bob, shared.key_id(), &[]).await;
    round_trip(&alice, shared.key_id(), &[]).await;
    // Without it: identity policies count for nothing.
    let own = new_key(
        &env.admin,
        Some(key_policy(&[
            allow(ADMIN, &["kms:*"]),
            allow(BOB.arn, &["kms:Encrypt"]),
        ])),
    )
    .await;
    let blob = sealed(&bob, own.key_id(), &[]).await;
    let (shared_arn, own_arn) = (arn_of(&shared), arn_of(&own));
    assert_refusals(vec![
        (
            fails!(bob.describe_key().key_id(shared_arn)),
            denied(BOB.arn, "DescribeKey", shared_arn, NoIdentityAllow),
        ),
        (
            fails!(decrypt(&bob, &blob, &[])),
            denied(BOB.arn, "Decrypt", own_arn, NoKeyPolicyAllow),
        ),
        (
            fails!(encrypt(&alice, own_arn, &[])),
            denied(ALICE.arn, "Encrypt", own_arn, NoKeyPolicyAllow),
        ),
    ]);
    ok!(decrypt(&env.admin, &blob, &[]));
}

#[tokio::test]
async fn explicit_deny_in_the_key_policy_beats_every_allow() {
    let env = Env::start();
    let (bob, alice) = (env.client(&BOB), env.client(&ALICE));
    let md = new_key(
        &env.admin,
        Some(key_policy(&[
            account_statement(),
            allow(BOB.arn, &["kms:Encrypt", "kms:Decrypt"]),
            deny(BOB.arn, &["kms:Decrypt"]),
            deny(ALICE.arn, &["kms:Encrypt"]),
        ])),
    )
    .await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let blob = sealed(&bob, id, &[]).await;
    // Not even a grant lets bob through.
    granted(grant(&env.admin, id, &BOB, &[GrantOperation::Decrypt])).await;
    assert_refusals(vec![
        (
            fails!(decrypt(&bob, &blob, &[])),
            denied(BOB.arn, "Decrypt", arn, KeyPolicyDeny),
        ),
        (
            fails!(encrypt(&alice, id, &[])),
            denied(ALICE.arn, "Encrypt", arn, KeyPolicyDeny),
        ),
    ]);
    ok!(decrypt(&alice, &blob, &[]));
    round_trip(&env.admin, id, &[]).await;
}

#[tokio::test]
async fn key_policy_condition_on_the_encryption_context() {
    let env = Env::start();
    let bob = env.client(&BOB);
    let md = new_key(
        &env.admin,
        Some(key_policy(&[
            account_statement(),
            when(
                allow(BOB.arn, &["kms:Encrypt", "kms:Decrypt"]),
                json!({"StringEquals": {"kms:EncryptionContext:dept": "it"}}),
            ),
        ])),
    )
    .await;
    let arn = arn_of(&md);
    // The key name in the condition key is not case-sensitive; the value is.
    for ctx in [
        &[("dept", "it")][..],
        &[("DEPT", "it")],
        &[("dept", "it"), ("x", "y")],
    ] {
        round_trip(&bob, arn, ctx).await;
    }
    let refused = [
        &[][..],
        &[("dept", "IT")],
        &[("dept", "hr")],
        &[("team", "it")],
    ];
    let mut cases = Vec::new();
    for ctx in refused {
        cases.push((
            fails!(encrypt(&bob, arn, ctx)),
            denied(BOB.arn, "Encrypt", arn, NoIdentityAllow),
        ));
    }
    assert_refusals(cases);
}

// ---------------------------------------------------------------------------------------------
// The key policy lockout safety check

/// Key policies that leave the admin unable to call PutKeyPolicy.
fn lockout_policies() -> Vec<String> {
    vec![
        key_policy(&[allow(BOB.arn, &["kms:*"])]),
        key_policy(&[account_statement(), deny(ADMIN, &["kms:PutKeyPolicy"])]),
        key_policy(&[
            allow(ADMIN, &["kms:Encrypt", "kms:GetKeyPolicy"]),
            allow(BOB.arn, &["kms:*"]),
        ]),
    ]
}

#[tokio::test]
async fn put_key_policy_refuses_a_policy_that_locks_the_caller_out() {
    let env = Env::start();
    let kms = &env.admin;
    let id = new_key(kms, None).await.key_id().to_owned();
    let before = key_policy_of(kms, &id).await;
    for policy in lockout_policies() {
        assert_fails!(put_policy(kms, &id, &policy), MALFORMED, LOCKOUT);
        assert_fails!(
            put_policy(kms, &id, &policy).bypass_policy_lockout_safety_check(false),
            MALFORMED,
            LOCKOUT,
        );
    }
    assert_eq!(key_policy_of(kms, &id).await, before);
    // A policy that names the admin with PutKeyPolicy passes.
    let keeps = key_policy(&[allow(ADMIN, &["kms:PutKeyPolicy", "kms:GetKeyPolicy"])]);
    ok!(put_policy(kms, &id, &keeps));
    assert_eq!(
        key_policy_of(kms, &id).await,
        serde_json::from_str::<Value>(&keeps).unwrap()
    );
}

#[tokio::test]
async fn bypassing_the_lockout_check_locks_the_caller_out() {
    let env = Env::start();
    let (kms, bob) = (&env.admin, env.client(&BOB));
    let md = new_key(kms, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let bob_only = key_policy(&[allow(BOB.arn, &["kms:*"])]);
    ok!(put_policy(kms, id, &bob_only).bypass_policy_lockout_safety_check(true));
    assert_refusals(vec![
        (
            fails!(kms.get_key_policy().key_id(id)),
            denied(ADMIN, "GetKeyPolicy", arn, NoKeyPolicyAllow),
        ),
        (
            fails!(
                put_policy(kms, id, key_policy(&[account_statement()]))
                    .bypass_policy_lockout_safety_check(true)
            ),
            denied(ADMIN, "PutKeyPolicy", arn, NoKeyPolicyAllow),
        ),
        (
            fails!(encrypt(kms, id, &[])),
            denied(ADMIN, "Encrypt", arn, NoKeyPolicyAllow),
        ),
    ]);
    // Bob, named by the policy, reads it; the check holds him to a policy that keeps him in.
    assert_eq!(
        key_policy_of(&bob, id).await,
        serde_json::from_str::<Value>(&bob_only).unwrap()
    );
    assert_fails!(
        put_policy(&bob, id, key_policy(&[account_statement()])),
        MALFORMED,
        LOCKOUT,
    );
    ok!(put_policy(
        &bob,
        id,
        key_policy(&[account_statement(), allow(BOB.arn, &["kms:*"])])
    ));
    round_trip(kms, id, &[]).await;
}

#[tokio::test]
async fn create_key_refuses_a_policy_that_locks_the_caller_out() {
    let env = Env::start();
    let (kms, bob) = (&env.admin, env.client(&BOB));
    for policy in lockout_policies() {
        assert_fails!(kms.create_key().policy(&policy), MALFORMED, LOCKOUT);
    }
    assert!(ok!(kms.list_keys()).keys().is_empty());
    let locked = created_key(
        kms.create_key()
            .policy(key_policy(&[allow(BOB.arn, &["kms:*"])]))
            .bypass_policy_lockout_safety_check(true),
    )
    .await;
    let arn = arn_of(&locked);
    assert_refusals(vec![
        (
            fails!(kms.describe_key().key_id(arn)),
            denied(ADMIN, "DescribeKey", arn, NoKeyPolicyAllow),
        ),
        (
            fails!(kms.get_key_policy().key_id(arn)),
            denied(ADMIN, "GetKeyPolicy", arn, NoKeyPolicyAllow),
        ),
    ]);
    round_trip(&bob, arn, &[]).await;
    // A policy that keeps the creator able to update it needs no bypass.
    let kept = new_key(kms, Some(key_policy(&[allow(ADMIN, &["kms:*"])]))).await;
    round_trip(kms, kept.key_id(), &[]).await;
}

// ---------------------------------------------------------------------------------------------
// Other accounts

/// A key of the admin's whose policy lets account 444455556666 do anything (by key ARN).
async fn shared_key(kms: &Client) -> KeyMetadata {
    new_key(
        kms,
        Some(key_policy(&[
            account_statement(),
            allow(OTHER_ACCOUNT, &["kms:*"]),
        ])),
    )
    .await
}

#[tokio::test]
async fn other_account_uses_a_shared_key_by_arn() {
    let env = Env::start();
    let carol = env.client(&CAROL);
    let md = shared_key(&env.admin).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    ok!(env
        .admin
        .create_alias()
        .alias_name("alias/shared")
        .target_key_id(id));
    let blob = sealed(&carol, arn, &[("who", "carol")]).await;
    let opened = ok!(decrypt(&env.admin, &blob, &[("who", "carol")]));
    assert_eq!(opened.plaintext().unwrap().as_ref(), PLAINTEXT);
    sealed(&carol, &alias_arn(REGION, ACCOUNT, "alias/shared"), &[]).await;
    let described = ok!(carol.describe_key().key_id(arn)).key_metadata.unwrap();
    assert_eq!(
        (described.arn(), described.aws_account_id()),
        (Some(arn), Some(ACCOUNT))
    );
    // A bare key id names a key of carol's own account.
    assert_fails!(
        encrypt(&carol, id, &[]),
        "NotFoundException",
        &not_found_message(REGION, OTHER_ACCOUNT, id),
    );
    // Her identity policy allows no Decrypt; key management is never allowed across accounts,
    // whatever both policies say.
    assert_refusals(vec![
        (
            fails!(decrypt(&carol, &blob, &[("who", "carol")])),
            hidden(CAROL.arn, "Decrypt"),
        ),
        (
            fails!(carol.disable_key().key_id(arn)),
            hidden(CAROL.arn, "DisableKey"),
        ),
        (
            fails!(carol.get_key_policy().key_id(arn)),
            hidden(CAROL.arn, "GetKeyPolicy"),
        ),
    ]);
}

#[tokio::test]
async fn other_account_is_refused_without_learning_whether_the_key_exists() {
    let env = Env::start();
    let (carol, erin) = (env.client(&CAROL), env.client(&ERIN));
    let shared = shared_key(&env.admin).await;
    let private = new_key(&env.admin, None).await;
    ok!(env
        .admin
        .create_alias()
        .alias_name("alias/private")
        .target_key_id(private.key_id()));
    let missing = key_arn(REGION, ACCOUNT, "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c");
    let missing_alias = alias_arn(REGION, ACCOUNT, "alias/none");
    let private_alias = alias_arn(REGION, ACCOUNT, "alias/private");
    let mut cases = Vec::new();
    // erin's account is allowed by the key policy, but no identity policy of hers allows it.
    cases.push((
        fails!(encrypt(&erin, arn_of(&shared), &[])),
        hidden(ERIN.arn, "Encrypt"),
    ));
    // carol's identity policy allows Encrypt on every key of the account; the key policy or the
    // key is missing.
    for key in [arn_of(&private), &private_alias, &missing, &missing_alias] {
        cases.push((
            fails!(encrypt(&carol, key, &[])),
            hidden(CAROL.arn, "Encrypt"),
        ));
    }
    for key in [arn_of(&shared), &missing] {
        cases.push((
            fails!(carol.disable_key().key_id(key)),
            hidden(CAROL.arn, "DisableKey"),
        ));
        cases.push((
            fails!(erin.schedule_key_deletion().key_id(key)),
            hidden(ERIN.arn, "ScheduleKeyDeletion"),
        ));
    }
    assert_refusals(cases);
    let md = ok!(env.admin.describe_key().key_id(arn_of(&shared)))
        .key_metadata
        .unwrap();
    assert!(md.enabled());
    assert_eq!(md.deletion_date(), None);
}

#[tokio::test]
async fn principal_policy_put_takes_effect_on_the_running_server() {
    // carol without her identity policy.
    let mut users = cast();
    users.retain(|(u, _)| u.arn != CAROL.arn);
    users.push((&CAROL, vec![]));
    let env = Env::with(&users);
    let carol = env.client(&CAROL);
    let md = shared_key(&env.admin).await;
    let arn = arn_of(&md).to_owned();
    assert_fails!(
        encrypt(&carol, &arn, &[]),
        ACCESS_DENIED,
        &hidden(CAROL.arn, "Encrypt"),
    );
    let dir = env.dir().to_str().unwrap().to_owned();
    let document = identity(&[id_allow(&["kms:Encrypt"], &arn)]);
    let out = policy_cli(
        &dir,
        &[
            "put",
            "--arn",
            CAROL.arn,
            "--name",
            "use-shared",
            "--document",
            &document,
        ],
    );
    assert!(out.contains("attached use-shared to"), "{out}");
    let (c, a) = (&carol, arn.as_str());
    let took = poll(|| async move { encrypt(c, a, &[]).send().await.is_ok() }).await;
    eprintln!("policy put took effect after {took:?}");
    policy_cli(
        &dir,
        &["delete", "--arn", CAROL.arn, "--name", "use-shared"],
    );
    poll(|| async move { encrypt(c, a, &[]).send().await.is_err() }).await;
    assert_fails!(
        encrypt(&carol, &arn, &[]),
        ACCESS_DENIED,
        &hidden(CAROL.arn, "Encrypt"),
    );
}

/// `trent principal --data-dir DIR policy ARGS...`, which must succeed; returns its output.
fn policy_cli(dir: &str, args: &[&str]) -> String {
    let mut all = vec!["principal", "--data-dir", dir, "policy"];
    all.extend_from_slice(args);
    let out = run_to_exit(&all, Duration::from_secs(30));
    assert!(out.status.success(), "trent {all:?}: {}", out.output);
    out.output
}

/// Polls `check` until it holds; it must within 2.5 s (the server re-reads principals and
/// identity policies every second). Returns how long it took.
async fn poll<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "no effect within {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Grants

const DRY_RUN_MSG: &str = "The request would have succeeded, but the DryRun option is set.";

/// The grant every grant test starts from: bob may Encrypt and Decrypt with `purpose=test` in the
/// context; alice may retire it.
fn bob_grant(kms: &Client, key: &str) -> CreateGrantFluentBuilder {
    grant(
        kms,
        key,
        &BOB,
        &[GrantOperation::Encrypt, GrantOperation::Decrypt],
    )
    .retiring_principal(ALICE.arn)
    .name("bob-encrypts")
    .constraints(subset(&[("purpose", "test")]))
}

#[tokio::test]
async fn grant_allows_its_operations_within_its_constraints() {
    let env = Env::start();
    let bob = env.client(&BOB);
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let (grant_id, token) = granted(bob_grant(&env.admin, id)).await;
    assert!(is_hex64(&grant_id), "{grant_id}");
    for ctx in [
        &[("purpose", "test")][..],
        &[("PURPOSE", "test"), ("extra", "1")],
    ] {
        round_trip(&bob, arn, ctx).await;
    }
    // The token works in GrantTokens too.
    let blob = ok!(encrypt(&bob, arn, &[("purpose", "test")]).grant_tokens(&token))
        .ciphertext_blob
        .unwrap();
    ok!(decrypt(&bob, blob.as_ref(), &[("purpose", "test")]).grant_tokens(&token));
    let no = |action: &str| denied(BOB.arn, action, arn, NoIdentityAllow);
    let mut cases = Vec::new();
    for ctx in [&[][..], &[("purpose", "TEST")], &[("other", "test")]] {
        cases.push((fails!(encrypt(&bob, arn, ctx)), no("Encrypt")));
    }
    cases.push((
        fails!(bob.generate_data_key().key_id(arn).number_of_bytes(32)),
        no("GenerateDataKey"),
    ));
    cases.push((fails!(bob.describe_key().key_id(arn)), no("DescribeKey")));
    assert_refusals(cases);
    // Another user gets nothing from bob's grant, token or not.
    let dan = env.client(&DAN);
    assert_fails!(
        encrypt(&dan, arn, &[("purpose", "test")]).grant_tokens(&token),
        ACCESS_DENIED,
        &denied(DAN.arn, "Encrypt", arn, NoIdentityAllow),
    );
}

#[tokio::test]
async fn list_grants_shows_each_grant_and_a_name_makes_create_grant_a_retry() {
    let env = Env::start();
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let (grant_id, token) = granted(bob_grant(&env.admin, id)).await;
    let (again_id, again_token) = granted(bob_grant(&env.admin, id)).await;
    assert_eq!(
        again_id, grant_id,
        "a repeated named CreateGrant is a retry"
    );
    assert_ne!(again_token, token, "each CreateGrant gets its own token");
    // Both tokens work.
    for t in [&token, &again_token] {
        ok!(encrypt(&env.client(&BOB), arn, &[("purpose", "test")]).grant_tokens(t));
    }
    let grants = grants_of(&env.admin, arn).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    let g = &grants[0];
    assert_eq!(
        (
            g.key_id(),
            g.grant_id(),
            g.name(),
            g.grantee_principal(),
            g.retiring_principal(),
            g.issuing_account(),
            g.operations(),
        ),
        (
            Some(arn),
            Some(grant_id.as_str()),
            Some("bob-encrypts"),
            Some(BOB.arn),
            Some(ALICE.arn),
            Some(root(ACCOUNT).as_str()),
            &[GrantOperation::Encrypt, GrantOperation::Decrypt][..],
        )
    );
    assert_eq!(g.constraints(), Some(&subset(&[("purpose", "test")])));
    let created = g.creation_date().expect("CreationDate").secs();
    assert!((now_secs() - created).abs() < 60, "CreationDate {created}");
    // The same name asking for something else is a new grant.
    let (other_id, _) =
        granted(grant(&env.admin, id, &BOB, &[GrantOperation::Encrypt]).name("bob-encrypts")).await;
    assert_ne!(other_id, grant_id);
    assert_eq!(grants_of(&env.admin, id).await.len(), 2);
}

#[tokio::test]
async fn retired_and_revoked_grants_stop_working() {
    let env = Env::start();
    let (bob, alice) = (env.client(&BOB), env.client(&ALICE));
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let ctx = &[("purpose", "test")][..];
    let refused = || denied(BOB.arn, "Encrypt", arn, NoIdentityAllow);

    let (retired_id, token) = granted(bob_grant(&env.admin, id)).await;
    // Only the retiring principal (or the key's account) may retire it; bob may not.
    assert_fails!(
        bob.retire_grant().grant_token(&token),
        ACCESS_DENIED,
        &denied(BOB.arn, "RetireGrant", arn, NoIdentityAllow),
    );
    ok!(alice.retire_grant().grant_token(&token));
    assert_fails!(encrypt(&bob, arn, ctx), ACCESS_DENIED, &refused());
    assert!(grants_of(&env.admin, id).await.is_empty());
    assert_fails!(
        alice.retire_grant().grant_token(&token),
        "NotFoundException",
        &format!("Grant ID {retired_id} not found"),
    );

    let (revoked_id, token) = granted(bob_grant(&env.admin, id)).await;
    assert_ne!(
        revoked_id, retired_id,
        "a retired grant's name is free again"
    );
    round_trip(&bob, arn, ctx).await;
    ok!(env.admin.revoke_grant().key_id(id).grant_id(&revoked_id));
    assert_fails!(
        encrypt(&bob, arn, ctx).grant_tokens(&token),
        ACCESS_DENIED,
        &refused(),
    );
    assert_fails!(
        env.admin.revoke_grant().key_id(id).grant_id(&revoked_id),
        "NotFoundException",
        &format!("Grant ID {revoked_id} not found"),
    );
    assert!(grants_of(&env.admin, id).await.is_empty());
}

#[tokio::test]
async fn create_grant_refusals() {
    let env = Env::start();
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    assert_fails!(
        grant(
            &env.admin,
            id,
            &BOB,
            &[GrantOperation::Encrypt, GrantOperation::Sign],
        ),
        "ValidationException",
        &format!(
            "Grant operations [Sign] are not valid for key {arn}: its key spec is SYMMETRIC_DEFAULT and its key usage ENCRYPT_DECRYPT."
        ),
    );
    for bad in ["not-a-token", "AQAB"] {
        assert_fails!(
            bob_grant(&env.admin, id).grant_tokens(bad),
            "InvalidGrantTokenException",
            "Invalid grant token",
        );
        assert_fails!(
            encrypt(&env.client(&BOB), arn, &[("purpose", "test")]).grant_tokens(bad),
            "InvalidGrantTokenException",
            "Invalid grant token",
        );
    }
    assert_fails!(
        bob_grant(&env.admin, id).dry_run(true),
        "DryRunOperationException",
        DRY_RUN_MSG,
    );
    assert!(
        grants_of(&env.admin, id).await.is_empty(),
        "a dry run made a grant"
    );
    assert_fails!(
        encrypt(&env.client(&BOB), arn, &[("purpose", "test")]),
        ACCESS_DENIED,
        &denied(BOB.arn, "Encrypt", arn, NoIdentityAllow),
    );
}

#[tokio::test]
async fn grant_with_create_grant_delegates_within_itself() {
    let env = Env::start();
    let (bob, dan) = (env.client(&BOB), env.client(&DAN));
    let md = new_key(&env.admin, None).await;
    let (id, arn) = (md.key_id(), arn_of(&md));
    let parent = &[("project", "alpha")][..];
    granted(
        grant(
            &env.admin,
            id,
            &BOB,
            &[
                GrantOperation::Encrypt,
                GrantOperation::Decrypt,
                GrantOperation::CreateGrant,
            ],
        )
        .constraints(subset(parent)),
    )
    .await;
    // Within the parent: fewer operations, a stricter constraint.
    let child = &[("project", "alpha"), ("team", "t")][..];
    let (child_id, _) =
        granted(grant(&bob, arn, &DAN, &[GrantOperation::Encrypt]).constraints(subset(child)))
            .await;
    sealed(&dan, arn, child).await;
    let listed = grants_of(&env.admin, id).await;
    let entry = listed
        .iter()
        .find(|g| g.grant_id() == Some(child_id.as_str()))
        .expect("the sub-grant is listed");
    assert_eq!(
        (entry.grantee_principal(), entry.issuing_account()),
        (Some(DAN.arn), Some(root(ACCOUNT).as_str()))
    );
    let beyond = denied(BOB.arn, "CreateGrant", arn, NoIdentityAllow);
    assert_refusals(vec![
        // dan's grant keeps its own constraint.
        (
            fails!(encrypt(&dan, arn, parent)),
            denied(DAN.arn, "Encrypt", arn, NoIdentityAllow),
        ),
        // An operation the parent lacks.
        (
            fails!(
                grant(
                    &bob,
                    arn,
                    &DAN,
                    &[GrantOperation::Encrypt, GrantOperation::GenerateDataKey],
                )
                .constraints(subset(parent))
            ),
            beyond.clone(),
        ),
        // A looser constraint than the parent's (none).
        (
            fails!(grant(&bob, arn, &DAN, &[GrantOperation::Encrypt])),
            beyond.clone(),
        ),
        (
            fails!(
                grant(&bob, arn, &DAN, &[GrantOperation::Encrypt])
                    .constraints(subset(&[("team", "t")]))
            ),
            beyond,
        ),
        // dan's grant has no CreateGrant to pass on.
        (
            fails!(grant(&dan, arn, &DAN, &[GrantOperation::Encrypt]).constraints(subset(child))),
            denied(DAN.arn, "CreateGrant", arn, NoIdentityAllow),
        ),
    ]);
    assert_eq!(grants_of(&env.admin, id).await.len(), 2);
}
