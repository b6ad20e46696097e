"""Key-state rules (reference section 5): what each operation answers for a key that is Disabled or
PendingDeletion, with the exact messages."""

from __future__ import annotations

import json

import pytest

from kmsutil import DEV_ACCOUNT, default_policy, expect_error

STATES = ["Disabled", "PendingDeletion"]


def _put_in_state(kms, key_id: str, state: str) -> None:
    if state == "Disabled":
        kms.disable_key(KeyId=key_id)
    elif state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == state


def _expected(state: str, arn: str) -> tuple[str, str]:
    if state == "Disabled":
        return "DisabledException", f"{arn} is disabled."
    return "KMSInvalidStateException", f"{arn} is pending deletion."


CRYPTO_OPS = ["Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("op", CRYPTO_OPS)
@pytest.mark.parametrize("via_alias", [False, True], ids=["by-id", "by-alias"])
def test_crypto_operations_refuse_unusable_keys(kms, new_key, unique, state, op, via_alias):
    k = new_key()
    arn = k["Arn"]
    ident = k["KeyId"]
    if via_alias:
        ident = f"alias/{unique('state')}"
        kms.create_alias(AliasName=ident, TargetKeyId=k["KeyId"])
    blob = kms.encrypt(KeyId=k["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    _put_in_state(kms, k["KeyId"], state)
    calls = {
        "Encrypt": lambda: kms.encrypt(KeyId=ident, Plaintext=b"x"),
        "Decrypt": lambda: kms.decrypt(CiphertextBlob=blob, **({"KeyId": ident} if via_alias else {})),
        "ReEncrypt": lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=ident),
        "GenerateDataKey": lambda: kms.generate_data_key(KeyId=ident, KeySpec="AES_256"),
        "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(
            KeyId=ident, NumberOfBytes=32
        ),
    }
    code, msg = _expected(state, arn)
    expect_error(calls[op], code, msg)


@pytest.mark.parametrize("state", STATES)
def test_re_encrypt_names_the_unusable_side(kms, new_key, state):
    good, bad = new_key(), new_key()
    from_bad = kms.encrypt(KeyId=bad["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    from_good = kms.encrypt(KeyId=good["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    _put_in_state(kms, bad["KeyId"], state)
    code, msg = _expected(state, bad["Arn"])
    # Source unusable.
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=from_bad, DestinationKeyId=good["KeyId"]), code, msg)
    # Destination unusable.
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=from_good, DestinationKeyId=bad["KeyId"]), code, msg)


@pytest.mark.parametrize("op", ["EnableKey", "DisableKey", "ScheduleKeyDeletion", "CreateAlias", "TagResource",
                                "UntagResource", "UpdateKeyDescription"])
def test_management_operations_refuse_pending_deletion(kms, key, unique, op):
    kid, arn = key["KeyId"], key["Arn"]
    _put_in_state(kms, kid, "PendingDeletion")
    calls = {
        "EnableKey": lambda: kms.enable_key(KeyId=kid),
        "DisableKey": lambda: kms.disable_key(KeyId=kid),
        "ScheduleKeyDeletion": lambda: kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7),
        "CreateAlias": lambda: kms.create_alias(AliasName=f"alias/{unique('pd')}", TargetKeyId=kid),
        "TagResource": lambda: kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "b"}]),
        "UntagResource": lambda: kms.untag_resource(KeyId=kid, TagKeys=["a"]),
        "UpdateKeyDescription": lambda: kms.update_key_description(KeyId=kid, Description="x"),
    }
    expect_error(calls[op], "KMSInvalidStateException", f"{arn} is pending deletion.")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_update_alias_to_pending_deletion_key(kms, new_key, unique):
    a, b = new_key(), new_key()
    name = f"alias/{unique('ua')}"
    kms.create_alias(AliasName=name, TargetKeyId=a["KeyId"])
    _put_in_state(kms, b["KeyId"], "PendingDeletion")
    expect_error(
        lambda: kms.update_alias(AliasName=name, TargetKeyId=b["KeyId"]),
        "KMSInvalidStateException",
        f"{b['Arn']} is pending deletion.",
    )
    # The other way round is fine: an alias of a key pending deletion may be moved off it.
    _put_in_state(kms, a["KeyId"], "PendingDeletion")
    c = new_key()
    kms.update_alias(AliasName=name, TargetKeyId=c["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == c["KeyId"]


def test_management_operations_work_on_disabled_keys(kms, key, unique):
    kid = key["KeyId"]
    _put_in_state(kms, kid, "Disabled")
    name = f"alias/{unique('dis')}"
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "b"}])
    kms.untag_resource(KeyId=kid, TagKeys=["a"])
    kms.update_key_description(KeyId=kid, Description="disabled but editable")
    kms.disable_key(KeyId=kid)
    md = kms.describe_key(KeyId=name)["KeyMetadata"]
    assert (md["KeyState"], md["Description"]) == ("Disabled", "disabled but editable")
    resp = kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert resp["KeyState"] == "PendingDeletion"


@pytest.mark.parametrize("state", STATES)
def test_read_operations_work_in_every_state(kms, key, unique, state):
    kid = key["KeyId"]
    name = f"alias/{unique('read')}"
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "t", "TagValue": "v"}])
    _put_in_state(kms, kid, state)

    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == state
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyState"] == state
    assert json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]) == default_policy(DEV_ACCOUNT)
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps(default_policy(DEV_ACCOUNT)))
    assert kms.list_key_policies(KeyId=kid)["PolicyNames"] == ["default"]
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "t", "TagValue": "v"}]
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=kid)["Aliases"]] == [name]
    kms.delete_alias(AliasName=name)
    assert kms.list_aliases(KeyId=kid)["Aliases"] == []


def test_disabled_key_works_again_after_enable(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    _put_in_state(kms, key["KeyId"], "Disabled")
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_pending_deletion_key_works_again_after_cancel_and_enable(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    _put_in_state(kms, key["KeyId"], "PendingDeletion")
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "DisabledException", f"{key['Arn']} is disabled.")
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
