"""The awsJson1_1 wire protocol, with raw HTTP requests signed by botocore's SigV4Auth:
targets, bodies, error shapes, headers, timestamps."""

from __future__ import annotations

import re

import base64
import json
import uuid

import pytest

from kmsutil import (
    DEV_ACCOUNT,
    JSON_11,
    REGION,
    UUID_RE,
    coral,
    key_arn,
    kms_call,
    not_found_key_message,
    raw_call,
)


def _assert_error(r, code, status=400, message=None):
    assert r.status == status, f"HTTP {r.status}: {r.body[:300]!r}"
    assert r.error_code == code, f"expected {code}, got {r.error_code!r}: {r.body[:300]!r}"
    if message is not None:
        assert r.error_message == message
    assert r.headers.get("x-amzn-RequestId"), "error without x-amzn-RequestId"


def test_success_shape(dev_endpoint):
    r = kms_call(dev_endpoint, "CreateKey", {"Description": "raw"})
    assert r.status == 200
    assert r.headers.get("Content-Type", "").startswith(JSON_11)
    assert UUID_RE.match(r.headers["x-amzn-RequestId"].lower()), r.headers["x-amzn-RequestId"]
    md = r.json()["KeyMetadata"]
    # Timestamps are epoch seconds as JSON numbers; booleans are booleans.
    assert isinstance(md["CreationDate"], (int, float)) and not isinstance(md["CreationDate"], bool)
    assert md["Enabled"] is True and md["MultiRegion"] is False
    assert md["Arn"] == key_arn(md["KeyId"])
    # Absent optionals are omitted, not null.
    assert None not in md.values()
    assert "DeletionDate" not in md


def test_request_ids_are_unique(dev_endpoint):
    ids = {kms_call(dev_endpoint, "ListKeys", {"Limit": 1}).headers["x-amzn-RequestId"] for _ in range(5)}
    assert len(ids) == 5


def test_operations_without_output_send_empty_or_empty_object(dev_endpoint):
    kid = kms_call(dev_endpoint, "CreateKey", {}).json()["KeyMetadata"]["KeyId"]
    for op in ("DisableKey", "EnableKey"):
        r = kms_call(dev_endpoint, op, {"KeyId": kid})
        assert r.status == 200
        assert r.body.strip() in (b"", b"{}")
        assert r.headers.get("x-amzn-RequestId")


@pytest.mark.parametrize("body", [b"", b"{}"])
def test_operation_without_required_input_takes_empty_body(dev_endpoint, body):
    r = raw_call(dev_endpoint, "TrentService.ListKeys", body)
    assert r.status == 200, r.body
    assert isinstance(r.json()["Keys"], list)
    r = raw_call(dev_endpoint, "TrentService.CreateKey", body)
    assert r.status == 200, r.body
    assert r.json()["KeyMetadata"]["KeyState"] == "Enabled"


def test_error_shape(dev_endpoint):
    kid = str(uuid.uuid4())
    r = kms_call(dev_endpoint, "DescribeKey", {"KeyId": kid})
    _assert_error(r, "NotFoundException", message=not_found_key_message(kid))
    doc = r.json()
    assert set(doc) <= {"__type", "message", "Message"}
    assert doc["__type"].split("#")[-1] == "NotFoundException"
    assert r.headers.get("Content-Type", "").startswith(JSON_11)


@pytest.mark.parametrize("target", ["TrentService.NoSuchOperation", "TrentService.", "TrentService.encrypt"])
def test_unknown_operation(dev_endpoint, target):
    r = raw_call(dev_endpoint, target, "{}")
    _assert_error(r, "UnknownOperationException")


def test_unknown_service_prefix(dev_endpoint):
    r = raw_call(dev_endpoint, "NotTrent.ListKeys", "{}")
    _assert_error(r, "UnknownOperationException")


@pytest.mark.parametrize(
    "body",
    [b'{"KeyId":', b"{not json}", b'{"KeyId": "a"} trailing', b"\xff\xfe\x00", b"{'KeyId': 'a'}"],
    ids=["truncated", "not-json", "trailing", "binary", "single-quotes"],
)
def test_malformed_json_is_serialization_exception(dev_endpoint, body):
    r = raw_call(dev_endpoint, "TrentService.DescribeKey", body)
    _assert_error(r, "SerializationException")


@pytest.mark.parametrize("body", [b"[]", b'"string"', b"42", b"null"], ids=["array", "string", "number", "null"])
def test_json_that_is_not_an_object(dev_endpoint, body):
    # Well-formed JSON of the wrong shape: a deserialization failure (SerializationException) in
    # AWS's stack; a server that reads it as an empty input then fails validation is also tolerable.
    r = raw_call(dev_endpoint, "TrentService.DescribeKey", body)
    assert r.status == 400, r.body
    assert r.error_code in {"SerializationException", "ValidationException"}, r.body


