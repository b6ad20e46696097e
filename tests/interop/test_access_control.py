"""Access control on a non-dev server, end to end: key policies, identity policies (from the config
file and from `trent principal policy`), conditions, cross-account use, explicit denies and the key
policy lockout safety check, through boto3 and the AWS CLI.

One server per module, its principals in a config file: account 111122223333 (admin, alice, bob,
the role app, dave, keymaker, frank) and account 444455556666 (carol, erin and the account's root).
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from kmsutil import (
    DEV_ACCOUNT,
    KEY_ADMIN_ACTIONS,
    ConfiguredPrincipal,
    account_root_arn,
    allow,
    default_policy,
    deny,
    denied_message,
    expect_error,
    hidden_key_message,
    key_arn,
    make_kms_client,
    not_found_key_message,
    policy_doc,
    wait_until,
)

A = DEV_ACCOUNT  # 111122223333
B = "444455556666"
LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]


def user(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


PRINCIPALS = [
    ConfiguredPrincipal("admin", user(A, "admin"), {"AdministratorAccess": policy_doc(allow("kms:*"))}),
    ConfiguredPrincipal("alice", user(A, "alice"), {"kms-user": policy_doc(allow(USE_ACTIONS))}),
    ConfiguredPrincipal("bob", user(A, "bob")),
    ConfiguredPrincipal("app", f"arn:aws:iam::{A}:role/app"),
    ConfiguredPrincipal("dave", user(A, "dave"), {
        "everything": policy_doc(allow("kms:*")),
        "never-decrypt": policy_doc(deny("kms:Decrypt")),
    }),
    ConfiguredPrincipal("keymaker", user(A, "keymaker"), {
        "symmetric-keys-only": policy_doc(
            allow("kms:CreateKey", condition={"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}})),
    }),
    ConfiguredPrincipal("frank", user(A, "frank")),
    ConfiguredPrincipal("carol", user(B, "carol"), {
        "use-partner-keys": policy_doc(allow(USE_ACTIONS, f"arn:aws:kms:*:{A}:key/*")),
    }),
    ConfiguredPrincipal("erin", user(B, "erin")),
    ConfiguredPrincipal("broot", account_root_arn(B)),
    ConfiguredPrincipal("tagger", user(A, "tagger"), {
        "tags-but-not-finance": policy_doc(
            allow(["kms:CreateKey", "kms:TagResource"]),
            deny(["kms:CreateKey", "kms:TagResource"], condition={"StringEquals": {"aws:RequestTag/Dept": "Finance"}})),
    }),
]


@pytest.fixture(scope="module")
def srv(configured_server_factory):
    return configured_server_factory(PRINCIPALS)


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client("admin")


@pytest.fixture
def make_key(admin):
    """Create a key as admin, with a policy of `statements` (else the default policy)."""

    def make(*statements, **kwargs) -> dict:
        if statements:
            kwargs["Policy"] = json.dumps(policy_doc(*statements))
        return admin.create_key(**kwargs)["KeyMetadata"]

    return make


def root_may(*actions: str, account: str = A) -> dict:
    """A key policy statement delegating `actions` (default: all) to the account."""
    return allow(list(actions) or "kms:*", principal=account_root_arn(account))


def round_trip(kms, key_id: str, data: bytes = b"secret data", **kw) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=data, **kw)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, **kw)["Plaintext"] == data


# --------------------------------------------------------------------------------------------
# Key policies and identity policies in one account
# --------------------------------------------------------------------------------------------


def test_worked_example_key_usable_by_one_role_only(srv, admin, make_key):
    """Key administrators (the account, through identity policies) manage the key; only the role
    app may use it, though it has no identity policy at all."""
    key = make_key(
        allow(KEY_ADMIN_ACTIONS, principal=account_root_arn(A), sid="Key administrators"),
        allow(USE_ACTIONS, principal=srv.arn("app"), sid="The app uses the key"),
        Description="app data",
    )
    app = srv.client("app")
    blob = app.encrypt(KeyId=key["KeyId"], Plaintext=b"app record")["CiphertextBlob"]
    dec = app.decrypt(CiphertextBlob=blob)
    assert dec["Plaintext"] == b"app record" and dec["KeyId"] == key["Arn"]
    dk = app.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")
    assert app.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    # alice's identity policy allows kms:Encrypt on every key, but this key policy does not defer
    # to the account for it; the administrator may manage the key, not use it.
    for name in ("alice", "bob", "admin"):
        expect_error(lambda: srv.client(name).encrypt(KeyId=key["KeyId"], Plaintext=b"x"),
                     "AccessDeniedException", denied_message(srv.arn(name), "Encrypt", key["Arn"], "no-resource"))
        expect_error(lambda: srv.client(name).decrypt(CiphertextBlob=blob),
                     "AccessDeniedException", denied_message(srv.arn(name), "Decrypt", key["Arn"], "no-resource"))
    # ...while managing it still works for the administrator, not for the app (the key policy
    # defers key management to the account, and the app has no identity policy).
    admin.update_key_description(KeyId=key["KeyId"], Description="app data (v2)")
    assert admin.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "app data (v2)"
    expect_error(lambda: app.disable_key(KeyId=key["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("app"), "DisableKey", key["Arn"], "no-identity"))


def test_default_key_policy_defers_to_identity_policies(srv, make_key):
    key = make_key()
    alice = srv.client("alice")
    round_trip(alice, key["KeyId"])
    assert alice.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    # alice's identity policy has no key management actions.
    expect_error(lambda: alice.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7),
                 "AccessDeniedException",
                 denied_message(srv.arn("alice"), "ScheduleKeyDeletion", key["Arn"], "no-identity"))
    # bob has no identity policy: the default key policy alone lets him do nothing.
    bob = srv.client("bob")
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))
    expect_error(lambda: bob.describe_key(KeyId=key["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "DescribeKey", key["Arn"], "no-identity"))


def test_denied_for_a_key_named_by_alias_names_the_key_arn(srv, admin, make_key, unique):
    key = make_key()
    alias = f"alias/{unique('ac')}"
    admin.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    expect_error(lambda: srv.client("bob").encrypt(KeyId=alias, Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))
    round_trip(srv.client("alice"), alias)


def test_key_usable_only_with_an_encryption_context(srv, make_key):
    key = make_key(
        root_may(*KEY_ADMIN_ACTIONS),
        allow(["kms:Encrypt", "kms:Decrypt"], principal=srv.arn("app"),
              condition={"StringEquals": {"kms:EncryptionContext:purpose": "billing"}}),
    )
    app = srv.client("app")
    ctx = {"purpose": "billing", "customer": "c-17"}
    blob = app.encrypt(KeyId=key["KeyId"], Plaintext=b"invoice", EncryptionContext=ctx)["CiphertextBlob"]
    assert app.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"invoice"

    refused = denied_message(srv.arn("app"), "Encrypt", key["Arn"], "no-resource")
    for bad in ({"purpose": "marketing"}, {"Purpose": "Billing"}, {"customer": "c-17"}, None):
        kw = {"EncryptionContext": bad} if bad is not None else {}
        expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **kw), "AccessDeniedException", refused)
    # Decrypt is checked against the context given, before the ciphertext is opened.
    expect_error(lambda: app.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "marketing"}),
                 "AccessDeniedException", denied_message(srv.arn("app"), "Decrypt", key["Arn"], "no-resource"))
    expect_error(lambda: app.decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 denied_message(srv.arn("app"), "Decrypt", key["Arn"], "no-resource"))


def test_encryption_context_keys_condition(srv, make_key):
    """ForAllValues:StringEquals on kms:EncryptionContextKeys: only these keys may appear."""
    key = make_key(
        root_may(*KEY_ADMIN_ACTIONS),
        allow("kms:Encrypt", principal=srv.arn("app"), condition={
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "table"]},
            "Null": {"kms:EncryptionContextKeys": "false"},
        }),
    )
    app = srv.client("app")
    app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t1"})
    app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t1", "table": "orders"})
    refused = denied_message(srv.arn("app"), "Encrypt", key["Arn"], "no-resource")
    expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x",
                                     EncryptionContext={"tenant": "t1", "user": "u"}), "AccessDeniedException", refused)
    expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException", refused)


def test_identity_policy_can_be_narrowed_by_a_condition(srv):
    """keymaker may create symmetric keys only (kms:KeySpec in its identity policy)."""
    keymaker = srv.client("keymaker")
    md = keymaker.create_key(Description="keymaker's")["KeyMetadata"]
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT" and md["AWSAccountId"] == A
    expect_error(lambda: keymaker.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
                 "AccessDeniedException", denied_message(srv.arn("keymaker"), "CreateKey", "*", "no-identity"))
    # Creating a key is all it may do: the default key policy defers to identity policies.
    expect_error(lambda: keymaker.encrypt(KeyId=md["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("keymaker"), "Encrypt", md["Arn"], "no-identity"))


@pytest.mark.parametrize("operation,call", [
    ("CreateKey", lambda k: k.create_key()),
    ("ListKeys", lambda k: k.list_keys()),
    ("ListAliases", lambda k: k.list_aliases()),
    ("GenerateRandom", lambda k: k.generate_random(NumberOfBytes=16)),
])
def test_identity_only_operations_need_an_identity_policy(srv, operation, call):
    for name in ("bob", "app", "erin"):
        expect_error(lambda: call(srv.client(name)), "AccessDeniedException",
                     denied_message(srv.arn(name), operation, "*", "no-identity"))


def test_account_root_has_every_identity_permission(srv, make_key):
    broot = srv.client("broot")
    md = broot.create_key(Description="B's own")["KeyMetadata"]
    assert md["AWSAccountId"] == B
    assert md["Arn"] == key_arn(md["KeyId"], account=B)
    assert json.loads(broot.get_key_policy(KeyId=md["KeyId"])["Policy"]) == default_policy(B)
    round_trip(broot, md["KeyId"])
    assert len(broot.generate_random(NumberOfBytes=32)["Plaintext"]) == 32
    # ListKeys lists the caller's account only.
    a_key = make_key()
    listed = [k["KeyId"] for k in broot.list_keys(Limit=1000)["Keys"]]
    assert md["KeyId"] in listed and a_key["KeyId"] not in listed
    # B's user with no identity policy cannot use B's key, the root can.
    expect_error(lambda: srv.client("erin").encrypt(KeyId=md["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("erin"), "Encrypt", md["Arn"], "no-identity"))


# --------------------------------------------------------------------------------------------
# Explicit denies
# --------------------------------------------------------------------------------------------


def test_key_policy_deny_beats_every_allow(srv, make_key):
    key = make_key(
        root_may(),
        allow(USE_ACTIONS, principal=srv.arn("alice")),
        deny("kms:Decrypt", principal=srv.arn("alice")),
    )
    alice = srv.client("alice")
    blob = alice.encrypt(KeyId=key["KeyId"], Plaintext=b"one way")["CiphertextBlob"]
    expect_error(lambda: alice.decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 denied_message(srv.arn("alice"), "Decrypt", key["Arn"], "deny-resource"))
    # The deny names alice only.
    assert srv.client("admin").decrypt(CiphertextBlob=blob)["Plaintext"] == b"one way"


def test_identity_policy_deny_beats_a_key_policy_allow(srv, make_key):
    key = make_key(root_may(), allow(USE_ACTIONS, principal=srv.arn("dave")))
    dave = srv.client("dave")
    blob = dave.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(lambda: dave.decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 denied_message(srv.arn("dave"), "Decrypt", key["Arn"], "deny-identity"))
    # kms:* still lets dave manage the key.
    dave.disable_key(KeyId=key["KeyId"])
    dave.enable_key(KeyId=key["KeyId"])


def test_key_policy_deny_and_identity_deny_together(srv, make_key):
    key = make_key(root_may(), deny("kms:Decrypt", principal="*"))
    blob = srv.client("dave").encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    # Both policies deny; which of the two AWS names is not documented.
    resp = expect_error(lambda: srv.client("dave").decrypt(CiphertextBlob=blob), "AccessDeniedException")
    assert resp["Error"]["Message"] in {
        denied_message(srv.arn("dave"), "Decrypt", key["Arn"], why) for why in ("deny-resource", "deny-identity")
    }, resp["Error"]["Message"]


def test_deny_unless_secure_transport(srv, make_key):
    """The usual "deny unless HTTPS" statement: the suite speaks plain HTTP."""
    policy = json.dumps(policy_doc(root_may(), deny("kms:*", principal="*",
                                                    condition={"Bool": {"aws:SecureTransport": "false"}})))
    # Over HTTP the policy would lock the caller out: the lockout check sees that too.
    expect_error(lambda: srv.client("admin").create_key(Policy=policy), "MalformedPolicyDocumentException",
                 LOCKOUT_MESSAGE)
    key = srv.client("admin").create_key(Policy=policy, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    expect_error(lambda: srv.client("alice").encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("alice"), "Encrypt", key["Arn"], "deny-resource"))
    expect_error(lambda: srv.client("admin").describe_key(KeyId=key["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("admin"), "DescribeKey", key["Arn"], "deny-resource"))


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


def test_source_ip_condition(srv, make_key):
    here = make_key(root_may(*KEY_ADMIN_ACTIONS), allow("kms:Encrypt", principal=srv.arn("app"),
                                      condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    elsewhere = make_key(root_may(*KEY_ADMIN_ACTIONS), allow("kms:Encrypt", principal=srv.arn("app"),
                                           condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
    app = srv.client("app")
    app.encrypt(KeyId=here["KeyId"], Plaintext=b"x")
    expect_error(lambda: app.encrypt(KeyId=elsewhere["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("app"), "Encrypt", elsewhere["Arn"], "no-resource"))


def test_caller_account_condition(srv, make_key):
    """Principal "*" limited by kms:CallerAccount: every principal of account A, no other."""
    key = make_key(root_may(), allow(["kms:Encrypt", "kms:Decrypt"], principal="*",
                                     condition={"StringEquals": {"kms:CallerAccount": A}}))
    round_trip(srv.client("bob"), key["KeyId"])  # no identity policy needed
    # carol's identity policy allows A's keys, but the key policy does not allow her account.
    expect_error(lambda: srv.client("carol").encrypt(KeyId=key["Arn"], Plaintext=b"x"), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "Encrypt"))


def test_request_alias_and_resource_aliases_conditions(srv, admin, make_key, unique):
    by_alias = f"alias/{unique('only-by-alias')}"
    key = make_key(root_may(*KEY_ADMIN_ACTIONS), allow("kms:Encrypt", principal=srv.arn("app"),
                                     condition={"StringEquals": {"kms:RequestAlias": by_alias}}))
    admin.create_alias(AliasName=by_alias, TargetKeyId=key["KeyId"])
    app = srv.client("app")
    assert app.encrypt(KeyId=by_alias, Plaintext=b"x")["KeyId"] == key["Arn"]
    for ref in (key["KeyId"], key["Arn"]):
        expect_error(lambda: app.encrypt(KeyId=ref, Plaintext=b"x"), "AccessDeniedException",
                     denied_message(srv.arn("app"), "Encrypt", key["Arn"], "no-resource"))

    # kms:ResourceAliases: the key may be named any way, as long as it has the alias.
    team_alias = f"alias/{unique('team-red')}"
    key2 = make_key(root_may(*KEY_ADMIN_ACTIONS), allow("kms:Encrypt", principal=srv.arn("app"),
                                      condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": team_alias}}))
    expect_error(lambda: app.encrypt(KeyId=key2["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("app"), "Encrypt", key2["Arn"], "no-resource"))
    admin.create_alias(AliasName=team_alias, TargetKeyId=key2["KeyId"])
    app.encrypt(KeyId=key2["KeyId"], Plaintext=b"x")
    admin.delete_alias(AliasName=team_alias)
    expect_error(lambda: app.encrypt(KeyId=key2["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("app"), "Encrypt", key2["Arn"], "no-resource"))


def test_resource_tag_condition(srv, admin, make_key):
    key = make_key(root_may(*KEY_ADMIN_ACTIONS), allow("kms:Encrypt", principal=srv.arn("app"),
                                     condition={"StringEquals": {"aws:ResourceTag/team": "red"}}),
                   Tags=[{"TagKey": "team", "TagValue": "red"}])
    app = srv.client("app")
    app.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    admin.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "team", "TagValue": "blue"}])
    expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("app"), "Encrypt", key["Arn"], "no-resource"))


def test_encryption_algorithm_condition(srv, admin):
    key = admin.create_key(
        KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT",
        Policy=json.dumps(policy_doc(
            root_may(*KEY_ADMIN_ACTIONS),
            allow("kms:Encrypt", principal=srv.arn("app"),
                  condition={"StringEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}),
        )),
    )["KeyMetadata"]
    app = srv.client("app")
    blob = app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert blob["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1"),
                 "AccessDeniedException", denied_message(srv.arn("app"), "Encrypt", key["Arn"], "no-resource"))


# --------------------------------------------------------------------------------------------
# A key given in several cases: every value decides
# --------------------------------------------------------------------------------------------

# An encryption context may hold keys that differ only in case; kms:EncryptionContext:Dept names
# them all. Byte order puts "DEPT" first, which alone used to decide.
STEERED = {"DEPT": "Public", "Dept": "Finance"}


def test_a_deny_on_an_encryption_context_key_sees_every_case(srv, make_key):
    for operator, value in (("StringEquals", "Finance"), ("StringEqualsIgnoreCase", "FINANCE"),
                            ("StringLike", "Fin*"), ("ForAnyValue:StringEquals", ["Finance", "HR"]),
                            ("StringEqualsIfExists", "Finance")):
        key = make_key(root_may(), allow(["kms:Encrypt", "kms:Decrypt"], principal=srv.arn("app")),
                       deny("kms:Encrypt", principal="*", condition={operator: {"kms:EncryptionContext:Dept": value}}))
        app = srv.client("app")
        expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=STEERED),
                     "AccessDeniedException", denied_message(srv.arn("app"), "Encrypt", key["Arn"], "deny-resource"))
        # One spelling of the key, another value: not denied.
        app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "Public"})


def test_an_allow_on_an_encryption_context_key_needs_every_case(srv, make_key):
    for operator, value in (("StringNotEquals", "Finance"), ("StringEquals", "Public"),
                            ("StringNotLike", "Fin*"), ("ForAnyValue:StringEquals", "Public"),
                            ("StringEqualsIfExists", "Public")):
        key = make_key(root_may(), allow("kms:Encrypt", principal=srv.arn("app"),
                                         condition={operator: {"kms:EncryptionContext:Dept": value}}))
        app = srv.client("app")
        expect_error(lambda: app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=STEERED),
                     "AccessDeniedException", denied_message(srv.arn("app"), "Encrypt", key["Arn"], "no-identity"))
        app.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"Dept": "Public"})
    # Both values allowed: allowed.
    key = make_key(root_may(), allow("kms:Encrypt", principal=srv.arn("app"),
                                     condition={"StringEquals": {"kms:EncryptionContext:Dept": ["Public", "Finance"]}}))
    srv.client("app").encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=STEERED)


def test_null_and_the_for_all_values_refusal_are_unchanged(srv, admin, make_key):
    key = make_key(root_may(), allow("kms:Encrypt", principal=srv.arn("app")),
                   deny("kms:Encrypt", principal="*", condition={"Null": {"kms:EncryptionContext:Dept": "true"}}))
    srv.client("app").encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=STEERED)
    # ForAllValues on a single-valued key stays refused, as AWS refuses it.
    bad = policy_doc(root_may(), allow("kms:Encrypt", principal=srv.arn("app"),
                                       condition={"ForAllValues:StringEquals": {"kms:EncryptionContext:Dept": "Public"}}))
    expect_error(lambda: admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(bad)),
                 "MalformedPolicyDocumentException", startswith="OverlyPermissiveCondition:EncryptionContext: ")


def test_a_policy_variable_naming_a_key_in_several_cases(srv, make_key):
    """Deny unless the context's Owner is the caller: an Owner in another case does not slip by."""
    key = make_key(root_may(), allow("kms:Encrypt", principal=srv.arn("alice")),
                   deny("kms:Encrypt", principal="*",
                        condition={"StringNotEquals": {"kms:EncryptionContext:Owner": "${aws:username}"}}))
    alice = srv.client("alice")
    alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"Owner": "alice"})
    expect_error(lambda: alice.encrypt(KeyId=key["KeyId"], Plaintext=b"x",
                                       EncryptionContext={"OWNER": "alice", "Owner": "bob"}),
                 "AccessDeniedException", denied_message(srv.arn("alice"), "Encrypt", key["Arn"], "deny-resource"))
    # The other way round: a key tag named by a variable, the tag in two cases.
    tagged = make_key(root_may(), allow("kms:Encrypt", principal=srv.arn("app"),
                                        condition={"StringEquals": {"kms:EncryptionContext:Dept": "${aws:ResourceTag/Dept}"}}),
                      Tags=[{"TagKey": "DEPT", "TagValue": "Public"}, {"TagKey": "Dept", "TagValue": "Finance"}])
    expect_error(lambda: srv.client("app").encrypt(KeyId=tagged["KeyId"], Plaintext=b"x",
                                                   EncryptionContext={"Dept": "Public"}),
                 # The key policy defers to the account too, and app has no identity policy.
                 "AccessDeniedException", denied_message(srv.arn("app"), "Encrypt", tagged["Arn"], "no-identity"))


