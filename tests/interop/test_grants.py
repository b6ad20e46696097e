"""Grants on a non-dev server, end to end: CreateGrant, the grant tokens, ListGrants,
ListRetirableGrants, RetireGrant and RevokeGrant, grant constraints and sub-grants, through boto3
and the AWS CLI.

One server per module, its principals in a config file: account 111122223333 (admin; alice, who
may list the grants she can retire; bob and the role svc, with no identity policy; auditor, who may
only list grants) and account 444455556666 (carol, with no identity policy, and the account's root).
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from kmsutil import (
    DEV_ACCOUNT,
    DRY_RUN_MESSAGE,
    ConfiguredPrincipal,
    account_root_arn,
    allow,
    assert_recent,
    coral,
    deny,
    denied_message,
    expect_error,
    hidden_key_message,
    policy_doc,
)

A = DEV_ACCOUNT  # 111122223333
B = "444455556666"
GRANT_ID_RE = re.compile(r"^[0-9a-f]{64}$")
INVALID_TOKEN_MESSAGE = "Invalid grant token"


def user(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


PRINCIPALS = [
    ConfiguredPrincipal("admin", user(A, "admin"), {"AdministratorAccess": policy_doc(allow("kms:*"))}),
    ConfiguredPrincipal("alice", user(A, "alice"), {"retirer": policy_doc(allow("kms:ListRetirableGrants"))}),
    ConfiguredPrincipal("bob", user(A, "bob")),
    ConfiguredPrincipal("svc", f"arn:aws:iam::{A}:role/svc"),
    ConfiguredPrincipal("auditor", user(A, "auditor"), {"grant-reader": policy_doc(allow("kms:ListGrants"))}),
    ConfiguredPrincipal("carol", user(B, "carol")),
    ConfiguredPrincipal("broot", account_root_arn(B)),
]


@pytest.fixture(scope="module")
def srv(configured_server_factory):
    return configured_server_factory(PRINCIPALS)


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client("admin")


@pytest.fixture
def key(admin) -> dict:
    """A fresh key with the default key policy (account A, through identity policies)."""
    return admin.create_key(Description="grants")["KeyMetadata"]


@pytest.fixture
def grant(srv, admin, key):
    """grant(grantee name, operations, **CreateGrant members) -> CreateGrant's response, by admin."""

    def make(grantee: str, operations: list[str], kms=None, key_id: str | None = None, **kw) -> dict:
        return (kms or admin).create_grant(KeyId=key_id or key["KeyId"], GranteePrincipal=srv.arn(grantee),
                                           Operations=operations, **kw)

    return make


def grant_ids(kms, key_id: str, **kw) -> list[str]:
    return [g["GrantId"] for g in kms.list_grants(KeyId=key_id, **kw)["Grants"]]


# --------------------------------------------------------------------------------------------
# Delegating with grants
# --------------------------------------------------------------------------------------------


def test_worked_example_delegating_with_a_grant(srv, admin, key, grant):
    """bob has no identity policy, so the default key policy lets him do nothing; a grant lets
    him encrypt and decrypt, and nothing else, until it is revoked."""
    bob = srv.client("bob")
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))

    g = grant("bob", ["Encrypt", "Decrypt"], Name="bob-encrypts")
    blob = bob.encrypt(KeyId=key["KeyId"], Plaintext=b"bob's data", GrantTokens=[g["GrantToken"]])["CiphertextBlob"]
    dec = bob.decrypt(CiphertextBlob=blob)
    assert dec["Plaintext"] == b"bob's data" and dec["KeyId"] == key["Arn"]
    # Only the granted operations.
    expect_error(lambda: bob.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "GenerateDataKey", key["Arn"], "no-identity"))
    expect_error(lambda: bob.describe_key(KeyId=key["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "DescribeKey", key["Arn"], "no-identity"))
    # Only for bob.
    expect_error(lambda: srv.client("svc").decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 denied_message(srv.arn("svc"), "Decrypt", key["Arn"], "no-identity"))

    admin.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    expect_error(lambda: bob.decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Decrypt", key["Arn"], "no-identity"))


def test_create_grant_response(grant, key, admin):
    g = grant("bob", ["Encrypt"])
    assert GRANT_ID_RE.match(g["GrantId"]), g["GrantId"]
    assert isinstance(g["GrantToken"], str) and len(g["GrantToken"]) > 32
    assert set(g) - {"ResponseMetadata"} == {"GrantId", "GrantToken"}
    # Key ARN works as well as key id.
    g2 = grant("bob", ["Decrypt"], key_id=key["Arn"])
    assert g2["GrantId"] != g["GrantId"]
    assert sorted(grant_ids(admin, key["KeyId"])) == sorted([g["GrantId"], g2["GrantId"]])


def test_grant_allows_other_operations_it_names(srv, grant, key):
    grant("bob", ["GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Decrypt", "DescribeKey",
                  "ReEncryptFrom", "ReEncryptTo"])
    bob = srv.client("bob")
    assert bob.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    dk = bob.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=32)
    assert bob.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    blob = bob.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_128")["CiphertextBlob"]
    moved = bob.re_encrypt(CiphertextBlob=blob, DestinationKeyId=key["KeyId"])
    assert moved["KeyId"] == key["Arn"] and moved["SourceKeyId"] == key["Arn"]
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))


def test_create_grant_needs_permission(srv, key):
    expect_error(lambda: srv.client("bob").create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("bob"),
                                                        Operations=["Encrypt"]),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "CreateGrant", key["Arn"], "no-identity"))