@pytest.mark.parametrize(
    "op,payload",
    [
        ("DescribeKey", {"KeyId": 123}),
        ("DescribeKey", {"KeyId": {"nested": True}}),
        ("GenerateRandom", {"NumberOfBytes": "thirty-two"}),
        ("GenerateRandom", {"NumberOfBytes": [32]}),
        ("Encrypt", {"KeyId": "alias/x", "Plaintext": 12345}),
        ("Encrypt", {"KeyId": "alias/x", "Plaintext": "!!! not base64 !!!"}),
        ("Encrypt", {"KeyId": "alias/x", "Plaintext": "eA==", "EncryptionContext": ["a", "b"]}),
        ("Encrypt", {"KeyId": "alias/x", "Plaintext": "eA==", "EncryptionContext": {"a": 1}}),
        ("TagResource", {"KeyId": "alias/x", "Tags": "a=b"}),
        ("ListKeys", {"Limit": "many"}),
        ("CreateKey", {"MultiRegion": "yes"}),
    ],
    ids=lambda v: v if isinstance(v, str) else json.dumps(v)[:40],
)
def test_wrong_member_types(dev_endpoint, op, payload):
    r = kms_call(dev_endpoint, op, payload)
    assert r.status == 400, r.body
    assert r.error_code in {"SerializationException", "ValidationException"}, r.body


def test_missing_required_member_is_coral_validation(dev_endpoint):
    r = kms_call(dev_endpoint, "DescribeKey", {})
    _assert_error(
        r, "ValidationException", message=coral("Value null at 'keyId' failed to satisfy constraint: Member must not be null")
    )
    r = kms_call(dev_endpoint, "CreateAlias", {})
    _assert_error(r, "ValidationException")
    assert r.error_message.startswith("2 validation errors detected: ")
    assert "Value null at 'aliasName' failed to satisfy constraint: Member must not be null" in r.error_message
    assert "Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null" in r.error_message


def test_several_violations_are_counted(dev_endpoint):
    r = kms_call(dev_endpoint, "ListKeys", {"Limit": 0, "Marker": ""})
    _assert_error(r, "ValidationException")
    assert r.error_message.startswith("2 validation errors detected: "), r.error_message
    assert "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1" in r.error_message


def test_coral_validation_over_raw_http(dev_endpoint):
    r = kms_call(dev_endpoint, "GenerateRandom", {"NumberOfBytes": 1025})
    _assert_error(
        r,
        "ValidationException",
        message=coral("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
    )


def test_blobs_are_base64_both_ways(dev_endpoint):
    kid = kms_call(dev_endpoint, "CreateKey", {}).json()["KeyMetadata"]["KeyId"]
    pt = bytes(range(256))
    r = kms_call(dev_endpoint, "Encrypt", {"KeyId": kid, "Plaintext": base64.b64encode(pt).decode()})
    assert r.status == 200, r.body
    doc = r.json()
    blob = base64.b64decode(doc["CiphertextBlob"], validate=True)
    assert doc["KeyId"] == key_arn(kid)
    r = kms_call(dev_endpoint, "Decrypt", {"CiphertextBlob": base64.b64encode(blob).decode()})
    assert r.status == 200, r.body
    assert base64.b64decode(r.json()["Plaintext"]) == pt


def test_unknown_members_are_ignored(dev_endpoint):
    # Newer SDKs send members an older server does not know (DryRunModifiers, Recipient, ...);
    # awsJson services ignore unknown members, so those clients keep working.
    r = kms_call(dev_endpoint, "CreateKey", {"Description": "extra", "SomethingNew": {"x": 1}})
    assert r.status == 200, r.body


def test_region_comes_from_the_credential_scope(dev_endpoint):
    r = kms_call(dev_endpoint, "CreateKey", {}, region="ap-southeast-2")
    assert r.status == 200, r.body
    md = r.json()["KeyMetadata"]
    assert md["Arn"] == f"arn:aws:kms:ap-southeast-2:{DEV_ACCOUNT}:key/{md['KeyId']}"
    r = kms_call(dev_endpoint, "DescribeKey", {"KeyId": md["KeyId"]}, region=REGION)
    _assert_error(r, "NotFoundException", message=not_found_key_message(md["KeyId"]))


def test_dev_server_announces_itself_in_two_lines(dev_server):
    # `trent serve --dev` prints its admin listener, then its API endpoint once both are bound.
    assert len(dev_server.stdout_lines) == 2
    assert re.fullmatch(r"trent admin listening on http://127\.0\.0\.1:\d+", dev_server.stdout_lines[0])
    assert dev_server.stdout_lines[1] == f"trent listening on {dev_server.endpoint}"
