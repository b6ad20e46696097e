"""GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext through boto3 and the AWS CLI, for
every KeyPairSpec: the public key is DER SPKI, the private key DER PKCS#8 (for ML-KEM in the seed
format AWS documents), the two belong together (checked by loading them with `cryptography`, or
kyber-py for ML-KEM-512, and using them offline), and the encrypted private key decrypts with
Decrypt under the same encryption context to exactly the plaintext private key."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from Crypto.Util.asn1 import DerBitString, DerObjectId, DerOctetString, DerSequence
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, padding, rsa
from kyber_py.ml_kem import ML_KEM_512, ML_KEM_768, ML_KEM_1024

from kmsutil import DEV_ACCOUNT, DRY_RUN_MESSAGE, HEX64_RE, REGION, coral, expect_error, unb64

SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1",
         "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"]
OPERATIONS = ["generate_data_key_pair", "generate_data_key_pair_without_plaintext"]
EC_CURVES = {"ECC_NIST_P256": "secp256r1", "ECC_NIST_P384": "secp384r1", "ECC_NIST_P521": "secp521r1",
             "ECC_SECG_P256K1": "secp256k1"}
KEM = {  # spec: (kyber-py parameter set, OID, encapsulation key length, cryptography private class or None)
    "ML_KEM_512": (ML_KEM_512, "2.16.840.1.101.3.4.4.1", 800, None),
    "ML_KEM_768": (ML_KEM_768, "2.16.840.1.101.3.4.4.2", 1184, mlkem.MLKEM768PrivateKey),
    "ML_KEM_1024": (ML_KEM_1024, "2.16.840.1.101.3.4.4.3", 1568, mlkem.MLKEM1024PrivateKey),
}
CONTEXT = {"purpose": "data key pair", "owner": "interop"}


def spki_parts(der: bytes) -> tuple[str, list, bytes]:
    outer = DerSequence().decode(der, strict=True)
    alg = DerSequence().decode(outer[0], strict=True)
    return DerObjectId().decode(alg[0], strict=True).value, list(alg[1:]), DerBitString().decode(outer[1]).value


def ml_kem_seed(pkcs8: bytes, oid: str) -> bytes:
    """The 64-byte seed of an ML-KEM PKCS#8 in the seed format: OneAsymmetricKey { version 0,
    AlgorithmIdentifier { oid }, privateKey OCTET STRING { [0] IMPLICIT OCTET STRING (64) } }."""
    outer = DerSequence().decode(pkcs8, strict=True)
    assert outer[0] == 0, "PKCS#8 version is not 0"
    alg = DerSequence().decode(outer[1], strict=True)
    assert DerObjectId().decode(alg[0], strict=True).value == oid
    assert len(alg) == 1, "ML-KEM AlgorithmIdentifier must have absent parameters"
    inner = DerOctetString().decode(outer[2], strict=True).payload
    assert inner[:2] == b"\x80\x40", f"not the seed format: {inner[:4].hex()}"
    assert len(inner) == 66
    return inner[2:]


def public_der(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_key_pair(spec: str, public: bytes, private: bytes) -> None:
    """`public` is the SPKI of `spec`, `private` its PKCS#8, and they are one key pair that works."""
    if spec in KEM:
        params, oid, ek_len, crypto_cls = KEM[spec]
        got_oid, alg_params, ek = spki_parts(public)
        assert got_oid == oid and alg_params == [] and len(ek) == ek_len
        # AWS: the seed format, so the private key has the same length for every ML-KEM spec.
        assert len(private) == 86
        seed = ml_kem_seed(private, oid)
        derived_ek, dk = params.key_derive(seed)
        assert derived_ek == ek, "the private key's seed does not give the public key"
        secret, ct = params.encaps(ek)
        assert params.decaps(dk, ct) == secret
        if crypto_cls is not None:
            key = serialization.load_der_private_key(private, password=None)
            assert isinstance(key, crypto_cls), type(key)
            assert public_der(key) == public
            assert key.decapsulate(ct) == secret
        return

    key = serialization.load_der_private_key(private, password=None)
    assert public_der(key) == public, "PrivateKeyPlaintext is not the private key of PublicKey"
    pub = serialization.load_der_public_key(public)
    if spec.startswith("RSA_"):
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == int(spec[4:])
        assert pub.public_numbers().e == 65537
        # Usable both ways offline: sign and verify, encrypt and decrypt.
        sig = key.sign(b"offline", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        pub.verify(sig, b"offline", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        assert key.decrypt(pub.encrypt(b"offline", oaep), oaep) == b"offline"
    elif spec in EC_CURVES:
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == EC_CURVES[spec]
        sig = key.sign(b"offline", ec.ECDSA(hashes.SHA256()))
        pub.verify(sig, b"offline", ec.ECDSA(hashes.SHA256()))
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        pub.verify(key.sign(b"offline"), b"offline")
    else:
        raise AssertionError(spec)


@pytest.fixture(scope="module")
def wrapping_key(kms):
    md = kms.create_key(Description="wraps data key pairs")["KeyMetadata"]
    return SimpleNamespace(id=md["KeyId"], arn=md["Arn"])


# ------------------------------------------------------------------------------ every spec


@pytest.mark.parametrize("spec", SPECS)
def test_generate_data_key_pair(kms, wrapping_key, spec):
    resp = kms.generate_data_key_pair(KeyId=wrapping_key.id, KeyPairSpec=spec, EncryptionContext=CONTEXT)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["KeyId"] == wrapping_key.arn
    assert resp["KeyPairSpec"] == spec
    assert HEX64_RE.match(resp["KeyMaterialId"]), resp["KeyMaterialId"]
    current = kms.describe_key(KeyId=wrapping_key.id)["KeyMetadata"].get("CurrentKeyMaterialId")
    if current is not None:
        assert resp["KeyMaterialId"] == current
    assert "CiphertextForRecipient" not in resp
    public, private = resp["PublicKey"], resp["PrivateKeyPlaintext"]
    check_key_pair(spec, public, private)

    blob = resp["PrivateKeyCiphertextBlob"]
    assert private not in blob
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)
    assert dec["Plaintext"] == private
    assert dec["KeyId"] == wrapping_key.arn
    assert dec["KeyMaterialId"] == resp["KeyMaterialId"]
    for ctx in (None, {"purpose": "data key pair"}, {**CONTEXT, "extra": "x"}):
        kw = {"EncryptionContext": ctx} if ctx is not None else {}
        expect_error(lambda: kms.decrypt(CiphertextBlob=blob, **kw), "InvalidCiphertextException", message="")


@pytest.mark.parametrize("spec", SPECS)
def test_generate_data_key_pair_without_plaintext(kms, wrapping_key, spec):
    resp = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping_key.arn, KeyPairSpec=spec)
    assert resp["KeyId"] == wrapping_key.arn
    assert resp["KeyPairSpec"] == spec
    assert HEX64_RE.match(resp["KeyMaterialId"])
    assert "PrivateKeyPlaintext" not in resp
    private = kms.decrypt(CiphertextBlob=resp["PrivateKeyCiphertextBlob"])["Plaintext"]
    check_key_pair(spec, resp["PublicKey"], private)


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ML_KEM_768"])
def test_every_pair_is_new(kms, wrapping_key, spec):
    pairs = [kms.generate_data_key_pair(KeyId=wrapping_key.id, KeyPairSpec=spec) for _ in range(3)]
    assert len({p["PublicKey"] for p in pairs}) == 3
    assert len({p["PrivateKeyPlaintext"] for p in pairs}) == 3


