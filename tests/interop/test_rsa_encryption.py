"""RSA encryption keys through boto3 and the AWS CLI: Encrypt and Decrypt with RSAES_OAEP_SHA_1 and
RSAES_OAEP_SHA_256 for the three sizes, the exact plaintext limits, ciphertexts made offline with
`cryptography` and the `openssl` CLI from GetPublicKey's public key, what bad ciphertexts and bad
requests get back, and ReEncrypt between RSA and symmetric keys."""

from __future__ import annotations

import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from kmsutil import DRY_RUN_MESSAGE, HEX64_RE, expect_error, unb64

SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
LIMITS = {
    ("RSA_2048", "RSAES_OAEP_SHA_1"): 214,
    ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
    ("RSA_3072", "RSAES_OAEP_SHA_1"): 342,
    ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
    ("RSA_4096", "RSAES_OAEP_SHA_1"): 470,
    ("RSA_4096", "RSAES_OAEP_SHA_256"): 446,
}
PAIRS = [(s, a) for s in SPECS for a in ALGORITHMS]
IDS = [f"{s}-{a}" for s, a in PAIRS]
CONTEXT_REFUSED = "EncryptionContext is not supported with asymmetric KMS keys."


def oaep(algorithm: str, label: bytes | None = None, mgf_hash=None) -> padding.OAEP:
    h = hashes.SHA1 if algorithm == "RSAES_OAEP_SHA_1" else hashes.SHA256
    return padding.OAEP(mgf=padding.MGF1((mgf_hash or h)()), algorithm=h(), label=label)


def modulus_bytes(spec: str) -> int:
    return int(spec[4:]) // 8


def too_large(spec: str, algorithm: str) -> str:
    return f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {LIMITS[(spec, algorithm)]} bytes."


def incompatible(algorithm: str, spec: str) -> str:
    return f"Algorithm {algorithm} is incompatible with key spec {spec}."


@pytest.fixture(scope="module")
def rsa_key(kms):
    """rsa_key(spec, name="") -> an ENCRYPT_DECRYPT RSA key made once per module: .id .arn .der .pub"""
    cache: dict[tuple[str, str], SimpleNamespace] = {}

    def get(spec: str, name: str = "") -> SimpleNamespace:
        if (spec, name) not in cache:
            md = kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT", Description=f"rsa {spec} {name}")["KeyMetadata"]
            der = kms.get_public_key(KeyId=md["KeyId"])["PublicKey"]
            cache[(spec, name)] = SimpleNamespace(
                spec=spec, id=md["KeyId"], arn=md["Arn"], der=der, pub=serialization.load_der_public_key(der)
            )
        return cache[(spec, name)]

    return get


@pytest.fixture(scope="module")
def sym_key(kms):
    md = kms.create_key(Description="re-encrypt partner")["KeyMetadata"]
    return SimpleNamespace(id=md["KeyId"], arn=md["Arn"])


def decrypt(kms, key, blob: bytes, algorithm: str, **kw) -> dict:
    return kms.decrypt(KeyId=key.id, CiphertextBlob=blob, EncryptionAlgorithm=algorithm, **kw)


