"""One bad row does not take the service down. With the server stopped, one key's wrapped material,
another key's record, a grant and a principal's secret are damaged in the SQLite file; the restarted server serves every
other key, answers KMSInternalException for each use of the damaged key while still describing it,
leaves out what does not parse, names each in its log once, and counts them in its metrics. A wrong
root key still refuses to start."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from kmsutil import TRENT_BIN, clean_env, create_principal, expect_error, make_kms_client, start_nondev


def client(srv):
    return make_kms_client(srv.endpoint, access_key=srv.access_key, secret_key=srv.secret_key)


def metric(srv, line_start: str) -> str:
    text = requests.get(srv.server.admin_endpoint + "/metrics", timeout=10).text
    lines = [l for l in text.splitlines() if l.startswith(line_start)]
    assert len(lines) == 1, f"{line_start}: {lines}"
    return lines[0]


def damage_material(db: sqlite3.Connection, key_id: str) -> None:
    """Flip bytes of a key's wrapped material (inside the GCM ciphertext): it no longer unwraps."""
    (wrapped,) = db.execute("SELECT wrapped FROM materials WHERE key_id = ?", (key_id,)).fetchone()
    flipped = bytes(b ^ 0xFF if 13 <= i < 29 else b for i, b in enumerate(wrapped))
    db.execute("UPDATE materials SET wrapped = ? WHERE key_id = ?", (flipped, key_id))


