"""Symmetric data-plane operations through boto3: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateRandom — identifiers, encryption context, DryRun,
GrantTokens, size limits, and what bad ciphertexts get back."""

from __future__ import annotations

import os
import uuid

import pytest
from botocore.exceptions import ClientError

from kmsutil import (
    DEV_ACCOUNT,
    DRY_RUN_MESSAGE,
    HEX64_RE,
    REGION,
    alias_not_found_message,
    assert_request_id,
    coral,
    expect_error,
    not_found_key_message,
)


@pytest.fixture
def aliased_key(kms, key, unique):
    """A key with an alias; returns (metadata, {form: identifier})."""
    name = f"alias/{unique('crypto')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    forms = {
        "key-id": key["KeyId"],
        "key-arn": key["Arn"],
        "alias-name": name,
        "alias-arn": f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}",
    }
    return key, forms


FORMS = ["key-id", "key-arn", "alias-name", "alias-arn"]


def _assert_material_id(value: str) -> None:
    assert isinstance(value, str) and HEX64_RE.match(value), f"KeyMaterialId {value!r} is not 64 lowercase hex"


# ------------------------------------------------------------------------------ Encrypt/Decrypt


@pytest.mark.parametrize("form", FORMS)
def test_encrypt_decrypt_every_key_id_form(kms, aliased_key, form):
    key, forms = aliased_key
    plaintext = os.urandom(100)
    enc = kms.encrypt(KeyId=forms[form], Plaintext=plaintext)
    assert enc["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert_request_id(enc)
    assert enc["KeyId"] == key["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = enc["CiphertextBlob"]
    assert isinstance(blob, bytes) and plaintext not in blob
    assert len(blob) <= 6144

    dec = kms.decrypt(CiphertextBlob=blob)
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == key["Arn"]
    assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    _assert_material_id(dec["KeyMaterialId"])

    # Decrypt also accepts the key in this form.
    dec2 = kms.decrypt(CiphertextBlob=blob, KeyId=forms[form])
    assert dec2["Plaintext"] == plaintext
    assert dec2["KeyId"] == key["Arn"]


def test_ciphertexts_are_randomized(kms, key):
    a = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    b = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    assert a != b
    assert kms.decrypt(CiphertextBlob=a)["Plaintext"] == kms.decrypt(CiphertextBlob=b)["Plaintext"] == b"same"


def test_all_byte_values_round_trip(kms, key):
    plaintext = bytes(range(256)) * 16  # 4096 bytes
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


def test_key_material_id_is_stable_for_a_key(kms, new_key):
    a, b = new_key(), new_key()
    ids_a = {
        kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=a["KeyId"], Plaintext=b"x")["CiphertextBlob"])["KeyMaterialId"],
        kms.generate_data_key(KeyId=a["KeyId"], KeySpec="AES_256")["KeyMaterialId"],
        kms.generate_data_key_without_plaintext(KeyId=a["KeyId"], KeySpec="AES_256")["KeyMaterialId"],
    }
    assert len(ids_a) == 1
    id_b = kms.generate_data_key(KeyId=b["KeyId"], KeySpec="AES_256")["KeyMaterialId"]
    assert id_b not in ids_a
    md = kms.describe_key(KeyId=a["KeyId"])["KeyMetadata"]
    if "CurrentKeyMaterialId" in md:
        assert md["CurrentKeyMaterialId"] in ids_a


# ---------------------------------------------------------------------------- EncryptionContext


def test_encryption_context_round_trip(kms, key):
    ctx = {"purpose": "test", "department": "engineering", "unicode": "h\u00e9llo \u4e16\u754c", "empty": ""}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext=ctx)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"ctx"
    # Order does not matter.
    reordered = dict(reversed(list(ctx.items())))
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"ctx"


def test_empty_encryption_context_is_no_context(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"e", EncryptionContext={})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"e"
    blob2 = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"e")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob2, EncryptionContext={})["Plaintext"] == b"e"


@pytest.mark.parametrize(
    "decrypt_ctx",
    [
        pytest.param(None, id="missing"),
        pytest.param({"purpose": "other"}, id="different-value"),
        pytest.param({"Purpose": "test"}, id="key-case"),
        pytest.param({"purpose": "Test"}, id="value-case"),
        pytest.param({"purpose": "test", "extra": "x"}, id="extra-pair"),
        pytest.param({"other": "test"}, id="different-key"),
    ],
)
def test_wrong_encryption_context_is_invalid_ciphertext(kms, key, decrypt_ctx):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext={"purpose": "test"})[
        "CiphertextBlob"
    ]
    args = {"CiphertextBlob": blob}
    if decrypt_ctx is not None:
        args["EncryptionContext"] = decrypt_ctx
    # KMS sends InvalidCiphertextException without a message.
    expect_error(lambda: kms.decrypt(**args), "InvalidCiphertextException", message="")


