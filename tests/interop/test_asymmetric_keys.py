"""Asymmetric and HMAC KMS keys through boto3: CreateKey and DescribeKey metadata for every key spec
and usage of docs/key-specs.md, the spec/usage pairs CreateKey refuses, and GetPublicKey for every
asymmetric spec, its DER SubjectPublicKeyInfo loaded with `cryptography` (ML-KEM-512, which
`cryptography` does not know, is read with PyCryptodome's ASN.1 parser)."""

from __future__ import annotations

import uuid

import pytest
from Crypto.Util.asn1 import DerBitString, DerObjectId, DerSequence
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, rsa

from kmsutil import (
    DEV_ACCOUNT,
    REGION,
    UUID_RE,
    TrentServer,
    assert_recent,
    expect_error,
    key_arn,
    make_kms_client,
    not_found_key_message,
)

RSA_ENCRYPTION = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
RSA_SIGNING = [
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
]
ALGORITHM_MEMBERS = (
    "EncryptionAlgorithms",
    "SigningAlgorithms",
    "MacAlgorithms",
    "KeyAgreementAlgorithms",
    "EncapsulationAlgorithms",
)

# (KeySpec, KeyUsage, the KeyMetadata member listing the algorithms, its exact value)
PAIRS = [
    *[(s, "ENCRYPT_DECRYPT", "EncryptionAlgorithms", RSA_ENCRYPTION) for s in ("RSA_2048", "RSA_3072", "RSA_4096")],
    *[(s, "SIGN_VERIFY", "SigningAlgorithms", RSA_SIGNING) for s in ("RSA_2048", "RSA_3072", "RSA_4096")],
    ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_384"]),
    ("ECC_NIST_P521", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_512"]),
    *[(s, "KEY_AGREEMENT", "KeyAgreementAlgorithms", ["ECDH"]) for s in ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521")],
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "SigningAlgorithms", ["ED25519_SHA_512", "ED25519_PH_SHA_512"]),
    *[(f"HMAC_{n}", "GENERATE_VERIFY_MAC", "MacAlgorithms", [f"HMAC_SHA_{n}"]) for n in (224, 256, 384, 512)],
    *[(f"ML_DSA_{n}", "SIGN_VERIFY", "SigningAlgorithms", ["ML_DSA_SHAKE_256"]) for n in (44, 65, 87)],
    *[(f"ML_KEM_{n}", "ENCAPSULATE_DECAPSULATE", "EncapsulationAlgorithms", ["ML_KEM"]) for n in (512, 768, 1024)],
]
ASYMMETRIC_PAIRS = [p for p in PAIRS if not p[0].startswith("HMAC_")]

ALL_SPECS = [
    "SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
    "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512",
    "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024",
]
ALL_USAGES = ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"]
VALID = {("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")} | {(s, u) for s, u, _, _ in PAIRS}
INVALID_PAIRS = [(s, u) for s in ALL_SPECS for u in ALL_USAGES if (s, u) not in VALID]

PAIR_IDS = [f"{s}-{u}" for s, u, _, _ in PAIRS]
ASYMMETRIC_IDS = [f"{s}-{u}" for s, u, _, _ in ASYMMETRIC_PAIRS]

# What GetPublicKey's DER holds, per spec: (cryptography type, detail) or the SPKI OID.
EC_CURVES = {
    "ECC_NIST_P256": ("secp256r1", 256),
    "ECC_NIST_P384": ("secp384r1", 384),
    "ECC_NIST_P521": ("secp521r1", 521),
    "ECC_SECG_P256K1": ("secp256k1", 256),
}
ML_DSA = {  # spec: (cryptography class, OID, raw public key length)
    "ML_DSA_44": (mldsa.MLDSA44PublicKey, "2.16.840.1.101.3.4.3.17", 1312),
    "ML_DSA_65": (mldsa.MLDSA65PublicKey, "2.16.840.1.101.3.4.3.18", 1952),
    "ML_DSA_87": (mldsa.MLDSA87PublicKey, "2.16.840.1.101.3.4.3.19", 2592),
}
ML_KEM = {  # spec: (cryptography class or None, OID, raw encapsulation key length)
    "ML_KEM_512": (None, "2.16.840.1.101.3.4.4.1", 800),
    "ML_KEM_768": (mlkem.MLKEM768PublicKey, "2.16.840.1.101.3.4.4.2", 1184),
    "ML_KEM_1024": (mlkem.MLKEM1024PublicKey, "2.16.840.1.101.3.4.4.3", 1568),
}


def spki_parts(der: bytes) -> tuple[str, list, bytes]:
    """(algorithm OID, the AlgorithmIdentifier's parameters, subjectPublicKey bytes) of a DER SPKI."""
    outer = DerSequence().decode(der, strict=True)
    assert len(outer) == 2, "SubjectPublicKeyInfo is not a SEQUENCE of two"
    alg = DerSequence().decode(outer[0], strict=True)
    oid = DerObjectId().decode(alg[0], strict=True).value
    return oid, list(alg[1:]), DerBitString().decode(outer[1], strict=True).value


@pytest.fixture(scope="module")
def made_keys(kms):
    """Creates each (spec, usage) key once for the module; returns CreateKey's KeyMetadata."""
    cache: dict[tuple[str, str], dict] = {}

    def get(spec: str, usage: str) -> dict:
        if (spec, usage) not in cache:
            cache[(spec, usage)] = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        return cache[(spec, usage)]

    return get


def assert_key_metadata(md: dict, spec: str, usage: str, member: str, algorithms: list[str]) -> None:
    assert UUID_RE.match(md["KeyId"]), md["KeyId"]
    assert md["Arn"] == key_arn(md["KeyId"])
    assert md["AWSAccountId"] == DEV_ACCOUNT
    assert_recent(md["CreationDate"], seconds=3600)
    assert md["Enabled"] is True
    assert md["KeyState"] == "Enabled"
    assert md["Description"] == ""
    assert md["KeyUsage"] == usage
    assert md["Origin"] == "AWS_KMS"
    assert md["KeyManager"] == "CUSTOMER"
    assert md["KeySpec"] == spec
    assert md["CustomerMasterKeySpec"] == spec
    assert md["MultiRegion"] is False
    assert md[member] == algorithms, f"{member}: {md.get(member)!r}"
    for other in ALGORITHM_MEMBERS:
        if other != member:
            assert other not in md, f"{other} present for {spec}/{usage}: {md[other]!r}"
    # As AWS: only symmetric encryption keys show their current key material.
    assert "CurrentKeyMaterialId" not in md, md.get("CurrentKeyMaterialId")
    for absent in ("DeletionDate", "PendingDeletionWindowInDays", "ValidTo", "ExpirationModel", "CustomKeyStoreId",
                   "CloudHsmClusterId", "MultiRegionConfiguration"):
        assert absent not in md, f"{absent} present: {md[absent]!r}"


# -------------------------------------------------------------------------- CreateKey metadata


@pytest.mark.parametrize("spec,usage,member,algorithms", PAIRS, ids=PAIR_IDS)
def test_create_and_describe_every_spec_and_usage(kms, made_keys, spec, usage, member, algorithms):
    md = made_keys(spec, usage)
    assert_key_metadata(md, spec, usage, member, algorithms)
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described == md
    assert kms.describe_key(KeyId=md["Arn"])["KeyMetadata"] == md


def test_symmetric_key_still_lists_symmetric_default(kms):
    md = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    for other in ALGORITHM_MEMBERS[1:]:
        assert other not in md


def test_keys_of_every_spec_are_listed(kms, made_keys):
    ids = {made_keys(s, u)["KeyId"] for s, u in [("ECC_NIST_P256", "SIGN_VERIFY"), ("HMAC_256", "GENERATE_VERIFY_MAC"),
                                                 ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")]}
    listed, marker = set(), None
    while True:
        page = kms.list_keys(Limit=1000, **({"Marker": marker} if marker else {}))
        listed |= {k["KeyId"] for k in page["Keys"]}
        if not page.get("Truncated"):
            break
        marker = page["NextMarker"]
    assert ids <= listed


def test_customer_master_key_spec_is_a_synonym(kms):
    md = kms.create_key(CustomerMasterKeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert_key_metadata(md, "ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"])
    md = kms.create_key(CustomerMasterKeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert_key_metadata(md, "HMAC_384", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_384"])


def test_key_spec_and_customer_master_key_spec_together_are_refused(kms):
    # docs/key-specs.md: both in one request are refused (its wording is not pinned there).
    expect_error(
        lambda: kms.create_key(KeySpec="ECC_NIST_P256", CustomerMasterKeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"),
        "ValidationException",
    )


def test_asymmetric_key_with_description_and_tags(kms):
    md = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT", Description="agreement",
                        Tags=[{"TagKey": "k", "TagValue": "v"}])["KeyMetadata"]
    assert md["Description"] == "agreement"
    assert md["KeyAgreementAlgorithms"] == ["ECDH"]
    assert kms.list_resource_tags(KeyId=md["KeyId"])["Tags"] == [{"TagKey": "k", "TagValue": "v"}]


# ----------------------------------------------------------------------------- CreateKey errors


@pytest.mark.parametrize("spec,usage", INVALID_PAIRS, ids=[f"{s}-{u}" for s, u in INVALID_PAIRS])
def test_create_key_refuses_a_usage_the_spec_lacks(kms, spec, usage):
    expect_error(
        lambda: kms.create_key(KeySpec=spec, KeyUsage=usage),
        "ValidationException",
        f"KeyUsage {usage} is not compatible with KeySpec {spec}",
    )


def test_create_key_refuses_a_usage_the_spec_lacks_with_the_deprecated_member(kms):
    expect_error(
        lambda: kms.create_key(CustomerMasterKeySpec="ECC_SECG_P256K1", KeyUsage="KEY_AGREEMENT"),
        "ValidationException",
        "KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_SECG_P256K1",
    )


@pytest.mark.parametrize("spec", ALL_SPECS[1:])
def test_non_symmetric_spec_needs_a_key_usage(kms, spec):
    expect_error(
        lambda: kms.create_key(KeySpec=spec),
        "ValidationException",
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
    )


@pytest.mark.parametrize("usage", ["SIGN_VERIFY", "ENCRYPT_DECRYPT", "KEY_AGREEMENT"])
def test_sm2_is_refused(kms, usage):
    expect_error(
        lambda: kms.create_key(KeySpec="SM2", KeyUsage=usage),
        "ValidationException",
        "KeySpec SM2 is only available in the China Regions.",
    )


def test_refused_create_key_makes_no_key(kms):
    def all_ids():
        ids, marker = set(), None
        while True:
            page = kms.list_keys(Limit=1000, **({"Marker": marker} if marker else {}))
            ids |= {k["KeyId"] for k in page["Keys"]}
            if not page.get("Truncated"):
                return ids
            marker = page["NextMarker"]

    before = all_ids()
    for call in (
        lambda: kms.create_key(KeySpec="ML_KEM_768", KeyUsage="SIGN_VERIFY"),
        lambda: kms.create_key(KeySpec="RSA_2048"),
        lambda: kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY"),
    ):
        expect_error(call, "ValidationException")
    assert all_ids() == before


# --------------------------------------------------------------------------------- GetPublicKey


def assert_public_key(spec: str, der: bytes) -> None:
    """The DER SPKI of `spec` loads and is the right kind of key, and is the canonical encoding."""
    if spec in ML_KEM:
        cls, oid, size = ML_KEM[spec]
        got_oid, params, raw = spki_parts(der)
        assert got_oid == oid
        assert params == [], "ML-KEM AlgorithmIdentifier must have absent parameters"
        assert len(raw) == size
        if cls is None:
            return  # cryptography 48 has no ML-KEM-512
        pub = serialization.load_der_public_key(der)
        assert isinstance(pub, cls), type(pub)
        assert pub.public_bytes_raw() == raw
    elif spec in ML_DSA:
        cls, oid, size = ML_DSA[spec]
        got_oid, params, raw = spki_parts(der)
        assert got_oid == oid
        assert params == [], "ML-DSA AlgorithmIdentifier must have absent parameters"
        pub = serialization.load_der_public_key(der)
        assert isinstance(pub, cls), type(pub)
        assert len(pub.public_bytes_raw()) == size == len(raw)
    elif spec.startswith("RSA_"):
        pub = serialization.load_der_public_key(der)
        assert isinstance(pub, rsa.RSAPublicKey), type(pub)
        assert pub.key_size == int(spec[4:])
        assert pub.public_numbers().e == 65537
        assert spki_parts(der)[0] == "1.2.840.113549.1.1.1"  # rsaEncryption
    elif spec in EC_CURVES:
        name, bits = EC_CURVES[spec]
        pub = serialization.load_der_public_key(der)
        assert isinstance(pub, ec.EllipticCurvePublicKey), type(pub)
        assert pub.curve.name == name and pub.curve.key_size == bits
        assert spki_parts(der)[0] == "1.2.840.10045.2.1"  # id-ecPublicKey, namedCurve parameters
        # An uncompressed point.
        point = spki_parts(der)[2]
        assert point[0] == 4 and len(point) == 1 + 2 * ((bits + 7) // 8)
    elif spec == "ECC_NIST_EDWARDS25519":
        pub = serialization.load_der_public_key(der)
        assert isinstance(pub, ed25519.Ed25519PublicKey), type(pub)
        assert spki_parts(der)[0] == "1.3.101.112"
        assert len(pub.public_bytes_raw()) == 32
    else:
        raise AssertionError(f"no public key check for {spec}")
    assert pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der


@pytest.mark.parametrize("spec,usage,member,algorithms", ASYMMETRIC_PAIRS, ids=ASYMMETRIC_IDS)
def test_get_public_key(kms, made_keys, spec, usage, member, algorithms):
    md = made_keys(spec, usage)
    resp = kms.get_public_key(KeyId=md["KeyId"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["KeyId"] == md["Arn"]
    assert resp["KeySpec"] == spec
    assert resp["CustomerMasterKeySpec"] == spec
    assert resp["KeyUsage"] == usage
    assert resp[member] == algorithms
    for other in ALGORITHM_MEMBERS:
        if other != member:
            assert other not in resp, f"{other} present: {resp[other]!r}"
    der = resp["PublicKey"]
    assert isinstance(der, bytes)
    assert_public_key(spec, der)
    # The same key every time, and through the ARN too.
    assert kms.get_public_key(KeyId=md["Arn"])["PublicKey"] == der


def test_every_key_has_its_own_public_key(kms, made_keys):
    a = made_keys("ECC_NIST_P256", "SIGN_VERIFY")
    b = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert kms.get_public_key(KeyId=a["KeyId"])["PublicKey"] != kms.get_public_key(KeyId=b["KeyId"])["PublicKey"]
    # The same spec for two usages gives two key pairs as well.
    c = made_keys("ECC_NIST_P256", "KEY_AGREEMENT")
    assert kms.get_public_key(KeyId=a["KeyId"])["PublicKey"] != kms.get_public_key(KeyId=c["KeyId"])["PublicKey"]


def test_get_public_key_through_an_alias(kms, made_keys):
    md = made_keys("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    name = f"alias/pub-{uuid.uuid4().hex[:12]}"
    kms.create_alias(AliasName=name, TargetKeyId=md["KeyId"])
    direct = kms.get_public_key(KeyId=md["KeyId"])
    for ident in (name, f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}"):
        resp = kms.get_public_key(KeyId=ident)
        assert resp["KeyId"] == md["Arn"]
        assert resp["PublicKey"] == direct["PublicKey"]


@pytest.mark.parametrize("spec,usage", [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("HMAC_224", "GENERATE_VERIFY_MAC"),
                                        ("HMAC_512", "GENERATE_VERIFY_MAC")])
def test_get_public_key_of_a_key_without_one(kms, spec, usage):
    md = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    expect_error(
        lambda: kms.get_public_key(KeyId=md["KeyId"]),
        "UnsupportedOperationException",
        f"{md['Arn']} key spec {spec} has no public key.",
    )


def test_get_public_key_of_a_disabled_key(kms):
    md = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.disable_key(KeyId=md["KeyId"])
    expect_error(lambda: kms.get_public_key(KeyId=md["KeyId"]), "DisabledException", f"{md['Arn']} is disabled.")
    kms.enable_key(KeyId=md["KeyId"])
    assert_public_key("ECC_NIST_P256", kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])


def test_get_public_key_of_a_key_pending_deletion(kms):
    md = kms.create_key(KeySpec="ML_DSA_44", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    expect_error(
        lambda: kms.get_public_key(KeyId=md["KeyId"]), "KMSInvalidStateException", f"{md['Arn']} is pending deletion."
    )
    kms.cancel_key_deletion(KeyId=md["KeyId"])


def test_get_public_key_of_an_unknown_key(kms):
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.get_public_key(KeyId=kid), "NotFoundException", not_found_key_message(kid))


# ------------------------------------------------------------------------------ persistence


def test_keys_of_every_kind_survive_a_restart(tmp_path):
    """Private keys are stored (wrapped) with the key: after a restart on the same data directory
    every key has the same public key and still signs, decrypts, MACs, agrees and decapsulates."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    args = ["serve", "--dev", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0"]
    server = TrentServer(args, tmp_path / "log1").start()
    try:
        kms = make_kms_client(server.endpoint)
        made = {
            (spec, usage): kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
            for spec, usage in [("RSA_2048", "ENCRYPT_DECRYPT"), ("ECC_NIST_P256", "SIGN_VERIFY"),
                                ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"), ("ML_DSA_44", "SIGN_VERIFY"),
                                ("ECC_NIST_P384", "KEY_AGREEMENT"), ("HMAC_256", "GENERATE_VERIFY_MAC"),
                                ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")]
        }
        ids = {k: md["KeyId"] for k, md in made.items()}
        publics = {k: kms.get_public_key(KeyId=kid)["PublicKey"] for k, kid in ids.items() if k[0] != "HMAC_256"}
        mac = kms.generate_mac(KeyId=ids[("HMAC_256", "GENERATE_VERIFY_MAC")], Message=b"m",
                               MacAlgorithm="HMAC_SHA_256")["Mac"]
        kem = kms.encapsulate(KeyId=ids[("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")], EncapsulationAlgorithm="ML_KEM")
        peer = ec.generate_private_key(ec.SECP384R1())
        peer_der = peer.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        secret = kms.derive_shared_secret(KeyId=ids[("ECC_NIST_P384", "KEY_AGREEMENT")], KeyAgreementAlgorithm="ECDH",
                                          PublicKey=peer_der)["SharedSecret"]
    finally:
        server.stop()

    server = TrentServer(args, tmp_path / "log2").start()
    try:
        kms = make_kms_client(server.endpoint)
        for k, kid in ids.items():
            assert kms.describe_key(KeyId=kid)["KeyMetadata"] == made[k]
            if k in publics:
                assert kms.get_public_key(KeyId=kid)["PublicKey"] == publics[k], k
        rsa_pub = serialization.load_der_public_key(publics[("RSA_2048", "ENCRYPT_DECRYPT")])
        blob = rsa_pub.encrypt(b"after restart", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                              algorithm=hashes.SHA256(), label=None))
        assert kms.decrypt(KeyId=ids[("RSA_2048", "ENCRYPT_DECRYPT")], CiphertextBlob=blob,
                           EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"after restart"
        sig = kms.sign(KeyId=ids[("ECC_NIST_P256", "SIGN_VERIFY")], Message=b"after restart",
                       SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        serialization.load_der_public_key(publics[("ECC_NIST_P256", "SIGN_VERIFY")]).verify(
            sig, b"after restart", ec.ECDSA(hashes.SHA256()))
        sig = kms.sign(KeyId=ids[("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")], Message=b"after restart",
                       SigningAlgorithm="ED25519_SHA_512")["Signature"]
        serialization.load_der_public_key(publics[("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")]).verify(sig, b"after restart")
        sig = kms.sign(KeyId=ids[("ML_DSA_44", "SIGN_VERIFY")], Message=b"after restart",
                       SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
        serialization.load_der_public_key(publics[("ML_DSA_44", "SIGN_VERIFY")]).verify(sig, b"after restart")
        assert kms.generate_mac(KeyId=ids[("HMAC_256", "GENERATE_VERIFY_MAC")], Message=b"m",
                                MacAlgorithm="HMAC_SHA_256")["Mac"] == mac
        assert kms.decapsulate(KeyId=ids[("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")],
                               SharedSecretCiphertextBlob=kem["SharedSecretCiphertextBlob"],
                               EncapsulationAlgorithm="ML_KEM")["SharedSecret"] == kem["SharedSecret"]
        assert kms.derive_shared_secret(KeyId=ids[("ECC_NIST_P384", "KEY_AGREEMENT")], KeyAgreementAlgorithm="ECDH",
                                        PublicKey=peer_der)["SharedSecret"] == secret
    finally:
        server.stop()
    assert not server.died
