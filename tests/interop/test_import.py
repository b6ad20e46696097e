"""Imported key material (keys of origin EXTERNAL) through boto3 and the AWS CLI:
GetParametersForImport for every wrapping key spec and algorithm, ImportKeyMaterial with material
wrapped by Python `cryptography` exactly as the AWS documentation tells users to (RSAES_OAEP_*:
RSA-OAEP of the material with MGF1 of the same hash and no label; RSA_AES_KEY_WRAP_*: RSA-OAEP of a
random 32-byte AES key, then the material wrapped with AES key wrap with padding, RFC 5649),
symmetric, HMAC, ECC and RSA keys, expiry and reimport, several materials and on-demand rotation,
DeleteImportedKeyMaterial, token and ciphertext errors, the ValidTo rules, and a restart.

Tests that move the service clock (`POST /trent-dev/advance-clock`) use a dev server of their own,
so that the shared one keeps real time. ValidTo values are computed from the server's clock
(ParametersValidTo - 24 h), never from this machine's."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import time
from types import SimpleNamespace

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from kmsutil import HEX64_RE, TrentServer, expect_error, make_kms_client, unb64

DAY = 86_400
WRAPPING_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
OAEP_ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
KWP_ALGORITHMS = ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"]
ALGORITHMS = OAEP_ALGORITHMS + KWP_ALGORITHMS

# trent's own messages (crates/trent-kms/src/ops/import.rs); AWS publishes only the first.
VALID_TO_REQUIRED = "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
VALID_TO_FORBIDDEN = "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
VALID_TO_PAST = "The validTo date must be in the future."
VALID_TO_TOO_FAR = "The validTo date must be no more than 365 days from now."
INVALID_TOKEN = "The import token is invalid or belongs to another KMS key."
EXPIRED_TOKEN = (
    "The import token has expired. Use GetParametersForImport to get a new import token and public key."
)
NOT_PREVIOUS = "The key material is not the key material previously imported into this KMS key."
ALREADY_ASSOCIATED = (
    "This key material is already associated with the KMS key. Import it with ImportType EXISTING_KEY_MATERIAL."
)
ID_MISMATCH = "The key material does not match the specified KeyMaterialId."
NO_ID_WITH_NEW = "You cannot specify a key material ID with ImportType set to NEW_KEY_MATERIAL."
ASYMMETRIC_NO_NEW = "The key material of an asymmetric or HMAC key cannot be changed after the first import."
PKCS1_REFUSED = (
    "WrappingAlgorithm RSAES_PKCS1_V1_5 is not supported. Use RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, "
    "RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
)
SM2PKE_REFUSED = PKCS1_REFUSED.replace("RSAES_PKCS1_V1_5", "SM2PKE", 1)
SM2_REFUSED = "WrappingKeySpec SM2 is only available in the China Regions."


def invalid_material(spec: str) -> str:
    return f"The key material is not valid for a key of spec {spec}."


def oaep_refused_for_rsa(algorithm: str, spec: str) -> str:
    return (
        f"WrappingAlgorithm {algorithm} cannot wrap key material of key spec {spec}. "
        "Use RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
    )


# ------------------------------------------------------------------------------ wrapping, as AWS documents it


def _oaep(algorithm: str) -> padding.OAEP:
    h = hashes.SHA256 if algorithm.endswith("SHA_256") else hashes.SHA1
    return padding.OAEP(mgf=padding.MGF1(algorithm=h()), algorithm=h(), label=None)


def wrap(public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """EncryptedKeyMaterial for `material` under the PublicKey of GetParametersForImport."""
    public = serialization.load_der_public_key(public_key_der)
    if algorithm in OAEP_ALGORITHMS:
        return public.encrypt(material, _oaep(algorithm))
    assert algorithm in KWP_ALGORITHMS, algorithm
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, _oaep(algorithm)) + aes_key_wrap_with_padding(aes_key, material)


def pkcs8_der(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def server_now(params: dict) -> dt.datetime:
    """The server's clock when it answered GetParametersForImport (its tokens live 24 h)."""
    return params["ParametersValidTo"] - dt.timedelta(days=1)


def get_params(kms, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256", spec: str = "RSA_2048") -> dict:
    return kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)


def import_material(
    kms,
    key_id: str,
    material: bytes,
    algorithm: str = "RSAES_OAEP_SHA_256",
    spec: str = "RSA_2048",
    valid_days: float | None = None,
    **kwargs,
) -> dict:
    """GetParametersForImport, wrap, ImportKeyMaterial. Without `valid_days` the material does not
    expire; with it, ValidTo is that many days after the server's now."""
    params = get_params(kms, key_id, algorithm, spec)
    if valid_days is None:
        kwargs.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    else:
        kwargs["ValidTo"] = server_now(params) + dt.timedelta(days=valid_days)
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material),
        **kwargs,
    )


