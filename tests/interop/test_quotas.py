"""Request quotas (docs/quotas.md): one account over its rate is throttled as AWS throttles,
ThrottlingException, HTTP 400, AWS's message, counted in the metrics and recorded in the audit log,
while another account is served; the class of a cryptographic request follows its key's spec;
`--quotas aws` applies AWS's own numbers.

The rates are chosen so that no test depends on timing: a rate of 0.001/s lets one request through
and then none for 1000 s; AWS's CreateKey rate (5/s, a bucket of 5) is met by ten requests sent in
a row to an in-memory server, which takes a few milliseconds, far less than the 200 ms a token
takes to come back. Every client makes one attempt (botocore and the AWS SDKs retry throttling
errors: a retried request would hide what the server answered)."""

from __future__ import annotations

import json
import re

import pytest
import requests

from kmsutil import (
    ConfiguredPrincipal,
    TrentServer,
    audit_by_request_id,
    expect_error,
    make_kms_client,
    principals_toml,
    toml_str,
)

THROTTLED = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
ALICE = ConfiguredPrincipal("alice", "arn:aws:iam::111122223333:root")
BOB = ConfiguredPrincipal("bob", "arn:aws:iam::444455556666:root")


def start(tmp_path, extra_toml: str = "", args: list[str] | None = None) -> TrentServer:
    config = tmp_path / "trent.toml"
    config.write_text(extra_toml + "\n" + principals_toml([ALICE, BOB]))
    return TrentServer(
        ["serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
         *(args or [])],
        tmp_path / "stderr.log",
    ).start()


def client(server: TrentServer, who: ConfiguredPrincipal):
    return make_kms_client(server.endpoint, access_key=who.access_key, secret_key=who.secret_key)


def metric_lines(server: TrentServer, name: str) -> list[str]:
    text = requests.get(server.admin_endpoint + "/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith(name + "{")]


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """Alice's account may create one key and make one symmetric request in us-east-1, then
    nothing for 1000 s; Bob's account has the defaults."""
    tmp = tmp_path_factory.mktemp("quotas")
    server = start(tmp, "[quota_rate]\n" + "\n".join(
        f"{toml_str(k)} = {v}" for k, v in {
            "111122223333/us-east-1:CreateKey": 0.001,
            "111122223333/us-east-1:symmetric": 0.001,
        }.items()))
    yield server, tmp / "data"
    server.stop()


def test_an_account_over_its_rate_is_throttled_as_aws_throttles_and_another_is_not(limited):
    server, data = limited
    alice, bob = client(server, ALICE), client(server, BOB)
    alice.create_key(Description="the one key")
    resp = expect_error(lambda: alice.create_key(Description="one too many"), "ThrottlingException", THROTTLED,
                        status=400)
    throttled_id = resp["ResponseMetadata"]["RequestId"]
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    # The other account is served as if nothing happened.
    for i in range(5):
        bob.create_key(Description=f"bob {i}")
    # Alice's other quotas are her own: DescribeKey, ListKeys have theirs.
    assert alice.list_keys()["Keys"]
    # The same account in another Region has buckets of its own.
    west = make_kms_client(server.endpoint, region="eu-west-1", access_key=ALICE.access_key,
                           secret_key=ALICE.secret_key)
    west.create_key(Description="alice in eu-west-1")

    assert 'trent_throttled_requests_total{operation="CreateKey",quota="CreateKey"} 1' in metric_lines(
        server, "trent_throttled_requests_total")
    assert ('trent_requests_total{operation="CreateKey",outcome="client_error",error_code="ThrottlingException"} 1'
            in metric_lines(server, "trent_requests_total"))
    [record] = audit_by_request_id(data / "audit")[throttled_id]
    assert record["eventName"] == "CreateKey"
    assert record["errorCode"] == "ThrottlingException"
    assert record["errorMessage"] == THROTTLED
    assert record["userIdentity"]["arn"] == ALICE.arn
    assert record["recipientAccountId"] == "111122223333"
    assert record["awsRegion"] == "us-east-1"


def test_a_cross_account_request_counts_against_the_caller(limited):
    server, _ = limited
    alice, bob = client(server, ALICE), client(server, BOB)
    # A key of Bob's account that Alice's account may use.
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::111122223333:root"]},
        "Action": "kms:*", "Resource": "*"}]}
    arn = bob.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    # Alice's one symmetric request passes; the next is throttled, Encrypt and Decrypt alike (one
    # shared class), GenerateRandom (no key) too: as AWS does, a request counts against the
    # account that makes it, not the key's.
    blob = alice.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
    expect_error(lambda: alice.decrypt(CiphertextBlob=blob), "ThrottlingException", THROTTLED)
    expect_error(lambda: alice.generate_random(NumberOfBytes=8), "ThrottlingException", THROTTLED)
    # Bob's account, the key's owner, is not affected.
    for _ in range(5):
        assert bob.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    lines = metric_lines(server, "trent_throttled_requests_total")
    assert 'trent_throttled_requests_total{operation="Decrypt",quota="symmetric"} 1' in lines
    assert 'trent_throttled_requests_total{operation="GenerateRandom",quota="symmetric"} 1' in lines


