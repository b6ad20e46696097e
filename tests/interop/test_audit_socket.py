"""`--audit-socket`: a copy of every durable audit record, as JSON lines, for a log shipper
listening on a Unix or TCP socket. The files stay the record; the copy is best effort."""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from kmsutil import TrentServer, make_kms_client, run_trent, wait_until

LOG_NAME = re.compile(r"^audit-\d{12}\.jsonl$")


def file_lines(audit_dir: Path) -> list[str]:
    out: list[str] = []
    for f in sorted(p for p in audit_dir.iterdir() if LOG_NAME.match(p.name)):
        out += f.read_text().splitlines()
    return out


class Receiver:
    """A listener that keeps every line it is sent, across connections."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lines: list[str] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn, conn.makefile("r", encoding="utf-8") as f:
            for line in f:
                assert line.endswith("\n"), f"a line cut short: {line!r}"
                self.lines.append(line.rstrip("\n"))


def start(tmp_path: Path, target: str) -> tuple[TrentServer, Path]:
    data = tmp_path / "data"
    server = TrentServer(
        ["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--audit-socket", target],
        tmp_path / "stderr.log",
    ).start()
    return server, data / "audit"


def metric(server: TrentServer, line_re: str) -> str | None:
    text = requests.get(server.admin_endpoint + "/metrics", timeout=5).text
    m = re.search(line_re, text, re.M)
    return m.group(1) if m else None


def test_a_unix_socket_receives_each_record_as_the_files_hold_it(tmp_path):
    path = tmp_path / "audit.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    receiver = Receiver(listener)
    server, audit_dir = start(tmp_path, f"unix:{path}")
    try:
        kms = make_kms_client(server.endpoint)
        key = kms.create_key()["KeyMetadata"]
        enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"socket-copy-secret")
        with pytest.raises(ClientError) as missing:
            kms.describe_key(KeyId="11111111-2222-3333-4444-555555555555")
        ids = [enc["ResponseMetadata"]["RequestId"], missing.value.response["ResponseMetadata"]["RequestId"]]
        assert wait_until(lambda: len(receiver.lines) >= len(file_lines(audit_dir)) >= 3, timeout=10)
        assert receiver.lines == file_lines(audit_dir)
        got = {r["requestID"]: r for r in map(json.loads, receiver.lines)}
        assert got[ids[0]]["eventName"] == "Encrypt"
        assert got[ids[0]]["requestParameters"]["keyId"] == key["KeyId"]
        assert got[ids[1]]["errorCode"] == "NotFoundException"
        assert "socket-copy-secret" not in "\n".join(receiver.lines)
        assert metric(server, r"^trent_audit_socket_connected (\S+)$") == "1"
        sent = metric(server, r'^trent_audit_socket_records_total\{outcome="sent"\} (\S+)$')
        assert sent == str(len(receiver.lines))
        assert metric(server, r'^trent_audit_socket_records_total\{outcome="dropped"\} (\S+)$') == "0"
    finally:
        server.stop()
        listener.close()
    assert run_trent(["audit", "verify", str(audit_dir)]).returncode == 0


def test_with_no_listener_requests_succeed_the_files_keep_everything_and_the_copy_resumes(tmp_path):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server, audit_dir = start(tmp_path, f"tcp:127.0.0.1:{port}")
    try:
        kms = make_kms_client(server.endpoint)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(3):
            kms.encrypt(KeyId=key, Plaintext=b"x")
        assert wait_until(
            lambda: metric(server, r'^trent_audit_socket_records_total\{outcome="dropped"\} (\S+)$')
            == str(len(file_lines(audit_dir))),
            timeout=10,
        )
        assert metric(server, r"^trent_audit_socket_connected (\S+)$") == "0"
        assert requests.get(server.admin_endpoint + "/readyz", timeout=5).json()["audit"] is True
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        receiver = Receiver(listener)
        # The copy reconnects at most once a second, on the next batch.
        def resumed() -> bool:
            kms.encrypt(KeyId=key, Plaintext=b"x")
            return receiver.connections == 1 and len(receiver.lines) > 0

        assert wait_until(resumed, timeout=10, every=0.2)
        last = kms.encrypt(KeyId=key, Plaintext=b"x")["ResponseMetadata"]["RequestId"]
        assert wait_until(lambda: any(last in line for line in receiver.lines), timeout=10)
        lines = file_lines(audit_dir)
        # What arrived is the tail of the log, line for line.
        assert receiver.lines == lines[len(lines) - len(receiver.lines):]
        listener.close()
    finally:
        server.stop()
    assert run_trent(["audit", "verify", str(audit_dir)]).returncode == 0


def test_an_address_that_is_not_a_socket_is_refused_at_start(tmp_path):
    r = run_trent(["serve", "--dev", "--in-memory", "--audit-dir", str(tmp_path / "a"), "--audit-socket", "udp:1.2.3.4:5"])
    assert r.returncode != 0
    assert "--audit-socket: 'udp:1.2.3.4:5' is neither unix:/path/to/socket nor tcp:host:port" in r.stderr
