"""The audit log through a real server: one record per request (including those refused, invalid
or failed) in the CloudTrail shape, with the request id the client saw and never a secret;
records of what the server does itself; `trent audit verify` and `trent audit public-key`."""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from kmsutil import (
    AUDIT_LOG_NAME,
    DEV_ACCOUNT,
    REGION,
    ConfiguredPrincipal,
    TrentServer,
    allow,
    audit_by_request_id,
    audit_records,
    denied_message,
    kms_call,
    make_kms_client,
    policy_doc,
    raw_call,
    run_trent,
    start_configured,
    wait_until,
)

DAY = 86_400
ADMIN = ConfiguredPrincipal("admin", f"arn:aws:iam::{DEV_ACCOUNT}:user/admin", {"all": policy_doc(allow("kms:*"))})
BOB = ConfiguredPrincipal("bob", f"arn:aws:iam::{DEV_ACCOUNT}:role/bob")
records = audit_records
by_request_id = audit_by_request_id


def request_id(call) -> str:
    try:
        return call()["ResponseMetadata"]["RequestId"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["RequestId"]


@pytest.fixture
def srv(tmp_path):
    s = start_configured(tmp_path, [ADMIN, BOB])
    yield s
    s.server.stop()


def test_every_request_has_one_record_in_the_cloudtrail_shape(srv):
    admin, bob = srv.client("admin"), srv.client("bob")
    audit = srv.data_dir / "audit"
    created = admin.create_key(Description="audited")
    key = created["KeyMetadata"]
    enc = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"the-plaintext-42", EncryptionContext={"Dept": "Eng"})
    dec = admin.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"Dept": "Eng"})
    denied = request_id(lambda: bob.encrypt(KeyId=key["Arn"], Plaintext=b"x"))
    invalid = request_id(lambda: srv.client("admin", validate=False).encrypt(KeyId=key["KeyId"], Plaintext=b""))
    wrong_secret = raw_call(srv.endpoint, "TrentService.ListKeys", "{}", access_key=ADMIN.access_key,
                            secret_key="not-the-secret")
    unknown_op = kms_call(srv.endpoint, "NoSuchOperation", {}, access_key=ADMIN.access_key,
                          secret_key=ADMIN.secret_key)
    assert wrong_secret.status == 400 and unknown_op.status == 400

    seen = by_request_id(audit)
    ids = {
        "CreateKey": created["ResponseMetadata"]["RequestId"],
        "Encrypt": enc["ResponseMetadata"]["RequestId"],
        "Decrypt": dec["ResponseMetadata"]["RequestId"],
        "denied": denied,
        "invalid": invalid,
        "wrong_secret": wrong_secret.headers["x-amzn-RequestId"],
        "unknown_op": unknown_op.headers["x-amzn-RequestId"],
    }
    for what, rid in ids.items():
        assert len(seen.get(rid, [])) == 1, f"{what}: {rid} has {len(seen.get(rid, []))} records"
    rec = {what: seen[rid][0] for what, rid in ids.items()}

    e = rec["Encrypt"]
    assert e["trentChain"]["sequence"] > rec["CreateKey"]["trentChain"]["sequence"]
    del e["trentChain"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e.pop("eventTime"))
    assert re.fullmatch(r"[0-9a-f-]{36}", e.pop("eventID"))
    assert e.pop("userAgent").startswith("Boto3/")
    assert e == {
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "arn": ADMIN.arn, "accountId": DEV_ACCOUNT,
                         "accessKeyId": ADMIN.access_key, "userName": "admin"},
        "eventSource": "kms.amazonaws.com",
        "eventName": "Encrypt",
        "awsRegion": REGION,
        "sourceIPAddress": "127.0.0.1",
        "requestParameters": {"keyId": key["KeyId"], "encryptionContext": {"Dept": "Eng"}},
        "responseElements": None,
        "additionalEventData": {"keyMaterialId": key["CurrentKeyMaterialId"]},
        "requestID": ids["Encrypt"],
        "readOnly": True,
        "resources": [{"accountId": DEV_ACCOUNT, "type": "AWS::KMS::Key", "ARN": key["Arn"]}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": DEV_ACCOUNT,
        "eventCategory": "Management",
    }
    d = rec["Decrypt"]
    assert d["requestParameters"] == {"encryptionContext": {"Dept": "Eng"}}
    assert d["additionalEventData"] == {"keyMaterialId": dec["KeyMaterialId"]}
    c = rec["CreateKey"]
    assert c["readOnly"] is False
    assert c["requestParameters"] == {"description": "audited"}
    assert c["responseElements"]["keyMetadata"]["keyId"] == key["KeyId"]
    assert c["responseElements"]["keyMetadata"]["keyState"] == "Enabled"
    # As CloudTrail writes them: the account member's name kept, the date formatted, in UTC.
    assert c["responseElements"]["keyMetadata"]["AWSAccountId"] == DEV_ACCOUNT
    created = key["CreationDate"].astimezone(datetime.timezone.utc)
    assert c["responseElements"]["keyMetadata"]["creationDate"] == created.strftime("%b %-d, %Y, %-I:%M:%S %p")

    d = rec["denied"]
    assert d["userIdentity"]["type"] == "AssumedRole" and d["userIdentity"]["arn"] == BOB.arn
    assert d["errorCode"] == "AccessDeniedException"
    assert d["errorMessage"] == denied_message(BOB.arn, "Encrypt", key["Arn"], "no-identity")
    assert d["resources"][0]["ARN"] == key["Arn"]
    assert rec["invalid"]["errorCode"] == "ValidationException"
    assert rec["invalid"]["requestParameters"] == {"keyId": key["KeyId"]}
    w = rec["wrong_secret"]
    assert w["errorCode"] == "InvalidSignatureException"
    assert w["userIdentity"] == {"type": "Unknown", "accessKeyId": ADMIN.access_key}
    assert w["eventName"] == "ListKeys"
    assert w["requestParameters"] is None  # nothing an anonymous caller sends is kept
    assert rec["unknown_op"]["errorCode"] == "UnknownOperationException"
    assert rec["unknown_op"]["eventName"] == "TrentService.NoSuchOperation"

    # No secret anywhere in the audit directory: not the plaintext, not the ciphertext.
    everything = b"".join(p.read_bytes() for p in audit.iterdir() if p.is_file())
    for secret in (b"the-plaintext-42", base64.b64encode(b"the-plaintext-42"),
                   base64.b64encode(enc["CiphertextBlob"]), ADMIN.secret_key.encode()):
        assert secret not in everything

    # The chain: sequence numbers 1, 2, 3, ... each naming the hash of the line before.
    rs = records(audit)
    assert [r["trentChain"]["sequence"] for r in rs] == list(range(1, len(rs) + 1))