def test_context_given_at_decrypt_but_not_encrypt(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"}), "InvalidCiphertextException", message=""
    )


# -------------------------------------------------------------------------- Bad ciphertexts


def test_every_single_bit_flip_is_rejected(kms, key):
    plaintext = b"tamper me"
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext={"k": "v"})["CiphertextBlob"]
    # The blob names its key (as AWS's does). A flip there makes it name another key, which KMS
    # looks up before it can authenticate anything: NotFoundException / AccessDeniedException are
    # then what AWS's own semantics give. The sealed part (at least the encrypted plaintext and
    # the 16-byte tag at the end) must fail as InvalidCiphertextException, without a message.
    sealed_tail = len(plaintext) + 16
    allowed_for_header = {"InvalidCiphertextException", "NotFoundException", "AccessDeniedException",
                          "IncorrectKeyException"}
    outcomes: dict[str, int] = {}
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= bit
            try:
                kms.decrypt(CiphertextBlob=bytes(bad), EncryptionContext={"k": "v"})
            except ClientError as e:
                code = e.response["Error"]["Code"]
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                outcomes[code] = outcomes.get(code, 0) + 1
                assert status == 400, f"byte {i} bit {bit:#x}: {code} HTTP {status}"
                if i >= len(blob) - sealed_tail:
                    assert code == "InvalidCiphertextException", f"byte {i} bit {bit:#x}: {code}"
                else:
                    assert code in allowed_for_header, f"byte {i} bit {bit:#x}: {code}"
                if code == "InvalidCiphertextException":
                    assert e.response["Error"].get("Message", "") == ""
            else:
                pytest.fail(f"tampered ciphertext (byte {i}, bit {bit:#x}) decrypted")
    assert outcomes.get("InvalidCiphertextException", 0) > sum(outcomes.values()) // 2, outcomes


def test_truncated_and_extended_ciphertexts(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"truncate me")["CiphertextBlob"]
    variants = [blob[:n] for n in (1, 2, 10, len(blob) // 2, len(blob) - 16, len(blob) - 1)]
    variants += [blob + b"\x00", blob + blob]
    for bad in variants:
        expect_error(lambda: kms.decrypt(CiphertextBlob=bad), "InvalidCiphertextException", message="")


@pytest.mark.parametrize("size", [1, 16, 64, 200, 4096, 6144])
def test_random_ciphertext_is_rejected(kms, size):
    expect_error(lambda: kms.decrypt(CiphertextBlob=os.urandom(size)), "InvalidCiphertextException", message="")


def test_random_ciphertext_with_key_id_is_rejected(kms, key):
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=os.urandom(150), KeyId=key["KeyId"]), "InvalidCiphertextException", message=""
    )


def test_ciphertext_blob_too_large(kms):
    # Coral shows blob values in an implementation-specific way; assert the member and the bound.
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=os.urandom(6145)),
        "ValidationException",
        startswith="1 validation error detected: ",
        contains=("'ciphertextBlob'", "Member must have length less than or equal to 6144"),
    )


def test_decrypt_with_another_key_is_incorrect_key(kms, new_key, unique):
    a, b = new_key(), new_key()
    name = f"alias/{unique('other')}"
    kms.create_alias(AliasName=name, TargetKeyId=b["KeyId"])
    blob = kms.encrypt(KeyId=a["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    for other in (b["KeyId"], b["Arn"], name):
        # AWS's message for this is not part of the reference: code and status.
        expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId=other), "IncorrectKeyException")


def test_decrypt_with_unknown_key_id(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId=kid), "NotFoundException", not_found_key_message(kid))


def test_encrypt_with_unknown_keys(kms):
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.encrypt(KeyId=kid, Plaintext=b"x"), "NotFoundException", not_found_key_message(kid))
    expect_error(
        lambda: kms.encrypt(KeyId="alias/nope-nope", Plaintext=b"x"),
        "NotFoundException",
        alias_not_found_message("alias/nope-nope"),
    )
    expect_error(lambda: kms.encrypt(KeyId="garbage", Plaintext=b"x"), "NotFoundException", "Invalid keyId 'garbage'")


# ------------------------------------------------------------------------------ Size limits


def test_plaintext_size_limits(kms, kms_raw, key):
    big = os.urandom(4096)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=big)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == big
    expect_error(
        lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=os.urandom(4097)),
        "ValidationException",
        coral("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"),
    )
    expect_error(
        lambda: kms_raw.encrypt(KeyId=key["KeyId"], Plaintext=b""),
        "ValidationException",
        coral("Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"),
    )


def test_plaintext_value_is_never_echoed(kms, key):
    # Plaintext is sensitive: a validation error must not show it.
    marker = b"SENSITIVE-" + os.urandom(8).hex().encode()
    resp = expect_error(
        lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=marker * 400), "ValidationException"
    )
    assert marker.decode() not in resp["Error"]["Message"]


