"""The audit log when its disk fills in the middle of a batch: the write that does not fit fails
part-way, the file is cut back to its last durable record, the batch's requests are refused
with a retryable 500 and leave nothing in the log, and once a new file can be written service
resumes. The log verifies; every request answered with success has exactly one record.

"Disk full" is a file size limit (RLIMIT_FSIZE, `ulimit -f`) on the server process, with
SIGXFSZ ignored so that a write past the limit fails with EFBIG as a full disk fails with
ENOSPC. Each audit file can then grow to the limit and no further."""

from __future__ import annotations

import base64
import threading

import pytest

import kmsutil
from kmsutil import (
    AUDIT_LOG_NAME,
    TrentServer,
    audit_by_request_id,
    kms_call,
    make_kms_client,
    run_trent,
    wait_until,
)

LIMIT_KIB = 256


@pytest.fixture
def limited_trent(tmp_path, monkeypatch):
    """Run trent under a file size limit of LIMIT_KIB KiB."""
    wrapper = tmp_path / "trent-limited"
    wrapper.write_text(f"#!/bin/bash\ntrap '' XFSZ\nulimit -f {LIMIT_KIB}\nexec {kmsutil.TRENT_BIN} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(kmsutil, "TRENT_BIN", str(wrapper))


def test_a_batch_that_does_not_fit_is_refused_cut_back_and_service_resumes(tmp_path, limited_trent):
    data = tmp_path / "data"
    server = TrentServer(["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0"], tmp_path / "log").start()
    audit = data / "audit"
    results: list[tuple[int, str, str | None, str | None]] = []
    stop = threading.Event()
    workers: list[threading.Thread] = []
    try:
        key = make_kms_client(server.endpoint).create_key()["KeyMetadata"]["KeyId"]
        # About 3 KB per record: a file reaches the limit after some 80 records.
        context = {f"k{i}": "v" * 1000 for i in range(3)}
        body = {"KeyId": key, "Plaintext": base64.b64encode(b"x").decode(), "EncryptionContext": context}

        def load() -> None:
            while not stop.is_set():
                r = kms_call(server.endpoint, "Encrypt", body)
                results.append((r.status, r.headers["x-amzn-RequestId"], r.error_code, r.error_message))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()

        def refused_then_resumed() -> bool:
            first = next((i for i, r in enumerate(results) if r[0] != 200), None)
            return first is not None and sum(1 for r in results[first:] if r[0] == 200) >= 200

        assert wait_until(refused_then_resumed, timeout=60), (
            f"{len(results)} requests, statuses {sorted({r[0] for r in results})}; "
            + server.stderr_tail(2000))
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
        server.stop()
    failed = [r for r in results if r[0] != 200]
    assert {(r[0], r[2], r[3]) for r in failed} == {
        (500, "KMSInternalException", "The audit log cannot be written. Retry the request.")}
    # The files the limit cut short: each ends on a whole record, within the limit.
    files = sorted(p for p in audit.iterdir() if AUDIT_LOG_NAME.match(p.name))
    assert len(files) >= 2
    for f in files:
        assert f.stat().st_size <= LIMIT_KIB * 1024
        assert f.read_bytes().endswith(b"}\n")
    seen = audit_by_request_id(audit)
    succeeded = [r[1] for r in results if r[0] == 200]
    assert [rid for rid in succeeded if len(seen.get(rid, [])) != 1] == []
    assert [r[1] for r in failed if r[1] in seen] == [], "a refused request left a record"
    assert "cannot be written" in server.stderr_tail(20000)
    r = run_trent(["audit", "verify", str(audit)])
    assert r.returncode == 0, r.stdout + r.stderr
