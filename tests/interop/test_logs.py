"""Structured logs (`--log-format json|text`, filter `TRENT_LOG`): every line a request logs carries
its request id, in whichever task it was written, and no secret is ever logged."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from kmsutil import TrentServer, make_kms_client

SECRET = b"log-secret-plaintext-7f3a"


def run_requests(server: TrentServer) -> list[str]:
    kms = make_kms_client(server.endpoint)
    key = kms.create_key()
    enc = kms.encrypt(KeyId=key["KeyMetadata"]["KeyId"], Plaintext=SECRET)
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"wrong": "context"})
    return [key["ResponseMetadata"]["RequestId"], enc["ResponseMetadata"]["RequestId"],
            e.value.response["ResponseMetadata"]["RequestId"]]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_every_request_line_carries_its_request_id_and_no_secret(tmp_path, fmt):
    log = tmp_path / "stderr.log"
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--log-format", fmt],
                         log, env={"TRENT_LOG": "debug"}).start()
    try:
        ids = run_requests(server)
    finally:
        server.stop()
    text = log.read_text()
    for secret in (SECRET, base64.b64encode(SECRET)):
        assert secret.decode() not in text
    lines = [l for l in text.splitlines() if l.strip()]
    if fmt == "json":
        records = [json.loads(l) for l in lines]
        per_request = [r for r in records if r["fields"].get("message") in ("request", "request failed")]
        assert [r["span"]["request_id"] for r in per_request] == ids
        assert per_request[2]["fields"]["error"] == "InvalidCiphertextException"
        # Every line written inside a request names it.
        for r in records:
            if any(s.get("name") == "request" for s in r.get("spans", [])):
                assert r["span"]["request_id"] in ids
    else:
        for rid in ids:
            assert any(f"request{{request_id={rid}}}" in l for l in lines), rid