def external_key(kms, **kwargs) -> dict:
    md = kms.create_key(Origin="EXTERNAL", Description="imported", **kwargs)["KeyMetadata"]
    assert md["Origin"] == "EXTERNAL" and md["KeyState"] == "PendingImport"
    return md


def rotations(kms, key_id: str) -> list[dict]:
    return kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]


def state_of(kms, key_id: str) -> str:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]


# ------------------------------------------------------------------------------ servers of our own


def start_dev(tmp_path, *extra: str, name: str = "log") -> TrentServer:
    return TrentServer(["serve", "--dev", "--listen", "127.0.0.1:0", *extra], tmp_path / name).start()


@pytest.fixture
def clocked(tmp_path):
    """A dev server of this test's own whose clock the test moves: .kms, .advance(seconds)."""
    server = start_dev(tmp_path, "--in-memory")

    def advance(seconds: int) -> None:
        r = requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": seconds}, timeout=30)
        assert r.status_code == 200, r.text

    yield SimpleNamespace(kms=make_kms_client(server.endpoint), advance=advance, server=server)
    server.stop()
    assert not server.died, server.stderr_tail()


# ------------------------------------------------------------------------------ EXTERNAL keys and GetParametersForImport


def test_external_key_waits_for_its_material(kms):
    md = external_key(kms)
    assert md["Enabled"] is False
    for absent in ("ExpirationModel", "ValidTo", "CurrentKeyMaterialId"):
        assert absent not in md, (absent, md.get(absent))
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert "ExpirationModel" not in described and "ValidTo" not in described
    expect_error(lambda: kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x"), "KMSInvalidStateException",
                 f"{md['Arn']} is pending import.")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("spec", WRAPPING_SPECS)
def test_parameters_for_each_wrapping_key_spec_and_algorithm(kms, spec, algorithm):
    md = external_key(kms)
    before = dt.datetime.now(dt.timezone.utc)
    params = get_params(kms, md["KeyId"], algorithm, spec)
    after = dt.datetime.now(dt.timezone.utc)
    assert params["KeyId"] == md["Arn"]
    assert params["ImportToken"]
    public = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == int(spec[4:])
    assert public.public_numbers().e == 65537
    valid_to = params["ParametersValidTo"]
    assert before + dt.timedelta(hours=24, seconds=-5) <= valid_to <= after + dt.timedelta(hours=24, seconds=5)
    # Each call gives a fresh wrapping key.
    again = get_params(kms, md["KeyId"], algorithm, spec)
    assert again["PublicKey"] != params["PublicKey"]
    assert again["ImportToken"] != params["ImportToken"]


def test_deprecated_and_china_only_wrapping_parameters_are_refused(kms):
    kid = external_key(kms)["KeyId"]
    expect_error(lambda: get_params(kms, kid, "RSAES_PKCS1_V1_5", "RSA_2048"), "ValidationException", PKCS1_REFUSED)
    expect_error(lambda: get_params(kms, kid, "SM2PKE", "SM2"), "ValidationException", SM2PKE_REFUSED)
    expect_error(lambda: get_params(kms, kid, "RSAES_OAEP_SHA_256", "SM2"), "ValidationException", SM2_REFUSED)


def test_parameters_for_a_key_that_is_not_external(kms, key):
    expect_error(lambda: get_params(kms, key["KeyId"]), "UnsupportedOperationException",
                 f"{key['Arn']} origin is AWS_KMS which is not valid for this operation.")


def test_parameters_for_a_key_pending_deletion(kms):
    md = external_key(kms)
    kms.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    expect_error(lambda: get_params(kms, md["KeyId"]), "KMSInvalidStateException", f"{md['Arn']} is pending deletion.")