def test_create_grant_dry_run(srv, admin, key):
    expect_error(lambda: admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("bob"),
                                            Operations=["Encrypt"], DryRun=True),
                 "DryRunOperationException", DRY_RUN_MESSAGE)
    assert grant_ids(admin, key["KeyId"]) == []
    # A caller who may not create the grant is refused, dry run or not.
    expect_error(lambda: srv.client("bob").create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("bob"),
                                                        Operations=["Encrypt"], DryRun=True),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "CreateGrant", key["Arn"], "no-identity"))


def test_grant_name_makes_create_grant_idempotent(srv, admin, key, grant):
    first = grant("bob", ["Encrypt", "Decrypt"], Name="nightly-job", RetiringPrincipal=srv.arn("alice"))
    again = grant("bob", ["Decrypt", "Encrypt"], Name="nightly-job", RetiringPrincipal=srv.arn("alice"))
    assert again["GrantId"] == first["GrantId"]
    assert again["GrantToken"] != first["GrantToken"]
    assert grant_ids(admin, key["KeyId"]) == [first["GrantId"]]
    # Both tokens are good.
    bob = srv.client("bob")
    for token in (first["GrantToken"], again["GrantToken"]):
        bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[token])
    # The same name with other parameters is another grant.
    other = grant("bob", ["Encrypt"], Name="nightly-job")
    assert other["GrantId"] != first["GrantId"]
    assert sorted(grant_ids(admin, key["KeyId"])) == sorted([first["GrantId"], other["GrantId"]])


def test_operations_must_suit_the_key(srv, admin, key):
    expect_error(lambda: admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("bob"),
                                            Operations=["Encrypt", "Sign"]),
                 "ValidationException",
                 f"Grant operations [Sign] are not valid for key {key['Arn']}: its key spec is SYMMETRIC_DEFAULT "
                 "and its key usage ENCRYPT_DECRYPT.")
    raw = srv.client("admin", validate=False)
    expect_error(lambda: raw.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("bob"),
                                          Operations=["Encrypt", "Teleport"]),
                 "ValidationException",
                 # The values in the order validate::aws_order predicts for AWS (fitted to AWS's recorded
                 # keySpec and macAlgorithm answers; AWS's answer for this enum is unconfirmed), not the model's.
                 coral("Value 'Teleport' at 'operations.2.member' failed to satisfy constraint: "
                       "Member must satisfy enum value set: [CreateGrant, GetPublicKey, GenerateDataKey, RetireGrant, "
                       "Encrypt, GenerateDataKeyPairWithoutPlaintext, ReEncryptTo, Decrypt, "
                       "GenerateDataKeyWithoutPlaintext, Encapsulate, DescribeKey, VerifyMac, Decapsulate, Verify, "
                       "GenerateMac, GenerateDataKeyPair, DeriveSharedSecret, ReEncryptFrom, Sign]"))
    assert grant_ids(admin, key["KeyId"]) == []


