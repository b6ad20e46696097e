"""The admin listener is safe by default (docs/metrics.md, "Protecting the admin listener"):
beyond loopback it starts only with client certificates, a bearer token, or --admin-insecure;
the token and the client certificate guard /metrics and /readyz (not /healthz); with
--metrics-per-key false no series names a key ARN."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kmsutil import TRENT_BIN, TrentServer, clean_env, make_kms_client

TOKEN = "9f8e7d6c5b4a39281706-admin-token"
ADMIN_ANY_RE = re.compile(r"^trent admin listening on (https?)://[0-9.]+:(\d+)\s*$")


def run_serve(*args: str) -> subprocess.CompletedProcess:
    env = clean_env()
    env.pop("TRENT_ADMIN_LISTEN", None)
    return subprocess.run([TRENT_BIN, "serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=30, env=env)


def start(tmp_path, *args: str) -> tuple[TrentServer, str]:
    """A dev server with the admin listener as `args` say; its admin endpoint, reached on
    127.0.0.1 whatever address it is bound to."""
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", *args],
                         tmp_path / "stderr.log").start()
    for line in server.stdout_lines:
        m = ADMIN_ANY_RE.match(line.strip())
        if m:
            return server, f"{m.group(1)}://127.0.0.1:{m.group(2)}"
    server.stop()
    raise AssertionError("no admin listening line: " + "\n".join(server.stdout_lines))


def token_file(tmp_path, mode: int = 0o600):
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    return path


NEEDS = ("needs client certificates (--admin-tls-cert, --admin-tls-key and --admin-client-ca) "
         "or a bearer token (--admin-token-file), or serve it without either with --admin-insecure")


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0"])
def test_beyond_loopback_without_protection_is_refused_at_start(address):
    r = run_serve("--admin-listen", address)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"trent: --admin-listen {address} is beyond loopback, and the admin listener "
        "names every account's keys: give it client certificates (--admin-tls-cert, --admin-tls-key and "
        "--admin-client-ca) or a bearer token (--admin-token-file), or serve it without either with --admin-insecure"
    )
    assert "listening" not in r.stdout


def test_a_token_file_others_may_read_is_refused(tmp_path):
    path = token_file(tmp_path, 0o644)
    r = run_serve("--admin-listen", "127.0.0.1:0", "--admin-token-file", str(path))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"trent: --admin-token-file {path}: group or others may read it (mode 644); "
                                f"chmod 600 {path}")


def test_admin_insecure_serves_beyond_loopback(tmp_path):
    server, base = start(tmp_path, "--admin-listen", "0.0.0.0:0", "--admin-insecure")
    try:
        assert requests.get(base + "/metrics", timeout=5).status_code == 200
    finally:
        server.stop()


def test_a_token_guards_metrics_and_readyz_but_not_healthz(tmp_path):
    server, base = start(tmp_path, "--admin-listen", "0.0.0.0:0", "--admin-token-file", str(token_file(tmp_path)))
    try:
        r = requests.get(base + "/healthz", timeout=5)
        assert (r.status_code, r.text) == (200, "ok")
        for path in ("/metrics", "/readyz"):
            for headers in ({}, {"Authorization": "Bearer not-the-token-at-all"}, {"Authorization": TOKEN}):
                r = requests.get(base + path, headers=headers, timeout=5)
                assert (r.status_code, r.text) == (401, "unauthorized\n"), (path, headers)
                assert r.headers["WWW-Authenticate"] == 'Bearer realm="trent-admin"'
            r = requests.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
            assert r.status_code == 200, (path, r.text)
        assert "trent_build_info" in requests.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                                                  timeout=5).text
    finally:
        server.stop()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(tmp_path, stem: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(_name(stem))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / f"{stem}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _leaf(tmp_path, stem: str, ca_key, ca_cert, usage, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    cert_path, key_path = tmp_path / f"{stem}.pem", tmp_path / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_client_certificates_guard_metrics_and_readyz(tmp_path):
    ca_key, ca_cert, ca_path = _ca(tmp_path, "admin-ca")
    server_cert, server_key = _leaf(tmp_path, "server", ca_key, ca_cert, ExtendedKeyUsageOID.SERVER_AUTH,
                                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_cert, client_key = _leaf(tmp_path, "scraper", ca_key, ca_cert, ExtendedKeyUsageOID.CLIENT_AUTH)
    rogue_key, rogue_ca, _ = _ca(tmp_path, "rogue-ca")
    rogue_cert, rogue_key_path = _leaf(tmp_path, "rogue", rogue_key, rogue_ca, ExtendedKeyUsageOID.CLIENT_AUTH)

    server, base = start(tmp_path, "--admin-listen", "0.0.0.0:0", "--admin-tls-cert", str(server_cert),
                         "--admin-tls-key", str(server_key), "--admin-client-ca", str(ca_path))
    try:
        assert base.startswith("https://")
        verify = str(ca_path)
        # With the CA's client certificate: everything.
        for path in ("/metrics", "/readyz", "/healthz"):
            r = requests.get(base + path, cert=(str(client_cert), str(client_key)), verify=verify, timeout=5)
            assert r.status_code == 200, (path, r.text)
        # Without one: /healthz only.
        r = requests.get(base + "/healthz", verify=verify, timeout=5)
        assert (r.status_code, r.text) == (200, "ok")
        for path in ("/metrics", "/readyz"):
            r = requests.get(base + path, verify=verify, timeout=5)
            assert (r.status_code, r.text) == (403, "a client certificate is required\n")
        # A certificate another CA signed fails the handshake.
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(base + "/metrics", cert=(str(rogue_cert), str(rogue_key_path)), verify=verify, timeout=5)
        # Plain HTTP gets no answer from a TLS listener.
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(base.replace("https://", "http://") + "/healthz", timeout=5)
    finally:
        server.stop()


def test_metrics_per_key_false_names_no_key(tmp_path):
    for per_key, expect_arn in (("true", True), ("false", False)):
        server, base = start(tmp_path, "--metrics-per-key", per_key)
        try:
            kms = make_kms_client(server.endpoint)
            arn = kms.create_key()["KeyMetadata"]["Arn"]
            blob = kms.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
            kms.decrypt(CiphertextBlob=blob)
            text = requests.get(base + "/metrics", timeout=5).text
            assert ('trent_requests_total{operation="Encrypt",outcome="success",error_code=""} 1' in text)
            assert (arn in text) == expect_arn, text
            assert ("arn:" in text) == expect_arn, text
            assert ("trent_key_operations_total" in text) == expect_arn
        finally:
            server.stop()