def test_a_damaged_key_is_unusable_while_every_other_key_serves(tmp_path):
    data = tmp_path / "data"
    srv = start_nondev(data, tmp_path / "first.log")
    kms = client(srv)
    good = kms.create_key(Description="good")["KeyMetadata"]
    damaged = kms.create_key(Description="damaged")["KeyMetadata"]
    garbled = kms.create_key(Description="garbled record")["KeyMetadata"]
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    good_blob = kms.encrypt(KeyId=good["KeyId"], Plaintext=b"good")["CiphertextBlob"]
    damaged_blob = kms.encrypt(KeyId=damaged["KeyId"], Plaintext=b"damaged")["CiphertextBlob"]
    kms.create_alias(AliasName="alias/damaged", TargetKeyId=damaged["KeyId"])
    grant = kms.create_grant(KeyId=good["KeyId"], GranteePrincipal=f"arn:aws:iam::{good['AWSAccountId']}:user/g",
                             Operations=["Decrypt"])
    kept = kms.create_grant(KeyId=good["KeyId"], GranteePrincipal=f"arn:aws:iam::{good['AWSAccountId']}:user/h",
                            Operations=["Encrypt"])
    other_ak, other_sk = create_principal(data, f"arn:aws:iam::{good['AWSAccountId']}:user/other")
    srv.server.stop()

    db = sqlite3.connect(data / "trent.db")
    with db:
        damage_material(db, damaged["KeyId"])
        db.execute("UPDATE keys SET doc = '{\"not a key record' WHERE key_id = ?", (garbled["KeyId"],))
        db.execute("UPDATE grants SET doc = '[' WHERE grant_id = ?", (grant["GrantId"],))
        # And one principal's wrapped secret access key.
        db.execute("UPDATE principals SET wrapped_secret = zeroblob(60) WHERE access_key_id = ?", (other_ak,))
    db.close()

    # The scheduled work runs every second: it must not take the left-out rows for changes made
    # elsewhere and load (and log) them again.
    srv = start_nondev(data, tmp_path / "second.log", ["--deletion-check-secs", "1"])
    kms = client(srv)
    arn = damaged["Arn"]
    unusable = f"{arn} is unusable: its key material cannot be read from the store."
    # Every use of the damaged key, by id, ARN and alias: KMSInternalException (500), no secret.
    for ref in (damaged["KeyId"], arn, "alias/damaged"):
        expect_error(lambda: kms.encrypt(KeyId=ref, Plaintext=b"x"), "KMSInternalException", unusable, status=500)
        expect_error(lambda: kms.generate_data_key(KeyId=ref, KeySpec="AES_256"), "KMSInternalException", unusable,
                     status=500)
    expect_error(lambda: kms.decrypt(CiphertextBlob=damaged_blob), "KMSInternalException", unusable, status=500)
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=good_blob, DestinationKeyId=arn), "KMSInternalException",
                 unusable, status=500)
    expect_error(lambda: kms.encrypt(KeyId=arn, Plaintext=b"x", DryRun=True), "KMSInternalException", unusable,
                 status=500)
    # ...while it is still described, listed and managed.
    md = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert (md["KeyState"], md["Description"]) == ("Enabled", "damaged")
    assert damaged["KeyId"] in [k["KeyId"] for k in kms.list_keys()["Keys"]]
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
    kms.disable_key(KeyId=arn)
    kms.enable_key(KeyId=arn)

    # The principal whose secret is damaged cannot sign in; every other one can.
    expect_error(lambda: make_kms_client(srv.endpoint, access_key=other_ak, secret_key=other_sk).list_keys(),
                 "UnrecognizedClientException", "The security token included in the request is invalid.")

    # Every other key serves.
    assert kms.decrypt(CiphertextBlob=good_blob)["Plaintext"] == b"good"
    blob = kms.encrypt(KeyId=good["KeyId"], Plaintext=b"still")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"still"
    sig = kms.sign(KeyId=signer["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert kms.verify(KeyId=signer["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256",
                      Signature=sig)["SignatureValid"]

    # A grant token naming the grant that does not parse adds nothing, and fails nothing.
    assert kms.decrypt(CiphertextBlob=good_blob, GrantTokens=[grant["GrantToken"]])["Plaintext"] == b"good"

    # The record that does not parse is left out, as is the grant; the other grant is kept.
    expect_error(lambda: kms.describe_key(KeyId=garbled["KeyId"]), "NotFoundException",
                 f"Key '{garbled['Arn']}' does not exist")
    assert [g["GrantId"] for g in kms.list_grants(KeyId=good["KeyId"])["Grants"]] == [kept["GrantId"]]

    # Counted in the metrics...
    assert metric(srv, "trent_keys_unusable ") == "trent_keys_unusable 1"
    assert metric(srv, 'trent_store_rows_skipped{kind="key"}') == 'trent_store_rows_skipped{kind="key"} 1'
    assert metric(srv, 'trent_store_rows_skipped{kind="grant"}') == 'trent_store_rows_skipped{kind="grant"} 1'
    # ...and named in the log, once each, at error level, however many times the scheduled work
    # has run since.
    time.sleep(2.5)
    log = (tmp_path / "second.log").read_text()
    named = [l for l in log.splitlines() if arn in l and "ERROR" in l]
    assert len(named) == 1, named
    assert "unusable" in named[0]
    assert len([l for l in log.splitlines() if garbled["KeyId"] in l and "ERROR" in l]) == 1
    assert len([l for l in log.splitlines() if grant["GrantId"] in l and "ERROR" in l]) == 1
    assert len([l for l in log.splitlines() if other_ak in l and "ERROR" in l]) == 1
    srv.server.stop()

    # A wrong root key still refuses to start, before serving anything.
    other = tmp_path / "other"
    srv = start_nondev(other, tmp_path / "other.log")
    srv.server.stop()
    shutil.copy(other / "root.key", data / "root.key")
    r = subprocess.run([TRENT_BIN, "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60, env=clean_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r
    assert r.stderr.strip().endswith(
        "trent: the root key does not match this data directory (wrong key file or passphrase)"), r.stderr


def import_material(kms, key_id: str, material: bytes) -> dict:
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = serialization.load_der_public_key(params["PublicKey"]).encrypt(material, oaep)
    return kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                   ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")


def test_importing_the_same_material_again_repairs_a_damaged_imported_key(tmp_path):
    """The way back metrics.md gives for imported material: importing it again replaces the row that
    does not unwrap (the same material id is the same material), for good."""
    data = tmp_path / "data"
    srv = start_nondev(data, tmp_path / "first.log")
    kms = client(srv)
    md = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    material = os.urandom(32)
    material_id = import_material(kms, md["KeyId"], material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"imported")["CiphertextBlob"]
    srv.server.stop()
    db = sqlite3.connect(data / "trent.db")
    with db:
        damage_material(db, md["KeyId"])
    db.close()

    srv = start_nondev(data, tmp_path / "second.log")
    kms = client(srv)
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "KMSInternalException",
                 f"{md['Arn']} is unusable: its key material cannot be read from the store.", status=500)
    assert import_material(kms, md["KeyId"], material)["KeyMaterialId"] == material_id
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    assert metric(srv, "trent_keys_unusable ") == "trent_keys_unusable 0"
    srv.server.stop()

    srv = start_nondev(data, tmp_path / "third.log")
    assert client(srv).decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    srv.server.stop()