def test_an_rsa_key_of_ones_own_counts_against_rsa_not_symmetric(tmp_path):
    # Alice's symmetric class allows nothing; RSA keys of her own account are still served, and
    # her symmetric keys are not.
    server = start(tmp_path, '[quota_rate]\n"111122223333:symmetric" = 0\n')
    try:
        alice = client(server, ALICE)
        rsa = alice.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
        sym = alice.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(3):
            blob = alice.encrypt(KeyId=rsa, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
            assert alice.decrypt(KeyId=rsa, CiphertextBlob=blob,
                                 EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"x"
        expect_error(lambda: alice.encrypt(KeyId=sym, Plaintext=b"x"), "ThrottlingException", THROTTLED)
        # An alias of the symmetric key counts the same.
        alice.create_alias(AliasName="alias/sym", TargetKeyId=sym)
        expect_error(lambda: alice.encrypt(KeyId="alias/sym", Plaintext=b"x"), "ThrottlingException", THROTTLED)
        lines = metric_lines(server, "trent_throttled_requests_total")
        assert 'trent_throttled_requests_total{operation="Encrypt",quota="symmetric"} 2' in lines
        assert not any('quota="rsa"' in line for line in lines)
    finally:
        server.stop()


def test_quotas_aws_applies_aws_numbers(tmp_path):
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--quotas", "aws"],
                         tmp_path / "stderr.log").start()
    try:
        kms = make_kms_client(server.endpoint)
        outcomes = []
        for i in range(10):
            try:
                kms.create_key(Description=f"k{i}")
                outcomes.append("ok")
            except kms.exceptions.ClientError as e:
                err = e.response["Error"]
                assert (err["Code"], err["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == (
                    "ThrottlingException", THROTTLED, 400)
                outcomes.append("throttled")
        # CreateKey: 5 per second per account and Region, so the 6th to 10th are throttled.
        assert outcomes == ["ok"] * 5 + ["throttled"] * 5
        # Another Region has its own.
        kms_west = make_kms_client(server.endpoint, region="eu-west-1")
        kms_west.create_key()
        # GetParametersForImport: 1 per second; the request counts even when it then fails.
        expect_error(lambda: kms.get_parameters_for_import(
            KeyId="11111111-2222-3333-4444-555555555555", WrappingAlgorithm="RSAES_OAEP_SHA_256",
            WrappingKeySpec="RSA_2048"), "NotFoundException")
        expect_error(lambda: kms.get_parameters_for_import(
            KeyId="11111111-2222-3333-4444-555555555555", WrappingAlgorithm="RSAES_OAEP_SHA_256",
            WrappingKeySpec="RSA_2048"), "ThrottlingException", THROTTLED)
        assert 'trent_throttled_requests_total{operation="CreateKey",quota="CreateKey"} 5' in metric_lines(
            server, "trent_throttled_requests_total")
    finally:
        server.stop()


def test_quotas_off_and_a_bad_rate_at_start(tmp_path):
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--quotas", "off",
                          "--quota-rate", "CreateKey=0"], tmp_path / "stderr.log").start()
    try:
        kms = make_kms_client(server.endpoint)
        # Off is the base; a rate given over it still applies.
        expect_error(lambda: kms.create_key(), "ThrottlingException", THROTTLED)
        for _ in range(20):
            kms.generate_random(NumberOfBytes=8)
    finally:
        server.stop()
    from kmsutil import run_trent
    for args, message in [
        (["--quotas", "fast"], "--quotas: 'fast' is none of default, aws and off"),
        (["--quota-rate", "Nope=5"],
         "--quota-rate: 'Nope=5': 'Nope' is not a quota class (see docs/quotas.md) "
         "(the form is [ACCOUNT[/REGION]:]CLASS=RATE)"),
        (["--quota-rate", "Encrypt=5"],
         "--quota-rate: 'Encrypt=5': Encrypt counts against a shared class (symmetric, rsa, ecc or ml-dsa, by "
         "the key): set that one (the form is [ACCOUNT[/REGION]:]CLASS=RATE)"),
    ]:
        r = run_trent(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", *args])
        assert (r.returncode, r.stderr.strip()) == (2, f"trent: {message}")


def test_a_malformed_request_counts_and_throttling_comes_before_validation(tmp_path):
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0",
                          "--quota-rate", "CreateKey=0.001"], tmp_path / "stderr.log").start()
    try:
        from kmsutil import raw_call
        r = raw_call(server.endpoint, "TrentService.CreateKey", b"{not json")
        assert (r.status, r.error_code) == (400, "SerializationException")
        # The quota is used up by the malformed request; an invalid one is now throttled before
        # it is validated, and a valid one too.
        kms = make_kms_client(server.endpoint, validate=False)
        expect_error(lambda: kms.create_key(KeySpec="NOPE"), "ThrottlingException", THROTTLED)
        expect_error(lambda: kms.create_key(), "ThrottlingException", THROTTLED)
    finally:
        server.stop()