# ------------------------------------------------------------------------------ symmetric keys


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_symmetric_import_with_each_algorithm(kms, algorithm):
    md = external_key(kms)
    material = os.urandom(32)
    resp = import_material(kms, md["KeyId"], material, algorithm, "RSA_3072")
    assert resp["KeyId"] == md["Arn"]
    mid = resp["KeyMaterialId"]
    assert HEX64_RE.match(mid), mid
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled" and described["Enabled"] is True
    assert described["CurrentKeyMaterialId"] == mid
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in described
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"brought my own key", EncryptionContext={"a": "b"})
    out = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert out["Plaintext"] == b"brought my own key"
    assert out["KeyId"] == md["Arn"]
    assert out["KeyMaterialId"] == mid
    # The first material is listed (ALL_KEY_MATERIAL) as CURRENT, imported, without a rotation.
    [entry] = rotations(kms, md["KeyId"])
    assert entry["KeyMaterialId"] == mid
    assert entry["KeyMaterialState"] == "CURRENT"
    assert entry["ImportState"] == "IMPORTED"
    assert entry["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "RotationDate" not in entry and "RotationType" not in entry


def test_material_that_expires_shows_valid_to(kms):
    md = external_key(kms)
    params = get_params(kms, md["KeyId"])
    valid_to = (server_now(params) + dt.timedelta(days=30)).replace(microsecond=123000)
    kms.import_key_material(KeyId=md["KeyId"], ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
                            ValidTo=valid_to, ExpirationModel="KEY_MATERIAL_EXPIRES")
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert described["ValidTo"] == valid_to
    [entry] = rotations(kms, md["KeyId"])
    assert entry["ValidTo"] == valid_to and entry["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"


def test_the_same_material_gets_the_same_id_only_in_the_same_key(kms):
    material = os.urandom(32)
    a, b = external_key(kms), external_key(kms)
    id_a = import_material(kms, a["KeyId"], material)["KeyMaterialId"]
    id_b = import_material(kms, b["KeyId"], material, "RSA_AES_KEY_WRAP_SHA_256")["KeyMaterialId"]
    assert id_a != id_b
    # Ciphertexts of one key do not decrypt under the other, same material or not.
    blob = kms.encrypt(KeyId=a["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId=b["KeyId"]), "IncorrectKeyException")


def test_expiry_then_reimport_of_the_same_material(clocked):
    kms = clocked.kms
    md = external_key(kms)
    material = os.urandom(32)
    mid = import_material(kms, md["KeyId"], material, valid_days=2)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"kept")["CiphertextBlob"]

    clocked.advance(1 * DAY)
    assert state_of(kms, md["KeyId"]) == "Enabled"
    clocked.advance(2 * DAY)
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "PendingImport" and described["Enabled"] is False
    assert "ValidTo" not in described
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "KMSInvalidStateException", f"{md['Arn']} is pending import.")
    expect_error(lambda: kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x"), "KMSInvalidStateException",
                 f"{md['Arn']} is pending import.")
    [entry] = rotations(kms, md["KeyId"])
    assert entry["KeyMaterialId"] == mid and entry["ImportState"] == "PENDING_IMPORT"

    # Different material is refused: the key waits for the material it had.
    expect_error(lambda: import_material(kms, md["KeyId"], os.urandom(32)), "IncorrectKeyMaterialException", NOT_PREVIOUS)
    expect_error(lambda: import_material(kms, md["KeyId"], os.urandom(32), ImportType="EXISTING_KEY_MATERIAL"),
                 "IncorrectKeyMaterialException", NOT_PREVIOUS)
    assert state_of(kms, md["KeyId"]) == "PendingImport"

    # The same material, with a new token and another algorithm, brings the key back.
    again = import_material(kms, md["KeyId"], material, "RSA_AES_KEY_WRAP_SHA_1", "RSA_4096", valid_days=10,
                            ImportType="EXISTING_KEY_MATERIAL")
    assert again["KeyMaterialId"] == mid
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["CurrentKeyMaterialId"] == mid
    assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    out = kms.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"kept" and out["KeyMaterialId"] == mid


def test_delete_imported_material_and_reimport(kms):
    md = external_key(kms)
    material = os.urandom(32)
    mid = import_material(kms, md["KeyId"], material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"kept")["CiphertextBlob"]

    resp = kms.delete_imported_key_material(KeyId=md["KeyId"])
    assert resp["KeyId"] == md["Arn"]
    assert resp["KeyMaterialId"] == mid
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "PendingImport" and described["Enabled"] is False
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "KMSInvalidStateException", f"{md['Arn']} is pending import.")

    # Reimport, naming the material by its id.
    again = import_material(kms, md["KeyId"], material, "RSAES_OAEP_SHA_1", KeyMaterialId=mid)
    assert again["KeyMaterialId"] == mid
    assert state_of(kms, md["KeyId"]) == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_delete_names_material_that_is_not_the_keys(kms):
    md = external_key(kms)
    import_material(kms, md["KeyId"], os.urandom(32))
    other = "0" * 64
    expect_error(lambda: kms.delete_imported_key_material(KeyId=md["KeyId"], KeyMaterialId=other),
                 "NotFoundException", f"Key material {other} is not associated with {md['Arn']}.")
    assert state_of(kms, md["KeyId"]) == "Enabled"


def test_reimport_with_a_key_material_id_that_does_not_match(kms):
    md = external_key(kms)
    material = os.urandom(32)
    first = import_material(kms, md["KeyId"], material)["KeyMaterialId"]
    second = import_material(kms, md["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    expect_error(lambda: import_material(kms, md["KeyId"], material, KeyMaterialId=second),
                 "IncorrectKeyMaterialException", ID_MISMATCH)
    # Matching: accepted (a reimport of material that is present is allowed and changes nothing).
    assert import_material(kms, md["KeyId"], material, KeyMaterialId=first)["KeyMaterialId"] == first


def test_delete_on_a_key_that_is_not_external(kms, key):
    expect_error(lambda: kms.delete_imported_key_material(KeyId=key["KeyId"]), "UnsupportedOperationException",
                 f"{key['Arn']} origin is AWS_KMS which is not valid for this operation.")


# ------------------------------------------------------------------------------ several materials


def test_new_material_waits_for_an_on_demand_rotation(kms):
    md = external_key(kms)
    kid = md["KeyId"]
    first = import_material(kms, kid, os.urandom(32))["KeyMaterialId"]
    old_blob = kms.encrypt(KeyId=kid, Plaintext=b"old")["CiphertextBlob"]

    second_material = os.urandom(32)
    second = import_material(kms, kid, second_material, "RSA_AES_KEY_WRAP_SHA_256", ImportType="NEW_KEY_MATERIAL",
                             KeyMaterialDescription="second material")["KeyMaterialId"]
    assert second != first
    assert state_of(kms, kid) == "Enabled"
    listed = {e["KeyMaterialId"]: e for e in rotations(kms, kid)}
    assert listed[first]["KeyMaterialState"] == "CURRENT"
    assert listed[second]["KeyMaterialState"] == "PENDING_ROTATION"
    assert listed[second]["KeyMaterialDescription"] == "second material"
    assert "RotationDate" not in listed[second]
    # Not yet in use.
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] == first
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"])["KeyMaterialId"] == first
    # ROTATIONS_ONLY (the default) lists neither the first material nor the pending one.
    assert kms.list_key_rotations(KeyId=kid)["Rotations"] == []

    # Importing the pending material again as NEW is refused; as EXISTING it is accepted.
    expect_error(lambda: import_material(kms, kid, second_material, ImportType="NEW_KEY_MATERIAL"),
                 "IncorrectKeyMaterialException", ALREADY_ASSOCIATED)

    assert kms.rotate_key_on_demand(KeyId=kid)["KeyId"] == md["Arn"]
    deadline = time.monotonic() + 15
    while kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] != second:
        assert time.monotonic() < deadline, "the on-demand rotation did not happen"
        time.sleep(0.1)
    listed = {e["KeyMaterialId"]: e for e in rotations(kms, kid)}
    assert listed[first]["KeyMaterialState"] == "NON_CURRENT"
    assert listed[second]["KeyMaterialState"] == "CURRENT"
    assert listed[second]["RotationType"] == "ON_DEMAND"
    assert "RotationDate" in listed[second]
    assert [e["KeyMaterialId"] for e in kms.list_key_rotations(KeyId=kid)["Rotations"]] == [second]

    new_blob = kms.encrypt(KeyId=kid, Plaintext=b"new")["CiphertextBlob"]
    out = kms.decrypt(CiphertextBlob=new_blob)
    assert out["Plaintext"] == b"new" and out["KeyMaterialId"] == second
    out = kms.decrypt(CiphertextBlob=old_blob)
    assert out["Plaintext"] == b"old" and out["KeyMaterialId"] == first

    # Deleting the old (non-current) material makes the key unusable until it is back.
    assert kms.delete_imported_key_material(KeyId=kid, KeyMaterialId=first)["KeyMaterialId"] == first
    assert state_of(kms, kid) == "PendingImport"
    expect_error(lambda: kms.decrypt(CiphertextBlob=new_blob), "KMSInvalidStateException",
                 f"{md['Arn']} is pending import.")


