"""HMAC keys (GenerateMac, VerifyMac), ECDH key agreement (DeriveSharedSecret) and ML-KEM
(Encapsulate, Decapsulate) through boto3. Key agreement and ML-KEM are checked against offline
peers: `cryptography` for ECDH and ML-KEM-768/1024, kyber-py (pure Python FIPS 203) for all three
ML-KEM sizes, since `cryptography` has no ML-KEM-512."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from Crypto.Util.asn1 import DerBitString, DerObjectId, DerSequence
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem
from kyber_py.ml_kem import ML_KEM_512, ML_KEM_768, ML_KEM_1024

from kmsutil import DEV_ACCOUNT, DRY_RUN_MESSAGE, REGION, coral, expect_error

HMAC = {"HMAC_224": ("HMAC_SHA_224", 28), "HMAC_256": ("HMAC_SHA_256", 32), "HMAC_384": ("HMAC_SHA_384", 48),
        "HMAC_512": ("HMAC_SHA_512", 64)}
CURVES = {"ECC_NIST_P256": (ec.SECP256R1, 32), "ECC_NIST_P384": (ec.SECP384R1, 48), "ECC_NIST_P521": (ec.SECP521R1, 66)}
KEM = {  # spec: (kyber-py parameter set, cryptography private key class or None, ciphertext length, OID)
    "ML_KEM_512": (ML_KEM_512, None, 768, "2.16.840.1.101.3.4.4.1"),
    "ML_KEM_768": (ML_KEM_768, mlkem.MLKEM768PrivateKey, 1088, "2.16.840.1.101.3.4.4.2"),
    "ML_KEM_1024": (ML_KEM_1024, mlkem.MLKEM1024PrivateKey, 1568, "2.16.840.1.101.3.4.4.3"),
}


def spki_parts(der: bytes) -> tuple[str, list, bytes]:
    outer = DerSequence().decode(der, strict=True)
    alg = DerSequence().decode(outer[0], strict=True)
    return DerObjectId().decode(alg[0], strict=True).value, list(alg[1:]), DerBitString().decode(outer[1]).value


def usage_message(arn: str, usage: str, operation: str) -> str:
    return f"{arn} key usage is {usage} which is not valid for {operation}."


@pytest.fixture(scope="module")
def make_key(kms):
    """make_key(spec, usage, name="") -> a key made once per module: .id .arn .spec (and .der for asymmetric)"""
    cache: dict[tuple, SimpleNamespace] = {}

    def get(spec: str, usage: str, name: str = "") -> SimpleNamespace:
        if (spec, usage, name) not in cache:
            md = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
            key = SimpleNamespace(id=md["KeyId"], arn=md["Arn"], spec=spec)
            if usage in ("KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"):
                key.der = kms.get_public_key(KeyId=md["KeyId"])["PublicKey"]
            cache[(spec, usage, name)] = key
        return cache[(spec, usage, name)]

    return get


@pytest.fixture(scope="module")
def sym_key(kms):
    md = kms.create_key()["KeyMetadata"]
    return SimpleNamespace(id=md["KeyId"], arn=md["Arn"])


# ------------------------------------------------------------------------------------- HMAC


@pytest.mark.parametrize("spec", list(HMAC))
def test_generate_and_verify_mac(kms, make_key, spec):
    algorithm, size = HMAC[spec]
    key = make_key(spec, "GENERATE_VERIFY_MAC")
    message = b"authenticate me " + os.urandom(32)
    resp = kms.generate_mac(KeyId=key.id, Message=message, MacAlgorithm=algorithm)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["KeyId"] == key.arn
    assert resp["MacAlgorithm"] == algorithm
    mac = resp["Mac"]
    assert len(mac) == size
    # HMAC is deterministic: the same message, the same MAC; another message, another MAC.
    assert kms.generate_mac(KeyId=key.arn, Message=message, MacAlgorithm=algorithm)["Mac"] == mac
    assert kms.generate_mac(KeyId=key.id, Message=message + b"!", MacAlgorithm=algorithm)["Mac"] != mac

    ok = kms.verify_mac(KeyId=key.id, Message=message, MacAlgorithm=algorithm, Mac=mac)
    assert ok["MacValid"] is True
    assert ok["KeyId"] == key.arn
    assert ok["MacAlgorithm"] == algorithm

    bad_macs = [bytes([mac[0] ^ 1]) + mac[1:], mac[:-1] + bytes([mac[-1] ^ 0x80]), mac[:-1], mac + b"\x00", mac[:16],
                bytes(size), os.urandom(size), os.urandom(1), mac * 2]
    for bad in bad_macs:
        expect_error(lambda: kms.verify_mac(KeyId=key.id, Message=message, MacAlgorithm=algorithm, Mac=bad),
                     "KMSInvalidMacException", message="")
    expect_error(lambda: kms.verify_mac(KeyId=key.id, Message=message + b"!", MacAlgorithm=algorithm, Mac=mac),
                 "KMSInvalidMacException", message="")


def test_mac_keys_are_distinct(kms, make_key):
    a, b = make_key("HMAC_256", "GENERATE_VERIFY_MAC"), make_key("HMAC_256", "GENERATE_VERIFY_MAC", "other")
    mac_a = kms.generate_mac(KeyId=a.id, Message=b"same", MacAlgorithm="HMAC_SHA_256")["Mac"]
    mac_b = kms.generate_mac(KeyId=b.id, Message=b"same", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac_a != mac_b
    expect_error(lambda: kms.verify_mac(KeyId=b.id, Message=b"same", MacAlgorithm="HMAC_SHA_256", Mac=mac_a),
                 "KMSInvalidMacException", message="")


def test_mac_of_messages_up_to_4096_bytes(kms, kms_raw, make_key):
    key = make_key("HMAC_512", "GENERATE_VERIFY_MAC")
    for n in (1, 4096):
        message = os.urandom(n)
        mac = kms.generate_mac(KeyId=key.id, Message=message, MacAlgorithm="HMAC_SHA_512")["Mac"]
        assert kms.verify_mac(KeyId=key.id, Message=message, MacAlgorithm="HMAC_SHA_512", Mac=mac)["MacValid"] is True
    too_long = coral("Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096")
    expect_error(lambda: kms.generate_mac(KeyId=key.id, Message=os.urandom(4097), MacAlgorithm="HMAC_SHA_512"),
                 "ValidationException", too_long)
    expect_error(
        lambda: kms.verify_mac(KeyId=key.id, Message=os.urandom(4097), MacAlgorithm="HMAC_SHA_512", Mac=os.urandom(64)),
        "ValidationException", too_long,
    )
    expect_error(
        lambda: kms_raw.generate_mac(KeyId=key.id, Message=b"", MacAlgorithm="HMAC_SHA_512"),
        "ValidationException",
        coral("Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1"),
    )


@pytest.mark.parametrize("spec", list(HMAC))
def test_mac_algorithm_of_another_spec(kms, make_key, spec):
    key = make_key(spec, "GENERATE_VERIFY_MAC")
    for other_spec, (algorithm, size) in HMAC.items():
        if other_spec == spec:
            continue
        msg = f"Algorithm {algorithm} is incompatible with key spec {spec}."
        expect_error(lambda: kms.generate_mac(KeyId=key.id, Message=b"m", MacAlgorithm=algorithm),
                     "InvalidKeyUsageException", msg)
        expect_error(lambda: kms.verify_mac(KeyId=key.id, Message=b"m", MacAlgorithm=algorithm, Mac=os.urandom(size)),
                     "InvalidKeyUsageException", msg)


def test_unknown_mac_algorithm(kms_raw, make_key):
    key = make_key("HMAC_256", "GENERATE_VERIFY_MAC")
    expect_error(
        lambda: kms_raw.generate_mac(KeyId=key.id, Message=b"m", MacAlgorithm="HMAC_SHA_1"),
        "ValidationException",
        coral("Value 'HMAC_SHA_1' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: "
              "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"),
    )
    # VerifyMac too, in AWS's order (recorded), which is not the model's.
    expect_error(
        lambda: kms_raw.verify_mac(KeyId=key.id, Message=b"m", MacAlgorithm="INVALID", Mac=b"x" * 32),
        "ValidationException",
        coral("Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: "
              "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"),
    )


def test_mac_with_keys_of_another_usage(kms, make_key, sym_key):
    signer = make_key("ECC_NIST_P256", "SIGN_VERIFY")
    for key, usage in ((sym_key, "ENCRYPT_DECRYPT"), (signer, "SIGN_VERIFY")):
        expect_error(lambda: kms.generate_mac(KeyId=key.id, Message=b"m", MacAlgorithm="HMAC_SHA_256"),
                     "InvalidKeyUsageException", usage_message(key.arn, usage, "GenerateMac"))
        expect_error(lambda: kms.verify_mac(KeyId=key.id, Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=os.urandom(32)),
                     "InvalidKeyUsageException", usage_message(key.arn, usage, "VerifyMac"))


def test_hmac_key_refuses_other_operations(kms, make_key):
    key = make_key("HMAC_384", "GENERATE_VERIFY_MAC")
    usage = "GENERATE_VERIFY_MAC"
    expect_error(lambda: kms.encrypt(KeyId=key.id, Plaintext=b"x"), "InvalidKeyUsageException",
                 usage_message(key.arn, usage, "Encrypt"))
    expect_error(lambda: kms.generate_data_key(KeyId=key.id, KeySpec="AES_256"), "InvalidKeyUsageException",
                 usage_message(key.arn, usage, "GenerateDataKey"))
    expect_error(lambda: kms.sign(KeyId=key.id, Message=b"x", SigningAlgorithm="ECDSA_SHA_384"),
                 "InvalidKeyUsageException", usage_message(key.arn, usage, "Sign"))


def test_decrypt_with_an_hmac_key_is_the_incorrect_key(kms, make_key, sym_key):
    # AWS's recorded answer: an HMAC key is a symmetric key, the ciphertext names another one.
    key = make_key("HMAC_256", "GENERATE_VERIFY_MAC")
    blob = kms.encrypt(KeyId=sym_key.id, Plaintext=b"x")["CiphertextBlob"]
    incorrect = "The key ID in the request does not identify a CMK that can perform this operation."
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId=key.id), "IncorrectKeyException", incorrect)
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=key.arn, DestinationKeyId=sym_key.id),
                 "IncorrectKeyException", incorrect)
    # As the destination of ReEncrypt it is refused for its usage.
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=key.id), "InvalidKeyUsageException",
                 usage_message(key.arn, "GENERATE_VERIFY_MAC", "ReEncrypt"))


def test_mac_dry_run_alias_and_disabled(kms, make_key):
    key = make_key("HMAC_224", "GENERATE_VERIFY_MAC", "states")
    mac = kms.generate_mac(KeyId=key.id, Message=b"dry", MacAlgorithm="HMAC_SHA_224")["Mac"]
    expect_error(lambda: kms.generate_mac(KeyId=key.id, Message=b"dry", MacAlgorithm="HMAC_SHA_224", DryRun=True),
                 "DryRunOperationException", DRY_RUN_MESSAGE)
    expect_error(lambda: kms.verify_mac(KeyId=key.id, Message=b"dry", MacAlgorithm="HMAC_SHA_224", Mac=mac, DryRun=True),
                 "DryRunOperationException", DRY_RUN_MESSAGE)
    name = f"alias/mac-{uuid.uuid4().hex[:12]}"
    kms.create_alias(AliasName=name, TargetKeyId=key.id)
    for ident in (name, f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}"):
        resp = kms.generate_mac(KeyId=ident, Message=b"dry", MacAlgorithm="HMAC_SHA_224")
        assert resp["Mac"] == mac and resp["KeyId"] == key.arn
        assert kms.verify_mac(KeyId=ident, Message=b"dry", MacAlgorithm="HMAC_SHA_224", Mac=mac)["MacValid"] is True
    kms.disable_key(KeyId=key.id)
    try:
        expect_error(lambda: kms.generate_mac(KeyId=key.id, Message=b"dry", MacAlgorithm="HMAC_SHA_224"),
                     "DisabledException", f"{key.arn} is disabled.")
        expect_error(lambda: kms.verify_mac(KeyId=key.id, Message=b"dry", MacAlgorithm="HMAC_SHA_224", Mac=mac),
                     "DisabledException", f"{key.arn} is disabled.")
    finally:
        kms.enable_key(KeyId=key.id)


# ------------------------------------------------------------------------ DeriveSharedSecret


def peer_spki(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("spec", list(CURVES))
def test_derive_shared_secret_matches_the_peer(kms, make_key, spec):
    curve, size = CURVES[spec]
    key = make_key(spec, "KEY_AGREEMENT")
    trent_public = serialization.load_der_public_key(key.der)
    assert isinstance(trent_public, ec.EllipticCurvePublicKey) and isinstance(trent_public.curve, curve)
    for _ in range(2):
        peer = ec.generate_private_key(curve())
        resp = kms.derive_shared_secret(KeyId=key.id, KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki(peer))
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert resp["KeyId"] == key.arn
        assert resp["KeyAgreementAlgorithm"] == "ECDH"
        assert resp["KeyOrigin"] == "AWS_KMS"
        assert "CiphertextForRecipient" not in resp
        secret = resp["SharedSecret"]
        assert len(secret) == size
        assert secret == peer.exchange(ec.ECDH(), trent_public)
        # The same peer, the same secret.
        again = kms.derive_shared_secret(KeyId=key.arn, KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki(peer))
        assert again["SharedSecret"] == secret


def test_two_kms_keys_agree(kms, make_key):
    a, b = make_key("ECC_NIST_P384", "KEY_AGREEMENT"), make_key("ECC_NIST_P384", "KEY_AGREEMENT", "bob")
    ab = kms.derive_shared_secret(KeyId=a.id, KeyAgreementAlgorithm="ECDH", PublicKey=b.der)["SharedSecret"]
    ba = kms.derive_shared_secret(KeyId=b.id, KeyAgreementAlgorithm="ECDH", PublicKey=a.der)["SharedSecret"]
    assert ab == ba and len(ab) == 48


def test_derive_with_a_signing_keys_public_key(kms, make_key):
    # Any SPKI on the curve will do, including one of a KMS signing key.
    key = make_key("ECC_NIST_P256", "KEY_AGREEMENT")
    signer = make_key("ECC_NIST_P256", "SIGN_VERIFY")
    signer_der = kms.get_public_key(KeyId=signer.id)["PublicKey"]
    resp = kms.derive_shared_secret(KeyId=key.id, KeyAgreementAlgorithm="ECDH", PublicKey=signer_der)
    assert len(resp["SharedSecret"]) == 32


@pytest.mark.parametrize("spec", list(CURVES))
def test_derive_refuses_what_is_not_a_public_key_on_the_curve(kms, make_key, spec):
    curve, _ = CURVES[spec]
    key = make_key(spec, "KEY_AGREEMENT")
    peer = ec.generate_private_key(curve())
    good = peer_spki(peer)
    raw_point = peer.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    other_curve = ec.SECP384R1() if spec != "ECC_NIST_P384" else ec.SECP256R1()
    off_curve = bytearray(good)
    off_curve[-1] ^= 0x01  # y no longer matches x
    bad_keys = {
        "raw-uncompressed-point": raw_point,
        "compressed-point": peer.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.CompressedPoint),
        "other-curve": peer_spki(ec.generate_private_key(other_curve)),
        "secp256k1": peer_spki(ec.generate_private_key(ec.SECP256K1())),
        "ed25519": peer_spki(ed25519.Ed25519PrivateKey.generate()),
        "point-not-on-curve": bytes(off_curve),
        "truncated": good[:-1],
        "trailing-byte": good + b"\x00",
        "garbage": os.urandom(len(good)),
        "one-byte": b"\x30",
        "pem": peer.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    # AWS's answer (recorded): ValidationException with an empty message.
    expected = {"Code": "ValidationException", "Message": ""}
    wrong = {}
    for name, bad in bad_keys.items():
        try:
            kms.derive_shared_secret(KeyId=key.id, KeyAgreementAlgorithm="ECDH", PublicKey=bad)
            wrong[name] = "accepted"
        except ClientError as e:
            got = {"Code": e.response["Error"].get("Code"), "Message": e.response["Error"].get("Message")}
            if got != expected or e.response["ResponseMetadata"]["HTTPStatusCode"] != 400:
                wrong[name] = got
    assert not wrong, f"expected {expected} for every one of these: {wrong}"


def test_public_key_size_limit(kms, make_key):
    key = make_key("ECC_NIST_P256", "KEY_AGREEMENT")
    expect_error(
        lambda: kms.derive_shared_secret(KeyId=key.id, KeyAgreementAlgorithm="ECDH", PublicKey=os.urandom(8193)),
        "ValidationException",
        startswith="1 validation error detected: ",
        contains=("'publicKey'", "Member must have length less than or equal to 8192"),
    )


def test_unknown_key_agreement_algorithm(kms_raw, make_key):
    key = make_key("ECC_NIST_P256", "KEY_AGREEMENT")
    peer = peer_spki(ec.generate_private_key(ec.SECP256R1()))
    expect_error(
        lambda: kms_raw.derive_shared_secret(KeyId=key.id, KeyAgreementAlgorithm="ECMQV", PublicKey=peer),
        "ValidationException",
        coral("Value 'ECMQV' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value "
              "set: [ECDH]"),
    )


def test_derive_with_keys_of_another_usage(kms, make_key, sym_key):
    peer = peer_spki(ec.generate_private_key(ec.SECP256R1()))
    signer = make_key("ECC_NIST_P256", "SIGN_VERIFY")
    for key, usage in ((signer, "SIGN_VERIFY"), (sym_key, "ENCRYPT_DECRYPT"),
                       (make_key("HMAC_256", "GENERATE_VERIFY_MAC"), "GENERATE_VERIFY_MAC")):
        expect_error(lambda: kms.derive_shared_secret(KeyId=key.id, KeyAgreementAlgorithm="ECDH", PublicKey=peer),
                     "InvalidKeyUsageException", usage_message(key.arn, usage, "DeriveSharedSecret"))
    agreement = make_key("ECC_NIST_P256", "KEY_AGREEMENT")
    expect_error(lambda: kms.sign(KeyId=agreement.id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256"),
                 "InvalidKeyUsageException", usage_message(agreement.arn, "KEY_AGREEMENT", "Sign"))
    expect_error(lambda: kms.encrypt(KeyId=agreement.id, Plaintext=b"m"),
                 "InvalidKeyUsageException", usage_message(agreement.arn, "KEY_AGREEMENT", "Encrypt"))


def test_derive_dry_run_alias_and_disabled(kms):
    md = kms.create_key(KeySpec="ECC_NIST_P521", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    peer = ec.generate_private_key(ec.SECP521R1())
    expect_error(
        lambda: kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki(peer),
                                         DryRun=True),
        "DryRunOperationException", DRY_RUN_MESSAGE,
    )
    expect_error(
        lambda: kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=b"\x30\x00",
                                         DryRun=True),
        "ValidationException", "",
    )
    name = f"alias/ecdh-{uuid.uuid4().hex[:12]}"
    kms.create_alias(AliasName=name, TargetKeyId=md["KeyId"])
    resp = kms.derive_shared_secret(KeyId=name, KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki(peer))
    assert resp["KeyId"] == md["Arn"]
    trent_public = serialization.load_der_public_key(kms.get_public_key(KeyId=name)["PublicKey"])
    assert resp["SharedSecret"] == peer.exchange(ec.ECDH(), trent_public)
    kms.disable_key(KeyId=md["KeyId"])
    expect_error(
        lambda: kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki(peer)),
        "DisabledException", f"{md['Arn']} is disabled.",
    )


# ------------------------------------------------------------------------------------ ML-KEM


def encapsulation_key(key) -> bytes:
    oid, params, ek = spki_parts(key.der)
    assert oid == KEM[key.spec][3] and params == []
    return ek


@pytest.mark.parametrize("spec", list(KEM))
def test_encapsulate_then_decapsulate(kms, make_key, spec):
    key = make_key(spec, "ENCAPSULATE_DECAPSULATE")
    ct_len = KEM[spec][2]
    resp = kms.encapsulate(KeyId=key.id, EncapsulationAlgorithm="ML_KEM")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["KeyId"] == key.arn
    assert resp["EncapsulationAlgorithm"] == "ML_KEM"
    secret, ct = resp["SharedSecret"], resp["SharedSecretCiphertextBlob"]
    assert len(secret) == 32
    assert len(ct) == ct_len

    dec = kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=ct, EncapsulationAlgorithm="ML_KEM")
    assert dec["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert dec["SharedSecret"] == secret
    assert dec["KeyId"] == key.arn
    assert dec["EncapsulationAlgorithm"] == "ML_KEM"

    # Every Encapsulate is a new secret.
    other = kms.encapsulate(KeyId=key.arn, EncapsulationAlgorithm="ML_KEM")
    assert other["SharedSecret"] != secret and other["SharedSecretCiphertextBlob"] != ct


@pytest.mark.parametrize("spec", list(KEM))
def test_offline_encapsulation_decapsulates_in_trent(kms, make_key, spec):
    params, crypto_cls, ct_len, _ = KEM[spec]
    key = make_key(spec, "ENCAPSULATE_DECAPSULATE")
    ek = encapsulation_key(key)
    # kyber-py, for every size.
    secret, ct = params.encaps(ek)
    assert len(ct) == ct_len
    got = kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=ct, EncapsulationAlgorithm="ML_KEM")
    assert got["SharedSecret"] == secret
    # cryptography, where it knows the size: encapsulate() gives (shared secret, ciphertext).
    if crypto_cls is not None:
        pub = serialization.load_der_public_key(key.der)
        secret2, ct2 = pub.encapsulate()
        assert len(secret2) == 32 and len(ct2) == ct_len
        assert kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=ct2,
                               EncapsulationAlgorithm="ML_KEM")["SharedSecret"] == secret2


@pytest.mark.parametrize("spec", list(KEM))
def test_decapsulate_implicit_rejection(kms, make_key, spec):
    params, _, ct_len, _ = KEM[spec]
    key = make_key(spec, "ENCAPSULATE_DECAPSULATE")
    secret, ct = params.encaps(encapsulation_key(key))

    altered = bytearray(ct)
    altered[ct_len // 2] ^= 0x01
    altered = bytes(altered)
    r1 = kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=altered, EncapsulationAlgorithm="ML_KEM")
    assert len(r1["SharedSecret"]) == 32 and r1["SharedSecret"] != secret
    # Implicit rejection is deterministic for a given key and ciphertext.
    r2 = kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=altered, EncapsulationAlgorithm="ML_KEM")
    assert r2["SharedSecret"] == r1["SharedSecret"]

    # A ciphertext made for another key of the same size, and random bytes of the right length.
    ek_other, _ = params.keygen()
    other_secret, other_ct = params.encaps(ek_other)
    for ct_bad, not_expected in ((other_ct, other_secret), (os.urandom(ct_len), None), (bytes(ct_len), None)):
        got = kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=ct_bad, EncapsulationAlgorithm="ML_KEM")
        assert len(got["SharedSecret"]) == 32
        assert got["SharedSecret"] != not_expected


@pytest.mark.parametrize("spec", list(KEM))
def test_decapsulate_ciphertext_of_the_wrong_length(kms, make_key, spec):
    params, _, ct_len, _ = KEM[spec]
    key = make_key(spec, "ENCAPSULATE_DECAPSULATE")
    _, ct = params.encaps(encapsulation_key(key))
    other_lengths = [n for n in (768, 1088, 1568) if n != ct_len]
    for bad in (ct[:-1], ct + b"\x00", ct[:32], os.urandom(1), *[os.urandom(n) for n in other_lengths]):
        expect_error(
            lambda: kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=bad, EncapsulationAlgorithm="ML_KEM"),
            "InvalidCiphertextException",
        )


def test_unknown_encapsulation_algorithm(kms_raw, make_key):
    key = make_key("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")
    expect_error(
        lambda: kms_raw.encapsulate(KeyId=key.id, EncapsulationAlgorithm="KYBER"),
        "ValidationException",
        coral("Value 'KYBER' at 'encapsulationAlgorithm' failed to satisfy constraint: Member must satisfy enum value "
              "set: [ML_KEM]"),
    )


def test_kem_with_keys_of_another_usage(kms, make_key, sym_key):
    for key, usage in ((sym_key, "ENCRYPT_DECRYPT"), (make_key("ECC_NIST_P256", "KEY_AGREEMENT"), "KEY_AGREEMENT"),
                       (make_key("HMAC_256", "GENERATE_VERIFY_MAC"), "GENERATE_VERIFY_MAC")):
        expect_error(lambda: kms.encapsulate(KeyId=key.id, EncapsulationAlgorithm="ML_KEM"),
                     "InvalidKeyUsageException", usage_message(key.arn, usage, "Encapsulate"))
        expect_error(
            lambda: kms.decapsulate(KeyId=key.id, SharedSecretCiphertextBlob=os.urandom(1088),
                                    EncapsulationAlgorithm="ML_KEM"),
            "InvalidKeyUsageException", usage_message(key.arn, usage, "Decapsulate"),
        )
    kem = make_key("ML_KEM_512", "ENCAPSULATE_DECAPSULATE")
    usage = "ENCAPSULATE_DECAPSULATE"
    expect_error(lambda: kms.encrypt(KeyId=kem.id, Plaintext=b"m"), "InvalidKeyUsageException",
                 usage_message(kem.arn, usage, "Encrypt"))
    expect_error(lambda: kms.sign(KeyId=kem.id, Message=b"m", SigningAlgorithm="ML_DSA_SHAKE_256"),
                 "InvalidKeyUsageException", usage_message(kem.arn, usage, "Sign"))
    expect_error(
        lambda: kms.derive_shared_secret(KeyId=kem.id, KeyAgreementAlgorithm="ECDH",
                                         PublicKey=peer_spki(ec.generate_private_key(ec.SECP256R1()))),
        "InvalidKeyUsageException", usage_message(kem.arn, usage, "DeriveSharedSecret"),
    )


def test_kem_dry_run_alias_and_disabled(kms):
    md = kms.create_key(KeySpec="ML_KEM_1024", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    kid, arn = md["KeyId"], md["Arn"]
    ct = kms.encapsulate(KeyId=kid, EncapsulationAlgorithm="ML_KEM")["SharedSecretCiphertextBlob"]
    expect_error(lambda: kms.encapsulate(KeyId=kid, EncapsulationAlgorithm="ML_KEM", DryRun=True),
                 "DryRunOperationException", DRY_RUN_MESSAGE)
    expect_error(
        lambda: kms.decapsulate(KeyId=kid, SharedSecretCiphertextBlob=ct, EncapsulationAlgorithm="ML_KEM", DryRun=True),
        "DryRunOperationException", DRY_RUN_MESSAGE,
    )
    name = f"alias/kem-{uuid.uuid4().hex[:12]}"
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    enc = kms.encapsulate(KeyId=name, EncapsulationAlgorithm="ML_KEM")
    assert enc["KeyId"] == arn
    dec = kms.decapsulate(KeyId=f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}",
                          SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"], EncapsulationAlgorithm="ML_KEM")
    assert dec["SharedSecret"] == enc["SharedSecret"] and dec["KeyId"] == arn
    kms.disable_key(KeyId=kid)
    expect_error(lambda: kms.encapsulate(KeyId=kid, EncapsulationAlgorithm="ML_KEM"), "DisabledException",
                 f"{arn} is disabled.")
    expect_error(lambda: kms.decapsulate(KeyId=kid, SharedSecretCiphertextBlob=ct, EncapsulationAlgorithm="ML_KEM"),
                 "DisabledException", f"{arn} is disabled.")
