"""GetKeyLastUsage: the last successful cryptographic use of a key (operation, time and the
request id of that use), what does not count (failures, dry runs, reads), which identifiers it
takes, and that the last use survives a restart once the scheduled work has written it."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kmsutil import (
    DRY_RUN_MESSAGE,
    TrentServer,
    alias_arn,
    assert_recent,
    expect_error,
    key_arn,
    make_kms_client,
)


def last_usage(kms, key_id: str) -> dict:
    out = kms.get_key_last_usage(KeyId=key_id)
    out.pop("ResponseMetadata")
    return out


def assert_used(kms, key_id: str, operation: str, request_id: str) -> dict:
    last = last_usage(kms, key_id)["KeyLastUsage"]
    assert last["Operation"] == operation
    assert last["KmsRequestId"] == request_id
    assert_recent(last["Timestamp"], 60)
    # No audit log yet: no CloudTrail event id.
    assert "CloudTrailEventId" not in last
    return last


def request_id(resp: dict) -> str:
    rid = resp["ResponseMetadata"]["RequestId"]
    assert rid
    return rid


def test_a_new_key_has_no_last_use_and_was_tracked_since_creation(kms, key):
    out = last_usage(kms, key["KeyId"])
    assert out == {
        "KeyId": key["KeyId"],
        "KeyLastUsage": {},
        "TrackingStartDate": key["CreationDate"],
        "KeyCreationDate": key["CreationDate"],
    }
    # Management and read operations are no use.
    kms.describe_key(KeyId=key["KeyId"])
    kms.update_key_description(KeyId=key["KeyId"], Description="still unused")
    kms.disable_key(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    assert last_usage(kms, key["KeyId"])["KeyLastUsage"] == {}


def test_encrypt_is_recorded_with_its_request_id_and_failures_do_not_count(kms, key):
    kid = key["KeyId"]
    resp = kms.encrypt(KeyId=kid, Plaintext=b"secret", EncryptionContext={"purpose": "test"})
    first = assert_used(kms, kid, "Encrypt", request_id(resp))

    # A Decrypt that fails (wrong encryption context) is not a use.
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"purpose": "other"}),
        "InvalidCiphertextException",
    )
    assert last_usage(kms, kid)["KeyLastUsage"] == first

    # A dry run is not a use either.
    for call in (
        lambda: kms.encrypt(KeyId=kid, Plaintext=b"dry", DryRun=True),
        lambda: kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"purpose": "test"}, DryRun=True),
        lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256", DryRun=True),
    ):
        expect_error(call, "DryRunOperationException", DRY_RUN_MESSAGE)
    assert last_usage(kms, kid)["KeyLastUsage"] == first

    resp = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"purpose": "test"})
    later = assert_used(kms, kid, "Decrypt", request_id(resp))
    assert later["Timestamp"] >= first["Timestamp"]

    resp = kms.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_128")
    assert_used(kms, kid, "GenerateDataKeyWithoutPlaintext", request_id(resp))
    resp = kms.generate_data_key_pair(KeyId=kid, KeyPairSpec="ECC_NIST_P256")
    assert_used(kms, kid, "GenerateDataKeyPair", request_id(resp))


def test_re_encrypt_is_recorded_on_both_keys(kms, new_key):
    source, destination = new_key()["KeyId"], new_key()["KeyId"]
    blob = kms.encrypt(KeyId=source, Plaintext=b"moving")["CiphertextBlob"]
    resp = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=destination)
    assert_used(kms, source, "ReEncrypt", request_id(resp))
    assert_used(kms, destination, "ReEncrypt", request_id(resp))


def test_sign_verify_mac_agreement_and_kem_keys(kms):
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    resp = kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert_used(kms, signing, "Sign", request_id(resp))
    signature = resp["Signature"]
    resp = kms.verify(KeyId=signing, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")
    verified = assert_used(kms, signing, "Verify", request_id(resp))
    # A signature that does not verify is a failure: no use.
    expect_error(
        lambda: kms.verify(KeyId=signing, Message=b"other", Signature=signature, SigningAlgorithm="ECDSA_SHA_256"),
        "KMSInvalidSignatureException",
    )
    kms.get_public_key(KeyId=signing)
    assert last_usage(kms, signing)["KeyLastUsage"] == verified

    hmac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    resp = kms.generate_mac(KeyId=hmac, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert_used(kms, hmac, "GenerateMac", request_id(resp))
    resp = kms.verify_mac(KeyId=hmac, Message=b"m", Mac=resp["Mac"], MacAlgorithm="HMAC_SHA_256")
    assert_used(kms, hmac, "VerifyMac", request_id(resp))

    agreement = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
    peer = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    resp = kms.derive_shared_secret(KeyId=agreement, KeyAgreementAlgorithm="ECDH", PublicKey=peer)
    assert_used(kms, agreement, "DeriveSharedSecret", request_id(resp))

    kem = kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]["KeyId"]
    resp = kms.encapsulate(KeyId=kem, EncapsulationAlgorithm="ML_KEM")
    assert_used(kms, kem, "Encapsulate", request_id(resp))
    resp = kms.decapsulate(
        KeyId=kem, SharedSecretCiphertextBlob=resp["SharedSecretCiphertextBlob"], EncapsulationAlgorithm="ML_KEM"
    )
    assert_used(kms, kem, "Decapsulate", request_id(resp))


def test_key_id_or_key_arn_only_and_any_key_state(kms, key, unique):
    kid = key["KeyId"]
    resp = kms.encrypt(KeyId=kid, Plaintext=b"x")
    by_arn = last_usage(kms, key_arn(kid))
    assert by_arn == last_usage(kms, kid)
    assert by_arn["KeyId"] == kid

    alias = f"alias/{unique('last-use')}"
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    expect_error(lambda: kms.get_key_last_usage(KeyId=alias), "NotFoundException", f"Invalid keyId '{alias}'")
    expect_error(
        lambda: kms.get_key_last_usage(KeyId=alias_arn(alias)),
        "NotFoundException",
        f"Invalid keyId '{alias_arn(alias)}'",
    )
    expect_error(lambda: kms.get_key_last_usage(KeyId="1234abcd-12ab-34cd-56ef-1234567890ab"), "NotFoundException")

    # Disabled and pending deletion: still answered.
    kms.disable_key(KeyId=kid)
    assert_used(kms, kid, "Encrypt", request_id(resp))
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert_used(kms, kid, "Encrypt", request_id(resp))
    kms.cancel_key_deletion(KeyId=kid)


def test_the_cli_reads_the_last_use(kms, key, aws_cli):
    resp = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    result = aws_cli(["get-key-last-usage", "--key-id", key["KeyId"]])
    assert result.returncode == 0, result.stderr
    assert result.json["KeyId"] == key["KeyId"]
    assert result.json["KeyLastUsage"]["Operation"] == "GenerateDataKey"
    assert result.json["KeyLastUsage"]["KmsRequestId"] == request_id(resp)
    assert "TrackingStartDate" in result.json and "KeyCreationDate" in result.json


def test_the_last_use_survives_a_restart(tmp_path):
    args = ["serve", "--dev", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0"]
    server = TrentServer(args, tmp_path / "log1").start()
    try:
        kms = make_kms_client(server.endpoint)
        used = kms.create_key()["KeyMetadata"]
        unused = kms.create_key()["KeyMetadata"]
        resp = kms.encrypt(KeyId=used["KeyId"], Plaintext=b"kept")
        before = assert_used(kms, used["KeyId"], "Encrypt", request_id(resp))
        # The scheduled work writes last uses to the store; moving the clock by 0 runs it now.
        r = requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 0}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        server.stop()

    server = TrentServer(args, tmp_path / "log2").start()
    try:
        kms = make_kms_client(server.endpoint)
        after = last_usage(kms, used["KeyId"])
        assert after["KeyLastUsage"] == before
        assert after["KeyCreationDate"] == after["TrackingStartDate"] == used["CreationDate"]
        assert last_usage(kms, unused["KeyId"])["KeyLastUsage"] == {}
    finally:
        server.stop()


def test_timestamps_have_millisecond_precision(kms, key):
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    ts = last_usage(kms, key["KeyId"])["KeyLastUsage"]["Timestamp"]
    assert isinstance(ts, dt.datetime)
    assert ts.microsecond % 1000 == 0