def test_resource_and_request_tags_in_several_cases(srv, admin, make_key):
    key = make_key(root_may(), allow("kms:Encrypt", principal=srv.arn("app")),
                   deny("kms:Encrypt", principal="*", condition={"StringEquals": {"aws:ResourceTag/dept": "Finance"}}),
                   Tags=[{"TagKey": "DEPT", "TagValue": "Public"}, {"TagKey": "Dept", "TagValue": "Finance"}])
    expect_error(lambda: srv.client("app").encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("app"), "Encrypt", key["Arn"], "deny-resource"))
    tagger = srv.client("tagger")
    tags = [{"TagKey": "DEPT", "TagValue": "Public"}, {"TagKey": "Dept", "TagValue": "Finance"}]
    expect_error(lambda: tagger.create_key(Tags=tags), "AccessDeniedException",
                 denied_message(srv.arn("tagger"), "CreateKey", "*", "deny-identity"))
    own = tagger.create_key(Tags=[{"TagKey": "DEPT", "TagValue": "Public"}])["KeyMetadata"]
    expect_error(lambda: tagger.tag_resource(KeyId=own["KeyId"], Tags=tags), "AccessDeniedException",
                 denied_message(srv.arn("tagger"), "TagResource", own["Arn"], "deny-identity"))