def test_grants_on_a_disabled_key(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"])
    admin.disable_key(KeyId=key["KeyId"])
    expect_error(lambda: srv.client("bob").encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[g["GrantToken"]]),
                 "DisabledException", f"{key['Arn']} is disabled.")
    expect_error(lambda: grant("bob", ["Decrypt"]), "DisabledException", f"{key['Arn']} is disabled.")
    admin.enable_key(KeyId=key["KeyId"])
    srv.client("bob").encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_key_policy_deny_beats_a_grant(srv, admin):
    key = admin.create_key(Policy=json.dumps(policy_doc(
        allow("kms:*", principal=account_root_arn(A)),
        deny("kms:Decrypt", principal=srv.arn("bob")),
    )))["KeyMetadata"]
    g = admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("bob"), Operations=["Encrypt", "Decrypt"])
    bob = srv.client("bob")
    blob = bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[g["GrantToken"]])["CiphertextBlob"]
    expect_error(lambda: bob.decrypt(CiphertextBlob=blob, GrantTokens=[g["GrantToken"]]), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Decrypt", key["Arn"], "deny-resource"))


def test_cross_account_grant(srv, admin, key, grant):
    """A grant lets a principal of another account use the key by its ARN, though the key policy
    names only the key's own account."""
    carol = srv.client("carol")
    expect_error(lambda: carol.encrypt(KeyId=key["Arn"], Plaintext=b"x"), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "Encrypt"))
    g = grant("carol", ["Encrypt", "Decrypt"])
    enc = carol.encrypt(KeyId=key["Arn"], Plaintext=b"from B", GrantTokens=[g["GrantToken"]])
    assert enc["KeyId"] == key["Arn"]
    assert carol.decrypt(CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == b"from B"
    assert admin.decrypt(CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == b"from B"
    # Beyond the grant, the key stays hidden.
    expect_error(lambda: carol.describe_key(KeyId=key["Arn"]), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "DescribeKey"))
    entry = admin.list_grants(KeyId=key["KeyId"], GrantId=g["GrantId"])["Grants"][0]
    assert entry["GranteePrincipal"] == srv.arn("carol")
    assert entry["IssuingAccount"] == account_root_arn(A)


# --------------------------------------------------------------------------------------------
# Grant tokens
# --------------------------------------------------------------------------------------------


def test_grant_token_is_accepted_in_every_operation_that_takes_one(srv, key, grant):
    g = grant("bob", ["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey", "CreateGrant"])
    bob, tokens = srv.client("bob"), [g["GrantToken"]]
    blob = bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=tokens)["CiphertextBlob"]
    assert bob.decrypt(CiphertextBlob=blob, GrantTokens=tokens)["Plaintext"] == b"x"
    dk = bob.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", GrantTokens=tokens)
    assert len(dk["Plaintext"]) == 32
    assert bob.describe_key(KeyId=key["KeyId"], GrantTokens=tokens)["KeyMetadata"]["Arn"] == key["Arn"]
    sub = bob.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("svc"), Operations=["Encrypt"],
                           GrantTokens=tokens)
    srv.client("svc").encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[sub["GrantToken"]])
    # A dry run through the grant: the grant allows it.
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=tokens, DryRun=True),
                 "DryRunOperationException", DRY_RUN_MESSAGE)


def test_invalid_grant_tokens(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"])
    bob = srv.client("bob")
    token = g["GrantToken"]
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in ("not-a-grant-token", tampered, token[:-4]):
        expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[bad]),
                     "InvalidGrantTokenException", INVALID_TOKEN_MESSAGE)
    # One bad token spoils the request, good ones with it or not.
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[token, "garbage"]),
                 "InvalidGrantTokenException", INVALID_TOKEN_MESSAGE)
    # Even for a caller who needs no grant.
    expect_error(lambda: admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=["garbage"]),
                 "InvalidGrantTokenException", INVALID_TOKEN_MESSAGE)
    expect_error(lambda: admin.retire_grant(GrantToken="garbage"), "InvalidGrantTokenException", INVALID_TOKEN_MESSAGE)
    # The token is a credential: the error does not echo it.
    resp = expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[tampered]),
                        "InvalidGrantTokenException")
    assert tampered not in json.dumps(resp, default=str)


def test_token_of_a_revoked_grant_gives_no_access(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"])
    admin.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    expect_error(lambda: srv.client("bob").encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[g["GrantToken"]]),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))


# --------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------