def test_what_the_server_does_itself_is_recorded(tmp_path):
    data = tmp_path / "data"
    server = TrentServer(["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0"],
                         tmp_path / "log").start()
    try:
        kms = make_kms_client(server.endpoint)
        doomed = kms.create_key()["KeyMetadata"]
        rotated = kms.create_key()["KeyMetadata"]
        kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
        kms.enable_key_rotation(KeyId=rotated["KeyId"], RotationPeriodInDays=90)
        r = requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 91 * DAY}, timeout=10)
        assert r.status_code == 200
    finally:
        server.stop()
    events = [r for r in records(data / "audit") if r["eventType"] == "AwsServiceEvent"]
    shown = sorted((r["eventName"], r["resources"][0]["ARN"]) for r in events)
    assert shown == sorted([("DeleteKey", doomed["Arn"]), ("RotateKey", rotated["Arn"])])
    delete = next(r for r in events if r["eventName"] == "DeleteKey")
    for k in ("eventTime", "eventID", "trentChain"):
        delete.pop(k)
    assert delete == {
        "eventVersion": "1.11",
        "userIdentity": {"accountId": DEV_ACCOUNT, "invokedBy": "kms.amazonaws.com"},
        "eventSource": "kms.amazonaws.com",
        "eventName": "DeleteKey",
        "awsRegion": REGION,
        "sourceIPAddress": "kms.amazonaws.com",
        "userAgent": "kms.amazonaws.com",
        "requestParameters": None,
        "responseElements": None,
        "readOnly": False,
        "resources": [{"accountId": DEV_ACCOUNT, "type": "AWS::KMS::Key", "ARN": doomed["Arn"]}],
        "eventType": "AwsServiceEvent",
        "recipientAccountId": DEV_ACCOUNT,
        "serviceEventDetails": {"keyId": doomed["KeyId"]},
        "managementEvent": True,
        "eventCategory": "Management",
    }
    # The dev endpoint that moved the clock is itself recorded.
    assert any(r["eventName"] == "/trent-dev/advance-clock" for r in records(data / "audit"))