# --------------------------------------------------------------------------------------------
# Across accounts
# --------------------------------------------------------------------------------------------


@pytest.fixture
def shared_key(srv, make_key):
    """A key of account A whose policy lets account B use it."""
    return make_key(root_may(), allow(USE_ACTIONS, principal=account_root_arn(B), sid="Partner account"))


def test_cross_account_use_by_key_arn(srv, shared_key, admin):
    carol = srv.client("carol")
    ctx = {"partner": "b"}
    enc = carol.encrypt(KeyId=shared_key["Arn"], Plaintext=b"from B", EncryptionContext=ctx)
    assert enc["KeyId"] == shared_key["Arn"]
    dec = carol.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == b"from B" and dec["KeyId"] == shared_key["Arn"]
    # The key's own account reads what B wrote.
    assert admin.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == b"from B"
    md = carol.describe_key(KeyId=shared_key["Arn"])["KeyMetadata"]
    assert md["AWSAccountId"] == A and md["KeyId"] == shared_key["KeyId"]
    dk = carol.generate_data_key(KeyId=shared_key["Arn"], NumberOfBytes=32)
    assert carol.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    # B's root needs no identity policy.
    round_trip(srv.client("broot"), shared_key["Arn"])


def test_cross_account_needs_the_callers_identity_policy(srv, shared_key):
    expect_error(lambda: srv.client("erin").encrypt(KeyId=shared_key["Arn"], Plaintext=b"x"),
                 "AccessDeniedException", hidden_key_message(srv.arn("erin"), "Encrypt"))