def test_one_new_material_pending_rotation_at_a_time(kms):
    md = external_key(kms)
    kid, arn = md["KeyId"], md["Arn"]
    import_material(kms, kid, os.urandom(32))
    # With nothing pending, on-demand rotation has nothing to rotate to (AWS's wording, recorded).
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=kid), "KMSInvalidStateException",
                 f"No available key material pending rotation for the key: {arn}.")
    second, third = os.urandom(32), os.urandom(32)
    # The id each would get: imported alone, then deleted (a pending material goes entirely).
    third_id = import_material(kms, kid, third, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    kms.delete_imported_key_material(KeyId=kid, KeyMaterialId=third_id)
    second_id = import_material(kms, kid, second, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    # Another NEW_KEY_MATERIAL while one is pending rotation: refused as AWS refuses it.
    expect_error(
        lambda: import_material(kms, kid, third, ImportType="NEW_KEY_MATERIAL"),
        "KMSInvalidStateException",
        f"New key material (id: {third_id}) cannot be imported into KMS key {arn}, because another key material "
        f"(id: {second_id}) is pending rotation.",
    )
    pending = [e["KeyMaterialId"] for e in rotations(kms, kid) if e["KeyMaterialState"] == "PENDING_ROTATION"]
    assert pending == [second_id]


def test_new_key_material_with_a_key_material_id(kms):
    kid = external_key(kms)["KeyId"]
    first = import_material(kms, kid, os.urandom(32))["KeyMaterialId"]
    expect_error(lambda: import_material(kms, kid, os.urandom(32), ImportType="NEW_KEY_MATERIAL", KeyMaterialId=first),
                 "ValidationException", NO_ID_WITH_NEW)


def test_reimporting_the_current_material_as_new(kms):
    kid = external_key(kms)["KeyId"]
    material = os.urandom(32)
    import_material(kms, kid, material)
    expect_error(lambda: import_material(kms, kid, material, ImportType="NEW_KEY_MATERIAL"),
                 "IncorrectKeyMaterialException", ALREADY_ASSOCIATED)


def test_deleting_the_pending_material_leaves_the_key_enabled(kms):
    kid = external_key(kms)["KeyId"]
    first = import_material(kms, kid, os.urandom(32))["KeyMaterialId"]
    pending_material = os.urandom(32)
    pending = import_material(kms, kid, pending_material, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    resp = kms.delete_imported_key_material(KeyId=kid, KeyMaterialId=pending)
    assert resp["KeyMaterialId"] == pending
    assert state_of(kms, kid) == "Enabled"
    assert [e["KeyMaterialId"] for e in rotations(kms, kid)] == [first]
    # Not permanently associated: gone entirely, so it can be imported as NEW again.
    assert import_material(kms, kid, pending_material, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"] == pending
    assert {e["KeyMaterialId"]: e["KeyMaterialState"] for e in rotations(kms, kid)} == {
        first: "CURRENT", pending: "PENDING_ROTATION"}


# ------------------------------------------------------------------------------ HMAC and asymmetric keys


HMAC_LENGTHS = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}


@pytest.mark.parametrize("spec", list(HMAC_LENGTHS))
def test_hmac_key(kms, spec):
    md = external_key(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
    material = os.urandom(HMAC_LENGTHS[spec])
    resp = import_material(kms, md["KeyId"], material, "RSAES_OAEP_SHA_256")
    assert resp["KeyId"] == md["Arn"]
    assert state_of(kms, md["KeyId"]) == "Enabled"
    algorithm = "HMAC_SHA_" + spec[5:]
    message = b"message to authenticate"
    mac = kms.generate_mac(KeyId=md["KeyId"], Message=message, MacAlgorithm=algorithm)["Mac"]
    assert mac == hmac.new(material, message, getattr(hashlib, "sha" + spec[5:])).digest()
    assert kms.verify_mac(KeyId=md["KeyId"], Message=message, MacAlgorithm=algorithm, Mac=mac)["MacValid"] is True


def test_hmac_material_of_the_wrong_length(kms):
    kid = external_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
    for size in (16, 31, 33, 64):
        expect_error(lambda: import_material(kms, kid, os.urandom(size)), "IncorrectKeyMaterialException",
                     invalid_material("HMAC_256"))
    assert state_of(kms, kid) == "PendingImport"


def test_hmac_material_cannot_change(kms):
    kid = external_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
    material = os.urandom(32)
    import_material(kms, kid, material)
    expect_error(lambda: import_material(kms, kid, os.urandom(32)), "IncorrectKeyMaterialException", NOT_PREVIOUS)
    expect_error(lambda: import_material(kms, kid, os.urandom(32), ImportType="NEW_KEY_MATERIAL"),
                 "IncorrectKeyMaterialException", ASYMMETRIC_NO_NEW)
    # The same material, after a deletion, brings the key back.
    kms.delete_imported_key_material(KeyId=kid)
    assert state_of(kms, kid) == "PendingImport"
    import_material(kms, kid, material)
    mac = kms.generate_mac(KeyId=kid, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(material, b"m", hashlib.sha256).digest()


@pytest.mark.parametrize("algorithm", ["RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"])
def test_ecc_signing_key(kms, algorithm):
    md = external_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    private = ec.generate_private_key(ec.SECP256R1())
    import_material(kms, md["KeyId"], pkcs8_der(private), algorithm)
    assert state_of(kms, md["KeyId"]) == "Enabled"
    assert kms.get_public_key(KeyId=md["KeyId"])["PublicKey"] == spki_der(private.public_key())
    message = b"signed by imported material"
    sig = kms.sign(KeyId=md["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(sig, message, ec.ECDSA(hashes.SHA256()))
    local = private.sign(message, ec.ECDSA(hashes.SHA256()))
    assert kms.verify(KeyId=md["KeyId"], Message=message, Signature=local,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True


def test_ecc_key_material_must_match_the_curve(kms):
    kid = external_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyId"]
    p384 = pkcs8_der(ec.generate_private_key(ec.SECP384R1()))
    expect_error(lambda: import_material(kms, kid, p384, "RSA_AES_KEY_WRAP_SHA_256"), "IncorrectKeyMaterialException",
                 invalid_material("ECC_NIST_P256"))
    expect_error(lambda: import_material(kms, kid, os.urandom(138), "RSA_AES_KEY_WRAP_SHA_256"),
                 "IncorrectKeyMaterialException", invalid_material("ECC_NIST_P256"))
    assert state_of(kms, kid) == "PendingImport"


def test_rsa_signing_key(kms):
    md = external_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    for algorithm in OAEP_ALGORITHMS:
        expect_error(lambda: get_params(kms, md["KeyId"], algorithm), "ValidationException",
                     oaep_refused_for_rsa(algorithm, "RSA_2048"))
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import_material(kms, md["KeyId"], pkcs8_der(private), "RSA_AES_KEY_WRAP_SHA_1")
    assert state_of(kms, md["KeyId"]) == "Enabled"
    assert kms.get_public_key(KeyId=md["KeyId"])["PublicKey"] == spki_der(private.public_key())
    message = b"signed by an imported RSA key"
    sig = kms.sign(KeyId=md["KeyId"], Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    private.public_key().verify(
        sig, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    sig = kms.sign(KeyId=md["KeyId"], Message=message, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    private.public_key().verify(sig, message, padding.PKCS1v15(), hashes.SHA256())


def test_rsa_encryption_key(kms):
    md = external_key(kms, KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    import_material(kms, md["KeyId"], pkcs8_der(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")
    assert kms.get_public_key(KeyId=md["KeyId"])["PublicKey"] == spki_der(private.public_key())
    blob = private.public_key().encrypt(b"for the imported key", _oaep("RSAES_OAEP_SHA_256"))
    out = kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"for the imported key"


def test_rsa_key_material_must_have_the_keys_size(kms):
    kid = external_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyId"]
    other = pkcs8_der(rsa.generate_private_key(public_exponent=65537, key_size=3072))
    expect_error(lambda: import_material(kms, kid, other, "RSA_AES_KEY_WRAP_SHA_256"), "IncorrectKeyMaterialException",
                 invalid_material("RSA_2048"))


@pytest.mark.parametrize("size", [16, 24, 31, 33, 64])
def test_symmetric_material_of_the_wrong_size(kms, size):
    kid = external_key(kms)["KeyId"]
    expect_error(lambda: import_material(kms, kid, os.urandom(size)), "IncorrectKeyMaterialException",
                 invalid_material("SYMMETRIC_DEFAULT"))
    assert state_of(kms, kid) == "PendingImport"


# ------------------------------------------------------------------------------ tokens and ciphertexts


def _import_with(kms, kid, params, encrypted, **kw):
    kw.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(KeyId=kid, ImportToken=params["ImportToken"], EncryptedKeyMaterial=encrypted, **kw)


def test_token_of_another_key(kms):
    a, b = external_key(kms)["KeyId"], external_key(kms)["KeyId"]
    params = get_params(kms, a)
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    expect_error(lambda: _import_with(kms, b, params, encrypted), "InvalidImportTokenException", INVALID_TOKEN)
    assert state_of(kms, b) == "PendingImport"
    # The token is still good for its own key.
    _import_with(kms, a, params, encrypted)
    assert state_of(kms, a) == "Enabled"


def test_a_token_can_be_used_more_than_once(kms):
    kid = external_key(kms)["KeyId"]
    material = os.urandom(32)
    params = get_params(kms, kid, "RSA_AES_KEY_WRAP_SHA_256")
    first = _import_with(kms, kid, params, wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", material))
    second = _import_with(kms, kid, params, wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", material))
    assert first["KeyMaterialId"] == second["KeyMaterialId"]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_tampered_token(kms, where):
    kid = external_key(kms)["KeyId"]
    params = get_params(kms, kid)
    token = bytearray(params["ImportToken"])
    token[{"start": 0, "middle": len(token) // 2, "end": -1}[where]] ^= 0x01
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    expect_error(lambda: _import_with(kms, kid, {"ImportToken": bytes(token)}, encrypted),
                 "InvalidImportTokenException", INVALID_TOKEN)
    expect_error(lambda: _import_with(kms, kid, {"ImportToken": os.urandom(len(token))}, encrypted),
                 "InvalidImportTokenException", INVALID_TOKEN)
    assert state_of(kms, kid) == "PendingImport"


def test_expired_token(clocked):
    kms = clocked.kms
    kid = external_key(kms)["KeyId"]
    params = get_params(kms, kid)
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    clocked.advance(25 * 3600)
    expect_error(lambda: _import_with(kms, kid, params, encrypted), "ExpiredImportTokenException", EXPIRED_TOKEN)
    assert state_of(kms, kid) == "PendingImport"


def test_token_just_before_its_expiry(clocked):
    kms = clocked.kms
    kid = external_key(kms)["KeyId"]
    params = get_params(kms, kid)
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    clocked.advance(24 * 3600 - 60)
    _import_with(kms, kid, params, encrypted)
    assert state_of(kms, kid) == "Enabled"


TAMPER_CASES = [(a, "rsa") for a in ALGORITHMS] + [(a, "kwp") for a in KWP_ALGORITHMS]


@pytest.mark.parametrize(("algorithm", "where"), TAMPER_CASES, ids=[f"{a}-{w}" for a, w in TAMPER_CASES])
def test_tampered_encrypted_key_material(kms, algorithm, where):
    """A flipped bit in the RSA part, or in the AES key-wrap part of RSA_AES_KEY_WRAP_*."""
    kid = external_key(kms)["KeyId"]
    params = get_params(kms, kid, algorithm)
    encrypted = bytearray(wrap(params["PublicKey"], algorithm, os.urandom(32)))
    encrypted[10 if where == "rsa" else -3] ^= 0x80
    resp = expect_error(lambda: _import_with(kms, kid, params, bytes(encrypted)), "InvalidCiphertextException")
    assert resp["Error"].get("Message", "") == ""
    # Truncated, or with bytes added.
    for bad in (bytes(encrypted[:-8]), bytes(encrypted) + b"\0" * 8, b"\x01"):
        expect_error(lambda: _import_with(kms, kid, params, bad), "InvalidCiphertextException")
    assert state_of(kms, kid) == "PendingImport"


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"])
def test_material_wrapped_under_another_public_key(kms, algorithm):
    kid = external_key(kms)["KeyId"]
    mine = get_params(kms, kid, algorithm)
    other = get_params(kms, kid, algorithm)
    encrypted = wrap(other["PublicKey"], algorithm, os.urandom(32))
    expect_error(lambda: _import_with(kms, kid, mine, encrypted), "InvalidCiphertextException")
    assert state_of(kms, kid) == "PendingImport"


def test_material_wrapped_with_the_other_hash(kms):
    kid = external_key(kms)["KeyId"]
    params = get_params(kms, kid, "RSAES_OAEP_SHA_256")
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_1", os.urandom(32))
    expect_error(lambda: _import_with(kms, kid, params, encrypted), "InvalidCiphertextException")


# ------------------------------------------------------------------------------ ValidTo rules


def test_valid_to_rules(kms):
    kid = external_key(kms)["KeyId"]
    params = get_params(kms, kid)
    now = server_now(params)
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))

    def attempt(**kw):
        return kms.import_key_material(KeyId=kid, ImportToken=params["ImportToken"],
                                       EncryptedKeyMaterial=encrypted, **kw)

    # KEY_MATERIAL_EXPIRES is the default model.
    expect_error(lambda: attempt(), "ValidationException", VALID_TO_REQUIRED)
    expect_error(lambda: attempt(ExpirationModel="KEY_MATERIAL_EXPIRES"), "ValidationException", VALID_TO_REQUIRED)
    expect_error(lambda: attempt(ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", ValidTo=now + dt.timedelta(days=1)),
                 "ValidationException", VALID_TO_FORBIDDEN)
    expect_error(lambda: attempt(ValidTo=now - dt.timedelta(minutes=5)), "ValidationException", VALID_TO_PAST)
    expect_error(lambda: attempt(ValidTo=now + dt.timedelta(days=366)), "ValidationException", VALID_TO_TOO_FAR)
    assert state_of(kms, kid) == "PendingImport"
    # 365 days less a minute is accepted.
    valid_to = (now + dt.timedelta(days=365, minutes=-1)).replace(microsecond=0)
    attempt(ValidTo=valid_to)
    described = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["ValidTo"] == valid_to


def test_reimport_may_change_the_expiration_model(kms):
    kid = external_key(kms)["KeyId"]
    material = os.urandom(32)
    import_material(kms, kid, material, valid_days=30)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    import_material(kms, kid, material)
    described = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in described


# ------------------------------------------------------------------------------ the AWS CLI


def cli_time(value) -> dt.datetime:
    """A timestamp as the CLI prints it: epoch seconds (CLI v1's default) or ISO 8601."""
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"])
def test_import_through_the_aws_cli(kms, aws_cli, tmp_path, algorithm):
    md = external_key(kms)
    rc, out, err = aws_cli(["get-parameters-for-import", "--key-id", md["KeyId"], "--wrapping-algorithm", algorithm,
                            "--wrapping-key-spec", "RSA_3072"])
    assert rc == 0, err
    assert out["KeyId"] == md["Arn"]
    public = unb64(out["PublicKey"])
    assert serialization.load_der_public_key(public).key_size == 3072
    (tmp_path / "token.bin").write_bytes(unb64(out["ImportToken"]))
    material = os.urandom(32)
    (tmp_path / "material.bin").write_bytes(wrap(public, algorithm, material))
    valid_to = cli_time(out["ParametersValidTo"]) - dt.timedelta(days=1)
    valid_to = (valid_to + dt.timedelta(days=90)).replace(microsecond=0)
    rc, out, err = aws_cli(["import-key-material", "--key-id", md["KeyId"],
                            "--import-token", f"fileb://{tmp_path / 'token.bin'}",
                            "--encrypted-key-material", f"fileb://{tmp_path / 'material.bin'}",
                            "--expiration-model", "KEY_MATERIAL_EXPIRES",
                            "--valid-to", valid_to.strftime("%Y-%m-%dT%H:%M:%SZ")])
    assert rc == 0, err
    assert out["KeyId"] == md["Arn"]
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert out["KeyMaterialId"] == described["CurrentKeyMaterialId"]
    assert described["ValidTo"] == valid_to
    # The material is the one wrapped: the same id on a reimport through boto3.
    assert import_material(kms, md["KeyId"], material)["KeyMaterialId"] == out["KeyMaterialId"]

    # Errors as the CLI shows them.
    res = aws_cli(["import-key-material", "--key-id", external_key(kms)["KeyId"],
                   "--import-token", f"fileb://{tmp_path / 'token.bin'}",
                   "--encrypted-key-material", f"fileb://{tmp_path / 'material.bin'}",
                   "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE"])
    assert res.returncode != 0
    assert (res.error_code, res.error_message) == ("InvalidImportTokenException", INVALID_TOKEN), res.stderr
    res = aws_cli(["import-key-material", "--key-id", md["KeyId"],
                   "--import-token", f"fileb://{tmp_path / 'token.bin'}",
                   "--encrypted-key-material", f"fileb://{tmp_path / 'material.bin'}"])
    assert res.returncode != 0
    assert (res.error_code, res.error_message) == ("ValidationException", VALID_TO_REQUIRED), res.stderr


# ------------------------------------------------------------------------------ persistence


def test_imported_material_survives_a_restart(tmp_path):
    args = ("--data-dir", str(tmp_path / "data"))
    server = start_dev(tmp_path, *args, name="log1")
    try:
        kms = make_kms_client(server.endpoint)
        sym = external_key(kms)["KeyId"]
        sym_material = os.urandom(32)
        mid = import_material(kms, sym, sym_material, valid_days=100)["KeyMaterialId"]
        blob = kms.encrypt(KeyId=sym, Plaintext=b"across a restart")["CiphertextBlob"]
        mac_key = external_key(kms, KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
        mac_material = os.urandom(48)
        import_material(kms, mac_key, mac_material)
        ecc = external_key(kms, KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyId"]
        private = ec.generate_private_key(ec.SECP384R1())
        import_material(kms, ecc, pkcs8_der(private), "RSA_AES_KEY_WRAP_SHA_256")
        # One key whose material was deleted: still PendingImport after the restart.
        gone = external_key(kms)["KeyId"]
        gone_material = os.urandom(32)
        import_material(kms, gone, gone_material)
        kms.delete_imported_key_material(KeyId=gone)
        before = {k: kms.describe_key(KeyId=k)["KeyMetadata"] for k in (sym, mac_key, ecc, gone)}
    finally:
        server.stop()

    server = start_dev(tmp_path, *args, name="log2")
    try:
        kms = make_kms_client(server.endpoint)
        for k, md in before.items():
            assert kms.describe_key(KeyId=k)["KeyMetadata"] == md
        out = kms.decrypt(CiphertextBlob=blob)
        assert out["Plaintext"] == b"across a restart" and out["KeyMaterialId"] == mid
        mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_384")["Mac"]
        assert mac == hmac.new(mac_material, b"m", hashlib.sha384).digest()
        sig = kms.sign(KeyId=ecc, Message=b"m", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
        private.public_key().verify(sig, b"m", ec.ECDSA(hashes.SHA384()))
        assert state_of(kms, gone) == "PendingImport"
        import_material(kms, gone, gone_material)
        assert state_of(kms, gone) == "Enabled"
    finally:
        server.stop()
    assert not server.died, server.stderr_tail()


# ------------------------------------------------------------------------------ KeyMetadata of deleted and several materials


def test_expiration_model_is_absent_once_the_material_is_deleted(kms):
    """Recorded from real AWS (LocalStack's validated snapshots): DescribeKey shows ExpirationModel
    only while material is imported; after DeleteImportedKeyMaterial it is gone, as before the
    first import."""
    kid = external_key(kms)["KeyId"]
    material = os.urandom(32)
    import_material(kms, kid, material, valid_days=30)
    kms.delete_imported_key_material(KeyId=kid)
    described = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert described["KeyState"] == "PendingImport"
    assert "ValidTo" not in described
    assert "ExpirationModel" not in described, described.get("ExpirationModel")
    import_material(kms, kid, material)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"


def test_valid_to_is_the_earliest_expiry_of_the_keys_materials(kms):
    """KeyMetadata.ValidTo (API reference): "The earliest time at which any imported key material
    permanently associated with this KMS key expires." After a rotation the old material is still
    permanently associated (it decrypts old ciphertexts), so its earlier expiry is the key's."""
    kid = external_key(kms)["KeyId"]
    import_material(kms, kid, os.urandom(32), valid_days=10)
    first_valid_to = kms.describe_key(KeyId=kid)["KeyMetadata"]["ValidTo"]
    second = import_material(kms, kid, os.urandom(32), valid_days=100, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    # Material pending rotation is not permanently associated: the key's ValidTo is unchanged.
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["ValidTo"] == first_valid_to
    kms.rotate_key_on_demand(KeyId=kid)
    deadline = time.monotonic() + 15
    while kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] != second:
        assert time.monotonic() < deadline, "the on-demand rotation did not happen"
        time.sleep(0.1)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["ValidTo"] == first_valid_to
