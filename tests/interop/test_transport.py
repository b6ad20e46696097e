"""Transport: HTTPS from configured PEM files, the body-size limit enforced before a body is read
whole, the request timeout, and the listening rules (no TLS or dev mode beyond loopback)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kmsutil import TRENT_BIN, TrentServer, clean_env



def start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """Start trent and return its process and the endpoint it announced (http or https)."""
    server = TrentServer(args, tmp_path / "stderr.log").start()
    return server.proc, server.endpoint


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def client(endpoint: str, verify) -> object:
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="x",
        verify=verify,
        config=Config(retries={"max_attempts": 1}),
    )


def test_https_with_configured_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    proc, endpoint = start(
        ["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key)],
        tmp_path,
    )
    try:
        assert endpoint.startswith("https://")
        kms = client(endpoint, str(cert))
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"over tls")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"
        # A client that does not trust the certificate refuses the connection.
        with pytest.raises(Exception) as e:
            client(endpoint, True).list_keys()
        assert "SSL" in repr(e.value) or "certificate" in repr(e.value).lower()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dev", "--in-memory", "--listen", "0.0.0.0:0"], "dev mode accepts any credentials, so it refuses to listen beyond loopback (0.0.0.0:0)"),
        (["--in-memory", "--listen", "0.0.0.0:0"], "without --tls-cert and --tls-key trent listens on loopback only, not 0.0.0.0:0"),
    ],
)
def test_refuses_to_listen_beyond_loopback(args, message):
    r = subprocess.run([TRENT_BIN, "serve", *args], capture_output=True, text=True, timeout=30, env=clean_env())
    assert r.returncode == 2
    assert r.stderr.strip() == f"trent: {message}"


def raw_http(port: int, head: bytes, body: bytes = b"", read_timeout: float = 10) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        lines = head_part.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest


def test_body_limit_is_enforced_before_reading(tmp_path):
    proc, endpoint = start(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--max-body-bytes", "1024"], tmp_path)
    port = int(endpoint.rsplit(":", 1)[1])
    try:
        # Announced as 10 MB and never sent: refused from the header alone.
        head = (
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.Encrypt\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 10000000\r\n\r\n"
        )
        status, headers, body = raw_http(port, head)
        assert status == 413
        assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
        assert "x-amzn-requestid" in headers
        assert json.loads(body) == {"__type": "RequestEntityTooLargeException", "message": "Request body too large."}
        # Chunked, with no length announced: cut off while reading.
        chunk = b"x" * 2048
        head = (
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.Encrypt\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        status, headers, body = raw_http(port, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        assert status == 413
        assert json.loads(body)["__type"] == "RequestEntityTooLargeException"
        # Within the limit, the server still answers.
        assert client(endpoint, True).generate_random(NumberOfBytes=8)["Plaintext"].__len__() == 8
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_request_that_stalls_times_out(tmp_path):
    proc, endpoint = start(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--request-timeout-secs", "1"], tmp_path)
    port = int(endpoint.rsplit(":", 1)[1])
    try:
        head = (
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        status, headers, body = raw_http(port, head, b"{", read_timeout=10)
        assert status == 408
        assert json.loads(body) == {"__type": "RequestTimeoutException", "message": "The request timed out."}
        assert 0.9 < time.monotonic() - started < 5
    finally:
        proc.terminate()
        proc.wait(10)
