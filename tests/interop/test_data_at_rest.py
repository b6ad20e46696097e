"""What a non-dev data directory holds: after encrypting a known plaintext, generating a data key
and creating principals, no file under the data dir (other than `credentials`, which is meant to
hold the admin's secret) contains the plaintext, the data key, or any principal's secret access
key, in raw, hex or base64 form — while the server runs (SQLite WAL and shared-memory files
included) and after it stops. Then the same directory serves again after a restart."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from botocore.exceptions import ClientError

from kmsutil import create_principal, make_kms_client


def _b64_fragments(data: bytes) -> set[bytes]:
    """Base64 text that appears wherever `data` is base64-encoded inside a longer blob, at any of
    the three byte alignments (the groups touched by neighbouring bytes are dropped)."""
    out = set()
    for shift in range(3):
        enc = base64.b64encode(b"\x00" * shift + data)
        start = 4 if shift else 0
        for alphabet in (enc, enc.replace(b"+", b"-").replace(b"/", b"_")):
            frag = alphabet[start:-4]
            if len(frag) >= 16:
                out.add(frag)
    return out


def _forms(label: str, data: bytes) -> dict[bytes, str]:
    forms = {data: f"{label} (raw)", data.hex().encode(): f"{label} (hex)", data.hex().upper().encode(): f"{label} (HEX)"}
    for frag in _b64_fragments(data):
        forms[frag] = f"{label} (base64)"
    return forms


def _scan(data_dir: Path, needles: dict[bytes, str]) -> tuple[list[str], list[str]]:
    """Return (files scanned, findings)."""
    scanned, findings = [], []
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(root) / name
            if path == data_dir / "credentials":
                continue
            try:
                blob = path.read_bytes()
            except (FileNotFoundError, PermissionError, IsADirectoryError):
                continue
            rel = str(path.relative_to(data_dir))
            scanned.append(f"{rel} ({len(blob)} bytes)")
            for needle, label in needles.items():
                if needle in blob:
                    findings.append(f"{label} found in {rel}")
    return scanned, findings


def _authenticates(endpoint: str, ak: str, sk: str) -> None:
    try:
        make_kms_client(endpoint, access_key=ak, secret_key=sk).list_keys()
    except ClientError as e:
        # Authorization may deny a fresh principal; authentication must have passed.
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response


def test_data_dir_holds_no_plaintext_and_no_secret(nondev_factory):
    srv = nondev_factory()
    data_dir = srv.data_dir
    endpoint = srv.endpoint
    admin = make_kms_client(endpoint, access_key=srv.access_key, secret_key=srv.secret_key)
    assert srv.secret_key.encode() in srv.credentials_path.read_bytes()

    principals = [
        create_principal(data_dir, "arn:aws:iam::111122223333:user/at-rest-alice"),
        create_principal(data_dir, "arn:aws:iam::111122223333:user/at-rest-bob"),
    ]
    for ak, sk in principals:
        _authenticates(endpoint, ak, sk)

    marker = b"trent known plaintext " + secrets.token_hex(24).encode() + b" end of marker"
    md = admin.create_key(Description="at-rest test key")["KeyMetadata"]
    ct = admin.encrypt(KeyId=md["KeyId"], Plaintext=marker, EncryptionContext={"purpose": "at-rest"})["CiphertextBlob"]
    dk = admin.generate_data_key(KeyId=md["KeyId"], KeySpec="AES_256")
    admin.tag_resource(KeyId=md["KeyId"], Tags=[{"TagKey": "k", "TagValue": "v"}])

    needles: dict[bytes, str] = {}
    needles.update(_forms("known plaintext", marker))
    needles.update(_forms("data key plaintext", dk["Plaintext"]))
    needles.update(_forms("admin secret access key", srv.secret_key.encode()))
    for i, (_ak, sk) in enumerate(principals):
        needles.update(_forms(f"principal {i} secret access key", sk.encode()))

    scanned, findings = _scan(data_dir, needles)
    assert scanned, f"nothing under {data_dir}"
    assert not findings, f"while running: {findings}; scanned {scanned}"

    srv.server.stop()
    assert not srv.server.killed, "trent did not exit within 5 s of SIGTERM"
    scanned, findings = _scan(data_dir, needles)
    assert not findings, f"after shutdown: {findings}; scanned {scanned}"

    # The same directory serves again: same admin, same principals, old ciphertexts decrypt.
    again = nondev_factory(data_dir)
    assert (again.access_key, again.secret_key) == (srv.access_key, srv.secret_key)
    admin2 = make_kms_client(again.endpoint, access_key=again.access_key, secret_key=again.secret_key)
    dec = admin2.decrypt(CiphertextBlob=ct, EncryptionContext={"purpose": "at-rest"})
    assert dec["Plaintext"] == marker and dec["KeyId"] == md["Arn"]
    assert admin2.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert admin2.list_resource_tags(KeyId=md["KeyId"])["Tags"] == [{"TagKey": "k", "TagValue": "v"}]
    for ak, sk in principals:
        _authenticates(again.endpoint, ak, sk)

    again.server.stop()
    scanned, findings = _scan(data_dir, needles)
    assert not findings, f"after restart: {findings}; scanned {scanned}"
