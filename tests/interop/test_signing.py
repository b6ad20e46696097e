"""Sign and Verify through boto3 and the AWS CLI, for every signing key spec and algorithm, with RAW,
DIGEST and EXTERNAL_MU messages. Every signature trent makes is checked offline against the key's
public key (GetPublicKey) with `cryptography`, PyCryptodome (Ed25519ph) and the `openssl` CLI (RSA,
ECDSA, pure Ed25519), then with trent's own Verify; tampered signatures and messages are refused."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from types import SimpleNamespace

import pytest
from Crypto.Hash import SHA512 as PyCryptoSHA512
from Crypto.PublicKey import ECC as PyCryptoECC
from Crypto.Signature import eddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from kmsutil import DEV_ACCOUNT, DRY_RUN_MESSAGE, REGION, coral, expect_error, unb64

HASHES = {"SHA_256": hashes.SHA256, "SHA_384": hashes.SHA384, "SHA_512": hashes.SHA512}
HASHLIB = {"SHA_256": hashlib.sha256, "SHA_384": hashlib.sha384, "SHA_512": hashlib.sha512}
RSA_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
RSA_ALGORITHMS = [
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
]
ECDSA = {  # spec: algorithm
    "ECC_NIST_P256": "ECDSA_SHA_256",
    "ECC_NIST_P384": "ECDSA_SHA_384",
    "ECC_NIST_P521": "ECDSA_SHA_512",
    "ECC_SECG_P256K1": "ECDSA_SHA_256",
}
ML_DSA_SIG_LEN = {"ML_DSA_44": 2420, "ML_DSA_65": 3309, "ML_DSA_87": 4627}
ML_DSA = list(ML_DSA_SIG_LEN)
ED = "ECC_NIST_EDWARDS25519"

CASES = [
    *[(s, a, t) for s in RSA_SPECS for a in RSA_ALGORITHMS for t in ("RAW", "DIGEST")],
    *[(s, a, t) for s, a in ECDSA.items() for t in ("RAW", "DIGEST")],
    (ED, "ED25519_SHA_512", "RAW"),
    (ED, "ED25519_PH_SHA_512", "DIGEST"),
    *[(s, "ML_DSA_SHAKE_256", t) for s in ML_DSA for t in ("RAW", "EXTERNAL_MU")],
]


def hash_name(algorithm: str) -> str:
    return algorithm[-7:]  # SHA_256 / SHA_384 / SHA_512


def digest(algorithm: str, message: bytes) -> bytes:
    return HASHLIB[hash_name(algorithm)](message).digest()


def ml_dsa_mu(public_raw: bytes, message: bytes) -> bytes:
    """FIPS 204 μ for pure ML-DSA with an empty context: H(H(pk, 64) || 0x00 || 0x00 || M, 64)."""
    tr = hashlib.shake_256(public_raw).digest(64)
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)


def flip(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    out = bytearray(data)
    out[i] ^= 0x01
    return bytes(out)


@pytest.fixture(scope="module")
def sign_key(kms):
    """sign_key(spec) -> a SIGN_VERIFY key of that spec, made once per module: .id .arn .der .pub"""
    cache: dict[str, SimpleNamespace] = {}

    def get(spec: str, name: str = "") -> SimpleNamespace:
        if (spec, name) not in cache:
            md = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY", Description=f"signing {spec} {name}")["KeyMetadata"]
            der = kms.get_public_key(KeyId=md["KeyId"])["PublicKey"]
            cache[(spec, name)] = SimpleNamespace(
                spec=spec, id=md["KeyId"], arn=md["Arn"], der=der, pub=serialization.load_der_public_key(der)
            )
        return cache[(spec, name)]

    return get


def kms_message(key, algorithm: str, message_type: str, message: bytes) -> bytes:
    """What goes in Sign's Message for the full message `message`."""
    if message_type == "RAW":
        return message
    if message_type == "EXTERNAL_MU":
        return ml_dsa_mu(key.pub.public_bytes_raw(), message)
    return digest(algorithm, message)