# ----------------------------------------------------------------------------- GenerateDataKey


@pytest.mark.parametrize("form", FORMS)
def test_generate_data_key_every_key_id_form(kms, aliased_key, form):
    key, forms = aliased_key
    ctx = {"file": "a.txt"}
    resp = kms.generate_data_key(KeyId=forms[form], KeySpec="AES_256", EncryptionContext=ctx)
    assert resp["KeyId"] == key["Arn"]
    assert len(resp["Plaintext"]) == 32
    _assert_material_id(resp["KeyMaterialId"])
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == resp["Plaintext"]
    assert dec["KeyMaterialId"] == resp["KeyMaterialId"]
    expect_error(lambda: kms.decrypt(CiphertextBlob=resp["CiphertextBlob"]), "InvalidCiphertextException", message="")


@pytest.mark.parametrize(
    "args,length",
    [
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 64}, 64),
        ({"NumberOfBytes": 1024}, 1024),
    ],
)
def test_generate_data_key_lengths(kms, key, args, length):
    resp = kms.generate_data_key(KeyId=key["KeyId"], **args)
    assert len(resp["Plaintext"]) == length
    assert kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])["Plaintext"] == resp["Plaintext"]
    nopt = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], **args)
    assert "Plaintext" not in nopt
    assert nopt["KeyId"] == key["Arn"]
    _assert_material_id(nopt["KeyMaterialId"])
    assert len(kms.decrypt(CiphertextBlob=nopt["CiphertextBlob"])["Plaintext"]) == length


def test_data_keys_are_random(kms, key):
    keys = {kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"] for _ in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize("op", ["generate_data_key", "generate_data_key_without_plaintext"])
def test_generate_data_key_validation(kms, kms_raw, key, op):
    kid = key["KeyId"]
    expect_error(
        lambda: getattr(kms_raw, op)(KeyId=kid, NumberOfBytes=1025),
        "ValidationException",
        coral("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
    )
    expect_error(
        lambda: getattr(kms_raw, op)(KeyId=kid, NumberOfBytes=0),
        "ValidationException",
        coral("Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    )
    expect_error(
        lambda: getattr(kms_raw, op)(KeyId=kid, KeySpec="AES_512"),
        "ValidationException",
        coral("Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"),
    )
    # Exactly one of KeySpec and NumberOfBytes. The wording AWS uses for this is not in the
    # reference ("Please specify either number of bytes or key spec." is what emulators copy).
    expect_error(lambda: getattr(kms, op)(KeyId=kid, KeySpec="AES_256", NumberOfBytes=32), "ValidationException")
    expect_error(lambda: getattr(kms, op)(KeyId=kid), "ValidationException")


def test_generate_data_key_unknown_key(kms):
    kid = str(uuid.uuid4())
    expect_error(
        lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256"), "NotFoundException", not_found_key_message(kid)
    )


# ------------------------------------------------------------------------------ GenerateRandom


@pytest.mark.parametrize("n", [1, 32, 1024])
def test_generate_random(kms, n):
    resp = kms.generate_random(NumberOfBytes=n)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(resp["Plaintext"]) == n


def test_generate_random_is_random(kms):
    draws = {kms.generate_random(NumberOfBytes=32)["Plaintext"] for _ in range(5)}
    assert len(draws) == 5


def test_generate_random_validation(kms_raw):
    expect_error(
        lambda: kms_raw.generate_random(NumberOfBytes=1025),
        "ValidationException",
        coral("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
    )
    expect_error(
        lambda: kms_raw.generate_random(NumberOfBytes=0),
        "ValidationException",
        coral("Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    )
    expect_error(lambda: kms_raw.generate_random(), "ValidationException", "NumberOfBytes is required.")


# ---------------------------------------------------------------------------------- ReEncrypt


@pytest.mark.parametrize("form", FORMS)
def test_re_encrypt(kms, new_key, aliased_key, form):
    dest, forms = aliased_key
    src = new_key()
    blob = kms.encrypt(KeyId=src["KeyId"], Plaintext=b"move me", EncryptionContext={"from": "src"})["CiphertextBlob"]
    resp = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"from": "src"},
        DestinationKeyId=forms[form],
        DestinationEncryptionContext={"to": "dest"},
    )
    assert resp["SourceKeyId"] == src["Arn"]
    assert resp["KeyId"] == dest["Arn"]
    assert resp["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert resp["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    _assert_material_id(resp["SourceKeyMaterialId"])
    _assert_material_id(resp["DestinationKeyMaterialId"])
    assert resp["SourceKeyMaterialId"] != resp["DestinationKeyMaterialId"]

    new_blob = resp["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"to": "dest"})
    assert dec["Plaintext"] == b"move me"
    assert dec["KeyId"] == dest["Arn"]
    assert dec["KeyMaterialId"] == resp["DestinationKeyMaterialId"]
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"from": "src"}),
        "InvalidCiphertextException",
        message="",
    )


def test_re_encrypt_to_same_key_with_source_key_id(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same key")["CiphertextBlob"]
    resp = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=key["Arn"], DestinationKeyId=key["KeyId"])
    assert resp["SourceKeyId"] == resp["KeyId"] == key["Arn"]
    assert resp["CiphertextBlob"] != blob
    assert kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])["Plaintext"] == b"same key"


def test_re_encrypt_errors(kms, new_key):
    a, b = new_key(), new_key()
    blob = kms.encrypt(KeyId=a["KeyId"], Plaintext=b"x", EncryptionContext={"c": "1"})["CiphertextBlob"]
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=b["KeyId"]), "InvalidCiphertextException", message=""
    )
    expect_error(
        lambda: kms.re_encrypt(
            CiphertextBlob=blob, SourceEncryptionContext={"c": "2"}, DestinationKeyId=b["KeyId"]
        ),
        "InvalidCiphertextException",
        message="",
    )
    expect_error(
        lambda: kms.re_encrypt(
            CiphertextBlob=blob, SourceEncryptionContext={"c": "1"}, SourceKeyId=b["KeyId"], DestinationKeyId=b["KeyId"]
        ),
        "IncorrectKeyException",
    )
    kid = str(uuid.uuid4())
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"c": "1"}, DestinationKeyId=kid),
        "NotFoundException",
        not_found_key_message(kid),
    )
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=os.urandom(120), DestinationKeyId=b["KeyId"]),
        "InvalidCiphertextException",
        message="",
    )


