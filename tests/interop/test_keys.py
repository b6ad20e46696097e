"""Symmetric key lifecycle through boto3: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
EnableKey/DisableKey, ScheduleKeyDeletion/CancelKeyDeletion, identifiers and regions."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from kmsutil import (
    DEV_ACCOUNT,
    OTHER_REGION,
    REGION,
    TrentServer,
    alias_not_found_message,
    assert_request_id,
    assert_symmetric_metadata,
    coral,
    default_policy,
    expect_error,
    key_arn,
    make_kms_client,
    not_found_key_message,
    now_utc,
)


# ---------------------------------------------------------------------------------- CreateKey


def test_create_key_with_no_input_has_full_default_metadata(kms):
    resp = kms.create_key()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert_request_id(resp)
    md = resp["KeyMetadata"]
    assert_symmetric_metadata(md)

    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert_symmetric_metadata(described)
    assert described == md


def test_create_key_with_every_symmetric_member(kms):
    policy = default_policy(DEV_ACCOUNT)
    policy["Statement"].append(
        {
            "Sid": "Extra statement",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
        }
    )
    tags = [{"TagKey": "team", "TagValue": "crypto"}, {"TagKey": "env", "TagValue": ""}]
    md = kms.create_key(
        Description="all the members",
        Tags=tags,
        Policy=json.dumps(policy),
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Origin="AWS_KMS",
        MultiRegion=False,
        BypassPolicyLockoutSafetyCheck=False,
    )["KeyMetadata"]
    assert_symmetric_metadata(md, description="all the members")
    assert kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"] == md

    got_tags = kms.list_resource_tags(KeyId=md["KeyId"])["Tags"]
    assert sorted(got_tags, key=lambda t: t["TagKey"]) == sorted(tags, key=lambda t: t["TagKey"])
    got_policy = kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"]
    assert json.loads(got_policy) == policy


def test_create_key_deprecated_customer_master_key_spec(kms):
    md = kms.create_key(CustomerMasterKeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]
    assert_symmetric_metadata(md)


def test_create_key_ids_are_distinct(kms):
    ids = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}
    assert len(ids) == 5


def test_create_key_rejects_unknown_key_usage(kms):
    # The reference quotes AWS listing [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC], but its
    # own key-spec table has KEY_AGREEMENT and ENCAPSULATE_DECAPSULATE usages too, which a current
    # AWS lists as well. So: Coral wording exactly, the three in that order first, and nothing in the
    # set that is not a KMS key usage.
    resp = expect_error(lambda: kms.create_key(KeyUsage="RANDOM"), "ValidationException")
    msg = resp["Error"]["Message"]
    prefix = coral("Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [")
    assert msg.startswith(prefix) and msg.endswith("]"), msg
    listed = msg[len(prefix):-1].split(", ")
    assert listed[:3] == ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC"], msg
    assert set(listed) <= {"ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT",
                           "ENCAPSULATE_DECAPSULATE"}, msg


def test_create_key_rejects_unknown_key_spec(kms):
    resp = expect_error(
        lambda: kms.create_key(KeySpec="AES_512"),
        "ValidationException",
        startswith="1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: "
        "Member must satisfy enum value set: [",
    )
    assert "SYMMETRIC_DEFAULT" in resp["Error"]["Message"]


def test_create_key_description_too_long(kms):
    desc = "d" * 8193
    expect_error(
        lambda: kms.create_key(Description=desc),
        "ValidationException",
        coral(
            f"Value '{desc}' at 'description' failed to satisfy constraint: "
            "Member must have length less than or equal to 8192"
        ),
    )


def test_create_key_description_at_limit(kms):
    desc = "d" * 8192
    md = kms.create_key(Description=desc)["KeyMetadata"]
    assert md["Description"] == desc


def test_sm2_is_refused_and_creates_nothing(kms):
    # SM2 exists only in the China Regions.
    before = kms.list_keys()["Keys"]
    expect_error(
        lambda: kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY"),
        "ValidationException",
        "KeySpec SM2 is only available in the China Regions.",
    )
    assert kms.list_keys()["Keys"] == before


def test_create_key_with_external_origin_is_pending_import(kms):
    # Origin=EXTERNAL makes a key without material (PendingImport) until ImportKeyMaterial.
    md = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    assert md["Origin"] == "EXTERNAL"
    assert md["KeyState"] == "PendingImport"
    assert md["Enabled"] is False
    arn = md["Arn"]
    expect_error(lambda: kms.encrypt(KeyId=arn, Plaintext=b"x"), "KMSInvalidStateException", f"{arn} is pending import.")
    expect_error(
        lambda: kms.generate_data_key(KeyId=arn, KeySpec="AES_256"),
        "KMSInvalidStateException",
        f"{arn} is pending import.",
    )
    expect_error(lambda: kms.enable_key(KeyId=arn), "KMSInvalidStateException", f"{arn} is pending import.")
    # Operations that work in every state.
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingImport"
    kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "a", "TagValue": "b"}])
    kms.update_key_description(KeyId=arn, Description="still importing")


# -------------------------------------------------------------------------------- DescribeKey


def test_describe_key_by_every_identifier_form(kms, key, unique):
    alias = f"alias/{unique('describe')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for ident in (key["KeyId"], key["Arn"], alias, f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{alias}"):
        md = kms.describe_key(KeyId=ident)["KeyMetadata"]
        assert md["KeyId"] == key["KeyId"], ident
        assert md["Arn"] == key["Arn"], ident


def test_describe_unknown_key(kms):
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.describe_key(KeyId=kid), "NotFoundException", not_found_key_message(kid))
    expect_error(lambda: kms.describe_key(KeyId=key_arn(kid)), "NotFoundException", not_found_key_message(kid))


def test_describe_malformed_key_id(kms):
    expect_error(lambda: kms.describe_key(KeyId="nope"), "NotFoundException", "Invalid keyId 'nope'")


def test_describe_unknown_alias(kms):
    expect_error(
        lambda: kms.describe_key(KeyId="alias/does-not-exist"),
        "NotFoundException",
        alias_not_found_message("alias/does-not-exist"),
    )
    expect_error(
        lambda: kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:alias/does-not-exist"),
        "NotFoundException",
        alias_not_found_message("alias/does-not-exist"),
    )


def test_describe_key_requires_key_id(kms_raw):
    expect_error(
        lambda: kms_raw.describe_key(),
        "ValidationException",
        coral("Value null at 'keyId' failed to satisfy constraint: Member must not be null"),
    )


def test_keys_are_regional(kms, kms_factory, key):
    eu = kms_factory(region=OTHER_REGION)
    kid = key["KeyId"]
    expect_error(lambda: eu.describe_key(KeyId=kid), "NotFoundException", not_found_key_message(kid, OTHER_REGION))
    # The us-east-1 ARN, from a eu-west-1 caller.
    expect_error(lambda: eu.describe_key(KeyId=key["Arn"]), "NotFoundException", f"Invalid arn {REGION}")
    expect_error(
        lambda: eu.encrypt(KeyId=key["Arn"], Plaintext=b"x"), "NotFoundException", f"Invalid arn {REGION}"
    )
    listed = [k["KeyId"] for page in eu.get_paginator("list_keys").paginate() for k in page["Keys"]]
    assert kid not in listed

    # A key made in eu-west-1 lives there, with a eu-west-1 ARN.
    md = eu.create_key(Description="eu")["KeyMetadata"]
    assert_symmetric_metadata(md, region=OTHER_REGION, description="eu")
    expect_error(
        lambda: kms.describe_key(KeyId=md["KeyId"]), "NotFoundException", not_found_key_message(md["KeyId"])
    )
    # And a ciphertext made in us-east-1 does not decrypt in eu-west-1. AWS's exact answer is not
    # documented; the key does not exist there, so either of these codes is acceptable.
    blob = kms.encrypt(KeyId=kid, Plaintext=b"regional")["CiphertextBlob"]
    expect_error(lambda: eu.decrypt(CiphertextBlob=blob), {"InvalidCiphertextException", "NotFoundException"})


def test_dev_account_flag(tmp_path):
    server = TrentServer(
        ["serve", "--dev", "--in-memory", "--dev-account", "444455556666", "--listen", "127.0.0.1:0"],
        tmp_path / "stderr.log",
    ).start()
    try:
        client = make_kms_client(server.endpoint)
        md = client.create_key()["KeyMetadata"]
        assert_symmetric_metadata(md, account="444455556666")
        policy = json.loads(client.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])
        assert policy == default_policy("444455556666")
    finally:
        server.stop()


# ----------------------------------------------------------------------------------- ListKeys


def _list_all_keys(kms, **kw):
    pages, marker = [], None
    while True:
        args = dict(kw)
        if marker:
            args["Marker"] = marker
        page = kms.list_keys(**args)
        pages.append(page)
        if not page.get("Truncated"):
            assert "NextMarker" not in page
            return pages
        marker = page["NextMarker"]
        assert marker


def test_list_keys_pagination(reset, kms):
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}
    pages = _list_all_keys(kms, Limit=2)
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    assert [p["Truncated"] for p in pages] == [True, True, False]
    seen = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == made
    for p in pages:
        for k in p["Keys"]:
            assert set(k) == {"KeyId", "KeyArn"}
            assert k["KeyArn"] == key_arn(k["KeyId"])


def test_list_keys_without_limit_returns_everything_when_few(reset, kms):
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)}
    page = kms.list_keys()
    assert {k["KeyId"] for k in page["Keys"]} == made
    assert page["Truncated"] is False
    assert "NextMarker" not in page


def test_list_keys_default_limit_is_100(reset, kms):
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(101)}
    first = kms.list_keys()
    assert len(first["Keys"]) == 100
    assert first["Truncated"] is True
    second = kms.list_keys(Marker=first["NextMarker"])
    assert len(second["Keys"]) == 1
    assert second["Truncated"] is False
    assert {k["KeyId"] for k in first["Keys"] + second["Keys"]} == made


def test_list_keys_boto3_paginator(reset, kms):
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)}
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["Keys"]) for p in pages] == [3, 3, 1]
    assert {k["KeyId"] for p in pages for k in p["Keys"]} == made


def test_list_keys_includes_keys_in_every_state(reset, kms):
    a = kms.create_key()["KeyMetadata"]["KeyId"]
    b = kms.create_key()["KeyMetadata"]["KeyId"]
    c = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=b)
    kms.schedule_key_deletion(KeyId=c, PendingWindowInDays=7)
    assert {k["KeyId"] for k in kms.list_keys()["Keys"]} == {a, b, c}


@pytest.mark.parametrize(
    "limit,constraint",
    [(0, "Member must have value greater than or equal to 1"), (1001, "Member must have value less than or equal to 1000")],
    ids=["too-small", "too-large"],
)
def test_list_keys_limit_range(kms_raw, limit, constraint):
    expect_error(
        lambda: kms_raw.list_keys(Limit=limit),
        "ValidationException",
        coral(f"Value '{limit}' at 'limit' failed to satisfy constraint: {constraint}"),
    )


def test_list_keys_bad_marker(kms):
    # AWS's message for a marker it did not issue is not documented: code and status only.
    expect_error(lambda: kms.list_keys(Marker="not-a-marker-trent-issued"), "InvalidMarkerException")


# ------------------------------------------------------------------------ UpdateKeyDescription


def test_update_key_description(kms, key):
    kid = key["KeyId"]
    resp = kms.update_key_description(KeyId=kid, Description="new words")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "new words"
    kms.update_key_description(KeyId=key["Arn"], Description="")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == ""


def test_update_key_description_errors(kms, key, unique):
    kid = str(uuid.uuid4())
    expect_error(
        lambda: kms.update_key_description(KeyId=kid, Description="x"), "NotFoundException", not_found_key_message(kid)
    )
    desc = "x" * 8193
    expect_error(
        lambda: kms.update_key_description(KeyId=key["KeyId"], Description=desc),
        "ValidationException",
        coral(f"Value '{desc}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"),
    )
    # Aliases are not accepted where the model says key id or key ARN.
    alias = f"alias/{unique('upd')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    expect_error(
        lambda: kms.update_key_description(KeyId=alias, Description="x"), "NotFoundException", f"Invalid keyId '{alias}'"
    )


# ---------------------------------------------------------------------------- Enable / Disable


def test_disable_and_enable_key(kms, key):
    kid = key["KeyId"]
    resp = kms.disable_key(KeyId=kid)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert_symmetric_metadata(md, state="Disabled", description="interop test key")
    kms.disable_key(KeyId=key["Arn"])  # idempotent
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"

    kms.enable_key(KeyId=key["Arn"])
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert_symmetric_metadata(md, state="Enabled", description="interop test key")
    kms.enable_key(KeyId=kid)  # idempotent
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Enabled"] is True


def test_enable_disable_unknown_key(kms):
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.enable_key(KeyId=kid), "NotFoundException", not_found_key_message(kid))
    expect_error(lambda: kms.disable_key(KeyId=kid), "NotFoundException", not_found_key_message(kid))


# ------------------------------------------------------------------ ScheduleKeyDeletion / Cancel


def _assert_deletion_date(deletion_date: dt.datetime, days: int) -> None:
    expected = now_utc() + dt.timedelta(days=days)
    assert abs((deletion_date - expected).total_seconds()) < 86400, (deletion_date, expected)


def test_schedule_key_deletion_defaults_to_30_days(kms, key):
    resp = kms.schedule_key_deletion(KeyId=key["KeyId"])
    assert resp["KeyId"] == key["Arn"]
    assert resp["KeyState"] == "PendingDeletion"
    assert resp["PendingWindowInDays"] == 30
    _assert_deletion_date(resp["DeletionDate"], 30)

    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert_symmetric_metadata(md, state="PendingDeletion", description="interop test key")
    assert md["DeletionDate"] == resp["DeletionDate"]
    assert md["PendingDeletionWindowInDays"] == 30


@pytest.mark.parametrize("days", [7, 30])
def test_schedule_key_deletion_window_bounds(kms, key, days):
    resp = kms.schedule_key_deletion(KeyId=key["Arn"], PendingWindowInDays=days)
    assert resp["PendingWindowInDays"] == days
    assert resp["KeyId"] == key["Arn"]
    _assert_deletion_date(resp["DeletionDate"], days)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["PendingDeletionWindowInDays"] == days


@pytest.mark.parametrize("days", [6, 31, 365])
def test_schedule_key_deletion_window_out_of_range(kms, key, days):
    # AWS answers ValidationException; its wording has varied ("PendingWindowInDays must be between
    # 7 and 30" has been observed, as has Coral wording), so only the code, the status and that the
    # message names the member are asserted.
    resp = expect_error(
        lambda: kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=days), "ValidationException"
    )
    assert "pendingwindowindays" in resp["Error"]["Message"].lower()
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_cancel_key_deletion_leaves_key_disabled(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    resp = kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert resp["KeyId"] == key["Arn"]
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert_symmetric_metadata(md, state="Disabled", description="interop test key")
    expect_error(
        lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"), "DisabledException", f"{key['Arn']} is disabled."
    )
    kms.enable_key(KeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"back")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"back"


def test_cancel_key_deletion_by_arn(kms, key):
    kms.schedule_key_deletion(KeyId=key["Arn"])
    assert kms.cancel_key_deletion(KeyId=key["Arn"])["KeyId"] == key["Arn"]


@pytest.mark.parametrize("disabled", [False, True])
def test_cancel_key_deletion_when_not_pending(kms, key, disabled):
    if disabled:
        kms.disable_key(KeyId=key["KeyId"])
    expect_error(
        lambda: kms.cancel_key_deletion(KeyId=key["KeyId"]),
        "KMSInvalidStateException",
        f"{key['Arn']} is not pending deletion.",
    )


def test_schedule_and_cancel_unknown_key(kms):
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.schedule_key_deletion(KeyId=kid), "NotFoundException", not_found_key_message(kid))
    expect_error(lambda: kms.cancel_key_deletion(KeyId=kid), "NotFoundException", not_found_key_message(kid))