def verify_offline(key, algorithm: str, message_type: str, message: bytes, signature: bytes) -> None:
    """Checks `signature` over the full message `message` without trent; raises if it does not verify."""
    pub = key.pub
    if algorithm.startswith("RSASSA_"):
        h = HASHES[hash_name(algorithm)]()
        if algorithm.startswith("RSASSA_PSS_"):
            pad = padding.PSS(mgf=padding.MGF1(HASHES[hash_name(algorithm)]()), salt_length=h.digest_size)
        else:
            pad = padding.PKCS1v15()
        if message_type == "RAW":
            pub.verify(signature, message, pad, h)
        else:
            pub.verify(signature, digest(algorithm, message), pad, Prehashed(h))
    elif algorithm.startswith("ECDSA_"):
        h = HASHES[hash_name(algorithm)]()
        if message_type == "RAW":
            pub.verify(signature, message, ec.ECDSA(h))
        else:
            pub.verify(signature, digest(algorithm, message), ec.ECDSA(Prehashed(h)))
    elif algorithm == "ED25519_SHA_512":
        pub.verify(signature, message)
    elif algorithm == "ED25519_PH_SHA_512":
        # The caller sent d = SHA-512(message); Ed25519ph (RFC 8032) then signs d as its message,
        # hashing it again: PH(d) = SHA-512(d).
        d = hashlib.sha512(message).digest()
        eddsa.new(PyCryptoECC.import_key(key.der), "rfc8032").verify(PyCryptoSHA512.new(d), signature)
    elif algorithm == "ML_DSA_SHAKE_256":
        pub.verify(signature, message)  # pure ML-DSA, empty context, for RAW and EXTERNAL_MU alike
    else:
        raise AssertionError(algorithm)


def assert_signature_shape(key, algorithm: str, signature: bytes) -> None:
    if key.spec.startswith("RSA_"):
        assert len(signature) == int(key.spec[4:]) // 8
    elif algorithm.startswith("ECDSA_"):
        r, s = decode_dss_signature(signature)  # DER, not r||s
        assert 0 < r < 2 ** key.pub.curve.key_size and 0 < s < 2 ** key.pub.curve.key_size
    elif key.spec == ED:
        assert len(signature) == 64
    else:
        assert len(signature) == ML_DSA_SIG_LEN[key.spec]


# --------------------------------------------------------------------------- every algorithm


@pytest.mark.parametrize("spec,algorithm,message_type", CASES, ids=[f"{s}-{a}-{t}" for s, a, t in CASES])
def test_sign_verifies_offline_and_in_trent(kms, sign_key, spec, algorithm, message_type):
    key = sign_key(spec)
    full = f"message for {spec} {algorithm} {message_type} ".encode() + os.urandom(64)
    message = kms_message(key, algorithm, message_type, full)

    resp = kms.sign(KeyId=key.id, Message=message, MessageType=message_type, SigningAlgorithm=algorithm)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["KeyId"] == key.arn
    assert resp["SigningAlgorithm"] == algorithm
    signature = resp["Signature"]
    assert_signature_shape(key, algorithm, signature)
    verify_offline(key, algorithm, message_type, full, signature)

    ok = kms.verify(KeyId=key.id, Message=message, MessageType=message_type, Signature=signature,
                    SigningAlgorithm=algorithm)
    assert ok["SignatureValid"] is True
    assert ok["KeyId"] == key.arn
    assert ok["SigningAlgorithm"] == algorithm

    # What does not verify is refused, never SignatureValid=false.
    for bad_sig, bad_msg in ((flip(signature), message), (signature, flip(message)), (flip(signature, 0), message),
                             (flip(signature, -1), message)):
        expect_error(
            lambda: kms.verify(KeyId=key.id, Message=bad_msg, MessageType=message_type, Signature=bad_sig,
                               SigningAlgorithm=algorithm),
            "KMSInvalidSignatureException",
            message="",
        )


@pytest.mark.parametrize("spec,algorithm", [("ECC_NIST_P256", "ECDSA_SHA_256"), ("RSA_2048", "RSASSA_PSS_SHA_384"),
                                            (ED, "ED25519_SHA_512"), ("ML_DSA_44", "ML_DSA_SHAKE_256")])
def test_message_type_defaults_to_raw(kms, sign_key, spec, algorithm):
    key = sign_key(spec)
    message = b"no message type"
    signature = kms.sign(KeyId=key.id, Message=message, SigningAlgorithm=algorithm)["Signature"]
    verify_offline(key, algorithm, "RAW", message, signature)
    assert kms.verify(KeyId=key.id, Message=message, Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]
    assert kms.verify(KeyId=key.id, Message=message, MessageType="RAW", Signature=signature,
                      SigningAlgorithm=algorithm)["SignatureValid"]


