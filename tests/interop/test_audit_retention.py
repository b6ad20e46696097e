"""The audit log cannot be filled by a caller with no permission, and it can be given retention:
records keep a bounded amount of what a caller sent (and say when they were cut), and with
`audit_max_total_bytes` the oldest closed files are removed after a signed statement, from which
`trent audit verify` still verifies what remains and names the cut, a file removed without it,
and a forged statement."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from kmsutil import (
    AUDIT_LOG_NAME,
    DEV_ACCOUNT,
    ConfiguredPrincipal,
    ConfiguredServer,
    TrentServer,
    allow,
    audit_by_request_id,
    audit_lines,
    policy_doc,
    principals_toml,
    raw_call,
    run_trent,
)

ADMIN = ConfiguredPrincipal("admin", f"arn:aws:iam::{DEV_ACCOUNT}:user/admin", {"all": policy_doc(allow("kms:*"))})
# Authenticated, and allowed nothing: the caller the size bound is for.
NOBODY = ConfiguredPrincipal("nobody", f"arn:aws:iam::{DEV_ACCOUNT}:user/nobody")

FAILED_PARAMETERS_MAX = 4096
ERROR_MESSAGE_MAX = 1024


def start(base: Path, settings: str = "") -> ConfiguredServer:
    """A non-dev server whose config file holds `settings` (TOML keys) and the principals."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "trent.toml"
    config.write_text(settings + "\n" + principals_toml([ADMIN, NOBODY]))
    data_dir = base / "data"
    server = TrentServer(
        ["serve", "--config", str(config), "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        base / "stderr.log",
    ).start()
    return ConfiguredServer(server, data_dir, config, {p.name: p for p in (ADMIN, NOBODY)})


@pytest.fixture
def srv(tmp_path):
    s = start(tmp_path)
    yield s
    s.server.stop()


def request_id_of(call) -> str:
    try:
        return call()["ResponseMetadata"]["RequestId"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["RequestId"]


def line_of(audit: Path, request_id: str) -> str:
    """The one audit line of `request_id`, as written."""
    found = [line for line in audit_lines(audit) if f'"requestID":"{request_id}"' in line]
    assert len(found) == 1, found
    return found[0]


def compact(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def test_a_refused_encrypt_with_a_60_kb_context_adds_a_few_kilobytes_and_says_it_was_cut(srv):
    admin, nobody = srv.client("admin"), srv.client("nobody")
    audit = srv.data_dir / "audit"
    key = admin.create_key()["KeyMetadata"]["Arn"]
    context = {"Pad": "x" * 60_000}
    with pytest.raises(ClientError) as e:
        nobody.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext=context)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    rid = e.value.response["ResponseMetadata"]["RequestId"]

    line = line_of(audit, rid)
    record = json.loads(line)  # one valid JSON object
    whole = len(compact({"keyId": key, "encryptionContext": context}))
    assert record["requestParameters"] == {"omitted": True, "originalSize": whole, "keyId": key}
    assert f'"requestParameters":{{"omitted":true,"originalSize":{whole},"keyId":' in line
    # The record grew the log by a few KB, not by the 60 KB sent.
    assert len(line) < FAILED_PARAMETERS_MAX + 2048, len(line)
    assert record["errorCode"] == "AccessDeniedException"
    assert record["userIdentity"]["arn"] == NOBODY.arn

    # A refused Encrypt with a small context is recorded as before, member for member.
    small = request_id_of(lambda: nobody.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"Dept": "Eng"}))
    small_record = json.loads(line_of(audit, small))
    assert small_record["requestParameters"] == {"keyId": key, "encryptionContext": {"Dept": "Eng"}}
    assert list(small_record) == list(record)

    # A permitted Encrypt keeps the whole 60 KB context, as CloudTrail keeps it.
    ok = admin.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext=context)
    kept = json.loads(line_of(audit, ok["ResponseMetadata"]["RequestId"]))
    assert kept["requestParameters"] == {"keyId": key, "encryptionContext": context}