def test_data_key_pair_signs_offline(kms, wrapping_key):
    # What a user does with it: keep the encrypted private key, decrypt it when signing is due.
    resp = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping_key.id, KeyPairSpec="ECC_NIST_P256",
                                                        EncryptionContext={"use": "sign"})
    der = kms.decrypt(CiphertextBlob=resp["PrivateKeyCiphertextBlob"], EncryptionContext={"use": "sign"})["Plaintext"]
    private = serialization.load_der_private_key(der, password=None)
    signature = private.sign(b"release v1", ec.ECDSA(hashes.SHA256()))
    serialization.load_der_public_key(resp["PublicKey"]).verify(signature, b"release v1", ec.ECDSA(hashes.SHA256()))


def test_identifiers(kms, wrapping_key):
    name = f"alias/dkp-{wrapping_key.id[:8]}-{os.urandom(4).hex()}"
    kms.create_alias(AliasName=name, TargetKeyId=wrapping_key.id)
    for ident in (wrapping_key.id, wrapping_key.arn, name, f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}"):
        for op in OPERATIONS:
            resp = getattr(kms, op)(KeyId=ident, KeyPairSpec="ECC_NIST_P384")
            assert resp["KeyId"] == wrapping_key.arn


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("op", OPERATIONS)
def test_sm2_is_refused(kms, wrapping_key, op):
    expect_error(lambda: getattr(kms, op)(KeyId=wrapping_key.id, KeyPairSpec="SM2"), "ValidationException",
                 "KeyPairSpec SM2 is only available in the China Regions.")