@pytest.mark.parametrize("spec,algorithm", [("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512"), ("RSA_3072", "RSASSA_PSS_SHA_256"),
                                            ("ECC_NIST_P384", "ECDSA_SHA_384"), ("ECC_SECG_P256K1", "ECDSA_SHA_256")])
def test_raw_and_digest_are_the_same_scheme(kms, sign_key, spec, algorithm):
    # A RAW signature of M verifies as a DIGEST signature of hash(M), and the other way round.
    key = sign_key(spec)
    message = b"raw or digest " + os.urandom(16)
    d = digest(algorithm, message)
    raw_sig = kms.sign(KeyId=key.id, Message=message, MessageType="RAW", SigningAlgorithm=algorithm)["Signature"]
    assert kms.verify(KeyId=key.id, Message=d, MessageType="DIGEST", Signature=raw_sig,
                      SigningAlgorithm=algorithm)["SignatureValid"]
    dig_sig = kms.sign(KeyId=key.id, Message=d, MessageType="DIGEST", SigningAlgorithm=algorithm)["Signature"]
    assert kms.verify(KeyId=key.id, Message=message, MessageType="RAW", Signature=dig_sig,
                      SigningAlgorithm=algorithm)["SignatureValid"]


def test_ed25519ph_hashes_the_digest_again(kms, sign_key):
    """AWS documents that ED25519_PH_SHA_512 with a DIGEST still performs the SHA-512 prehash: the
    signature is Ed25519ph over the 64-byte message d, not Ed25519ph of the message d was made from."""
    key = sign_key(ED)
    message = b"prehashed twice"
    d = hashlib.sha512(message).digest()
    signature = kms.sign(KeyId=key.id, Message=d, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
    verifier = eddsa.new(PyCryptoECC.import_key(key.der), "rfc8032")
    verifier.verify(PyCryptoSHA512.new(d), signature)
    with pytest.raises(ValueError):
        verifier.verify(PyCryptoSHA512.new(message), signature)  # Ed25519ph(message): PH(message) = d
    with pytest.raises(InvalidSignature):
        key.pub.verify(signature, d)  # nor pure Ed25519 over d
    # Ed25519 signatures are deterministic (RFC 8032).
    again = kms.sign(KeyId=key.id, Message=d, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
    assert again == signature


def test_ed25519_pure_is_deterministic_and_not_prehashed(kms, sign_key):
    key = sign_key(ED)
    message = b"pure ed25519"
    a = kms.sign(KeyId=key.id, Message=message, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    b = kms.sign(KeyId=key.id, Message=message, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    assert a == b
    key.pub.verify(a, message)
    # A pure signature is not accepted as the prehash variant.
    expect_error(
        lambda: kms.verify(KeyId=key.id, Message=hashlib.sha512(message).digest(), MessageType="DIGEST", Signature=a,
                           SigningAlgorithm="ED25519_PH_SHA_512"),
        "KMSInvalidSignatureException",
        message="",
    )


def test_rsa_pkcs1_is_deterministic_and_pss_is_randomized(kms, sign_key):
    key = sign_key("RSA_2048")
    sig = lambda alg: kms.sign(KeyId=key.id, Message=b"same", SigningAlgorithm=alg)["Signature"]  # noqa: E731
    assert sig("RSASSA_PKCS1_V1_5_SHA_256") == sig("RSASSA_PKCS1_V1_5_SHA_256")
    assert sig("RSASSA_PSS_SHA_256") != sig("RSASSA_PSS_SHA_256")


@pytest.mark.parametrize("spec", ML_DSA)
def test_ml_dsa_external_mu_is_pure_ml_dsa_of_the_message(kms, sign_key, spec):
    key = sign_key(spec)
    message = os.urandom(3000)
    mu = ml_dsa_mu(key.pub.public_bytes_raw(), message)
    sig_mu = kms.sign(KeyId=key.id, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    key.pub.verify(sig_mu, message)
    # A signature over μ verifies as a RAW signature of the message, and the other way round.
    assert kms.verify(KeyId=key.id, Message=message, MessageType="RAW", Signature=sig_mu,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"]
    sig_raw = kms.sign(KeyId=key.id, Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    assert kms.verify(KeyId=key.id, Message=mu, MessageType="EXTERNAL_MU", Signature=sig_raw,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"]
    # Not with a context: the empty context is part of μ.
    with pytest.raises(InvalidSignature):
        key.pub.verify(sig_raw, message, b"ctx")


@pytest.mark.parametrize("spec,algorithm", [("RSA_4096", "RSASSA_PSS_SHA_512"), ("ECC_NIST_P521", "ECDSA_SHA_512"),
                                            (ED, "ED25519_SHA_512"), ("ML_DSA_87", "ML_DSA_SHAKE_256")])
def test_message_of_4096_bytes(kms, sign_key, spec, algorithm):
    key = sign_key(spec)
    message = os.urandom(4096)
    signature = kms.sign(KeyId=key.id, Message=message, SigningAlgorithm=algorithm)["Signature"]
    verify_offline(key, algorithm, "RAW", message, signature)
    assert kms.verify(KeyId=key.id, Message=message, Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]


# ------------------------------------------------------------------------------- openssl CLI

OPENSSL_CASES = [
    *[("RSA_2048", a, t) for a in RSA_ALGORITHMS for t in ("RAW", "DIGEST")],
    ("RSA_3072", "RSASSA_PSS_SHA_384", "RAW"),
    ("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512", "DIGEST"),
    *[(s, a, t) for s, a in ECDSA.items() for t in ("RAW", "DIGEST")],
    (ED, "ED25519_SHA_512", "RAW"),
]


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)


def openssl_verify_args(algorithm: str, message_type: str, pem: str, data: str, sig: str) -> list[str]:
    if algorithm.startswith(("RSASSA_", "ECDSA_")):
        md = hash_name(algorithm).replace("_", "").lower()  # sha256
        rsa_opts: list[str] = []
        if algorithm.startswith("RSASSA_PSS_"):
            rsa_opts = ["rsa_padding_mode:pss", "rsa_pss_saltlen:digest", f"rsa_mgf1_md:{md}"]
        elif algorithm.startswith("RSASSA_PKCS1_"):
            rsa_opts = ["rsa_padding_mode:pkcs1"]
        if message_type == "RAW":
            out = ["dgst", f"-{md}", "-verify", pem, "-signature", sig]
            for o in rsa_opts:
                out += ["-sigopt", o]
            return out + [data]
        out = ["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-in", data, "-sigfile", sig, "-pkeyopt", f"digest:{md}"]
        for o in rsa_opts:
            out += ["-pkeyopt", o]
        return out
    assert algorithm == "ED25519_SHA_512" and message_type == "RAW"
    return ["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", data, "-sigfile", sig]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")
@pytest.mark.parametrize("spec,algorithm,message_type", OPENSSL_CASES, ids=[f"{s}-{a}-{t}" for s, a, t in OPENSSL_CASES])
def test_openssl_verifies_trent_signatures(kms, sign_key, tmp_path, spec, algorithm, message_type):
    key = sign_key(spec)
    (tmp_path / "pub.der").write_bytes(key.der)
    cp = openssl("pkey", "-pubin", "-inform", "DER", "-in", str(tmp_path / "pub.der"), "-outform", "PEM",
                 "-out", str(tmp_path / "pub.pem"))
    assert cp.returncode == 0, cp.stderr
    full = b"openssl checks this " + os.urandom(32)
    message = kms_message(key, algorithm, message_type, full)
    signature = kms.sign(KeyId=key.id, Message=message, MessageType=message_type, SigningAlgorithm=algorithm)["Signature"]
    (tmp_path / "data.bin").write_bytes(message)
    (tmp_path / "sig.bin").write_bytes(signature)
    (tmp_path / "bad.bin").write_bytes(flip(signature))
    pem, data = str(tmp_path / "pub.pem"), str(tmp_path / "data.bin")
    good = openssl(*openssl_verify_args(algorithm, message_type, pem, data, str(tmp_path / "sig.bin")))
    assert good.returncode == 0, f"openssl refused trent's signature: {good.stdout} {good.stderr}"
    assert "Verified" in good.stdout, good.stdout
    bad = openssl(*openssl_verify_args(algorithm, message_type, pem, data, str(tmp_path / "bad.bin")))
    assert bad.returncode != 0, f"openssl accepted a tampered signature: {bad.stdout}"


# ------------------------------------------------------------------------------------ errors

DIGEST_ALGORITHMS = [
    *[("RSA_2048", a) for a in RSA_ALGORITHMS],
    *[(s, a) for s, a in ECDSA.items() if s != "ECC_SECG_P256K1"],
    (ED, "ED25519_PH_SHA_512"),
]


@pytest.mark.parametrize("spec,algorithm", DIGEST_ALGORITHMS, ids=[a for _, a in DIGEST_ALGORITHMS])
def test_digest_of_the_wrong_length(kms, sign_key, spec, algorithm):
    key = sign_key(spec)
    size = len(digest(algorithm, b""))
    good_sig = kms.sign(KeyId=key.id, Message=os.urandom(size), MessageType="DIGEST", SigningAlgorithm=algorithm)["Signature"]
    for n in sorted({size - 1, size + 1, 20, 32, 48, 64} - {size}):
        msg = f"Digest is invalid length for algorithm {algorithm}."
        expect_error(
            lambda: kms.sign(KeyId=key.id, Message=os.urandom(n), MessageType="DIGEST", SigningAlgorithm=algorithm),
            "ValidationException", msg,
        )
        expect_error(
            lambda: kms.verify(KeyId=key.id, Message=os.urandom(n), MessageType="DIGEST", Signature=good_sig,
                               SigningAlgorithm=algorithm),
            "ValidationException", msg,
        )


def test_external_mu_of_the_wrong_length(kms, sign_key):
    key = sign_key("ML_DSA_65")
    good_sig = kms.sign(KeyId=key.id, Message=os.urandom(64), MessageType="EXTERNAL_MU",
                        SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    for n in (1, 32, 63, 65, 128):
        msg = "Digest is invalid length for algorithm ML_DSA_SHAKE_256."
        expect_error(
            lambda: kms.sign(KeyId=key.id, Message=os.urandom(n), MessageType="EXTERNAL_MU",
                             SigningAlgorithm="ML_DSA_SHAKE_256"),
            "ValidationException", msg,
        )
        expect_error(
            lambda: kms.verify(KeyId=key.id, Message=os.urandom(n), MessageType="EXTERNAL_MU", Signature=good_sig,
                               SigningAlgorithm="ML_DSA_SHAKE_256"),
            "ValidationException", msg,
        )


WRONG_TYPES = [  # (spec, algorithm, MessageType or None for omitted, message length valid for that type)
    ("ML_DSA_44", "ML_DSA_SHAKE_256", "DIGEST", 64),
    ("ECC_NIST_P256", "ECDSA_SHA_256", "EXTERNAL_MU", 64),
    ("RSA_2048", "RSASSA_PSS_SHA_512", "EXTERNAL_MU", 64),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "EXTERNAL_MU", 64),
    (ED, "ED25519_SHA_512", "DIGEST", 64),
    (ED, "ED25519_SHA_512", "EXTERNAL_MU", 64),
    (ED, "ED25519_PH_SHA_512", "RAW", 64),
    (ED, "ED25519_PH_SHA_512", None, 64),
    (ED, "ED25519_PH_SHA_512", "EXTERNAL_MU", 64),
]


@pytest.mark.parametrize("spec,algorithm,message_type,size", WRONG_TYPES,
                         ids=[f"{a}-{t}" for _, a, t, _ in WRONG_TYPES])
def test_message_type_the_algorithm_does_not_take(kms, sign_key, spec, algorithm, message_type, size):
    key = sign_key(spec)
    kw = {"MessageType": message_type} if message_type else {}
    msg = f"MessageType {message_type or 'RAW'} is not supported with signing algorithm {algorithm}."
    expect_error(
        lambda: kms.sign(KeyId=key.id, Message=os.urandom(size), SigningAlgorithm=algorithm, **kw),
        "ValidationException", msg,
    )
    expect_error(
        lambda: kms.verify(KeyId=key.id, Message=os.urandom(size), Signature=os.urandom(64), SigningAlgorithm=algorithm,
                           **kw),
        "ValidationException", msg,
    )


FOREIGN_ALGORITHMS = [
    ("ECC_NIST_P256", "ECDSA_SHA_384"),
    ("ECC_NIST_P256", "ECDSA_SHA_512"),
    ("ECC_NIST_P384", "ECDSA_SHA_256"),
    ("ECC_NIST_P521", "ECDSA_SHA_384"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_512"),
    ("ECC_NIST_P256", "RSASSA_PSS_SHA_256"),
    ("ECC_NIST_P256", "SM2DSA"),
    ("RSA_2048", "ECDSA_SHA_256"),
    ("RSA_2048", "ML_DSA_SHAKE_256"),
    ("RSA_2048", "ED25519_SHA_512"),
    (ED, "ECDSA_SHA_512"),
    (ED, "RSASSA_PKCS1_V1_5_SHA_512"),
    ("ML_DSA_44", "ED25519_SHA_512"),
    ("ML_DSA_65", "ECDSA_SHA_256"),
]


@pytest.mark.parametrize("spec,algorithm", FOREIGN_ALGORITHMS, ids=[f"{s}-{a}" for s, a in FOREIGN_ALGORITHMS])
def test_algorithm_the_key_does_not_list(kms, sign_key, spec, algorithm):
    key = sign_key(spec)
    msg = f"Algorithm {algorithm} is incompatible with key spec {spec}."
    expect_error(lambda: kms.sign(KeyId=key.id, Message=b"m", SigningAlgorithm=algorithm), "InvalidKeyUsageException", msg)
    expect_error(
        lambda: kms.verify(KeyId=key.id, Message=b"m", Signature=os.urandom(64), SigningAlgorithm=algorithm),
        "InvalidKeyUsageException", msg,
    )


@pytest.mark.parametrize("spec,usage", [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("HMAC_256", "GENERATE_VERIFY_MAC"),
                                        ("ECC_NIST_P256", "KEY_AGREEMENT"), ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")])
def test_key_of_another_usage(kms, spec, usage):
    md = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    arn = md["Arn"]
    expect_error(
        lambda: kms.sign(KeyId=md["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256"),
        "InvalidKeyUsageException", f"{arn} key usage is {usage} which is not valid for Sign.",
    )
    expect_error(
        lambda: kms.verify(KeyId=md["KeyId"], Message=b"m", Signature=os.urandom(72), SigningAlgorithm="ECDSA_SHA_256"),
        "InvalidKeyUsageException", f"{arn} key usage is {usage} which is not valid for Verify.",
    )


def test_signing_key_refuses_other_operations(kms, sign_key):
    key = sign_key("ECC_NIST_P256")
    usage = f"{key.arn} key usage is SIGN_VERIFY which is not valid for"
    expect_error(lambda: kms.encrypt(KeyId=key.id, Plaintext=b"x"), "InvalidKeyUsageException", f"{usage} Encrypt.")
    expect_error(
        lambda: kms.generate_mac(KeyId=key.id, Message=b"x", MacAlgorithm="HMAC_SHA_256"),
        "InvalidKeyUsageException", f"{usage} GenerateMac.",
    )
    expect_error(
        lambda: kms.generate_data_key(KeyId=key.id, KeySpec="AES_256"), "InvalidKeyUsageException",
        f"{usage} GenerateDataKey.",
    )


def test_message_size_limits(kms, kms_raw, sign_key):
    key = sign_key("ECC_NIST_P256")
    too_long = coral("Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096")
    expect_error(
        lambda: kms.sign(KeyId=key.id, Message=os.urandom(4097), SigningAlgorithm="ECDSA_SHA_256"),
        "ValidationException", too_long,
    )
    expect_error(
        lambda: kms.verify(KeyId=key.id, Message=os.urandom(4097), Signature=os.urandom(72),
                           SigningAlgorithm="ECDSA_SHA_256"),
        "ValidationException", too_long,
    )
    expect_error(
        lambda: kms_raw.sign(KeyId=key.id, Message=b"", SigningAlgorithm="ECDSA_SHA_256"),
        "ValidationException",
        coral("Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1"),
    )


def test_unknown_signing_algorithm(kms_raw, sign_key):
    key = sign_key("ECC_NIST_P256")
    expect_error(
        lambda: kms_raw.sign(KeyId=key.id, Message=b"m", SigningAlgorithm="ECDSA_SHA_1"),
        "ValidationException",
        startswith=coral("Value 'ECDSA_SHA_1' at 'signingAlgorithm' failed to satisfy constraint: "
                         "Member must satisfy enum value set: ["),
    )
    expect_error(
        lambda: kms_raw.sign(KeyId=key.id, Message=b"m", MessageType="HASH", SigningAlgorithm="ECDSA_SHA_256"),
        "ValidationException",
        startswith=coral("Value 'HASH' at 'messageType' failed to satisfy constraint: "
                         "Member must satisfy enum value set: ["),
    )


@pytest.mark.parametrize("spec,algorithm", [("RSA_2048", "RSASSA_PSS_SHA_256"), ("ECC_NIST_P256", "ECDSA_SHA_256"),
                                            (ED, "ED25519_SHA_512"), ("ML_DSA_44", "ML_DSA_SHAKE_256")])
def test_garbage_signatures(kms, sign_key, spec, algorithm):
    key = sign_key(spec)
    real = kms.sign(KeyId=key.id, Message=b"garbage", SigningAlgorithm=algorithm)["Signature"]
    for bad in (b"\x00", os.urandom(1), os.urandom(len(real)), bytes(len(real)), b"\xff" * len(real), os.urandom(100),
                real[:-1], real + b"\x00", real + real, os.urandom(6144)):
        expect_error(
            lambda: kms.verify(KeyId=key.id, Message=b"garbage", Signature=bad, SigningAlgorithm=algorithm),
            "KMSInvalidSignatureException", message="",
        )


def test_signature_too_large(kms, kms_raw, sign_key):
    key = sign_key("ECC_NIST_P256")
    expect_error(
        lambda: kms.verify(KeyId=key.id, Message=b"m", Signature=os.urandom(6145), SigningAlgorithm="ECDSA_SHA_256"),
        "ValidationException",
        startswith="1 validation error detected: ",
        contains=("'signature'", "Member must have length less than or equal to 6144"),
    )
    expect_error(
        lambda: kms_raw.verify(KeyId=key.id, Message=b"m", Signature=b"", SigningAlgorithm="ECDSA_SHA_256"),
        "ValidationException",
        startswith="1 validation error detected: ",
        contains=("'signature'", "Member must have length greater than or equal to 1"),
    )


def test_signature_of_another_key_or_algorithm(kms, sign_key):
    a, b = sign_key("ECC_NIST_P256"), sign_key("ECC_NIST_P256", "other")
    sig = kms.sign(KeyId=a.id, Message=b"whose?", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    expect_error(
        lambda: kms.verify(KeyId=b.id, Message=b"whose?", Signature=sig, SigningAlgorithm="ECDSA_SHA_256"),
        "KMSInvalidSignatureException", message="",
    )
    rsa_key = sign_key("RSA_2048")
    pss = kms.sign(KeyId=rsa_key.id, Message=b"which?", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    for other in ("RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_384"):
        expect_error(
            lambda: kms.verify(KeyId=rsa_key.id, Message=b"which?", Signature=pss, SigningAlgorithm=other),
            "KMSInvalidSignatureException", message="",
        )


def test_dry_run(kms, sign_key):
    key = sign_key("ECC_NIST_P384")
    sig = kms.sign(KeyId=key.id, Message=b"dry", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
    expect_error(lambda: kms.sign(KeyId=key.id, Message=b"dry", SigningAlgorithm="ECDSA_SHA_384", DryRun=True),
                 "DryRunOperationException", DRY_RUN_MESSAGE)
    expect_error(
        lambda: kms.verify(KeyId=key.id, Message=b"dry", Signature=sig, SigningAlgorithm="ECDSA_SHA_384", DryRun=True),
        "DryRunOperationException", DRY_RUN_MESSAGE,
    )
    # A request that would fail reports its error, not the dry run.
    expect_error(
        lambda: kms.sign(KeyId=key.id, Message=b"dry", SigningAlgorithm="ECDSA_SHA_256", DryRun=True),
        "InvalidKeyUsageException", "Algorithm ECDSA_SHA_256 is incompatible with key spec ECC_NIST_P384.",
    )
    expect_error(
        lambda: kms.sign(KeyId=key.id, Message=b"dry", MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384",
                         DryRun=True),
        "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_384.",
    )
    assert kms.sign(KeyId=key.id, Message=b"wet", SigningAlgorithm="ECDSA_SHA_384", DryRun=False)["KeyId"] == key.arn


def test_sign_and_verify_through_aliases(kms, sign_key):
    key = sign_key("ECC_NIST_P256")
    name = f"alias/signer-{uuid.uuid4().hex[:12]}"
    kms.create_alias(AliasName=name, TargetKeyId=key.id)
    for ident in (name, f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}", key.arn):
        resp = kms.sign(KeyId=ident, Message=b"aliased", SigningAlgorithm="ECDSA_SHA_256")
        assert resp["KeyId"] == key.arn
        verify_offline(key, "ECDSA_SHA_256", "RAW", b"aliased", resp["Signature"])
        v = kms.verify(KeyId=ident, Message=b"aliased", Signature=resp["Signature"], SigningAlgorithm="ECDSA_SHA_256")
        assert v["KeyId"] == key.arn and v["SignatureValid"] is True


def test_key_states(kms):
    md = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kid, arn = md["KeyId"], md["Arn"]
    sig = kms.sign(KeyId=kid, Message=b"state", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    kms.disable_key(KeyId=kid)
    expect_error(lambda: kms.sign(KeyId=kid, Message=b"state", SigningAlgorithm="ECDSA_SHA_256"),
                 "DisabledException", f"{arn} is disabled.")
    expect_error(lambda: kms.verify(KeyId=kid, Message=b"state", Signature=sig, SigningAlgorithm="ECDSA_SHA_256"),
                 "DisabledException", f"{arn} is disabled.")
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    expect_error(lambda: kms.sign(KeyId=kid, Message=b"state", SigningAlgorithm="ECDSA_SHA_256"),
                 "KMSInvalidStateException", f"{arn} is pending deletion.")
    kms.cancel_key_deletion(KeyId=kid)
    kms.enable_key(KeyId=kid)
    assert kms.verify(KeyId=kid, Message=b"state", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]


# ---------------------------------------------------------------------------------- AWS CLI


@pytest.mark.parametrize("spec,algorithm,message_type", [("RSA_2048", "RSASSA_PSS_SHA_256", "RAW"),
                                                         ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384", "DIGEST"),
                                                         ("ECC_NIST_P256", "ECDSA_SHA_256", "RAW"),
                                                         ("ECC_NIST_P384", "ECDSA_SHA_384", "DIGEST"),
                                                         (ED, "ED25519_SHA_512", "RAW")])
def test_aws_cli_sign_and_verify(aws_cli, sign_key, tmp_path, spec, algorithm, message_type):
    key = sign_key(spec)
    full = b"signed from the CLI " + os.urandom(16)
    message = kms_message(key, algorithm, message_type, full)
    (tmp_path / "msg").write_bytes(message)
    res = aws_cli(["sign", "--key-id", key.id, "--message", f"fileb://{tmp_path / 'msg'}", "--message-type",
                   message_type, "--signing-algorithm", algorithm])
    assert res.returncode == 0, res.stderr
    assert res.json["KeyId"] == key.arn
    assert res.json["SigningAlgorithm"] == algorithm
    signature = unb64(res.json["Signature"])
    verify_offline(key, algorithm, message_type, full, signature)

    (tmp_path / "sig").write_bytes(signature)
    res = aws_cli(["verify", "--key-id", key.arn, "--message", f"fileb://{tmp_path / 'msg'}", "--message-type",
                   message_type, "--signature", f"fileb://{tmp_path / 'sig'}", "--signing-algorithm", algorithm])
    assert res.returncode == 0, res.stderr
    assert res.json == {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}

    (tmp_path / "bad").write_bytes(flip(signature))
    res = aws_cli(["verify", "--key-id", key.id, "--message", f"fileb://{tmp_path / 'msg'}", "--message-type",
                   message_type, "--signature", f"fileb://{tmp_path / 'bad'}", "--signing-algorithm", algorithm])
    assert res.returncode != 0
    assert res.error_code == "KMSInvalidSignatureException", res.stderr


def test_aws_cli_get_public_key(aws_cli, sign_key):
    key = sign_key("ECC_NIST_P256")
    res = aws_cli(["get-public-key", "--key-id", key.id])
    assert res.returncode == 0, res.stderr
    assert unb64(res.json["PublicKey"]) == key.der
    assert res.json["KeySpec"] == "ECC_NIST_P256"
    assert res.json["SigningAlgorithms"] == ["ECDSA_SHA_256"]