def test_constraint_encryption_context_equals(srv, key, grant):
    ctx = {"Department": "IT", "Project": "Alpha"}
    grant("bob", ["Encrypt", "Decrypt", "GenerateDataKey"], Constraints={"EncryptionContextEquals": ctx})
    bob = srv.client("bob")
    blob = bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=ctx)["CiphertextBlob"]
    assert bob.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"x"
    dk = bob.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)
    assert bob.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    for bad in ({**ctx, "Extra": "1"}, {"Department": "IT"}, {"Department": "it", "Project": "Alpha"}, None):
        kw = {"EncryptionContext": bad} if bad is not None else {}
        expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **kw), "AccessDeniedException",
                     denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))
        expect_error(lambda: bob.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", **kw),
                     "AccessDeniedException",
                     denied_message(srv.arn("bob"), "GenerateDataKey", key["Arn"], "no-identity"))


def test_constraint_encryption_context_subset(srv, admin, key, grant):
    grant("bob", ["Encrypt", "Decrypt"], Constraints={"EncryptionContextSubset": {"tenant": "t-1"}})
    bob = srv.client("bob")
    for ctx in ({"tenant": "t-1"}, {"tenant": "t-1", "table": "orders"}):
        blob = bob.encrypt(KeyId=key["KeyId"], Plaintext=b"row", EncryptionContext=ctx)["CiphertextBlob"]
        assert bob.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"row"
    other_tenant = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"t2", EncryptionContext={"tenant": "t-2"})
    expect_error(lambda: bob.decrypt(CiphertextBlob=other_tenant["CiphertextBlob"],
                                     EncryptionContext={"tenant": "t-2"}),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "Decrypt", key["Arn"], "no-identity"))
    for bad in ({"table": "orders"}, {"tenant": "t-2"}, None):
        kw = {"EncryptionContext": bad} if bad is not None else {}
        expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **kw), "AccessDeniedException",
                     denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))


def test_constraint_key_in_several_cases(srv, admin, key, grant):
    """Grant constraint keys are not case-sensitive: a context holding the key in two cases must
    give both the value, so the caller cannot choose which one the constraint reads."""
    grant("bob", ["Encrypt"], Constraints={"EncryptionContextSubset": {"tenant": "t-1"}})
    bob = srv.client("bob")
    bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"TENANT": "t-1"})
    bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"TENANT": "t-1", "tenant": "t-1"})
    for steered in ({"TENANT": "t-2", "tenant": "t-1"}, {"TENANT": "t-1", "Tenant": "t-2"}):
        expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=steered),
                     "AccessDeniedException", denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))


def test_an_equals_constraint_with_its_key_in_two_cases(srv, key, grant):
    """An EncryptionContextEquals holding one key in two cases is one pair to the grant: a context of
    the same size with a pair of its own does not equal it."""
    grant("bob", ["Encrypt"], Constraints={"EncryptionContextEquals": {"tenant": "t-1", "TENANT": "t-1"}})
    bob = srv.client("bob")
    bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"TENANT": "t-1", "tenant": "t-1"})
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x",
                                     EncryptionContext={"tenant": "t-1", "purpose": "anything"}),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))