# ------------------------------------------------------------------------------------- DryRun


def test_dry_run(kms, new_key):
    k, other = new_key(), new_key()
    kid = k["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"dry")["CiphertextBlob"]
    calls = {
        "Encrypt": lambda: kms.encrypt(KeyId=kid, Plaintext=b"dry", DryRun=True),
        "Decrypt": lambda: kms.decrypt(CiphertextBlob=blob, DryRun=True),
        "ReEncrypt": lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other["KeyId"], DryRun=True),
        "GenerateDataKey": lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256", DryRun=True),
        "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(
            KeyId=kid, NumberOfBytes=16, DryRun=True
        ),
    }
    for name, call in calls.items():
        resp = expect_error(call, "DryRunOperationException", DRY_RUN_MESSAGE)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 400, name
    # DryRun=False is an ordinary call.
    assert kms.encrypt(KeyId=kid, Plaintext=b"wet", DryRun=False)["KeyId"] == k["Arn"]


def test_dry_run_reports_the_error_a_real_call_would_get(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(
        lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"dry", DryRun=True),
        "DisabledException",
        f"{key['Arn']} is disabled.",
    )
    kid = str(uuid.uuid4())
    expect_error(
        lambda: kms.encrypt(KeyId=kid, Plaintext=b"dry", DryRun=True), "NotFoundException", not_found_key_message(kid)
    )


# -------------------------------------------------------------------------------- GrantTokens


def _a_grant_token(kms, key) -> str:
    """A grant token for the dev account's root on `key`."""
    return kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=f"arn:aws:iam::{DEV_ACCOUNT}:root",
        Operations=["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
                    "GenerateDataKeyWithoutPlaintext", "DescribeKey"],
    )["GrantToken"]


def test_grant_tokens_are_accepted(kms, key):
    token = _a_grant_token(kms, key)
    kid = key["KeyId"]
    gt = [token]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"g", GrantTokens=gt)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, GrantTokens=gt)["Plaintext"] == b"g"
    kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=kid, GrantTokens=gt)
    kms.generate_data_key(KeyId=kid, KeySpec="AES_256", GrantTokens=gt)
    kms.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_128", GrantTokens=gt)
    kms.describe_key(KeyId=kid, GrantTokens=gt)
    assert kms.encrypt(KeyId=kid, Plaintext=b"g", GrantTokens=[])["KeyId"] == key["Arn"]


def test_a_token_trent_did_not_issue_is_refused(kms, key):
    forged = "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc0ZDE1ODkyNGFlNTIzODZhMzgyZjBlNGY3NiKIAQEBAgB4Mt"
    expect_error(
        lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"g", GrantTokens=[forged]),
        "InvalidGrantTokenException",
        "Invalid grant token",
    )


def test_at_most_ten_grant_tokens(kms_raw, key):
    tokens = [f"token{i}" for i in range(11)]
    expect_error(
        lambda: kms_raw.encrypt(KeyId=key["KeyId"], Plaintext=b"g", GrantTokens=tokens),
        "ValidationException",
        # Coral would quote the list; grant tokens are bearer credentials, so trent leaves them out.
        "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
    )
