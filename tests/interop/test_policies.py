"""Key policies through boto3: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies."""

from __future__ import annotations

import json
import uuid

import pytest

from kmsutil import DEV_ACCOUNT, default_policy, expect_error, not_found_key_message


def _allow_root_policy(extra_sid: str = "Added") -> dict:
    doc = default_policy(DEV_ACCOUNT)
    doc["Statement"].append(
        {
            "Sid": extra_sid,
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:user/alice"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "test"}},
        }
    )
    return doc


def test_default_key_policy(kms, key):
    resp = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert json.loads(resp["Policy"]) == default_policy(DEV_ACCOUNT)
    # PolicyName is optional since 2024 and defaults to "default".
    resp2 = kms.get_key_policy(KeyId=key["Arn"])
    assert json.loads(resp2["Policy"]) == default_policy(DEV_ACCOUNT)


def test_list_key_policies(kms, key):
    resp = kms.list_key_policies(KeyId=key["KeyId"])
    assert resp["PolicyNames"] == ["default"]
    assert resp["Truncated"] is False
    assert "NextMarker" not in resp
    assert kms.list_key_policies(KeyId=key["Arn"], Limit=1)["PolicyNames"] == ["default"]


def test_put_key_policy_round_trip(kms, key):
    doc = _allow_root_policy()
    text = json.dumps(doc, indent=2)
    resp = kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=text)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    # KMS keeps the document as given; compare as JSON so whitespace choices do not matter.
    assert json.loads(got) == doc
    # PolicyName is optional on PutKeyPolicy too.
    kms.put_key_policy(KeyId=key["Arn"], Policy=json.dumps(default_policy(DEV_ACCOUNT)))
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"])["Policy"]) == default_policy(DEV_ACCOUNT)


def test_put_key_policy_on_disabled_and_pending_deletion_keys(kms, new_key):
    for prep in ("disable", "schedule"):
        k = new_key()
        if prep == "disable":
            kms.disable_key(KeyId=k["KeyId"])
        else:
            kms.schedule_key_deletion(KeyId=k["KeyId"], PendingWindowInDays=7)
        doc = _allow_root_policy(prep)
        kms.put_key_policy(KeyId=k["KeyId"], PolicyName="default", Policy=json.dumps(doc))
        assert json.loads(kms.get_key_policy(KeyId=k["KeyId"], PolicyName="default")["Policy"]) == doc


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param('{"Version": "2012-10-17", "Statement": [', id="truncated-json"),
        pytest.param("[]", id="json-array"),
        pytest.param('"a string"', id="json-string"),
    ],
)
def test_put_key_policy_malformed_json(kms, key, policy):
    # AWS's message wording for these is not documented: code and status are asserted.
    expect_error(
        lambda: kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy),
        "MalformedPolicyDocumentException",
    )
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]) == default_policy(DEV_ACCOUNT)


def _stmt(**overrides) -> dict:
    s = {
        "Sid": "S",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    for k, v in overrides.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return s


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"Version": "2012-10-17"}, id="no-statement"),
        pytest.param({"Version": "2012-10-17", "Statement": []}, id="empty-statement"),
        pytest.param({"Version": "2012-10-17", "Statement": [_stmt(Effect="Maybe")]}, id="bad-effect"),
        pytest.param({"Version": "2012-10-17", "Statement": [_stmt(Effect=None)]}, id="no-effect"),
        pytest.param({"Version": "2012-10-17", "Statement": [_stmt(Action=None)]}, id="no-action"),
        pytest.param({"Version": "1999-01-01", "Statement": [_stmt()]}, id="bad-version"),
        pytest.param({"Version": "2012-10-17", "Statement": [_stmt(Bogus="x")]}, id="unknown-element"),
        pytest.param({"Version": "2012-10-17", "Statement": [_stmt(Principal=None)]}, id="no-principal"),
    ],
)
def test_put_key_policy_invalid_grammar(kms, key, doc):
    expect_error(
        lambda: kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(doc)),
        "MalformedPolicyDocumentException",
    )
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]) == default_policy(DEV_ACCOUNT)


def test_create_key_with_malformed_policy(kms):
    expect_error(lambda: kms.create_key(Policy="{nope"), "MalformedPolicyDocumentException")
    expect_error(
        lambda: kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [_stmt(Effect="Maybe")]})),
        "MalformedPolicyDocumentException",
    )


def test_key_policy_on_unknown_key(kms):
    kid = str(uuid.uuid4())
    msg = not_found_key_message(kid)
    expect_error(lambda: kms.get_key_policy(KeyId=kid, PolicyName="default"), "NotFoundException", msg)
    expect_error(lambda: kms.list_key_policies(KeyId=kid), "NotFoundException", msg)
    expect_error(
        lambda: kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps(default_policy(DEV_ACCOUNT))),
        "NotFoundException",
        msg,
    )


def test_key_policy_does_not_accept_aliases(kms, key, unique):
    name = f"alias/{unique('pol')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    expect_error(
        lambda: kms.get_key_policy(KeyId=name, PolicyName="default"), "NotFoundException", f"Invalid keyId '{name}'"
    )


def test_policy_name_other_than_default(kms, key):
    # Only "default" exists. AWS's code and message for another name are not documented;
    # NotFoundException is what a lookup of a missing policy gives.
    expect_error(lambda: kms.get_key_policy(KeyId=key["KeyId"], PolicyName="other"), {"NotFoundException", "ValidationException"})