def test_constraints_do_not_apply_to_operations_without_context(srv, key, grant):
    grant("bob", ["Encrypt", "DescribeKey"], Constraints={"EncryptionContextSubset": {"tenant": "t-1"}})
    assert srv.client("bob").describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_constraints_need_a_symmetric_encryption_key(srv, admin):
    hmac = admin.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    expect_error(lambda: admin.create_grant(KeyId=hmac["KeyId"], GranteePrincipal=srv.arn("bob"),
                                            Operations=["GenerateMac"],
                                            Constraints={"EncryptionContextSubset": {"a": "b"}}),
                 "ValidationException",
                 f"Encryption context grant constraints are only valid for symmetric encryption keys; "
                 f"{hmac['Arn']} has key spec HMAC_256.")
    # Without constraints, an HMAC grant works.
    admin.create_grant(KeyId=hmac["KeyId"], GranteePrincipal=srv.arn("bob"), Operations=["GenerateMac"])
    mac = srv.client("bob").generate_mac(KeyId=hmac["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert len(mac["Mac"]) == 32


# --------------------------------------------------------------------------------------------
# Sub-grants
# --------------------------------------------------------------------------------------------


def test_sub_grants_stay_within_the_parent_grant(srv, admin, key, grant):
    parent = grant("bob", ["Encrypt", "Decrypt", "CreateGrant"],
                   Constraints={"EncryptionContextSubset": {"tenant": "t-1"}})
    bob = srv.client("bob")
    # Narrower: fewer operations, a stricter context.
    child = bob.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("svc"), Operations=["Encrypt"],
                             Constraints={"EncryptionContextSubset": {"tenant": "t-1", "table": "orders"}})
    svc = srv.client("svc")
    svc.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t-1", "table": "orders"},
                GrantTokens=[child["GrantToken"]])
    expect_error(lambda: svc.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t-1"}),
                 "AccessDeniedException", denied_message(srv.arn("svc"), "Encrypt", key["Arn"], "no-identity"))
    entry = admin.list_grants(KeyId=key["KeyId"], GrantId=child["GrantId"])["Grants"][0]
    assert entry["GranteePrincipal"] == srv.arn("svc") and entry["IssuingAccount"] == account_root_arn(A)
    # An equals constraint that keeps the parent's pairs is within it too.
    bob.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("svc"), Operations=["Decrypt"],
                     Constraints={"EncryptionContextEquals": {"tenant": "t-1"}})

    refused = denied_message(srv.arn("bob"), "CreateGrant", key["Arn"], "no-identity")
    for ops, constraints in (
        (["Encrypt"], None),                                          # drops the constraint
        (["Encrypt"], {"EncryptionContextSubset": {"tenant": "t-2"}}),  # another context
        (["GenerateDataKey"], {"EncryptionContextSubset": {"tenant": "t-1"}}),  # an operation it lacks
        (["Encrypt", "DescribeKey"], {"EncryptionContextSubset": {"tenant": "t-1"}}),
    ):
        kw = {"Constraints": constraints} if constraints else {}
        expect_error(lambda: bob.create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("svc"), Operations=ops,
                                              **kw), "AccessDeniedException", refused)
    assert len(grant_ids(admin, key["KeyId"])) == 3
    # Retiring the parent leaves the sub-grants (they are grants of their own).
    admin.revoke_grant(KeyId=key["KeyId"], GrantId=parent["GrantId"])
    svc.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "t-1", "table": "orders"})


def test_grant_without_create_grant_cannot_be_passed_on(srv, key, grant):
    grant("bob", ["Encrypt", "Decrypt"])
    expect_error(lambda: srv.client("bob").create_grant(KeyId=key["KeyId"], GranteePrincipal=srv.arn("svc"),
                                                        Operations=["Encrypt"]),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "CreateGrant", key["Arn"], "no-identity"))


# --------------------------------------------------------------------------------------------
# ListGrants
# --------------------------------------------------------------------------------------------


def test_list_grants_entry(srv, admin, key, grant):
    constraints = {"EncryptionContextSubset": {"app": "billing"}}
    g = grant("bob", ["Encrypt", "Decrypt"], Name="billing-writer", RetiringPrincipal=srv.arn("alice"),
              Constraints=constraints)
    resp = admin.list_grants(KeyId=key["KeyId"])
    assert resp["Truncated"] is False and "NextMarker" not in resp
    [entry] = resp["Grants"]
    assert_recent(entry.pop("CreationDate"))
    assert entry == {
        "KeyId": key["Arn"],
        "GrantId": g["GrantId"],
        "Name": "billing-writer",
        "GranteePrincipal": srv.arn("bob"),
        "RetiringPrincipal": srv.arn("alice"),
        "IssuingAccount": account_root_arn(A),
        "Operations": ["Encrypt", "Decrypt"],
        "Constraints": constraints,
    }
    # Named by key ARN: the same list.
    assert grant_ids(admin, key["Arn"]) == [g["GrantId"]]


