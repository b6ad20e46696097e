"""The server destroys a key, its material and its aliases when the deletion window ends: while it
runs, and at start when the window ended while it was down. Dev mode moves the service clock
(`POST /trent-dev/advance-clock`, `--dev-clock-offset-secs`), so days pass in a second."""

from __future__ import annotations

import time

import pytest
import requests
from botocore.exceptions import ClientError

from kmsutil import TrentServer, make_kms_client, not_found_key_message

DAY = 86_400


def start_dev_on(data_dir, log, *extra) -> TrentServer:
    return TrentServer(
        ["serve", "--dev", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--deletion-check-secs", "1", *extra],
        log,
    ).start()


def describe_error(kms, key_id) -> dict:
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key_id)
    return e.value.response["Error"]


def test_key_is_destroyed_when_its_window_ends_while_running(tmp_path):
    server = start_dev_on(tmp_path / "data", tmp_path / "log")
    try:
        kms = make_kms_client(server.endpoint)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/doomed", TargetKeyId=key_id)
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

        r = requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 7 * DAY - 3600}, timeout=10)
        assert r.status_code == 200
        time.sleep(1.5)
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"

        requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 7200}, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                kms.describe_key(KeyId=key_id)
                time.sleep(0.2)
            except ClientError:
                break
        err = describe_error(kms, key_id)
        assert err == {"Code": "NotFoundException", "Message": not_found_key_message(key_id)}
        assert [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/doomed"] == []
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=blob)
        assert e.value.response["Error"]["Code"] == "InvalidCiphertextException"
    finally:
        server.stop()


def test_key_whose_window_ended_while_down_is_destroyed_at_start(tmp_path):
    data = tmp_path / "data"
    server = start_dev_on(data, tmp_path / "log1")
    kms = make_kms_client(server.endpoint)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kept = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/doomed", TargetKeyId=doomed)
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    server.stop()

    # Eight days later, as far as the service clock knows.
    server = start_dev_on(data, tmp_path / "log2", "--dev-clock-offset-secs", str(8 * DAY))
    try:
        kms = make_kms_client(server.endpoint)
        # Gone before the first request is served: no waiting for the periodic check.
        err = describe_error(kms, doomed)
        assert err == {"Code": "NotFoundException", "Message": not_found_key_message(doomed)}
        assert kms.describe_key(KeyId=kept)["KeyMetadata"]["KeyState"] == "Enabled"
        names = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
        # Only the predefined AWS managed aliases are left.
        assert [n for n in names if not n.startswith("alias/aws/")] == []
    finally:
        server.stop()


def test_the_dev_clock_is_not_available_outside_dev_mode(nondev_server):
    r = requests.post(nondev_server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 1}, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"__type": "UnknownOperationException"}
