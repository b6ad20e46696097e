"""Multi-Region keys: CreateKey MultiRegion, ReplicateKey, UpdatePrimaryRegion, deleting a primary
that has replicas, and rotation shared by the set.

One dev server answers every region: a boto3 client per region (`region_name`) sees that region's
keys. The module runs its own dev server, because it moves that server's clock
(`POST /trent-dev/advance-clock`, which also runs the scheduled work before it answers).

Error codes and messages marked "trent's wording" are not published by AWS.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests

from kmsutil import (
    DEV_ACCOUNT,
    TrentServer,
    cli_env,
    coral,
    default_policy,
    expect_error,
    key_arn,
    make_kms_client,
    not_found_key_message,
    run_aws_cli,
    wait_until,
)

DAY = 86_400
EAST = "us-east-1"
WEST = "eu-west-1"
SOUTH = "ap-southeast-2"
MRK_RE = re.compile(r"^mrk-[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("trent-multi-region")
    srv = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0"], d / "stderr.log").start()
    yield srv
    srv.stop()
    if srv.died:
        pytest.fail(f"the multi-Region dev server exited on its own:\n{srv.stderr_tail()}")


@pytest.fixture(scope="module")
def clients(server):
    return {r: make_kms_client(server.endpoint, region=r) for r in (EAST, WEST, SOUTH)}


@pytest.fixture(scope="module")
def east(clients):
    return clients[EAST]


@pytest.fixture(scope="module")
def west(clients):
    return clients[WEST]


@pytest.fixture(scope="module")
def south(clients):
    return clients[SOUTH]


def advance(endpoint: str, seconds: int) -> float:
    r = requests.post(endpoint + "/trent-dev/advance-clock", json={"Seconds": seconds}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["Now"]


def describe(kms, key_id: str) -> dict:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


def state(kms, key_id: str) -> str:
    return describe(kms, key_id)["KeyState"]


def new_mrk(kms, **kw) -> str:
    return kms.create_key(MultiRegion=True, **kw)["KeyMetadata"]["KeyId"]


def replicate(primary_client, replica_client, key_id: str, region: str, **kw) -> dict:
    """ReplicateKey, then wait until the replica is Enabled; returns the ReplicateKey response."""
    r = primary_client.replicate_key(KeyId=key_id, ReplicaRegion=region, **kw)
    assert wait_until(lambda: state(replica_client, key_id) == "Enabled", timeout=10), state(replica_client, key_id)
    return r


def entry(key_id: str, region: str) -> dict:
    return {"Arn": key_arn(key_id, region), "Region": region}


# ---------------------------------------------------------------------------------- CreateKey


def test_a_multi_region_key_is_a_primary_with_an_mrk_id(east):
    md = east.create_key(MultiRegion=True, Description="mrk")["KeyMetadata"]
    assert MRK_RE.match(md["KeyId"]), md["KeyId"]
    assert md["Arn"] == key_arn(md["KeyId"], EAST)
    assert md["MultiRegion"] is True
    assert md["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": entry(md["KeyId"], EAST),
        "ReplicaKeys": [],
    }
    assert describe(east, md["KeyId"])["MultiRegionConfiguration"] == md["MultiRegionConfiguration"]


# ---------------------------------------------------------------------------------- ReplicateKey


def test_replicate_key_makes_a_replica_that_becomes_enabled(east, west):
    key_id = new_mrk(east, Description="primary")
    primary = describe(east, key_id)
    r = east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    md = r["ReplicaKeyMetadata"]
    assert md["KeyId"] == key_id
    assert md["Arn"] == key_arn(key_id, WEST)
    assert md["KeyState"] in ("Creating", "Enabled")
    assert md["Enabled"] is (md["KeyState"] == "Enabled")
    assert md["Description"] == ""
    assert md["MultiRegion"] is True
    for shared in ("KeySpec", "KeyUsage", "Origin", "EncryptionAlgorithms", "KeyManager"):
        assert md[shared] == primary[shared], shared
    # AWS's answer (recorded): a replica being created shows no CurrentKeyMaterialId.
    if md["KeyState"] == "Creating":
        assert "CurrentKeyMaterialId" not in md
    assert md["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "REPLICA",
        "PrimaryKey": entry(key_id, EAST),
        "ReplicaKeys": [entry(key_id, WEST)],
    }
    assert json.loads(r["ReplicaPolicy"]) == default_policy(DEV_ACCOUNT)
    # No tags asked for: no ReplicaTags member (AWS's answer, recorded).
    assert "ReplicaTags" not in r

    assert wait_until(lambda: state(west, key_id) == "Enabled", timeout=10)
    replica = describe(west, key_id)
    assert replica["Enabled"] is True
    assert replica["CurrentKeyMaterialId"] == primary["CurrentKeyMaterialId"]
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    primary = describe(east, key_id)
    assert primary["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": entry(key_id, EAST),
        "ReplicaKeys": [entry(key_id, WEST)],
    }
    assert key_id in [k["KeyId"] for k in west.list_keys(Limit=1000)["Keys"]]


def test_a_set_lists_every_replica_in_every_region(east, west, south):
    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    replicate(east, south, key_id, SOUTH)
    replicas = [entry(key_id, SOUTH), entry(key_id, WEST)]
    for kms, kind in ((east, "PRIMARY"), (west, "REPLICA"), (south, "REPLICA")):
        mrc = describe(kms, key_id)["MultiRegionConfiguration"]
        assert mrc["MultiRegionKeyType"] == kind
        assert mrc["PrimaryKey"] == entry(key_id, EAST)
        assert sorted(mrc["ReplicaKeys"], key=lambda e: e["Region"]) == replicas


def test_ciphertexts_decrypt_in_either_region(east, west):
    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    ctx = {"purpose": "multi-region"}
    blob = east.encrypt(KeyId=key_id, Plaintext=b"from the east", EncryptionContext=ctx)["CiphertextBlob"]
    out = west.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert out["Plaintext"] == b"from the east"
    assert out["KeyId"] == key_arn(key_id, WEST)
    out = west.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=key_arn(key_id, WEST))
    assert out["Plaintext"] == b"from the east"

    blob = west.encrypt(KeyId=key_id, Plaintext=b"from the west")["CiphertextBlob"]
    out = east.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"from the west"
    assert out["KeyId"] == key_arn(key_id, EAST)

    dk = west.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert east.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]


def test_a_replica_has_its_own_policy_tags_description_aliases_and_state(east, west, unique_alias):
    key_id = new_mrk(east, Description="primary", Tags=[{"TagKey": "side", "TagValue": "east"}])
    policy = default_policy(DEV_ACCOUNT)
    policy["Id"] = "replica-policy"
    r = replicate(
        east, west, key_id, WEST,
        Description="replica",
        Tags=[{"TagKey": "side", "TagValue": "west"}, {"TagKey": "only", "TagValue": "replica"}],
        Policy=json.dumps(policy),
    )
    assert json.loads(r["ReplicaPolicy"]) == policy
    assert r["ReplicaTags"] == [{"TagKey": "side", "TagValue": "west"}, {"TagKey": "only", "TagValue": "replica"}]
    assert r["ReplicaKeyMetadata"]["Description"] == "replica"

    assert describe(west, key_id)["Description"] == "replica"
    assert describe(east, key_id)["Description"] == "primary"
    by_key = lambda t: t["TagKey"]  # noqa: E731
    assert sorted(west.list_resource_tags(KeyId=key_id)["Tags"], key=by_key) == sorted(r["ReplicaTags"], key=by_key)
    assert east.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "side", "TagValue": "east"}]
    assert json.loads(west.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == policy
    assert json.loads(east.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == default_policy(DEV_ACCOUNT)

    east.update_key_description(KeyId=key_id, Description="primary, renamed")
    assert describe(west, key_id)["Description"] == "replica"

    alias = unique_alias()
    west.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert west.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"] == key_arn(key_id, WEST)
    assert alias not in [a["AliasName"] for a in east.list_aliases(KeyId=key_id)["Aliases"]]

    west.disable_key(KeyId=key_id)
    assert state(west, key_id) == "Disabled" and state(east, key_id) == "Enabled"
    expect_error(lambda: west.encrypt(KeyId=key_id, Plaintext=b"x"), "DisabledException",
                 message=f"{key_arn(key_id, WEST)} is disabled.")
    blob = east.encrypt(KeyId=key_id, Plaintext=b"still works")["CiphertextBlob"]
    west.enable_key(KeyId=key_id)
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"still works"


@pytest.fixture
def unique_alias():
    return lambda: f"alias/mrk-{uuid.uuid4().hex[:12]}"


def test_replicate_key_errors(east, west, south, server):
    single = east.create_key()["KeyMetadata"]["KeyId"]
    # trent's wording for the three below (AWS does not publish it).
    expect_error(lambda: east.replicate_key(KeyId=single, ReplicaRegion=WEST), "UnsupportedOperationException",
                 startswith=f"{key_arn(single, EAST)} is not a multi-Region key.")

    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    # AWS's words (recorded).
    expect_error(lambda: west.replicate_key(KeyId=key_id, ReplicaRegion=SOUTH), "UnsupportedOperationException",
                 message=f"{key_arn(key_id, WEST)} is not a multi-region primary key.")
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion=WEST), "AlreadyExistsException",
                 contains=WEST)
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion=EAST), "AlreadyExistsException",
                 contains=EAST)

    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion="Mars-1"), "ValidationException",
                 message=coral("Value 'Mars-1' at 'replicaRegion' failed to satisfy constraint: "
                               "Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$"))
    missing = "mrk-" + "0" * 32
    expect_error(lambda: east.replicate_key(KeyId=missing, ReplicaRegion=WEST), "NotFoundException",
                 message=not_found_key_message(missing, EAST))
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion=SOUTH, Tags=[{"TagKey": "aws:x", "TagValue": ""}]),
                 "TagException", message="Tags beginning with aws: are reserved")
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion=SOUTH, Policy="{not json"),
                 "MalformedPolicyDocumentException")
    # None of the refused requests made a replica.
    expect_error(lambda: south.describe_key(KeyId=key_id), "NotFoundException")

    east.disable_key(KeyId=key_id)
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion=SOUTH), "DisabledException",
                 message=f"{key_arn(key_id, EAST)} is disabled.")
    east.enable_key(KeyId=key_id)


def test_the_cli_replicates_a_key(east, server):
    key_id = new_mrk(east)
    env = cli_env(region=EAST)
    res = run_aws_cli(server.endpoint, ["replicate-key", "--key-id", key_id, "--replica-region", SOUTH,
                                        "--description", "from the cli"], env=env)
    assert res.returncode == 0, res.stderr
    md = res.json["ReplicaKeyMetadata"]
    assert md["Arn"] == key_arn(key_id, SOUTH) and md["Description"] == "from the cli"
    assert md["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"

    res = run_aws_cli(server.endpoint, ["replicate-key", "--key-id", key_id, "--replica-region", SOUTH], env=env)
    assert res.returncode != 0 and res.error_code == "AlreadyExistsException"


# ---------------------------------------------------------------------------------- UpdatePrimaryRegion


def test_update_primary_region_swaps_the_roles(east, west, south, server):
    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    replicate(east, south, key_id, SOUTH)
    east.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)

    r = east.update_primary_region(KeyId=key_id, PrimaryRegion=WEST)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    for kms, kind in ((east, "REPLICA"), (west, "PRIMARY"), (south, "REPLICA")):
        mrc = describe(kms, key_id)["MultiRegionConfiguration"]
        assert mrc["MultiRegionKeyType"] == kind
        assert mrc["PrimaryKey"] == entry(key_id, WEST)
        assert sorted(mrc["ReplicaKeys"], key=lambda e: e["Region"]) == [entry(key_id, SOUTH), entry(key_id, EAST)]
    assert state(east, key_id) == "Enabled" and state(west, key_id) == "Enabled"

    # Rotation settings moved with the primary: set on the new primary, shown by every key.
    status = west.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180
    assert east.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    expect_error(lambda: east.disable_key_rotation(KeyId=key_id), "UnsupportedOperationException")
    west.disable_key_rotation(KeyId=key_id)
    assert east.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False

    # Only the new primary replicates now.
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion="ca-central-1"),
                 "UnsupportedOperationException")
    west.replicate_key(KeyId=key_id, ReplicaRegion="ca-central-1")

    # And back, through the AWS CLI.
    res = run_aws_cli(server.endpoint, ["update-primary-region", "--key-id", key_id, "--primary-region", EAST],
                      env=cli_env(region=WEST))
    assert res.returncode == 0, res.stderr
    assert describe(east, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    assert describe(west, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    blob = south.encrypt(KeyId=key_id, Plaintext=b"any region")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=blob)["Plaintext"] == b"any region"


def test_update_primary_region_errors(east, west, south):
    single = east.create_key()["KeyMetadata"]["KeyId"]
    expect_error(lambda: east.update_primary_region(KeyId=single, PrimaryRegion=WEST), "UnsupportedOperationException")
    key_id = new_mrk(east)
    # A region without a replica: the key there does not exist (trent's choice).
    expect_error(lambda: east.update_primary_region(KeyId=key_id, PrimaryRegion=WEST), "NotFoundException",
                 message=not_found_key_message(key_id, WEST))
    replicate(east, west, key_id, WEST)
    expect_error(lambda: west.update_primary_region(KeyId=key_id, PrimaryRegion=EAST), "UnsupportedOperationException")
    expect_error(lambda: east.update_primary_region(KeyId=key_id, PrimaryRegion=EAST), "UnsupportedOperationException")
    # "Both the primary key and the replica key must be in the Enabled key state."
    west.disable_key(KeyId=key_id)
    expect_error(lambda: east.update_primary_region(KeyId=key_id, PrimaryRegion=WEST), "DisabledException",
                 message=f"{key_arn(key_id, WEST)} is disabled.")
    west.enable_key(KeyId=key_id)
    expect_error(lambda: east.update_primary_region(KeyId=key_id, PrimaryRegion="nowhere"), "ValidationException")
    assert describe(east, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


# ---------------------------------------------------------------------------------- deletion


def test_a_primary_with_replicas_waits_for_them_to_be_deleted(east, west, server):
    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    r = east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert r["KeyId"] == key_arn(key_id, EAST)
    assert r["KeyState"] == "PendingReplicaDeletion"
    assert r["PendingWindowInDays"] == 7
    assert "DeletionDate" not in r
    md = describe(east, key_id)
    assert md["KeyState"] == "PendingReplicaDeletion" and md["Enabled"] is False
    assert md["PendingDeletionWindowInDays"] == 7 and "DeletionDate" not in md
    expect_error(lambda: east.encrypt(KeyId=key_id, Plaintext=b"x"), "KMSInvalidStateException")
    expect_error(lambda: east.replicate_key(KeyId=key_id, ReplicaRegion=SOUTH), "KMSInvalidStateException")
    expect_error(lambda: east.schedule_key_deletion(KeyId=key_id), "KMSInvalidStateException")
    # The replica is untouched and the wait has no end while it exists.
    assert west.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"] == key_arn(key_id, WEST)
    advance(server.endpoint, 40 * DAY)
    assert state(east, key_id) == "PendingReplicaDeletion"

    r = west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert r["KeyState"] == "PendingDeletion" and "DeletionDate" in r
    advance(server.endpoint, 7 * DAY + 3600)
    expect_error(lambda: west.describe_key(KeyId=key_id), "NotFoundException")
    # Once the last replica is gone (not just scheduled) the primary's own window starts.
    now = advance(server.endpoint, 0)
    assert wait_until(lambda: state(east, key_id) == "PendingDeletion", timeout=10)
    md = describe(east, key_id)
    assert abs(md["DeletionDate"].timestamp() - (now + 7 * DAY)) < 120
    assert md["MultiRegionConfiguration"]["ReplicaKeys"] == []
    advance(server.endpoint, 7 * DAY + 3600)
    expect_error(lambda: east.describe_key(KeyId=key_id), "NotFoundException",
                 message=not_found_key_message(key_id, EAST))


def test_a_primary_without_replicas_is_deleted_as_any_key(east):
    key_id = new_mrk(east)
    r = east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert r["KeyState"] == "PendingDeletion" and "DeletionDate" in r


def test_pending_replica_deletion_can_be_cancelled(east, west):
    # AWS does not say; trent lets it be cancelled, to Disabled as from PendingDeletion.
    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    east.schedule_key_deletion(KeyId=key_id)
    assert state(east, key_id) == "PendingReplicaDeletion"
    r = east.cancel_key_deletion(KeyId=key_id)
    assert r["KeyId"] == key_arn(key_id, EAST)
    md = describe(east, key_id)
    assert md["KeyState"] == "Disabled"
    assert "PendingDeletionWindowInDays" not in md and "DeletionDate" not in md
    east.enable_key(KeyId=key_id)
    assert east.encrypt(KeyId=key_id, Plaintext=b"back")["KeyId"] == key_arn(key_id, EAST)


# ---------------------------------------------------------------------------------- rotation


def test_on_demand_rotation_of_the_primary_reaches_the_replica(east, west):
    key_id = new_mrk(east)
    replicate(east, west, key_id, WEST)
    before = describe(east, key_id)["CurrentKeyMaterialId"]
    old_blob = west.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    east.rotate_key_on_demand(KeyId=key_id)
    assert wait_until(lambda: describe(east, key_id)["CurrentKeyMaterialId"] != before, timeout=10)
    after = describe(east, key_id)["CurrentKeyMaterialId"]
    assert describe(west, key_id)["CurrentKeyMaterialId"] == after

    blob = west.encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    out = east.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"after" and out["KeyMaterialId"] == after
    blob = east.encrypt(KeyId=key_id, Plaintext=b"after, east")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after, east"
    assert east.decrypt(CiphertextBlob=old_blob)["KeyMaterialId"] == before
    expect_error(lambda: west.rotate_key_on_demand(KeyId=key_id), "UnsupportedOperationException")


def test_automatic_rotation_of_the_primary_reaches_the_replica(east, west, server):
    key_id = new_mrk(east)
    east.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    replicate(east, west, key_id, WEST)
    before = describe(west, key_id)["CurrentKeyMaterialId"]
    advance(server.endpoint, 91 * DAY)
    after = describe(east, key_id)["CurrentKeyMaterialId"]
    assert after != before
    assert describe(west, key_id)["CurrentKeyMaterialId"] == after
    blob = east.encrypt(KeyId=key_id, Plaintext=b"rotated")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == after