def test_list_grants_filters_and_paging(srv, admin, key, grant):
    to_bob = [grant("bob", ["Encrypt"])["GrantId"] for _ in range(3)]
    to_svc = grant("svc", ["Decrypt"])["GrantId"]
    assert sorted(grant_ids(admin, key["KeyId"])) == sorted(to_bob + [to_svc])
    assert sorted(grant_ids(admin, key["KeyId"], GranteePrincipal=srv.arn("bob"))) == sorted(to_bob)
    assert grant_ids(admin, key["KeyId"], GranteePrincipal=srv.arn("svc")) == [to_svc]
    assert grant_ids(admin, key["KeyId"], GrantId=to_bob[1]) == [to_bob[1]]
    assert grant_ids(admin, key["KeyId"], GranteePrincipal=srv.arn("carol")) == []
    # Pages of one, in a stable order, covering every grant once.
    seen, marker = [], None
    for _ in range(10):
        page = admin.list_grants(KeyId=key["KeyId"], Limit=1, **({"Marker": marker} if marker else {}))
        seen += [g["GrantId"] for g in page["Grants"]]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        assert len(page["Grants"]) == 1
        marker = page["NextMarker"]
    assert sorted(seen) == sorted(to_bob + [to_svc]) and len(seen) == 4
    # Grants of one key only.
    other = admin.create_key()["KeyMetadata"]
    assert grant_ids(admin, other["KeyId"]) == []


def test_list_grants_needs_a_key_id(srv):
    raw = srv.client("admin", validate=False)
    expect_error(lambda: raw.list_grants(), "ValidationException",
                 coral("Value null at 'keyId' failed to satisfy constraint: Member must not be null"))


def test_list_grants_needs_permission(srv, key, grant):
    g = grant("bob", ["Encrypt"])
    # The grantee may not list the key's grants; a principal whose identity policy allows it may.
    expect_error(lambda: srv.client("bob").list_grants(KeyId=key["KeyId"]), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "ListGrants", key["Arn"], "no-identity"))
    assert grant_ids(srv.client("auditor"), key["KeyId"]) == [g["GrantId"]]
    # Another account, refused, does not learn whether the key exists.
    expect_error(lambda: srv.client("broot").list_grants(KeyId=key["Arn"]), "AccessDeniedException",
                 hidden_key_message(srv.arn("broot"), "ListGrants"))


# --------------------------------------------------------------------------------------------
# RetireGrant, RevokeGrant, ListRetirableGrants
# --------------------------------------------------------------------------------------------


def test_retire_by_the_retiring_principal(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"], RetiringPrincipal=srv.arn("alice"))
    bob = srv.client("bob")
    bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    # alice has no permission on the key at all: being the retiring principal is enough.
    srv.client("alice").retire_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    assert grant_ids(admin, key["KeyId"]) == []
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))
    expect_error(lambda: srv.client("alice").retire_grant(KeyId=key["Arn"], GrantId=g["GrantId"]),
                 "NotFoundException", f"Grant ID {g['GrantId']} not found")


def test_retire_with_the_grant_token(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"], RetiringPrincipal=srv.arn("alice"))
    srv.client("alice").retire_grant(GrantToken=g["GrantToken"])
    assert grant_ids(admin, key["KeyId"]) == []
    expect_error(lambda: srv.client("bob").encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))


def test_retire_by_the_grantee_needs_retire_grant_in_the_grant(srv, admin, key, grant):
    plain = grant("bob", ["Encrypt"])
    retirable = grant("bob", ["Encrypt", "RetireGrant"])
    bob = srv.client("bob")
    expect_error(lambda: bob.retire_grant(KeyId=key["KeyId"], GrantId=plain["GrantId"]), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "RetireGrant", key["Arn"], "no-identity"))
    bob.retire_grant(KeyId=key["KeyId"], GrantId=retirable["GrantId"])
    assert grant_ids(admin, key["KeyId"]) == [plain["GrantId"]]