@pytest.mark.parametrize("op", OPERATIONS)
def test_unknown_key_pair_spec(kms_raw, wrapping_key, op):
    expect_error(
        lambda: getattr(kms_raw, op)(KeyId=wrapping_key.id, KeyPairSpec="RSA_1024"),
        "ValidationException",
        startswith=coral("Value 'RSA_1024' at 'keyPairSpec' failed to satisfy constraint: "
                         "Member must satisfy enum value set: ["),
    )


@pytest.mark.parametrize("op", OPERATIONS)
def test_wrapping_key_must_be_symmetric_encryption(kms, op):
    operation = {"generate_data_key_pair": "GenerateDataKeyPair",
                 "generate_data_key_pair_without_plaintext": "GenerateDataKeyPairWithoutPlaintext"}[op]
    for spec, usage in (("ECC_NIST_P256", "SIGN_VERIFY"), ("HMAC_256", "GENERATE_VERIFY_MAC"),
                        ("ML_KEM_512", "ENCAPSULATE_DECAPSULATE")):
        md = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        expect_error(lambda: getattr(kms, op)(KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P256"),
                     "InvalidKeyUsageException",
                     f"{md['Arn']} key usage is {usage} which is not valid for {operation}.")


def test_rsa_encryption_key_cannot_wrap(kms):
    # The right usage but not a symmetric key: refused (docs/key-specs.md does not pin the message).
    md = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    for op in OPERATIONS:
        expect_error(lambda: getattr(kms, op)(KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P256"),
                     "InvalidKeyUsageException")


def test_dry_run_and_disabled(kms):
    md = kms.create_key(Description="dry")["KeyMetadata"]
    for op in OPERATIONS:
        expect_error(lambda: getattr(kms, op)(KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P256", DryRun=True),
                     "DryRunOperationException", DRY_RUN_MESSAGE)
    kms.disable_key(KeyId=md["KeyId"])
    for op in OPERATIONS:
        expect_error(lambda: getattr(kms, op)(KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P256"),
                     "DisabledException", f"{md['Arn']} is disabled.")


# --------------------------------------------------------------------------------- AWS CLI


def test_aws_cli_generate_data_key_pair(aws_cli, kms, wrapping_key, tmp_path):
    res = aws_cli(["generate-data-key-pair", "--key-id", wrapping_key.id, "--key-pair-spec", "ECC_NIST_P256",
                   "--encryption-context", "purpose=cli"])
    assert res.returncode == 0, res.stderr
    out = res.json
    assert out["KeyId"] == wrapping_key.arn
    assert out["KeyPairSpec"] == "ECC_NIST_P256"
    assert HEX64_RE.match(out["KeyMaterialId"])
    public, private = unb64(out["PublicKey"]), unb64(out["PrivateKeyPlaintext"])
    check_key_pair("ECC_NIST_P256", public, private)

    (tmp_path / "blob").write_bytes(unb64(out["PrivateKeyCiphertextBlob"]))
    res = aws_cli(["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}", "--encryption-context",
                   "purpose=cli"])
    assert res.returncode == 0, res.stderr
    assert unb64(res.json["Plaintext"]) == private
    res = aws_cli(["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}"])
    assert res.returncode != 0 and res.error_code == "InvalidCiphertextException", res.stderr

    res = aws_cli(["generate-data-key-pair-without-plaintext", "--key-id", wrapping_key.arn, "--key-pair-spec",
                   "ECC_NIST_EDWARDS25519"])
    assert res.returncode == 0, res.stderr
    assert "PrivateKeyPlaintext" not in res.json
    private = kms.decrypt(CiphertextBlob=unb64(res.json["PrivateKeyCiphertextBlob"]))["Plaintext"]
    check_key_pair("ECC_NIST_EDWARDS25519", unb64(res.json["PublicKey"]), private)
