"""Authentication against a non-dev server (`trent serve --data-dir DIR`): the admin credentials
trent writes, SigV4 verification failures, and principals managed with `trent principal`."""

from __future__ import annotations

import configparser
import datetime as dt
import json
import stat
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from kmsutil import (
    UNRECOGNIZED_CLIENT_MESSAGE,
    cli_env,
    client_config,
    CRED_LINE_RE,
    create_principal,
    expect_error,
    kms_call,
    make_kms_client,
    principal,
    principal_documented,
    raw_call,
    run_aws_cli,
)

BOB_ARN_TEMPLATE = "arn:aws:iam::111122223333:user/{name}"


@pytest.fixture(scope="module")
def admin(nondev_server):
    return make_kms_client(nondev_server.endpoint, access_key=nondev_server.access_key,
                           secret_key=nondev_server.secret_key)


def test_first_start_writes_credentials_and_config(nondev_server):
    creds = nondev_server.credentials_path
    assert creds.is_file()
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600, oct(creds.stat().st_mode)
    cp = configparser.ConfigParser()
    cp.read(creds)
    assert cp["trent"]["aws_access_key_id"].strip() == nondev_server.access_key
    assert len(nondev_server.secret_key) >= 20

    cfg = configparser.ConfigParser()
    cfg.read(nondev_server.config_path)
    assert cfg.has_section("profile trent"), nondev_server.config_path.read_text()
    assert cfg["profile trent"]["region"].strip() == "us-east-1"

    # The admin's credentials are printed on first start, too (stdout or stderr).
    out = "\n".join(nondev_server.server.stdout_lines) + nondev_server.server.stderr_tail(1 << 20)
    assert nondev_server.access_key in out


def test_admin_credentials_work_with_boto3_profile(nondev_server, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nondev_server.credentials_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nondev_server.config_path))
    session = boto3.session.Session(profile_name="trent")
    kms = session.client("kms", endpoint_url=nondev_server.endpoint, config=client_config())
    assert kms.meta.region_name == "us-east-1"
    md = kms.create_key(Description="profile")["KeyMetadata"]
    assert md["Arn"].startswith("arn:aws:kms:us-east-1:")
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"authenticated")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"authenticated"


def test_admin_credentials_work_with_cli_profile(nondev_server):
    env = cli_env(access_key=None, secret_key=None, region=None,
                  credentials_file=nondev_server.credentials_path, config_file=nondev_server.config_path)
    res = run_aws_cli(nondev_server.endpoint, ["create-key", "--description", "cli profile"], env=env,
                      global_args=["--profile", "trent"])
    assert res.returncode == 0, res.stderr
    md = res.json["KeyMetadata"]
    assert md["Arn"].startswith("arn:aws:kms:us-east-1:")
    res = run_aws_cli(nondev_server.endpoint, ["list-keys"], env=env, global_args=["--profile", "trent"])
    assert res.returncode == 0, res.stderr
    assert md["KeyId"] in [k["KeyId"] for k in res.json["Keys"]]


def test_wrong_secret_is_invalid_signature(nondev_server):
    kms = make_kms_client(nondev_server.endpoint, access_key=nondev_server.access_key,
                          secret_key=nondev_server.secret_key[:-4] + "XXXX")
    resp = expect_error(lambda: kms.list_keys(), "InvalidSignatureException")
    assert resp["Error"]["Message"].startswith(
        "The request signature we calculated does not match the signature you provided."
    ), resp["Error"]["Message"]
    # Nothing about the expected signature or the secret leaks.
    assert nondev_server.secret_key not in json.dumps(resp, default=str)


def test_unknown_access_key_is_unrecognized_client(nondev_server):
    kms = make_kms_client(nondev_server.endpoint, access_key="AKIAUNKNOWNUNKNOWN00",
                          secret_key="x" * 40)
    expect_error(lambda: kms.list_keys(), "UnrecognizedClientException", UNRECOGNIZED_CLIENT_MESSAGE)


def test_wrong_secret_with_the_cli(nondev_server):
    env = cli_env(access_key=nondev_server.access_key, secret_key="not-the-secret-" + "x" * 25)
    res = run_aws_cli(nondev_server.endpoint, ["list-keys"], env=env)
    assert res.returncode != 0
    assert res.error_code == "InvalidSignatureException", res.stderr


@pytest.mark.parametrize("minutes", [-20, 20])
def test_request_time_too_far_off(nondev_server, minutes):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    r = raw_call(nondev_server.endpoint, "TrentService.ListKeys", "{}", access_key=nondev_server.access_key,
                 secret_key=nondev_server.secret_key, sign_time=when)
    assert r.status == 400, (r.status, r.body)
    assert r.error_code in {"InvalidSignatureException", "RequestExpired"}, r.body


def test_request_time_within_skew_is_accepted(nondev_server):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    r = raw_call(nondev_server.endpoint, "TrentService.ListKeys", "{}", access_key=nondev_server.access_key,
                 secret_key=nondev_server.secret_key, sign_time=when)
    assert r.status == 200, r.body


def test_missing_authorization(nondev_server):
    r = raw_call(nondev_server.endpoint, "TrentService.ListKeys", "{}", sign=False)
    assert r.status == 400, (r.status, r.body)
    assert r.error_code in {"MissingAuthenticationToken", "MissingAuthenticationTokenException"}, r.body
    assert r.headers.get("x-amzn-RequestId")