def test_retire_by_others(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"], RetiringPrincipal=srv.arn("alice"))
    # Neither retiring principal nor grantee, without an identity policy for it: refused.
    expect_error(lambda: srv.client("svc").retire_grant(KeyId=key["KeyId"], GrantId=g["GrantId"]),
                 "AccessDeniedException", denied_message(srv.arn("svc"), "RetireGrant", key["Arn"], "no-identity"))
    # The key's account, through an identity policy allowing kms:RetireGrant, may.
    admin.retire_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    assert grant_ids(admin, key["KeyId"]) == []


def test_retire_by_a_retiring_principal_of_another_account(srv, admin, key, grant):
    by_arn = grant("bob", ["Encrypt"], RetiringPrincipal=srv.arn("carol"))
    by_token = grant("bob", ["Decrypt"], RetiringPrincipal=srv.arn("carol"))
    carol = srv.client("carol")
    # Another account names the key by its ARN; the key id alone means carol's own account.
    expect_error(lambda: carol.retire_grant(KeyId=key["KeyId"], GrantId=by_arn["GrantId"]), "NotFoundException",
                 f"Key 'arn:aws:kms:us-east-1:{B}:key/{key['KeyId']}' does not exist")
    carol.retire_grant(KeyId=key["Arn"], GrantId=by_arn["GrantId"])
    carol.retire_grant(GrantToken=by_token["GrantToken"])
    assert grant_ids(admin, key["KeyId"]) == []


def test_retire_grant_needs_a_token_or_key_and_grant_id(srv, key):
    expect_error(lambda: srv.client("admin").retire_grant(KeyId=key["KeyId"]), "ValidationException",
                 "Grant token OR (grant ID, key ID) must be specified")
    expect_error(lambda: srv.client("admin").retire_grant(GrantId="a" * 64), "ValidationException",
                 "Grant token OR (grant ID, key ID) must be specified")


def test_revoke_grant(srv, admin, key, grant):
    g = grant("bob", ["Encrypt", "RetireGrant"])
    keep = grant("svc", ["Encrypt"])
    bob = srv.client("bob")
    bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    # Revoking needs kms:RevokeGrant: neither the grantee nor a grant reader has it.
    for name in ("bob", "auditor"):
        expect_error(lambda: srv.client(name).revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"]),
                     "AccessDeniedException", denied_message(srv.arn(name), "RevokeGrant", key["Arn"], "no-identity"))
    admin.revoke_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    assert grant_ids(admin, key["KeyId"]) == [keep["GrantId"]]
    expect_error(lambda: bob.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=[g["GrantToken"]]),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity"))
    expect_error(lambda: admin.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"]), "NotFoundException",
                 f"Grant ID {g['GrantId']} not found")
    # A grant id of another key is not found on this one.
    other = admin.create_key()["KeyMetadata"]
    expect_error(lambda: admin.revoke_grant(KeyId=other["KeyId"], GrantId=keep["GrantId"]), "NotFoundException",
                 f"Grant ID {keep['GrantId']} not found")
    srv.client("svc").encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_list_retirable_grants(srv, admin, grant, key):
    other_key = admin.create_key()["KeyMetadata"]
    mine = [
        grant("bob", ["Encrypt"], RetiringPrincipal=srv.arn("alice"), Name="a1")["GrantId"],
        grant("svc", ["Decrypt"], RetiringPrincipal=srv.arn("alice"), key_id=other_key["KeyId"])["GrantId"],
    ]
    grant("bob", ["Decrypt"], RetiringPrincipal=srv.arn("svc"))
    grant("bob", ["Decrypt"])
    alice = srv.client("alice")
    resp = alice.list_retirable_grants(RetiringPrincipal=srv.arn("alice"))
    listed = {g["GrantId"]: g for g in resp["Grants"]}
    # Grants of earlier tests may name alice too; these two are hers, the others are not.
    assert set(mine) <= set(listed)
    assert all(g["RetiringPrincipal"] == srv.arn("alice") for g in listed.values())
    assert listed[mine[0]]["KeyId"] == key["Arn"] and listed[mine[0]]["Name"] == "a1"
    assert listed[mine[1]]["KeyId"] == other_key["Arn"]
    # Paging.
    seen, marker = [], None
    while True:
        page = alice.list_retirable_grants(RetiringPrincipal=srv.arn("alice"), Limit=1,
                                           **({"Marker": marker} if marker else {}))
        seen += [g["GrantId"] for g in page["Grants"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert sorted(seen) == sorted(listed)
    # It takes an identity policy: bob has none.
    expect_error(lambda: srv.client("bob").list_retirable_grants(RetiringPrincipal=srv.arn("bob")),
                 "AccessDeniedException", denied_message(srv.arn("bob"), "ListRetirableGrants", "*", "no-identity"))
    # And only principals of the caller's own account.
    expect_error(lambda: alice.list_retirable_grants(RetiringPrincipal=srv.arn("carol")), "AccessDeniedException",
                 denied_message(srv.arn("alice"), "ListRetirableGrants", srv.arn("carol"), "no-identity"))


# --------------------------------------------------------------------------------------------
# The AWS CLI
# --------------------------------------------------------------------------------------------


def test_cli_grant_lifecycle(srv, admin, key, tmp_path):
    res = srv.cli("admin", ["create-grant", "--key-id", key["KeyId"], "--grantee-principal", srv.arn("bob"),
                            "--retiring-principal", srv.arn("alice"), "--operations", "Encrypt", "Decrypt",
                            "--constraints", "EncryptionContextSubset={team=blue}", "--name", "cli-grant"])
    assert res.returncode == 0, res.stderr
    grant_id, token = res.json["GrantId"], res.json["GrantToken"]
    assert GRANT_ID_RE.match(grant_id)

    (tmp_path / "pt.bin").write_bytes(b"cli grant")
    res = srv.cli("bob", ["encrypt", "--key-id", key["Arn"], "--plaintext", f"fileb://{tmp_path / 'pt.bin'}",
                          "--encryption-context", "team=blue", "--grant-tokens", token])
    assert res.returncode == 0, res.stderr
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(res.json["CiphertextBlob"]))
    res = srv.cli("bob", ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
                          "--encryption-context", "team=blue"])
    assert res.returncode == 0, res.stderr
    assert base64.b64decode(res.json["Plaintext"]) == b"cli grant"
    res = srv.cli("bob", ["encrypt", "--key-id", key["Arn"], "--plaintext", f"fileb://{tmp_path / 'pt.bin'}",
                          "--encryption-context", "team=red"])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == denied_message(srv.arn("bob"), "Encrypt", key["Arn"], "no-identity")

    res = srv.cli("admin", ["list-grants", "--key-id", key["KeyId"]])
    assert res.returncode == 0, res.stderr
    [entry] = res.json["Grants"]
    assert entry["GrantId"] == grant_id and entry["KeyId"] == key["Arn"] and entry["Name"] == "cli-grant"
    assert entry["GranteePrincipal"] == srv.arn("bob") and entry["RetiringPrincipal"] == srv.arn("alice")
    assert entry["Operations"] == ["Encrypt", "Decrypt"]
    assert entry["Constraints"] == {"EncryptionContextSubset": {"team": "blue"}}
    assert entry["IssuingAccount"] == account_root_arn(A)

    res = srv.cli("alice", ["list-retirable-grants", "--retiring-principal", srv.arn("alice")])
    assert res.returncode == 0, res.stderr
    assert grant_id in [g["GrantId"] for g in res.json["Grants"]]

    res = srv.cli("bob", ["revoke-grant", "--key-id", key["KeyId"], "--grant-id", grant_id])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == denied_message(srv.arn("bob"), "RevokeGrant", key["Arn"], "no-identity")
    res = srv.cli("admin", ["revoke-grant", "--key-id", key["KeyId"], "--grant-id", grant_id])
    assert res.returncode == 0, res.stderr
    res = srv.cli("admin", ["list-grants", "--key-id", key["KeyId"]])
    assert res.returncode == 0 and res.json["Grants"] == [], res.stderr
    res = srv.cli("admin", ["revoke-grant", "--key-id", key["KeyId"], "--grant-id", grant_id])
    assert res.error_code == "NotFoundException", res.stderr
    assert res.error_message == f"Grant ID {grant_id} not found"


def test_cli_retire_grant_and_bad_token(srv, admin, key, grant):
    g = grant("bob", ["Encrypt"], RetiringPrincipal=srv.arn("alice"))
    res = srv.cli("bob", ["encrypt", "--key-id", key["KeyId"], "--plaintext", "x", "--grant-tokens", "bogus"])
    assert res.error_code == "InvalidGrantTokenException", res.stderr
    assert res.error_message == INVALID_TOKEN_MESSAGE
    res = srv.cli("alice", ["retire-grant", "--grant-token", g["GrantToken"]])
    assert res.returncode == 0, res.stderr
    assert grant_ids(admin, key["KeyId"]) == []


def test_cli_create_grant_refused(srv, key):
    res = srv.cli("bob", ["create-grant", "--key-id", key["KeyId"], "--grantee-principal", srv.arn("bob"),
                          "--operations", "Encrypt"])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == denied_message(srv.arn("bob"), "CreateGrant", key["Arn"], "no-identity")
    res = srv.cli("carol", ["create-grant", "--key-id", key["Arn"], "--grantee-principal", srv.arn("carol"),
                            "--operations", "Encrypt"])
    assert res.error_code == "AccessDeniedException", res.stderr
    assert res.error_message == hidden_key_message(srv.arn("carol"), "CreateGrant")
