"""Session tokens and Regions (docs/access-control.md, "Principals"; docs/configuration.md, "Regions"):
a request carrying X-Amz-Security-Token (as botocore sends it for credentials with a session
token, or as a presigned query's parameter) is refused as AWS refuses an invalid token, since
trent issues no temporary credentials (dev mode takes it, as moto does); a request signed for a
Region outside --regions is refused as AWS refuses a signature scoped to a Region its endpoint
does not serve; ReplicateKey and UpdatePrimaryRegion name only served Regions."""

from __future__ import annotations

import boto3
import pytest

from kmsutil import (
    UNRECOGNIZED_CLIENT_MESSAGE,
    TrentServer,
    client_config,
    expect_error,
    kms_call,
    make_kms_client,
)


def session_client(endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1"):
    return boto3.session.Session().client(
        "kms", region_name=region, endpoint_url=endpoint, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, aws_session_token="FwoGZXIvYXdzEJr//////////wEaDFakeSessionToken",
        config=client_config())


def test_a_session_token_is_refused_as_aws_refuses_an_invalid_one(nondev_server):
    kms = session_client(nondev_server.endpoint, nondev_server.access_key, nondev_server.secret_key)
    resp = expect_error(lambda: kms.list_keys(), "UnrecognizedClientException", UNRECOGNIZED_CLIENT_MESSAGE,
                        status=400)
    sent = resp["ResponseMetadata"]["HTTPHeaders"]
    assert sent["x-amzn-errortype"] == "UnrecognizedClientException"
    # The same credentials without the token work.
    plain = make_kms_client(nondev_server.endpoint, access_key=nondev_server.access_key,
                            secret_key=nondev_server.secret_key)
    assert "Keys" in plain.list_keys()


def test_a_session_token_in_the_query_is_refused_too(nondev_server):
    r = kms_call(nondev_server.endpoint, "ListKeys", {}, access_key=nondev_server.access_key,
                 secret_key=nondev_server.secret_key, path="/?X-Amz-Security-Token=abc")
    assert (r.status, r.error_code, r.error_message) == (400, "UnrecognizedClientException",
                                                         UNRECOGNIZED_CLIENT_MESSAGE)


def test_dev_mode_takes_a_session_token(dev_endpoint):
    kms = session_client(dev_endpoint, "AKIAIOSFODNN7EXAMPLE", "anything")
    assert "Keys" in kms.list_keys()


def test_a_region_outside_the_list_is_refused(nondev_server, dev_endpoint):
    for endpoint, ak, sk in ((nondev_server.endpoint, nondev_server.access_key, nondev_server.secret_key),
                             (dev_endpoint, "AKIAIOSFODNN7EXAMPLE", "x")):
        kms = make_kms_client(endpoint, region="xx-fake-1", access_key=ak, secret_key=sk)
        expect_error(lambda: kms.create_key(), "InvalidSignatureException",
                     "Credential should be scoped to a valid region, not 'xx-fake-1'. ", status=400)
    # Every commercial Region is served by default, the newest too.
    for region in ("ap-southeast-7", "mx-central-1", "ca-west-1", "il-central-1"):
        kms = make_kms_client(nondev_server.endpoint, region=region, access_key=nondev_server.access_key,
                              secret_key=nondev_server.secret_key)
        assert kms.list_keys()["Keys"] == []
    # Other partitions' Regions are not (trent serves the aws partition).
    kms = make_kms_client(nondev_server.endpoint, region="us-gov-west-1", access_key=nondev_server.access_key,
                          secret_key=nondev_server.secret_key)
    expect_error(lambda: kms.list_keys(), "InvalidSignatureException",
                 "Credential should be scoped to a valid region, not 'us-gov-west-1'. ")


@pytest.fixture(scope="module")
def two_regions(tmp_path_factory):
    d = tmp_path_factory.mktemp("trent-regions")
    srv = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--regions",
                       "us-east-1,eu-west-1"], d / "stderr.log").start()
    yield srv
    srv.stop()


def test_regions_limits_requests_and_where_keys_replicate(two_regions):
    east = make_kms_client(two_regions.endpoint, region="us-east-1")
    west = make_kms_client(two_regions.endpoint, region="eu-west-1")
    south = make_kms_client(two_regions.endpoint, region="ap-southeast-2")
    expect_error(lambda: south.list_keys(), "InvalidSignatureException",
                 "Credential should be scoped to a valid region, not 'ap-southeast-2'. ")
    key = east.create_key(MultiRegion=True)["KeyMetadata"]
    expect_error(lambda: east.replicate_key(KeyId=key["KeyId"], ReplicaRegion="ap-southeast-2"),
                 "UnsupportedOperationException", "ap-southeast-2 is not a Region this server serves.")
    replica = east.replicate_key(KeyId=key["KeyId"], ReplicaRegion="eu-west-1")["ReplicaKeyMetadata"]
    assert replica["Arn"].startswith("arn:aws:kms:eu-west-1:")
    expect_error(lambda: east.update_primary_region(KeyId=key["KeyId"], PrimaryRegion="ap-southeast-2"),
                 "UnsupportedOperationException", "ap-southeast-2 is not a Region this server serves.")
    assert west.list_keys()["Keys"][0]["KeyId"] == key["KeyId"]


def test_a_bad_region_list_is_refused_at_start():
    from kmsutil import run_trent

    r = run_trent(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0", "--regions", "us-east-1,Moon"])
    assert (r.returncode, r.stderr.strip()) == (2, "trent: --regions: 'Moon' is not a Region name such as us-east-1")