# ------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("spec,algorithm", PAIRS, ids=IDS)
def test_encrypt_decrypt(kms, rsa_key, spec, algorithm):
    key = rsa_key(spec)
    plaintext = os.urandom(100)
    enc = kms.encrypt(KeyId=key.id, Plaintext=plaintext, EncryptionAlgorithm=algorithm)
    assert enc["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert enc["KeyId"] == key.arn
    assert enc["EncryptionAlgorithm"] == algorithm
    blob = enc["CiphertextBlob"]
    # The raw OAEP output: as long as the modulus.
    assert len(blob) == modulus_bytes(spec)
    assert plaintext not in blob
    again = kms.encrypt(KeyId=key.id, Plaintext=plaintext, EncryptionAlgorithm=algorithm)["CiphertextBlob"]
    assert again != blob  # OAEP is randomized

    dec = decrypt(kms, key, blob, algorithm)
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == key.arn
    assert dec["EncryptionAlgorithm"] == algorithm
    # As AWS: a KeyMaterialId only for symmetric encryption keys.
    assert "KeyMaterialId" not in dec, dec.get("KeyMaterialId")
    assert decrypt(kms, key, again, algorithm)["Plaintext"] == plaintext
    assert kms.decrypt(KeyId=key.arn, CiphertextBlob=blob, EncryptionAlgorithm=algorithm)["Plaintext"] == plaintext


@pytest.mark.parametrize("spec,algorithm", PAIRS, ids=IDS)
def test_plaintext_limits(kms, rsa_key, spec, algorithm):
    key = rsa_key(spec)
    limit = LIMITS[(spec, algorithm)]
    for n in (1, limit):
        plaintext = os.urandom(n)
        blob = kms.encrypt(KeyId=key.id, Plaintext=plaintext, EncryptionAlgorithm=algorithm)["CiphertextBlob"]
        assert decrypt(kms, key, blob, algorithm)["Plaintext"] == plaintext
    for n in (limit + 1, limit + 100, 4096):
        expect_error(
            lambda: kms.encrypt(KeyId=key.id, Plaintext=os.urandom(n), EncryptionAlgorithm=algorithm),
            "ValidationException", too_large(spec, algorithm),
        )


def test_plaintext_limit_message_does_not_echo_the_plaintext(kms, rsa_key):
    key = rsa_key("RSA_2048")
    marker = b"SENSITIVE-" + os.urandom(8).hex().encode()
    resp = expect_error(
        lambda: kms.encrypt(KeyId=key.id, Plaintext=marker * 10, EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        "ValidationException",
    )
    assert marker.decode() not in resp["Error"]["Message"]


# ------------------------------------------------------------------------- offline ciphertexts


@pytest.mark.parametrize("spec,algorithm", PAIRS, ids=IDS)
def test_ciphertext_made_with_cryptography_decrypts(kms, rsa_key, spec, algorithm):
    key = rsa_key(spec)
    for n in (1, 32, LIMITS[(spec, algorithm)]):
        plaintext = os.urandom(n)
        blob = key.pub.encrypt(plaintext, oaep(algorithm))
        dec = decrypt(kms, key, blob, algorithm)
        assert dec["Plaintext"] == plaintext
        assert dec["KeyId"] == key.arn


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")
@pytest.mark.parametrize("spec,algorithm", PAIRS, ids=IDS)
def test_ciphertext_made_with_openssl_decrypts(kms, rsa_key, tmp_path, spec, algorithm):
    key = rsa_key(spec)
    md = "sha1" if algorithm == "RSAES_OAEP_SHA_1" else "sha256"
    (tmp_path / "pub.der").write_bytes(key.der)
    cp = subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", str(tmp_path / "pub.der"),
                         "-outform", "PEM", "-out", str(tmp_path / "pub.pem")], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    plaintext = os.urandom(LIMITS[(spec, algorithm)])
    (tmp_path / "pt").write_bytes(plaintext)
    cp = subprocess.run(
        ["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-in", str(tmp_path / "pt"),
         "-out", str(tmp_path / "ct"), "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}",
         "-pkeyopt", f"rsa_mgf1_md:{md}"],
        capture_output=True, text=True,
    )
    assert cp.returncode == 0, cp.stderr
    blob = (tmp_path / "ct").read_bytes()
    assert len(blob) == modulus_bytes(spec)
    assert decrypt(kms, key, blob, algorithm)["Plaintext"] == plaintext


def test_oaep_parameters_must_match(kms, rsa_key):
    key = rsa_key("RSA_2048")
    # A label, or MGF1 with another hash, is a different OAEP: it does not decrypt.
    for blob, algorithm in (
        (key.pub.encrypt(b"labelled", oaep("RSAES_OAEP_SHA_256", label=b"label")), "RSAES_OAEP_SHA_256"),
        (key.pub.encrypt(b"mgf1-sha1", oaep("RSAES_OAEP_SHA_256", mgf_hash=hashes.SHA1)), "RSAES_OAEP_SHA_256"),
        (key.pub.encrypt(b"mgf1-sha256", oaep("RSAES_OAEP_SHA_1", mgf_hash=hashes.SHA256)), "RSAES_OAEP_SHA_1"),
        (key.pub.encrypt(b"pkcs1", padding.PKCS1v15()), "RSAES_OAEP_SHA_1"),
    ):
        expect_error(lambda: decrypt(kms, key, blob, algorithm), "InvalidCiphertextException", message="")


# ---------------------------------------------------------------------------- bad ciphertexts


def test_decrypt_without_key_id_reads_a_symmetric_blob(kms, rsa_key):
    key = rsa_key("RSA_2048")
    blob = kms.encrypt(KeyId=key.id, Plaintext=b"no key id", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "InvalidCiphertextException", message="")


def test_decrypt_with_the_other_oaep_algorithm(kms, rsa_key):
    key = rsa_key("RSA_2048")
    for made, tried in (("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"), ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")):
        blob = kms.encrypt(KeyId=key.id, Plaintext=b"which hash", EncryptionAlgorithm=made)["CiphertextBlob"]
        expect_error(lambda: decrypt(kms, key, blob, tried), "InvalidCiphertextException", message="")


def test_symmetric_default_with_an_rsa_key(kms, rsa_key):
    key = rsa_key("RSA_2048")
    msg = incompatible("SYMMETRIC_DEFAULT", "RSA_2048")
    blob = kms.encrypt(KeyId=key.id, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1")["CiphertextBlob"]
    # Omitted, the algorithm is SYMMETRIC_DEFAULT, which an RSA key refuses.
    expect_error(lambda: kms.encrypt(KeyId=key.id, Plaintext=b"x"), "InvalidKeyUsageException", msg)
    expect_error(lambda: kms.encrypt(KeyId=key.id, Plaintext=b"x", EncryptionAlgorithm="SYMMETRIC_DEFAULT"),
                 "InvalidKeyUsageException", msg)
    expect_error(lambda: kms.decrypt(KeyId=key.id, CiphertextBlob=blob), "InvalidKeyUsageException", msg)
    expect_error(lambda: decrypt(kms, key, blob, "SYMMETRIC_DEFAULT"), "InvalidKeyUsageException", msg)


def test_rsa_algorithm_with_a_symmetric_key(kms, sym_key):
    for algorithm in ALGORITHMS:
        expect_error(
            lambda: kms.encrypt(KeyId=sym_key.id, Plaintext=b"x", EncryptionAlgorithm=algorithm),
            "InvalidKeyUsageException", incompatible(algorithm, "SYMMETRIC_DEFAULT"),
        )
    blob = kms.encrypt(KeyId=sym_key.id, Plaintext=b"x")["CiphertextBlob"]
    expect_error(
        lambda: kms.decrypt(KeyId=sym_key.id, CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        "InvalidKeyUsageException", incompatible("RSAES_OAEP_SHA_256", "SYMMETRIC_DEFAULT"),
    )


def test_tampered_ciphertexts(kms, rsa_key):
    key = rsa_key("RSA_2048")
    blob = kms.encrypt(KeyId=key.id, Plaintext=b"tamper", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    bad = []
    for i in (0, 1, 17, 128, 254, 255):
        b = bytearray(blob)
        b[i] ^= 0x01
        bad.append(bytes(b))
    bad += [blob[:-1], blob[1:], blob + b"\x00", b"\x00" + blob, blob * 2, os.urandom(256), bytes(256), b"\xff" * 256,
            os.urandom(1), os.urandom(512)]
    for ct in bad:
        expect_error(lambda: decrypt(kms, key, ct, "RSAES_OAEP_SHA_256"), "InvalidCiphertextException", message="")


def test_ciphertext_of_another_rsa_key(kms, rsa_key):
    a, b = rsa_key("RSA_2048"), rsa_key("RSA_2048", "other")
    blob = kms.encrypt(KeyId=a.id, Plaintext=b"for a", EncryptionAlgorithm="RSAES_OAEP_SHA_1")["CiphertextBlob"]
    expect_error(lambda: decrypt(kms, b, blob, "RSAES_OAEP_SHA_1"), "InvalidCiphertextException", message="")
    c = rsa_key("RSA_3072")
    expect_error(lambda: decrypt(kms, c, blob, "RSAES_OAEP_SHA_1"), "InvalidCiphertextException", message="")


def test_encryption_context_is_refused(kms, rsa_key):
    key = rsa_key("RSA_2048")
    blob = kms.encrypt(KeyId=key.id, Plaintext=b"ctx", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    expect_error(
        lambda: kms.encrypt(KeyId=key.id, Plaintext=b"ctx", EncryptionAlgorithm="RSAES_OAEP_SHA_256",
                            EncryptionContext={"purpose": "test"}),
        "ValidationException", CONTEXT_REFUSED,
    )
    expect_error(
        lambda: decrypt(kms, key, blob, "RSAES_OAEP_SHA_256", EncryptionContext={"purpose": "test"}),
        "ValidationException", CONTEXT_REFUSED,
    )


def test_keys_of_another_usage(kms, rsa_key):
    signer = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    arn = signer["Arn"]
    expect_error(
        lambda: kms.encrypt(KeyId=signer["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        "InvalidKeyUsageException", f"{arn} key usage is SIGN_VERIFY which is not valid for Encrypt.",
    )
    expect_error(
        lambda: kms.decrypt(KeyId=signer["KeyId"], CiphertextBlob=os.urandom(256), EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        "InvalidKeyUsageException", f"{arn} key usage is SIGN_VERIFY which is not valid for Decrypt.",
    )
    key = rsa_key("RSA_2048")
    expect_error(
        lambda: kms.sign(KeyId=key.id, Message=b"x", SigningAlgorithm="RSASSA_PSS_SHA_256"),
        "InvalidKeyUsageException", f"{key.arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign.",
    )
    # An RSA encryption key does not wrap data keys.
    expect_error(lambda: kms.generate_data_key(KeyId=key.id, KeySpec="AES_256"), "InvalidKeyUsageException")


def test_dry_run(kms, rsa_key):
    key = rsa_key("RSA_2048")
    blob = kms.encrypt(KeyId=key.id, Plaintext=b"dry", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    expect_error(
        lambda: kms.encrypt(KeyId=key.id, Plaintext=b"dry", EncryptionAlgorithm="RSAES_OAEP_SHA_256", DryRun=True),
        "DryRunOperationException", DRY_RUN_MESSAGE,
    )
    expect_error(lambda: decrypt(kms, key, blob, "RSAES_OAEP_SHA_256", DryRun=True), "DryRunOperationException",
                 DRY_RUN_MESSAGE)
    expect_error(
        lambda: kms.encrypt(KeyId=key.id, Plaintext=os.urandom(191), EncryptionAlgorithm="RSAES_OAEP_SHA_256",
                            DryRun=True),
        "ValidationException", too_large("RSA_2048", "RSAES_OAEP_SHA_256"),
    )


def test_disabled_rsa_key(kms):
    md = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"d", EncryptionAlgorithm="RSAES_OAEP_SHA_1")["CiphertextBlob"]
    kms.disable_key(KeyId=md["KeyId"])
    msg = f"{md['Arn']} is disabled."
    expect_error(lambda: kms.encrypt(KeyId=md["KeyId"], Plaintext=b"d", EncryptionAlgorithm="RSAES_OAEP_SHA_1"),
                 "DisabledException", msg)
    expect_error(lambda: kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_1"),
                 "DisabledException", msg)
    kms.enable_key(KeyId=md["KeyId"])
    assert kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == b"d"


# --------------------------------------------------------------------------------- ReEncrypt


def test_re_encrypt_rsa_to_symmetric(kms, rsa_key, sym_key):
    key = rsa_key("RSA_3072")
    plaintext = os.urandom(300)
    blob = key.pub.encrypt(plaintext, oaep("RSAES_OAEP_SHA_256"))  # made offline
    resp = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceKeyId=key.id,
        SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
        DestinationKeyId=sym_key.id,
        DestinationEncryptionContext={"to": "symmetric"},
    )
    assert resp["SourceKeyId"] == key.arn
    assert resp["KeyId"] == sym_key.arn
    assert resp["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert resp["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert "SourceKeyMaterialId" not in resp  # AWS: only when the source key is symmetric
    assert HEX64_RE.match(resp["DestinationKeyMaterialId"])
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"to": "symmetric"})
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == sym_key.arn
    # Without SourceKeyId the blob is read as a symmetric one.
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=sym_key.id), "InvalidCiphertextException", message=""
    )
    # With the wrong source algorithm it does not decrypt.
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=key.id, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_1",
                               DestinationKeyId=sym_key.id),
        "InvalidCiphertextException", message="",
    )


def test_re_encrypt_symmetric_to_rsa(kms, rsa_key, sym_key):
    key = rsa_key("RSA_2048")
    plaintext = os.urandom(214)
    blob = kms.encrypt(KeyId=sym_key.id, Plaintext=plaintext, EncryptionContext={"from": "sym"})["CiphertextBlob"]
    resp = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"from": "sym"},
        DestinationKeyId=key.id,
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1",
    )
    assert resp["SourceKeyId"] == sym_key.arn
    assert resp["KeyId"] == key.arn
    assert resp["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert resp["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_1"
    assert HEX64_RE.match(resp["SourceKeyMaterialId"])
    assert "DestinationKeyMaterialId" not in resp  # AWS: only when the destination key is symmetric
    assert len(resp["CiphertextBlob"]) == 256
    assert decrypt(kms, key, resp["CiphertextBlob"], "RSAES_OAEP_SHA_1")["Plaintext"] == plaintext
    # Too long for the destination algorithm: the Encrypt limit applies.
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"from": "sym"}, DestinationKeyId=key.id,
                               DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        "ValidationException", too_large("RSA_2048", "RSAES_OAEP_SHA_256"),
    )
    # No destination algorithm means SYMMETRIC_DEFAULT, which the RSA key refuses.
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"from": "sym"}, DestinationKeyId=key.id),
        "InvalidKeyUsageException", incompatible("SYMMETRIC_DEFAULT", "RSA_2048"),
    )
    # No encryption context for the RSA destination.
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"from": "sym"}, DestinationKeyId=key.id,
                               DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1",
                               DestinationEncryptionContext={"to": "rsa"}),
        "ValidationException", CONTEXT_REFUSED,
    )


