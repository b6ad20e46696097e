"""Promises of the foundation issue checked as a user would meet them: the credentials file alone
is enough for the AWS CLI, operations not built yet answer UnsupportedOperationException (never a
404, a 500 or a panic), key-id-only operations refuse aliases, and a key whose deletion window
ended while the server was killed is gone, with its material, when it comes back."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from kmsutil import (
    TrentServer,
    cli_env,
    expect_error,
    kms_call,
    make_kms_client,
    run_aws_cli,
)

DAY = 86_400

NOT_BUILT_YET = [
    "ConnectCustomKeyStore", "CreateCustomKeyStore", "DeleteCustomKeyStore",
    "DescribeCustomKeyStores", "DisconnectCustomKeyStore", "UpdateCustomKeyStore",
]


def test_the_credentials_file_alone_is_enough_for_the_cli(nondev_server):
    env = cli_env(access_key=None, secret_key=None, region=None, credentials_file=nondev_server.credentials_path)
    assert env["AWS_CONFIG_FILE"] != str(nondev_server.config_path)
    assert "AWS_DEFAULT_REGION" not in env and "AWS_REGION" not in env
    code, out, err = run_aws_cli(nondev_server.endpoint, ["create-key", "--description", "from the file"], env=env, global_args=["--profile", "trent"])
    assert code == 0, err
    assert out["KeyMetadata"]["Arn"].startswith("arn:aws:kms:us-east-1:111122223333:key/")
    assert out["KeyMetadata"]["Description"] == "from the file"


@pytest.mark.parametrize("op", NOT_BUILT_YET)
def test_operations_not_built_yet_are_unsupported(dev_endpoint, op):
    r = kms_call(dev_endpoint, op, {})
    assert r.status == 400
    assert r.json() == {
        "__type": "UnsupportedOperationException",
        "message": f"{op} is not supported by this trent server yet.",
    }
    assert r.headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    "call",
    [
        lambda kms, k: kms.enable_key(KeyId=k),
        lambda kms, k: kms.disable_key(KeyId=k),
        lambda kms, k: kms.schedule_key_deletion(KeyId=k),
        lambda kms, k: kms.cancel_key_deletion(KeyId=k),
        lambda kms, k: kms.list_key_policies(KeyId=k),
        lambda kms, k: kms.put_key_policy(KeyId=k, PolicyName="default", Policy="{}"),
    ],
    ids=["EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion", "ListKeyPolicies", "PutKeyPolicy"],
)
def test_key_id_only_operations_refuse_an_alias(kms, call):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/only-ids-{key_id[:8]}", TargetKeyId=key_id)
    alias = f"alias/only-ids-{key_id[:8]}"
    expect_error(lambda: call(kms, alias), "NotFoundException", f"Invalid keyId '{alias}'")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_a_window_that_ended_while_the_server_was_killed(tmp_path):
    data = tmp_path / "data"
    args = ["serve", "--dev", "--data-dir", str(data), "--listen", "127.0.0.1:0"]
    server = TrentServer(args, tmp_path / "log1").start()
    kms = make_kms_client(server.endpoint)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=doomed, Plaintext=b"short-lived")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    server.proc.kill()  # SIGKILL: no clean shutdown
    server.proc.wait(10)

    server = TrentServer([*args, "--dev-clock-offset-secs", str(7 * DAY + 60)], tmp_path / "log2").start()
    try:
        kms = make_kms_client(server.endpoint)
        with pytest.raises(ClientError) as e:
            kms.describe_key(KeyId=doomed)
        assert e.value.response["Error"]["Code"] == "NotFoundException"
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=blob)
        assert e.value.response["Error"] == {"Code": "InvalidCiphertextException", "Message": ""}
    finally:
        server.stop()
    # The store keeps no trace of the key: not its record, not its wrapped material.
    import sqlite3

    db = sqlite3.connect(data / "trent.db")
    try:
        for table in ("keys", "materials", "aliases"):
            assert db.execute(f"SELECT count(*) FROM {table} WHERE key_id = ?", (doomed,)).fetchone() == (0,)
    finally:
        db.close()
