"""`--audit-socket`: a copy of every durable audit record, as JSON lines, for a log shipper
listening on a Unix or TCP socket. The files stay the record; the copy is best effort."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from kmsutil import TrentServer, audit_lines, make_kms_client, run_trent, wait_until

SECRET = b"socket-copy-secret"


class Receiver:
    """A listener that keeps every line it is sent, across connections, and every problem."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lines: list[str] = []
        self.errors: list[str] = []
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
                if not line.endswith("\n"):
                    self.errors.append(f"a line cut short: {line!r}")
                self.lines.append(line.rstrip("\n"))


def close_listener(sock: socket.socket) -> None:
    """Stop listening; shutting the socket down first wakes a Receiver thread blocked in accept()."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


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
        enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=SECRET)
        with pytest.raises(ClientError) as missing:
            kms.describe_key(KeyId="11111111-2222-3333-4444-555555555555")
        ids = [enc["ResponseMetadata"]["RequestId"], missing.value.response["ResponseMetadata"]["RequestId"]]
        assert wait_until(lambda: len(receiver.lines) >= len(audit_lines(audit_dir)) >= 3, timeout=10)
        got = list(receiver.lines)
        assert got == audit_lines(audit_dir)
        assert receiver.errors == []
        by_id = {r["requestID"]: r for r in map(json.loads, got)}
        assert by_id[ids[0]]["eventName"] == "Encrypt"
        assert by_id[ids[0]]["requestParameters"]["keyId"] == key["KeyId"]
        assert by_id[ids[1]]["errorCode"] == "NotFoundException"
        text = "\n".join(got)
        assert SECRET.decode() not in text and base64.b64encode(SECRET).decode() not in text
        assert base64.b64encode(enc["CiphertextBlob"]).decode() not in text
        assert metric(server, r"^trent_audit_socket_connected (\S+)$") == "1"
        sent = metric(server, r'^trent_audit_socket_records_total\{outcome="sent"\} (\S+)$')
        assert sent == str(len(got))
        assert metric(server, r'^trent_audit_socket_records_total\{outcome="dropped"\} (\S+)$') == "0"
    finally:
        server.stop()
        close_listener(listener)
    assert run_trent(["audit", "verify", str(audit_dir)]).returncode == 0


def test_with_no_listener_requests_succeed_the_files_keep_everything_and_the_copy_resumes(tmp_path):
    # Bound and kept, but not listening: connections are refused and no one else takes the port.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server, audit_dir = start(tmp_path, f"tcp:127.0.0.1:{port}")
    try:
        kms = make_kms_client(server.endpoint)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(3):
            kms.encrypt(KeyId=key, Plaintext=b"x")
        assert wait_until(
            lambda: metric(server, r'^trent_audit_socket_records_total\{outcome="dropped"\} (\S+)$')
            == str(len(audit_lines(audit_dir))),
            timeout=10,
        )
        assert metric(server, r"^trent_audit_socket_connected (\S+)$") == "0"
        assert requests.get(server.admin_endpoint + "/readyz", timeout=5).json()["audit"] is True
        listener.listen()
        receiver = Receiver(listener)

        # The copy reconnects with the first batch a second or more after its last attempt.
        def resumed() -> bool:
            kms.encrypt(KeyId=key, Plaintext=b"x")
            return receiver.connections == 1 and len(receiver.lines) > 0

        assert wait_until(resumed, timeout=10, every=0.2)
        last = kms.encrypt(KeyId=key, Plaintext=b"x")["ResponseMetadata"]["RequestId"]
        assert wait_until(lambda: any(last in line for line in receiver.lines), timeout=10)
        got, lines = list(receiver.lines), audit_lines(audit_dir)
        # What arrived is the tail of the log, line for line.
        assert got == lines[len(lines) - len(got):]
        assert receiver.errors == []
    finally:
        server.stop()
        close_listener(listener)
    assert run_trent(["audit", "verify", str(audit_dir)]).returncode == 0


@pytest.mark.parametrize("audit", ["true", "false"])
def test_an_address_that_is_not_a_socket_is_refused_at_start(tmp_path, audit):
    r = run_trent(["serve", "--dev", "--in-memory", "--audit-dir", str(tmp_path / "a"), "--audit", audit,
                   "--audit-socket", "udp:1.2.3.4:5"])
    assert r.returncode != 0
    assert "--audit-socket: 'udp:1.2.3.4:5' is neither unix:/path/to/socket nor tcp:host:port" in r.stderr
