"""No existence oracle across accounts: a caller of another account who may not use a key learns
nothing from the answer about the key or its grants. For every operation AWS allows across
accounts, the answer (error name, message, HTTP status) for each existing key of account A that
the caller may not use (of every kind and state, behind every kind of refusal) is the answer for
a key id that does not exist in A; for the grant operations, an existing grant's id answers as a
missing one; and a ciphertext or a grant token that names a key or grant of A says no more.

One server per module, its principals in a config file: account 111122223333 (admin, alice) and
account 444455556666 (carol, whose identity policy allows everything; erin, with no identity
policy; and the account's root).
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kmsutil import (
    DEV_ACCOUNT,
    ConfiguredPrincipal,
    account_root_arn,
    allow,
    deny,
    hidden_key_message,
    key_arn,
    policy_doc,
)

A = DEV_ACCOUNT  # 111122223333
B = "444455556666"


def user(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


PRINCIPALS = [
    ConfiguredPrincipal("admin", user(A, "admin"), {"AdministratorAccess": policy_doc(allow("kms:*"))}),
    ConfiguredPrincipal("alice", user(A, "alice")),
    ConfiguredPrincipal("carol", user(B, "carol"), {"everything": policy_doc(allow("kms:*"))}),
    ConfiguredPrincipal("erin", user(B, "erin")),
    ConfiguredPrincipal("broot", account_root_arn(B)),
]
OUTSIDERS = ["carol", "erin", "broot"]


@pytest.fixture(scope="module")
def srv(configured_server_factory):
    return configured_server_factory(PRINCIPALS)


@pytest.fixture(scope="module")
def admin(srv):
    return srv.client("admin")


def answer(call) -> tuple:
    """What a caller sees: (error code, message, HTTP status), or ("ok",) for a success."""
    try:
        call()
    except ClientError as e:
        r = e.response
        return (r["Error"].get("Code"), r["Error"].get("Message"), r["ResponseMetadata"]["HTTPStatusCode"])
    return ("ok",)


def hidden(srv, name: str, action: str) -> tuple:
    return ("AccessDeniedException", hidden_key_message(srv.arn(name), action), 400)


def with_key_id(blob: bytes, key_id: str) -> bytes:
    """A symmetric ciphertext whose header names `key_id` (same account) instead of its own key."""
    account_len = blob[1]
    start = 2 + account_len + 1
    old_len = blob[start - 1]
    return blob[: start - 1] + bytes([len(key_id)]) + key_id.encode() + blob[start + old_len:]


@pytest.fixture(scope="module")
def keys(srv, admin) -> dict:
    """Keys of account A none of the outsiders may use (but for the Encrypt-only key): name -> ARN."""
    made = {}

    def make(name, **kw):
        made[name] = admin.create_key(**kw)["KeyMetadata"]["Arn"]

    make("symmetric")
    make("disabled")
    admin.disable_key(KeyId=made["disabled"])
    make("pending-deletion")
    admin.schedule_key_deletion(KeyId=made["pending-deletion"], PendingWindowInDays=7)
    make("pending-import", Origin="EXTERNAL")
    make("hmac", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    make("signing", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    make("agreement", KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    make("kem", KeySpec="ML_KEM_512", KeyUsage="ENCAPSULATE_DECAPSULATE")
    make("rsa", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    make("multi-region", MultiRegion=True)
    # A key policy that denies account B outright, and one that lets B only encrypt.
    root = account_root_arn(A)
    make("denies-b", Policy=json.dumps(policy_doc(
        allow("kms:*", principal=root), deny("kms:*", principal=account_root_arn(B)))))
    make("encrypt-only-for-b", Policy=json.dumps(policy_doc(
        allow("kms:*", principal=root), allow("kms:Encrypt", principal=account_root_arn(B)))))
    # An AWS managed key, made by its first use.
    made["aws-managed"] = admin.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    for name in ("symmetric", "hmac"):
        admin.create_alias(AliasName=f"alias/oracle-{name}", TargetKeyId=made[name])
    return made


def missing_key() -> str:
    return key_arn(str(uuid.uuid4()))


def p256_spki() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def operations(srv) -> dict:
    """Action -> call(client, key ARN, **more members), one request of each operation AWS allows
    across accounts."""
    own = srv.client("broot").create_key(Description="B's own")["KeyMetadata"]["Arn"]
    spki = p256_spki()
    return {
        "CreateGrant": lambda c, k, **kw: c.create_grant(KeyId=k, GranteePrincipal=srv.arn("erin"),
                                                         Operations=["Decrypt"], **kw),
        "Decrypt": lambda c, k, **kw: c.decrypt(KeyId=k, CiphertextBlob=os.urandom(200), **kw),
        "ReEncryptTo": lambda c, k, **kw: c.re_encrypt(CiphertextBlob=os.urandom(200), DestinationKeyId=k, **kw),
        "ReEncryptFrom": lambda c, k, **kw: c.re_encrypt(CiphertextBlob=os.urandom(200), SourceKeyId=k,
                                                         DestinationKeyId=own, **kw),
        "Encrypt": lambda c, k, **kw: c.encrypt(KeyId=k, Plaintext=b"x", **kw),
        "GenerateDataKey": lambda c, k, **kw: c.generate_data_key(KeyId=k, NumberOfBytes=32, **kw),
        "GenerateDataKeyWithoutPlaintext":
            lambda c, k, **kw: c.generate_data_key_without_plaintext(KeyId=k, KeySpec="AES_256", **kw),
        "GenerateDataKeyPair": lambda c, k, **kw: c.generate_data_key_pair(KeyId=k, KeyPairSpec="ECC_NIST_P256", **kw),
        "GenerateDataKeyPairWithoutPlaintext":
            lambda c, k, **kw: c.generate_data_key_pair_without_plaintext(KeyId=k, KeyPairSpec="ECC_NIST_P256", **kw),
        "GenerateMac": lambda c, k, **kw: c.generate_mac(KeyId=k, Message=b"m", MacAlgorithm="HMAC_SHA_256", **kw),
        "VerifyMac": lambda c, k, **kw: c.verify_mac(KeyId=k, Message=b"m", MacAlgorithm="HMAC_SHA_256",
                                                     Mac=b"\0" * 32, **kw),
        "Sign": lambda c, k, **kw: c.sign(KeyId=k, Message=b"m", SigningAlgorithm="ECDSA_SHA_256", **kw),
        "Verify": lambda c, k, **kw: c.verify(KeyId=k, Message=b"m", SigningAlgorithm="ECDSA_SHA_256",
                                              Signature=b"\x30" * 70, **kw),
        "GetPublicKey": lambda c, k, **kw: c.get_public_key(KeyId=k, **kw),
        "DeriveSharedSecret": lambda c, k, **kw: c.derive_shared_secret(KeyId=k, KeyAgreementAlgorithm="ECDH",
                                                                        PublicKey=spki, **kw),
        "Encapsulate": lambda c, k, **kw: c.encapsulate(KeyId=k, EncapsulationAlgorithm="ML_KEM", **kw),
        "Decapsulate": lambda c, k, **kw: c.decapsulate(KeyId=k, SharedSecretCiphertextBlob=b"\0" * 768,
                                                        EncapsulationAlgorithm="ML_KEM", **kw),
        "DescribeKey": lambda c, k, **kw: c.describe_key(KeyId=k, **kw),
        "GetKeyRotationStatus": lambda c, k, **kw: c.get_key_rotation_status(KeyId=k, **kw),
        "ListGrants": lambda c, k, **kw: c.list_grants(KeyId=k, **kw),
        "RetireGrant": lambda c, k, **kw: c.retire_grant(KeyId=k, GrantId="0" * 64, **kw),
        "RevokeGrant": lambda c, k, **kw: c.revoke_grant(KeyId=k, GrantId="0" * 64, **kw),
    }


# Dry runs are answered only after every other check: they say no more.
DRY_RUN = {"CreateGrant", "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
           "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "Sign",
           "Verify", "DeriveSharedSecret", "Encapsulate", "Decapsulate", "RetireGrant", "RevokeGrant"}
# The operations that take an alias (by alias ARN across accounts).
TAKE_NO_ALIAS = {"CreateGrant", "GetKeyRotationStatus", "ListGrants", "RetireGrant", "RevokeGrant"}


def test_every_cross_account_operation_answers_as_for_a_missing_key(srv, keys):
    ops = operations(srv)
    refs = {"missing key": missing_key(), **keys,
            "missing alias": f"arn:aws:kms:us-east-1:{A}:alias/oracle-none",
            "alias of a key": f"arn:aws:kms:us-east-1:{A}:alias/oracle-symmetric"}
    wrong = []
    for name in OUTSIDERS:
        client = srv.client(name)
        for action, call in ops.items():
            for extra in ({}, {"DryRun": True}) if action in DRY_RUN else ({},):
                how = " (DryRun)" if extra else ""
                base = answer(lambda: call(client, refs["missing key"], **extra))
                # erin has no identity policy: ReEncrypt refuses her on her own destination key
                # first, the same answer whatever the source.
                if base != hidden(srv, name, action) and not (name == "erin" and action == "ReEncryptFrom"):
                    wrong.append(f"{name} {action}{how} on a missing key: {base}")
                for ref_name, ref in refs.items():
                    allowed = ref_name == "encrypt-only-for-b" and action == "Encrypt" and name != "erin"
                    if allowed or ("alias" in ref_name and action in TAKE_NO_ALIAS):
                        continue
                    got = answer(lambda: call(client, ref, **extra))
                    if got != base:
                        wrong.append(f"{name} {action}{how} on {ref_name}: {got}")
    assert not wrong, f"{len(wrong)} answers differ from the missing key's:\n" + "\n".join(wrong)


def test_a_ciphertext_naming_a_key_of_another_account(srv, admin, keys):
    """Decrypt and ReEncrypt without a KeyId read the key from the ciphertext: one that names an
    existing key the caller may not use answers as one naming a missing key."""
    blob = admin.encrypt(KeyId=keys["symmetric"], Plaintext=b"secret")["CiphertextBlob"]
    disabled_blob = with_key_id(blob, keys["disabled"].split("/")[-1])
    forged = with_key_id(blob, str(uuid.uuid4()))
    own = srv.client("broot").create_key()["KeyMetadata"]["Arn"]
    for name in OUTSIDERS:
        c = srv.client(name)
        for action, run in (
            ("Decrypt", lambda b: c.decrypt(CiphertextBlob=b)),
            ("ReEncryptFrom", lambda b: c.re_encrypt(CiphertextBlob=b, DestinationKeyId=own)),
        ):
            # ReEncrypt needs kms:ReEncryptTo on the caller's own key first: erin has no identity
            # policy, so she is refused there whatever the ciphertext (the same for all three).
            answers = {what: answer(lambda: run(b)) for what, b in
                       (("existing", blob), ("disabled", disabled_blob), ("missing", forged))}
            assert len(set(answers.values())) == 1, f"{name} {action}: {answers}"
            if not (name == "erin" and action == "ReEncryptFrom"):
                assert answers["missing"] == hidden(srv, name, action), f"{name} {action}: {answers}"


def test_grants_of_another_accounts_key(srv, admin, keys):
    """RetireGrant, RevokeGrant and ListGrants: an existing grant id answers as a missing one, on an
    existing key as on a missing key, by key and grant id and by grant token."""
    key = keys["symmetric"]
    grant = admin.create_grant(KeyId=key, GranteePrincipal=srv.arn("alice"), Operations=["Decrypt"],
                               RetiringPrincipal=srv.arn("alice"))
    gone = admin.create_grant(KeyId=key, GranteePrincipal=srv.arn("alice"), Operations=["Encrypt"])
    admin.revoke_grant(KeyId=key, GrantId=gone["GrantId"])
    missing_grant = "ab" * 32
    for name in OUTSIDERS:
        c = srv.client(name)
        for action, run in (
            ("RetireGrant", lambda k, g: c.retire_grant(KeyId=k, GrantId=g)),
            ("RevokeGrant", lambda k, g: c.revoke_grant(KeyId=k, GrantId=g)),
            ("ListGrants", lambda k, g: c.list_grants(KeyId=k, GrantId=g)),
        ):
            expected = hidden(srv, name, action)
            for what, k, g in (
                ("existing grant", key, grant["GrantId"]),
                ("revoked grant", key, gone["GrantId"]),
                ("missing grant", key, missing_grant),
                ("missing key", missing_key(), grant["GrantId"]),
            ):
                assert answer(lambda: run(k, g)) == expected, f"{name} {action} {what}"
        # A grant token names its key and grant: a live one and a dead one answer the same.
        expected = hidden(srv, name, "RetireGrant")
        assert answer(lambda: c.retire_grant(GrantToken=grant["GrantToken"])) == expected, name
        assert answer(lambda: c.retire_grant(GrantToken=gone["GrantToken"])) == expected, name
        # Using a key with a token of a grant to someone else adds nothing either.
        for token in (grant["GrantToken"], gone["GrantToken"]):
            got = answer(lambda: c.decrypt(CiphertextBlob=admin.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"],
                                           GrantTokens=[token]))
            assert got == hidden(srv, name, "Decrypt"), name
    # Nothing was retired or revoked by the outsiders.
    assert [g["GrantId"] for g in admin.list_grants(KeyId=key)["Grants"]] == [grant["GrantId"]]


def test_the_retiring_principal_of_another_account_may_still_retire(srv, admin, keys):
    """The refusal is the same for everyone who may not retire; one who may still can."""
    key = keys["symmetric"]
    g = admin.create_grant(KeyId=key, GranteePrincipal=srv.arn("alice"), Operations=["Decrypt"],
                           RetiringPrincipal=srv.arn("erin"))
    erin = srv.client("erin")
    assert answer(lambda: erin.retire_grant(KeyId=key, GrantId="cd" * 32)) == hidden(srv, "erin", "RetireGrant")
    erin.retire_grant(KeyId=key, GrantId=g["GrantId"])
    assert g["GrantId"] not in [x["GrantId"] for x in admin.list_grants(KeyId=key)["Grants"]]
    # ...and the key's own account still hears that a grant does not exist.
    assert answer(lambda: admin.retire_grant(KeyId=key, GrantId=g["GrantId"])) == (
        "NotFoundException", f"Grant ID {g['GrantId']} not found", 400)
