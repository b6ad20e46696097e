"""Idle and slow connections cannot hold the service (docs/configuration.md, "Connections"):
idle sockets at --max-connections are closed at the header deadline, so a signed request waiting
in the backlog is served soon after, and the admin listener answers meanwhile; an idle keep-alive
connection is closed after --idle-timeout-secs; headers sent a byte at a time are cut at the
header deadline (a TLS handshake too); one address gets at most --max-connections-per-source
while another still connects (127.0.0.2 is loopback too on Linux); the admin listener caps each
address as well, so that a flood of it from one address leaves room for others.

The assertions are outcomes: a request answered, a socket closed by the server, a metric counted.
The client timeouts that bound them are the server's deadline plus a wide margin, and far below
the 30 s the server used to wait."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from kmsutil import DEV_ACCESS_KEY, DEV_SECRET_KEY, JSON_11, TrentServer, wait_until

HEADER_SECS = 2
# What the clients allow on top of a deadline of the server's: wide, for a loaded machine.
MARGIN = 8


def start(tmp_path, *args: str, header_secs: int = HEADER_SECS) -> TrentServer:
    return TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0",
                        "--header-timeout-secs", str(header_secs), *args], tmp_path / "stderr.log").start()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s: socket.socket, within: float) -> bool:
    """Whether the server closes `s` (EOF or reset) within `within` seconds; reads and drops
    whatever it sent before."""
    s.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if s.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def metric(server: TrentServer, line_start: str) -> float | None:
    # From an address of its own, apart from the connections the tests hold.
    admin_port = int(server.admin_endpoint.rsplit(":", 1)[1])
    with connect(admin_port, source="127.0.0.9") as s:
        _, body = exchange(s, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for line in body.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def open_connections(server: TrentServer, listener: str = "api") -> float | None:
    return metric(server, f'trent_connections_open{{listener="{listener}"}}')


def signed_list_keys(port: int) -> bytes:
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=b"{}",
                     headers={"X-Amz-Target": "TrentService.ListKeys", "Content-Type": JSON_11})
    SigV4Auth(Credentials(DEV_ACCESS_KEY, DEV_SECRET_KEY), "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    head = f"POST / HTTP/1.1\r\nConnection: close\r\n" + "".join(f"{k}: {v}\r\n" for k, v in p.headers.items())
    return head.encode() + b"\r\n" + p.body


def exchange(s: socket.socket, request: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send a `Connection: close` request and read the whole answer: (status, body)."""
    s.settimeout(timeout)
    s.sendall(request)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_idle_sockets_at_max_connections_are_cut_at_the_header_deadline(tmp_path):
    server = start(tmp_path, "--max-connections", "8", "--max-connections-per-source", "0")
    try:
        idle = [connect(server.port) for _ in range(8)]
        assert wait_until(lambda: open_connections(server) == 8, timeout=10)
        # The admin listener has slots of its own: it answers at once.
        r = requests.get(server.admin_endpoint + "/healthz", timeout=5)
        assert (r.status_code, r.text) == (200, "ok")
        # A signed request waits in the backlog until the idle sockets' deadline frees a slot,
        # and is then answered.
        kms = boto3.client("kms", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id=DEV_ACCESS_KEY, aws_secret_access_key=DEV_SECRET_KEY,
                           config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                         connect_timeout=HEADER_SECS + MARGIN, read_timeout=HEADER_SECS + MARGIN))
        key = kms.create_key()["KeyMetadata"]
        assert key["KeyState"] == "Enabled"
        for s in idle:
            assert closed_by_server(s, HEADER_SECS + MARGIN)
            s.close()
        assert metric(server, 'trent_connections_closed_total{listener="api",reason="header_timeout"}') >= 8
    finally:
        server.stop()


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(tmp_path):
    # The header deadline is long here, so that it is the idle timeout that closes.
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0",
                          "--header-timeout-secs", "60", "--idle-timeout-secs", "2"], tmp_path / "log").start()
    try:
        s = connect(server.port)
        s.settimeout(10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), head
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            body += s.recv(65536)
        assert json.loads(body)["__type"] == "UnknownOperationException"
        # Kept alive, then closed once idle for 2 s.
        assert closed_by_server(s, 2 + MARGIN)
        assert metric(server, 'trent_connections_closed_total{listener="api",reason="idle_timeout"}') == 1
    finally:
        server.stop()


def test_headers_sent_a_byte_at_a_time_are_cut_at_the_header_deadline(tmp_path):
    server = start(tmp_path)
    try:
        s = connect(server.port)
        s.sendall(b"POST / HTTP/1.1\r\n")
        closed = False
        deadline = time.monotonic() + HEADER_SECS + MARGIN
        try:
            while time.monotonic() < deadline:
                s.sendall(b"X")
                if closed_by_server(s, 0.3):
                    closed = True
                    break
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        assert closed, "a client dribbling its headers held its connection past the deadline"
    finally:
        server.stop()


def test_a_tls_handshake_that_never_comes_is_cut_at_the_header_deadline(tmp_path):
    from test_transport import self_signed

    cert, key = self_signed(tmp_path)
    server = start(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        s = connect(server.port)
        assert closed_by_server(s, HEADER_SECS + MARGIN)
        # A real handshake still works.
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        server.stop()


def test_one_address_gets_at_most_its_cap_while_another_connects(tmp_path):
    server = start(tmp_path, "--max-connections-per-source", "3", header_secs=60)
    try:
        held = [connect(server.port) for _ in range(3)]
        assert wait_until(lambda: open_connections(server) == 3, timeout=10)
        over = connect(server.port)
        assert closed_by_server(over, MARGIN), "the 4th connection from 127.0.0.1 was served"
        assert metric(server, 'trent_connections_closed_total{listener="api",reason="source_limit"}') == 1
        # Another address is served, signed request and all.
        with connect(server.port, source="127.0.0.2") as other:
            status, body = exchange(other, signed_list_keys(server.port))
        assert status == 200, body
        assert "Keys" in json.loads(body)
        # A slot given back is a slot again.
        held.pop().close()
        assert wait_until(lambda: open_connections(server) == 2, timeout=10)
        with connect(server.port) as again:
            status, _ = exchange(again, signed_list_keys(server.port))
        assert status == 200
        for s in held:
            s.close()
    finally:
        server.stop()


def test_a_flood_of_the_admin_listener_from_one_address_leaves_room_for_another(tmp_path):
    server = start(tmp_path, header_secs=60)
    admin_port = int(server.admin_endpoint.rsplit(":", 1)[1])
    try:
        # As many as the admin listener has slots: one address gets 16 of them, no more.
        flood = [connect(admin_port) for _ in range(64)]
        cut = 'trent_connections_closed_total{listener="admin",reason="source_limit"}'
        assert wait_until(lambda: (metric(server, cut) or 0) >= 48, timeout=10)
        # The flood's 16, and the scrape's own (the one before may take a moment to be let go).
        assert wait_until(lambda: open_connections(server, "admin") == 16 + 1, timeout=10)
        with connect(admin_port, source="127.0.0.2") as other:
            status, body = exchange(other, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                    timeout=MARGIN)
        assert (status, body) == (200, b"ok")
        assert metric(server, cut) == 48
        for s in flood:
            s.close()
    finally:
        server.stop()