def test_garbled_authorization(nondev_server):
    r = raw_call(nondev_server.endpoint, "TrentService.ListKeys", "{}", sign=False,
                 extra_headers={"Authorization": "AWS4-HMAC-SHA256 garbage", "X-Amz-Date": "20260101T000000Z"})
    assert r.status == 400, (r.status, r.body)
    assert r.error_code in {"IncompleteSignatureException", "IncompleteSignature", "InvalidSignatureException"}, r.body


def test_tampered_body_fails_signature(nondev_server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import requests

    req = AWSRequest(method="POST", url=nondev_server.endpoint + "/", data=b'{"Limit": 1}',
                     headers={"X-Amz-Target": "TrentService.ListKeys",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(nondev_server.access_key, nondev_server.secret_key), "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    r = requests.post(p.url, headers=dict(p.headers.items()), data=b'{"Limit": 2}', timeout=30)
    assert r.status_code == 400
    assert r.json()["__type"].split("#")[-1] == "InvalidSignatureException"


def test_principal_create_list_delete(nondev_server, unique):
    name = unique("bob")
    arn = BOB_ARN_TEMPLATE.format(name=name)
    ak, sk = create_principal(nondev_server.data_dir, arn)
    assert ak != nondev_server.access_key

    listing = principal("list", nondev_server.data_dir)
    assert listing.returncode == 0, listing.stderr
    assert ak in listing.stdout and arn in listing.stdout
    assert sk not in listing.stdout and sk not in listing.stderr
    assert nondev_server.secret_key not in listing.stdout

    bob = make_kms_client(nondev_server.endpoint, access_key=ak, secret_key=sk)
    # Bob authenticates. Whether the default key policy lets a fresh principal do anything is a
    # matter of authorization: success or AccessDeniedException both prove the signature was verified.
    try:
        bob.list_keys()
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
    expect_error(
        lambda: make_kms_client(nondev_server.endpoint, access_key=ak, secret_key=sk[:-1] + "?").list_keys(),
        "InvalidSignatureException",
    )

    deleted = principal("delete", nondev_server.data_dir, ak)
    assert deleted.returncode == 0, deleted.stderr
    listing = principal("list", nondev_server.data_dir)
    assert listing.returncode == 0, listing.stderr
    assert ak not in listing.stdout

    # The running server stops accepting the deleted key. Allow a moment for any cache to expire.
    deadline = time.monotonic() + 3
    while True:
        try:
            bob.list_keys()
        except ClientError as e:
            if e.response["Error"]["Code"] == "UnrecognizedClientException":
                break
            if e.response["Error"]["Code"] != "AccessDeniedException":
                raise
        if time.monotonic() > deadline:
            pytest.fail("the deleted principal's credentials still authenticate")
        time.sleep(0.2)
    expect_error(lambda: bob.list_keys(), "UnrecognizedClientException", UNRECOGNIZED_CLIENT_MESSAGE)


def test_admin_can_do_the_full_symmetric_flow(admin, unique):
    md = admin.create_key(Description="admin", Tags=[{"TagKey": "a", "TagValue": "b"}])["KeyMetadata"]
    name = f"alias/{unique('admin')}"
    admin.create_alias(AliasName=name, TargetKeyId=md["KeyId"])
    blob = admin.encrypt(KeyId=name, Plaintext=b"admin data", EncryptionContext={"x": "y"})["CiphertextBlob"]
    dec = admin.decrypt(CiphertextBlob=blob, EncryptionContext={"x": "y"})
    assert dec["Plaintext"] == b"admin data" and dec["KeyId"] == md["Arn"]
    dk = admin.generate_data_key(KeyId=md["Arn"], KeySpec="AES_256")
    assert admin.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    account = md["AWSAccountId"]
    policy = json.loads(admin.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"]["AWS"] == f"arn:aws:iam::{account}:root"


def test_moto_reset_is_dev_only(nondev_server, admin):
    import requests

    kid = admin.create_key()["KeyMetadata"]["KeyId"]
    r = requests.post(nondev_server.endpoint + "/moto-api/reset", timeout=10)
    assert r.status_code == 400
    assert r.json() == {"__type": "UnknownOperationException"}
    assert r.headers["x-amzn-RequestId"]
    assert admin.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


def test_every_response_has_a_request_id_even_unauthenticated(nondev_server):
    r = kms_call(nondev_server.endpoint, "ListKeys", {}, access_key="AKIAUNKNOWNUNKNOWN00", secret_key="y" * 40)
    assert r.status == 400
    assert r.error_code == "UnrecognizedClientException"
    assert r.error_message == UNRECOGNIZED_CLIENT_MESSAGE
    assert r.headers.get("x-amzn-RequestId")


def test_principal_cli_documented_form(nondev_server, unique):
    """`trent principal create|list|delete --data-dir DIR ...`, as documented."""
    arn = BOB_ARN_TEMPLATE.format(name=unique("doc"))
    created = principal_documented("create", nondev_server.data_dir, "--arn", arn)
    assert created.returncode == 0, created.stderr
    ak = CRED_LINE_RE["ak"].search(created.stdout)
    sk = CRED_LINE_RE["sk"].search(created.stdout)
    assert ak and sk, created.stdout
    listing = principal_documented("list", nondev_server.data_dir)
    assert listing.returncode == 0, listing.stderr
    assert ak.group(1) in listing.stdout and sk.group(1) not in listing.stdout
    deleted = principal_documented("delete", nondev_server.data_dir, ak.group(1))
    assert deleted.returncode == 0, deleted.stderr