def test_re_encrypt_rsa_to_rsa(kms, rsa_key):
    src, dst = rsa_key("RSA_2048"), rsa_key("RSA_3072")
    plaintext = os.urandom(150)
    blob = kms.encrypt(KeyId=src.id, Plaintext=plaintext, EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    resp = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=src.arn, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
                          DestinationKeyId=dst.id, DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert (resp["SourceKeyId"], resp["KeyId"]) == (src.arn, dst.arn)
    assert (resp["SourceEncryptionAlgorithm"], resp["DestinationEncryptionAlgorithm"]) == ("RSAES_OAEP_SHA_256",
                                                                                          "RSAES_OAEP_SHA_1")
    assert "SourceKeyMaterialId" not in resp and "DestinationKeyMaterialId" not in resp
    assert len(resp["CiphertextBlob"]) == 384
    assert decrypt(kms, dst, resp["CiphertextBlob"], "RSAES_OAEP_SHA_1")["Plaintext"] == plaintext


# ---------------------------------------------------------------------------------- AWS CLI


def test_aws_cli_encrypt_decrypt(aws_cli, rsa_key, tmp_path):
    key = rsa_key("RSA_2048")
    plaintext = os.urandom(190)
    (tmp_path / "pt").write_bytes(plaintext)
    res = aws_cli(["encrypt", "--key-id", key.id, "--plaintext", f"fileb://{tmp_path / 'pt'}",
                   "--encryption-algorithm", "RSAES_OAEP_SHA_256"])
    assert res.returncode == 0, res.stderr
    assert res.json["KeyId"] == key.arn
    assert res.json["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    blob = unb64(res.json["CiphertextBlob"])
    assert len(blob) == 256

    (tmp_path / "ct").write_bytes(blob)
    res = aws_cli(["decrypt", "--key-id", key.arn, "--ciphertext-blob", f"fileb://{tmp_path / 'ct'}",
                   "--encryption-algorithm", "RSAES_OAEP_SHA_256"])
    assert res.returncode == 0, res.stderr
    assert unb64(res.json["Plaintext"]) == plaintext
    assert res.json["KeyId"] == key.arn
    assert res.json["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"

    # An offline ciphertext, from the public key the CLI fetched.
    res = aws_cli(["get-public-key", "--key-id", key.id])
    assert res.returncode == 0, res.stderr
    assert res.json["KeySpec"] == "RSA_2048" and res.json["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert res.json["EncryptionAlgorithms"] == ALGORITHMS
    pub = serialization.load_der_public_key(unb64(res.json["PublicKey"]))
    (tmp_path / "ct2").write_bytes(pub.encrypt(b"offline", oaep("RSAES_OAEP_SHA_1")))
    res = aws_cli(["decrypt", "--key-id", key.id, "--ciphertext-blob", f"fileb://{tmp_path / 'ct2'}",
                   "--encryption-algorithm", "RSAES_OAEP_SHA_1"])
    assert res.returncode == 0, res.stderr
    assert unb64(res.json["Plaintext"]) == b"offline"

    (tmp_path / "big").write_bytes(os.urandom(191))
    res = aws_cli(["encrypt", "--key-id", key.id, "--plaintext", f"fileb://{tmp_path / 'big'}",
                   "--encryption-algorithm", "RSAES_OAEP_SHA_256"])
    assert res.returncode != 0
    assert res.error_code == "ValidationException", res.stderr
    assert res.error_message == too_large("RSA_2048", "RSAES_OAEP_SHA_256")