def test_cross_account_refused_looks_like_a_missing_key(srv, make_key):
    private = make_key()  # the default policy: account A only
    missing = key_arn(str(uuid.uuid4()))
    for ref in (private["Arn"], missing):
        expect_error(lambda: srv.client("carol").encrypt(KeyId=ref, Plaintext=b"x"), "AccessDeniedException",
                     hidden_key_message(srv.arn("carol"), "Encrypt"))
        expect_error(lambda: srv.client("broot").describe_key(KeyId=ref), "AccessDeniedException",
                     hidden_key_message(srv.arn("broot"), "DescribeKey"))


def test_cross_account_ciphertext_of_a_refused_key(srv, make_key, admin):
    private = make_key()
    blob = admin.encrypt(KeyId=private["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(lambda: srv.client("carol").decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "Decrypt"))


def test_cross_account_key_id_alone_means_the_callers_account(srv, shared_key):
    expect_error(lambda: srv.client("carol").encrypt(KeyId=shared_key["KeyId"], Plaintext=b"x"),
                 "NotFoundException", not_found_key_message(shared_key["KeyId"], account=B))


def test_cross_account_management_is_refused_even_if_the_key_policy_allows_it(srv, make_key):
    key = make_key(root_may(), allow("kms:*", principal=account_root_arn(B)))
    broot = srv.client("broot")
    broot.describe_key(KeyId=key["Arn"])
    for action, call in (
        ("GetKeyPolicy", lambda: broot.get_key_policy(KeyId=key["Arn"], PolicyName="default")),
        ("ScheduleKeyDeletion", lambda: broot.schedule_key_deletion(KeyId=key["Arn"], PendingWindowInDays=7)),
        ("DisableKey", lambda: broot.disable_key(KeyId=key["Arn"])),
    ):
        expect_error(call, "AccessDeniedException", hidden_key_message(srv.arn("broot"), action))
    assert srv.client("admin").describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


# --------------------------------------------------------------------------------------------
# The key policy lockout safety check
# --------------------------------------------------------------------------------------------


def app_only_policy(srv) -> dict:
    return policy_doc(allow("kms:*", principal=srv.arn("app")))


def test_put_key_policy_lockout_check(srv, admin, make_key):
    key = make_key()
    before = admin.get_key_policy(KeyId=key["KeyId"])["Policy"]
    expect_error(lambda: admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                                              Policy=json.dumps(app_only_policy(srv))),
                 "MalformedPolicyDocumentException", LOCKOUT_MESSAGE)
    expect_error(lambda: admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                                              Policy=json.dumps(app_only_policy(srv)),
                                              BypassPolicyLockoutSafetyCheck=False),
                 "MalformedPolicyDocumentException", LOCKOUT_MESSAGE)
    assert admin.get_key_policy(KeyId=key["KeyId"])["Policy"] == before
    # A policy naming the caller directly for PutKeyPolicy passes, without the account.
    ok = policy_doc(allow(["kms:PutKeyPolicy", "kms:GetKeyPolicy"], principal=srv.arn("admin")),
                    allow("kms:*", principal=srv.arn("app")))
    admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(ok))
    assert json.loads(admin.get_key_policy(KeyId=key["KeyId"])["Policy"]) == ok
    # A statement delegating only key use to the account does not keep PutKeyPolicy.
    expect_error(lambda: admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(
        policy_doc(root_may("kms:Encrypt", "kms:Decrypt")))), "MalformedPolicyDocumentException", LOCKOUT_MESSAGE)