def test_unauthenticated_requests_cannot_put_large_headers_in_the_log(srv):
    audit = srv.data_dir / "audit"
    # A malformed Authorization header whose error message quotes it whole (60 KB).
    header = "AWS4-HMAC-SHA256 Credential=" + "A" * 60_000 + ", SignedHeaders=host"
    r = requests.post(
        srv.endpoint,
        headers={
            "X-Amz-Target": "TrentService.Encrypt",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": header,
        },
        data=b"{}",
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["__type"] == "IncompleteSignatureException"
    assert len(r.json()["message"]) > 60_000, "the client gets the whole message, as AWS sends it"
    line = line_of(audit, r.headers["x-amzn-RequestId"])
    record = json.loads(line)
    message = record["errorMessage"]
    assert message.endswith(f"… (cut from {len(r.json()['message'].encode())} bytes)"), message[-80:]
    assert len(message.encode()) <= ERROR_MESSAGE_MAX + 40
    assert record["requestParameters"] is None
    assert len(line) < 4096, len(line)

    # A well-formed signature from an unknown 60 KB access key for a 60 KB region.
    r = raw_call(srv.endpoint, "TrentService.ListKeys", "{}", access_key="AKIA" + "B" * 60_000,
                 secret_key="s", region="r" * 60_000)
    assert r.status == 400, r.body[:200]
    record = json.loads(line_of(audit, r.headers["x-amzn-RequestId"]))
    assert record["userIdentity"] == {"type": "Unknown", "accessKeyId": ("AKIA" + "B" * 60_000)[:128]}
    assert record["awsRegion"] == "r" * 64


def log_files(audit: Path) -> list[Path]:
    return sorted(p for p in audit.iterdir() if AUDIT_LOG_NAME.match(p.name))


def public_key(s: ConfiguredServer, tmp_path: Path) -> Path:
    out = run_trent(["audit", "public-key", "--data-dir", str(s.data_dir)])
    assert out.returncode == 0, out.stderr
    pem = tmp_path / "node.pem"
    pem.write_text(out.stdout)
    return pem


def verify(audit: Path, pem: Path):
    return run_trent(["audit", "verify", str(audit), "--public-key", str(pem)])


def test_past_audit_max_total_bytes_the_oldest_files_go_and_verify_names_the_cut(tmp_path):
    bound = 24 * 1024
    s = start(tmp_path, f"audit_max_file_bytes = 4096\naudit_max_total_bytes = {bound}\n")
    audit = s.data_dir / "audit"
    try:
        admin = s.client("admin")
        for _ in range(400):
            admin.list_keys()
        metrics = requests.get(s.server.admin_endpoint + "/metrics", timeout=10).text
    finally:
        s.server.stop()
    files = log_files(audit)
    total = sum(f.stat().st_size for f in files)
    # About 70 files were written; what is left is within the bound and the two files kept.
    assert total <= bound + 2 * 5000, (total, [f.name for f in files])
    assert files[0].name != "audit-000000000001.jsonl"
    pruned = int(re.search(r"^trent_audit_pruned_files_total (\d+)$", metrics, re.M).group(1))
    assert pruned >= 50, metrics
    assert re.search(r"^trent_audit_pruned_bytes_total (\d+)$", metrics, re.M)
    assert re.search(r"^trent_audit_prune_failures_total 0$", metrics, re.M)
    assert not any((audit / f"audit-000000000001.jsonl{ext}").exists() for ext in ("", ".sig"))

    statement = json.loads((audit / "pruned.json").read_text())
    cut = statement["lastSequence"]
    first_left = int(files[0].name[len("audit-"):][:12])
    assert first_left == cut + 1
    assert statement["type"] == "prune" and statement["removed"][-1]["reason"] == "max-total-bytes"

    pem = public_key(s, tmp_path)
    out = verify(audit, pem)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert re.fullmatch(
        rf"OK: \d+ records in {len(files)} files, sequence {cut + 1}\.\.\d+, chain intact, \d+ signatures verified",
        lines[0],
    ), lines
    assert re.fullmatch(
        rf"pruned: records 1\.\.{cut} \({statement['files']} files, audit-000000000001\.jsonl \.\. "
        rf"{re.escape(statement['removed'][-1]['file'])}, {statement['bytes']} bytes\) were removed by retention, "
        rf"last at \S+ under --audit-max-total-bytes; the log verifies from record {cut + 1}",
        lines[1],
    ), lines

    # The oldest file left, removed without a statement, is named.
    gone = files[0]
    saved = gone.read_bytes(), (audit / f"{gone.name}.sig").read_bytes()
    gone.unlink()
    (audit / f"{gone.name}.sig").unlink()
    out = verify(audit, pem)
    assert out.returncode == 2
    next_first = int(files[1].name[len("audit-"):][:12])
    assert out.stdout.splitlines()[0] == (
        f"{files[1].name}:1: missing file: records {cut + 1}..{next_first - 1} are absent before this file "
        f"(after records 1..{cut}, which pruned.json says were removed)"
    ), out.stdout
    gone.write_bytes(saved[0])
    (audit / f"{gone.name}.sig").write_bytes(saved[1])
    assert verify(audit, pem).returncode == 0

    # A statement edited to cover that file as well no longer verifies.
    edited = dict(statement, lastSequence=next_first - 1)
    (audit / "pruned.json").write_text(json.dumps(edited))
    gone.unlink()
    out = verify(audit, pem)
    assert out.returncode == 2
    key_id = statement["keyId"]
    assert out.stdout.splitlines()[0] == f"pruned.json: its signature does not verify with key {key_id}", out.stdout
