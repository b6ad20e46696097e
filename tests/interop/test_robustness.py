"""Bad input never panics, never gets a 5xx, always gets an AWS-shaped error, and changes nothing.

Every one of the API's 56 operations is sent garbage bytes, JSON that is not an object, and
objects whose members have random types and values (seeded, so a failure reproduces)."""

from __future__ import annotations

import json
import random

import pytest

from kmsutil import kms_call, raw_call

OPERATIONS = [
    "CancelKeyDeletion", "ConnectCustomKeyStore", "CreateAlias", "CreateCustomKeyStore",
    "CreateGrant", "CreateKey", "Decapsulate", "Decrypt", "DeleteAlias", "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial", "DeriveSharedSecret", "DescribeCustomKeyStores", "DescribeKey",
    "DisableKey", "DisableKeyRotation", "DisconnectCustomKeyStore", "EnableKey",
    "EnableKeyRotation", "Encapsulate", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
    "GenerateRandom", "GetKeyLastUsage", "GetKeyPolicy", "GetKeyRotationStatus",
    "GetParametersForImport", "GetPublicKey", "ImportKeyMaterial", "ListAliases", "ListGrants",
    "ListKeyPolicies", "ListKeyRotations", "ListKeys", "ListResourceTags", "ListRetirableGrants",
    "PutKeyPolicy", "ReEncrypt", "ReplicateKey", "RetireGrant", "RevokeGrant",
    "RotateKeyOnDemand", "ScheduleKeyDeletion", "Sign", "TagResource", "UntagResource",
    "UpdateAlias", "UpdateCustomKeyStore", "UpdateKeyDescription", "UpdatePrimaryRegion",
    "Verify", "VerifyMac",
]

MEMBERS = [
    "KeyId", "Plaintext", "CiphertextBlob", "EncryptionContext", "GrantTokens", "NumberOfBytes",
    "KeySpec", "KeyUsage", "Description", "Policy", "PolicyName", "Tags", "TagKeys", "AliasName",
    "TargetKeyId", "Limit", "Marker", "PendingWindowInDays", "DryRun", "DestinationKeyId",
    "SourceKeyId", "Origin", "MultiRegion", "BypassPolicyLockoutSafetyCheck",
]


def random_value(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "null", "list", "obj", "bigint", "b64", "unicode"]
    if depth > 2:
        kinds = kinds[:5]
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice("abc/:-_ alias=+") for _ in range(rng.randint(0, 40)))
    if kind == "int":
        return rng.randint(-(2**31), 2**31)
    if kind == "bigint":
        return rng.choice([2**63, -(2**63) - 1, 10**30])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e308, 3.0])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "b64":
        return rng.choice(["", "====", "AAAA", "not base64!", "A" * 9000])
    if kind == "unicode":
        return rng.choice(["é", "\u0000", "\ud7ff", "🔑" * 300, "x" * 5000])
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 12))]
    return {rng.choice(MEMBERS + ["a", ""]): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def assert_aws_error_or_success(resp, what: str) -> None:
    assert resp.status in (200, 400), f"{what}: HTTP {resp.status} {resp.body[:300]!r}"
    assert resp.headers.get("x-amzn-RequestId"), f"{what}: no request id"
    if resp.status == 400:
        doc = resp.json()
        assert isinstance(doc, dict) and isinstance(doc.get("__type"), str) and doc["__type"], f"{what}: {resp.body[:300]!r}"
        assert resp.headers.get("x-amzn-ErrorType") == doc["__type"]


def key_count(endpoint: str) -> int:
    return len(kms_call(endpoint, "ListKeys", {"Limit": 1000}).json()["Keys"])


@pytest.mark.parametrize("op", OPERATIONS)
def test_garbage_bodies_get_aws_errors_and_change_nothing(dev_endpoint, op):
    rng = random.Random(f"garbage-{op}")
    before = key_count(dev_endpoint)
    bodies = [b"{", b"\x00\xff\xfe", b"[]", b"null", b"42", b'"str"', b'{"KeyId":}', b"{}" * 3, bytes(rng.getrandbits(8) for _ in range(200))]
    for body in bodies:
        resp = raw_call(dev_endpoint, f"TrentService.{op}", body)
        assert_aws_error_or_success(resp, f"{op} {body[:20]!r}")
        assert resp.status == 400, f"{op} accepted garbage {body[:20]!r}"
    assert key_count(dev_endpoint) == before


@pytest.mark.parametrize("op", OPERATIONS)
def test_random_members_never_get_a_5xx(dev_endpoint, op):
    rng = random.Random(f"members-{op}")
    for i in range(25):
        payload = {rng.choice(MEMBERS): random_value(rng) for _ in range(rng.randint(1, 5))}
        resp = raw_call(dev_endpoint, f"TrentService.{op}", json.dumps(payload))
        assert_aws_error_or_success(resp, f"{op} #{i} {json.dumps(payload)[:200]}")
    # The server is still there and answers.
    assert kms_call(dev_endpoint, "GenerateRandom", {"NumberOfBytes": 4}).status == 200