def test_put_key_policy_bypassing_the_lockout_check(srv, admin, make_key):
    key = make_key()
    admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(app_only_policy(srv)),
                         BypassPolicyLockoutSafetyCheck=True)
    # The administrator has locked itself out; the app has the key now.
    expect_error(lambda: admin.get_key_policy(KeyId=key["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("admin"), "GetKeyPolicy", key["Arn"], "no-resource"))
    expect_error(lambda: admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(default_policy(A)),
                                              BypassPolicyLockoutSafetyCheck=True),
                 "AccessDeniedException", denied_message(srv.arn("admin"), "PutKeyPolicy", key["Arn"], "no-resource"))
    app = srv.client("app")
    assert json.loads(app.get_key_policy(KeyId=key["KeyId"])["Policy"]) == app_only_policy(srv)
    round_trip(app, key["KeyId"])


def test_create_key_lockout_check_and_bypass(srv, admin):
    before = {k["KeyId"] for k in admin.list_keys(Limit=1000)["Keys"]}
    expect_error(lambda: admin.create_key(Policy=json.dumps(app_only_policy(srv))),
                 "MalformedPolicyDocumentException", LOCKOUT_MESSAGE)
    assert {k["KeyId"] for k in admin.list_keys(Limit=1000)["Keys"]} == before
    md = admin.create_key(Policy=json.dumps(app_only_policy(srv)), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    expect_error(lambda: admin.describe_key(KeyId=md["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("admin"), "DescribeKey", md["Arn"], "no-resource"))
    assert srv.client("app").describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_bypass_can_itself_be_denied_by_condition(srv, admin, make_key):
    """kms:BypassPolicyLockoutSafetyCheck in an identity policy (here dave's key policy)."""
    key = make_key(root_may(), deny("kms:PutKeyPolicy", principal=srv.arn("dave"),
                                    condition={"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}))
    dave = srv.client("dave")
    expect_error(lambda: dave.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(app_only_policy(srv)),
                                             BypassPolicyLockoutSafetyCheck=True),
                 "AccessDeniedException", denied_message(srv.arn("dave"), "PutKeyPolicy", key["Arn"], "deny-resource"))
    dave.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(default_policy(A)))


# --------------------------------------------------------------------------------------------
# Admin commands change what the running server allows
# --------------------------------------------------------------------------------------------


def _encrypt_outcome(kms, key_id: str) -> str:
    try:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
        return "allowed"
    except ClientError as e:
        return e.response["Error"]["Code"]


def test_identity_policy_put_and_delete_take_effect(srv, make_key, tmp_path):
    key = make_key()
    frank = srv.client("frank")
    expect_error(lambda: frank.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("frank"), "Encrypt", key["Arn"], "no-identity"))

    doc = policy_doc(allow(["kms:Encrypt", "kms:Decrypt"], key["Arn"]))
    (tmp_path / "frank.json").write_text(json.dumps(doc))
    put = srv.admin_command("policy", "put", "--arn", srv.arn("frank"), "--name", "this-key",
                            "--document", f"@{tmp_path / 'frank.json'}")
    assert put.returncode == 0, put.stderr
    assert wait_until(lambda: _encrypt_outcome(frank, key["KeyId"]) == "allowed"), \
        "the identity policy put by `trent principal policy put` did not take effect within 3 s"
    round_trip(frank, key["KeyId"])
    listed = srv.admin_command("policy", "list", "--arn", srv.arn("frank"))
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines() if line.strip()]
    assert [(arn, name) for arn, name, _ in lines] == [(srv.arn("frank"), "this-key")], listed.stdout
    assert json.loads(lines[0][2]) == doc
    # The policy names one key: another is still refused.
    other = make_key()
    expect_error(lambda: frank.encrypt(KeyId=other["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("frank"), "Encrypt", other["Arn"], "no-identity"))

    gone = srv.admin_command("policy", "delete", "--arn", srv.arn("frank"), "--name", "this-key")
    assert gone.returncode == 0, gone.stderr
    assert wait_until(lambda: _encrypt_outcome(frank, key["KeyId"]) == "AccessDeniedException"), \
        "the identity policy deleted by `trent principal policy delete` still applies after 3 s"
    assert srv.admin_command("policy", "list", "--arn", srv.arn("frank")).stdout.strip() == ""


def test_principal_created_by_admin_command(srv, make_key):
    arn = f"arn:aws:iam::{A}:role/batch-{uuid.uuid4().hex[:8]}"
    created = srv.admin_command("create", "--arn", arn)
    assert created.returncode == 0, created.stderr
    ak = created.stdout.split("aws_access_key_id = ")[1].split()[0]
    sk = created.stdout.split("aws_secret_access_key = ")[1].split()[0]
    batch = make_kms_client(srv.endpoint, access_key=ak, secret_key=sk)

    def list_keys_outcome() -> str:
        try:
            batch.list_keys(Limit=1)
            return "allowed"
        except ClientError as e:
            return e.response["Error"]["Code"]

    # Its access key works within a moment; it may do nothing yet.
    assert wait_until(lambda: list_keys_outcome() == "AccessDeniedException"), list_keys_outcome()
    expect_error(lambda: batch.list_keys(), "AccessDeniedException", denied_message(arn, "ListKeys", "*", "no-identity"))
    put = srv.admin_command("policy", "put", "--arn", arn, "--name", "list",
                            "--document", json.dumps(policy_doc(allow("kms:ListKeys"))))
    assert put.returncode == 0, put.stderr
    assert wait_until(lambda: list_keys_outcome() == "allowed")
    expect_error(lambda: batch.create_key(), "AccessDeniedException", denied_message(arn, "CreateKey", "*", "no-identity"))


def test_policy_put_rejects_a_malformed_document(srv):
    bad = srv.admin_command("policy", "put", "--arn", srv.arn("frank"), "--name", "bad", "--document", "{not json")
    assert bad.returncode != 0
    assert "bad" not in srv.admin_command("policy", "list", "--arn", srv.arn("frank")).stdout


# --------------------------------------------------------------------------------------------
# The AWS CLI
# --------------------------------------------------------------------------------------------


def test_cli_encrypt_denied(srv, make_key):
    key = make_key()
    res = srv.cli("bob", ["encrypt", "--key-id", key["KeyId"], "--plaintext", "aGVsbG8="])
    assert res.returncode != 0
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity")
    res = srv.cli("carol", ["encrypt", "--key-id", key["Arn"], "--plaintext", "aGVsbG8="])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == hidden_key_message(srv.arn("carol"), "Encrypt")


def test_cli_encrypt_allowed_for_the_named_role(srv, make_key, tmp_path):
    key = make_key(root_may(*KEY_ADMIN_ACTIONS), allow(USE_ACTIONS, principal=srv.arn("app")))
    (tmp_path / "pt.bin").write_bytes(b"cli data")
    res = srv.cli("app", ["encrypt", "--key-id", key["KeyId"], "--plaintext", f"fileb://{tmp_path / 'pt.bin'}",
                          "--encryption-context", "app=cli"])
    assert res.returncode == 0, res.stderr
    assert res.json["KeyId"] == key["Arn"]
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(res.json["CiphertextBlob"]))
    res = srv.cli("app", ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
                          "--encryption-context", "app=cli"])
    assert res.returncode == 0, res.stderr
    assert base64.b64decode(res.json["Plaintext"]) == b"cli data"
    # alice's identity policy does not help: the key policy does not defer Decrypt to the account.
    res = srv.cli("alice", ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
                            "--encryption-context", "app=cli"])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == denied_message(srv.arn("alice"), "Decrypt", key["Arn"], "no-resource")


def test_cli_put_key_policy_lockout_error(srv, make_key, tmp_path):
    key = make_key()
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(app_only_policy(srv)))
    res = srv.cli("admin", ["put-key-policy", "--key-id", key["KeyId"], "--policy-name", "default",
                            "--policy", f"file://{path}"])
    assert res.returncode != 0
    assert res.error_code == "MalformedPolicyDocumentException", res.stderr
    assert res.error_message == LOCKOUT_MESSAGE
    res = srv.cli("admin", ["put-key-policy", "--key-id", key["KeyId"], "--policy-name", "default",
                            "--policy", f"file://{path}", "--bypass-policy-lockout-safety-check"])
    assert res.returncode == 0, res.stderr
    assert json.loads(srv.client("app").get_key_policy(KeyId=key["KeyId"])["Policy"]) == app_only_policy(srv)


def test_cli_create_key_without_identity_policy(srv):
    res = srv.cli("bob", ["create-key"])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == denied_message(srv.arn("bob"), "CreateKey", "*", "no-identity")