def test_verify_names_an_edited_record_and_public_key_prints_the_key(srv):
    admin = srv.client("admin")
    key = admin.create_key()["KeyMetadata"]["KeyId"]
    for i in range(5):
        admin.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"n": str(i)})
    srv.server.stop()
    audit = srv.data_dir / "audit"
    n = len(records(audit))

    r = run_trent(["audit", "verify", str(audit)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"OK: {n} records in 1 files, sequence 1..{n}, chain intact, 2 signatures verified"

    r = run_trent(["audit", "public-key", "--data-dir", str(srv.data_dir)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == (audit / "audit-public-key.pem").read_text()
    assert r.stdout.startswith("-----BEGIN PUBLIC KEY-----\n")
    kept = srv.data_dir.parent / "kept-elsewhere.pem"
    kept.write_text(r.stdout)
    r = run_trent(["audit", "verify", str(audit), "--public-key", str(kept)])
    assert r.returncode == 0 and r.stdout.startswith("OK: ")

    log = audit / "audit-000000000001.jsonl"
    lines = log.read_text().splitlines()
    lines[2] = lines[2].replace('"readOnly":true', '"readOnly":false')
    assert lines[2] != log.read_text().splitlines()[2]
    log.write_text("\n".join(lines) + "\n")
    r = run_trent(["audit", "verify", str(audit), "--public-key", str(kept)])
    assert r.returncode == 2
    first = r.stdout.splitlines()[0]
    assert first == ("audit-000000000001.jsonl:4: the record before this one, 3 "
                     "(audit-000000000001.jsonl line 3), was edited or replaced")
    assert "the audit log in" in r.stderr and "has been changed" in r.stderr


def list_keys(endpoint: str) -> list[dict]:
    r = kms_call(endpoint, "ListKeys", {"Limit": 1000})
    assert r.status == 200, r.body
    return r.json()["Keys"]


def test_a_client_that_hangs_up_does_not_escape_the_log(tmp_path):
    """The request runs to its end, record included, whether or not anyone waits for the answer.
    An RSA-4096 CreateKey with no key pool takes a second or so: the client hangs up meanwhile."""
    data = tmp_path / "data"
    server = TrentServer(["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0",
                          "--key-pool-size", "0"], tmp_path / "log").start()
    try:
        body = json.dumps({"Description": "asked and abandoned", "KeySpec": "RSA_4096",
                           "KeyUsage": "SIGN_VERIFY"}).encode()
        host, port = server.endpoint.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
                         b"X-Amz-Target: TrentService.CreateKey\r\n"
                         b"Content-Type: application/x-amz-json-1.1\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(0.2)
        # Gone before the answer: the key is made all the same, and so is its record.
        assert wait_until(lambda: len(list_keys(server.endpoint)) == 1, timeout=30)
        [key] = list_keys(server.endpoint)
        assert wait_until(lambda: any(r["eventName"] == "CreateKey" for r in records(data / "audit")), timeout=5)
    finally:
        server.stop()
    [rec] = [r for r in records(data / "audit") if r["eventName"] == "CreateKey"]
    assert rec["responseElements"]["keyMetadata"]["keyId"] == key["KeyId"]
    assert rec["requestParameters"]["description"] == "asked and abandoned"


def test_fail_closed_when_the_audit_directory_cannot_be_written(tmp_path):
    """Mid-load, the audit directory stops taking writes: requests fail with a retryable 500 and
    /readyz says the audit log is not writable; once it is writable again, service resumes. No
    request answered with success lacks its record, and the log verifies."""
    # As root, permissions do not stop writes: the server runs as nobody, on a directory it owns.
    base = Path(tempfile.mkdtemp(prefix="trent-fail-closed-", dir="/tmp"))
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir(mode=0o700)
    user = None
    if os.geteuid() == 0:
        user = 65534
        os.chown(data, user, user)
    server = TrentServer(
        ["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--audit-max-file-bytes", "4096"],
        tmp_path / "log", user=user,
    ).start()
    audit = data / "audit"
    results: list[tuple[int, str, str | None, str | None]] = []
    stop = threading.Event()
    try:
        key = make_kms_client(server.endpoint).create_key()["KeyMetadata"]["KeyId"]

        def load() -> None:
            while not stop.is_set():
                r = kms_call(server.endpoint, "Encrypt", {"KeyId": key, "Plaintext": base64.b64encode(b"x").decode()})
                results.append((r.status, r.headers["x-amzn-RequestId"], r.error_code, r.error_message))

        def readyz() -> tuple[int, dict]:
            r = requests.get(server.admin_endpoint + "/readyz", timeout=5)
            return r.status_code, r.json()

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        assert wait_until(lambda: sum(1 for r in results if r[0] == 200) >= 20, timeout=10)
        assert readyz() == (200, {"store": True, "rootKey": True, "audit": True})
        keys_before = len(list_keys(server.endpoint))

        os.chmod(audit, 0o500)
        assert wait_until(lambda: readyz()[0] == 503, timeout=10)
        assert readyz() == (503, {"store": True, "rootKey": True, "audit": False})
        refused = len(results)
        assert wait_until(lambda: len(results) > refused + 20, timeout=10)
        after = results[refused:]
        assert all(r[0] == 500 for r in after), {r[0] for r in after}
        assert {(r[2], r[3]) for r in after} == {
            ("KMSInternalException", "The audit log cannot be written. Retry the request.")}
        # A change asked for now has no effect.
        r = kms_call(server.endpoint, "CreateKey", {"Description": "during the outage"})
        assert (r.status, r.error_code) == (500, "KMSInternalException")

        os.chmod(audit, 0o700)
        assert wait_until(lambda: readyz()[0] == 200, timeout=10)
        assert len(list_keys(server.endpoint)) == keys_before
        resumed = len(results)
        assert wait_until(lambda: sum(1 for r in results[resumed:] if r[0] == 200) >= 20, timeout=10)
    finally:
        stop.set()
        for w in workers if "workers" in locals() else []:
            w.join(timeout=10)
        os.chmod(audit, 0o700) if audit.exists() else None
        server.stop()
    succeeded = {r[1] for r in results if r[0] == 200}
    assert all(r[0] in (200, 500) for r in results)
    seen = by_request_id(audit)
    missing = [rid for rid in succeeded if len(seen.get(rid, [])) != 1]
    assert missing == [], f"{len(missing)} successful requests have no single record"
    r = run_trent(["audit", "verify", str(audit)])
    assert r.returncode == 0, r.stdout + r.stderr
    shutil.rmtree(base, ignore_errors=True)


def test_metrics_and_health_on_the_admin_listener(srv):
    admin = srv.client("admin")
    key = admin.create_key()["KeyMetadata"]
    admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with pytest.raises(ClientError):
        srv.client("bob").encrypt(KeyId=key["Arn"], Plaintext=b"x")
    base = srv.server.admin_endpoint
    assert requests.get(base + "/healthz", timeout=5).text == "ok"
    r = requests.get(base + "/readyz", timeout=5)
    assert (r.status_code, r.json()) == (200, {"store": True, "rootKey": True, "audit": True})
    text = requests.get(base + "/metrics", timeout=5).text
    assert 'trent_requests_total{operation="Encrypt",outcome="success",error_code=""} 1' in text
    assert 'trent_requests_total{operation="Encrypt",outcome="client_error",error_code="AccessDeniedException"} 1' in text
    assert f'trent_key_operations_total{{key_arn="{key["Arn"]}",operation="Encrypt"}} 1' in text
    assert 'trent_keys{state="Enabled",key_spec="SYMMETRIC_DEFAULT"} 1' in text
    assert re.search(r"^trent_audit_writable 1$", text, re.M)
    assert re.search(r'^trent_request_duration_seconds_bucket\{operation="Encrypt",le="\+Inf"\} 2$', text, re.M)
    assert requests.get(base + "/nope", timeout=5).status_code == 404


def test_a_killed_server_continues_its_chain_after_restart(tmp_path):
    data = tmp_path / "data"
    args = ["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0"]
    ids = []
    server = TrentServer(args, tmp_path / "log1").start()
    kms = make_kms_client(server.endpoint)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(10):
        ids.append(kms.encrypt(KeyId=key, Plaintext=b"x")["ResponseMetadata"]["RequestId"])
    server.proc.kill()  # SIGKILL: no clean close, the open file is left unsigned
    server.proc.wait(timeout=10)
    server.stop()
    assert not (data / "audit" / "audit-000000000001.jsonl.sig").exists()

    server = TrentServer(args, tmp_path / "log2").start()
    try:
        kms = make_kms_client(server.endpoint)
        for _ in range(10):
            ids.append(kms.encrypt(KeyId=key, Plaintext=b"x")["ResponseMetadata"]["RequestId"])
    finally:
        server.stop()
    files = sorted(p.name for p in (data / "audit").iterdir() if AUDIT_LOG_NAME.match(p.name))
    assert len(files) == 2
    seen = by_request_id(data / "audit")
    assert all(len(seen.get(i, [])) == 1 for i in ids)
    r = run_trent(["audit", "verify", str(data / "audit")])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"OK: {len(records(data / 'audit'))} records in 2 files")


# --------------------------------------------------------------------------------------------
# The AWS CLI: its calls are recorded like any other client's
# --------------------------------------------------------------------------------------------


def cli_records(audit_dir: Path, event_name: str) -> list[dict]:
    """The records of `event_name` made by the AWS CLI (its userAgent names `aws-cli`)."""
    return [r for r in records(audit_dir)
            if r["eventName"] == event_name and "aws-cli" in (r.get("userAgent") or "")]


def test_aws_cli_encrypt_and_decrypt_are_recorded_without_the_plaintext(srv, tmp_path):
    audit = srv.data_dir / "audit"
    key = srv.client("admin").create_key(Description="for the CLI")["KeyMetadata"]
    plaintext = b"cli-wombat-plaintext-8f14e45fceea167a"
    context = {"Dept": "Eng", "tenant-ID": "Acme-42"}  # kept as they are, not camelCased
    (tmp_path / "pt.bin").write_bytes(plaintext)

    res = srv.cli("admin", ["encrypt", "--key-id", key["KeyId"], "--plaintext", f"fileb://{tmp_path / 'pt.bin'}",
                            "--encryption-context", json.dumps(context)])
    assert res.returncode == 0, res.stderr
    assert res.json["KeyId"] == key["Arn"]
    ciphertext = base64.b64decode(res.json["CiphertextBlob"])
    (tmp_path / "ct.bin").write_bytes(ciphertext)
    res = srv.cli("admin", ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
                            "--encryption-context", json.dumps(context)])
    assert res.returncode == 0, res.stderr
    assert base64.b64decode(res.json["Plaintext"]) == plaintext

    [enc] = cli_records(audit, "Encrypt")
    assert enc["userAgent"].startswith("aws-cli/"), enc["userAgent"]
    assert "errorCode" not in enc and "errorMessage" not in enc
    assert enc["eventSource"] == "kms.amazonaws.com"
    assert enc["eventType"] == "AwsApiCall"
    assert enc["readOnly"] is True
    assert enc["userIdentity"] == {"type": "IAMUser", "arn": ADMIN.arn, "accountId": DEV_ACCOUNT,
                                   "accessKeyId": ADMIN.access_key, "userName": "admin"}
    assert enc["requestParameters"] == {"keyId": key["KeyId"], "encryptionContext": context}
    assert enc["responseElements"] is None
    assert enc["additionalEventData"] == {"keyMaterialId": key["CurrentKeyMaterialId"]}
    assert enc["resources"] == [{"accountId": DEV_ACCOUNT, "type": "AWS::KMS::Key", "ARN": key["Arn"]}]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", enc["requestID"])

    [dec] = cli_records(audit, "Decrypt")
    assert "errorCode" not in dec
    assert dec["readOnly"] is True
    assert dec["requestParameters"] == {"encryptionContext": context}
    assert dec["responseElements"] is None
    assert dec["resources"] == [{"accountId": DEV_ACCOUNT, "type": "AWS::KMS::Key", "ARN": key["Arn"]}]
    assert dec["trentChain"]["sequence"] == enc["trentChain"]["sequence"] + 1

    # Neither the plaintext (as sent, or as base64) nor the ciphertext is anywhere in the directory.
    everything = b"".join(p.read_bytes() for p in audit.iterdir() if p.is_file())
    for secret in (plaintext, base64.b64encode(plaintext), base64.b64encode(ciphertext)):
        assert secret not in everything, secret


def test_aws_cli_describe_key_of_a_missing_key_is_recorded_with_its_error(srv):
    audit = srv.data_dir / "audit"
    missing = "6b1c0d2e-9f8a-4b7c-8d6e-5f4a3b2c1d0e"
    res = srv.cli("admin", ["describe-key", "--key-id", missing])
    assert res.returncode != 0
    assert res.error_code == "NotFoundException", res.stderr
    arn = f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:key/{missing}"
    assert res.error_message == f"Key '{arn}' does not exist"

    [rec] = cli_records(audit, "DescribeKey")
    assert rec["errorCode"] == "NotFoundException"
    assert rec["errorMessage"] == res.error_message
    assert rec["requestParameters"] == {"keyId": missing}
    assert rec["responseElements"] is None
    assert rec["readOnly"] is True
    assert rec["userIdentity"]["accessKeyId"] == ADMIN.access_key
    assert rec["resources"] == [{"accountId": DEV_ACCOUNT, "type": "AWS::KMS::Key", "ARN": arn}]
