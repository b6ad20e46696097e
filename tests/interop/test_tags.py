"""Tags through boto3: TagResource, UntagResource, ListResourceTags and the tag rules."""

from __future__ import annotations

import uuid

import pytest

from kmsutil import coral, expect_error, not_found_key_message


def _tags(kms, key_id) -> dict:
    out = {}
    for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id):
        for t in page["Tags"]:
            assert t["TagKey"] not in out, "tag listed twice"
            out[t["TagKey"]] = t["TagValue"]
    return out


def test_tag_list_untag(kms, key):
    kid = key["KeyId"]
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == []
    resp = kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": ""}])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = kms.list_resource_tags(KeyId=kid)
    assert listed["Truncated"] is False
    assert "NextMarker" not in listed
    assert _tags(kms, kid) == {"a": "1", "b": ""}

    # Tagging an existing key replaces its value; others stay.
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "a", "TagValue": "2"}, {"TagKey": "c", "TagValue": "3"}])
    assert _tags(kms, kid) == {"a": "2", "b": "", "c": "3"}

    resp = kms.untag_resource(KeyId=kid, TagKeys=["a", "c"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _tags(kms, kid) == {"b": ""}
    # Untagging a tag that is not there is a no-op.
    kms.untag_resource(KeyId=key["Arn"], TagKeys=["never-there"])
    assert _tags(kms, kid) == {"b": ""}


def test_tags_are_case_sensitive(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "Env", "TagValue": "A"}, {"TagKey": "env", "TagValue": "a"}])
    assert _tags(kms, key["KeyId"]) == {"Env": "A", "env": "a"}


def test_list_resource_tags_pagination(kms, key):
    tags = {f"k{i}": f"v{i}" for i in range(5)}
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])
    pages, marker = [], None
    while True:
        args = {"KeyId": key["KeyId"], "Limit": 2}
        if marker:
            args["Marker"] = marker
        page = kms.list_resource_tags(**args)
        pages.append(page)
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p["Tags"]) for p in pages] == [2, 2, 1]
    assert {t["TagKey"]: t["TagValue"] for p in pages for t in p["Tags"]} == tags


@pytest.mark.parametrize(
    "limit,constraint",
    [(0, "Member must have value greater than or equal to 1"), (51, "Member must have value less than or equal to 50")],
    ids=["too-small", "too-large"],
)
def test_list_resource_tags_limit_range(kms_raw, key, limit, constraint):
    expect_error(
        lambda: kms_raw.list_resource_tags(KeyId=key["KeyId"], Limit=limit),
        "ValidationException",
        coral(f"Value '{limit}' at 'limit' failed to satisfy constraint: {constraint}"),
    )


def test_duplicate_tag_keys(kms, key):
    expect_error(
        lambda: kms.tag_resource(
            KeyId=key["KeyId"], Tags=[{"TagKey": "x", "TagValue": "1"}, {"TagKey": "x", "TagValue": "2"}]
        ),
        "TagException",
        "Duplicate tag keys",
    )
    assert _tags(kms, key["KeyId"]) == {}
    expect_error(
        lambda: kms.create_key(Tags=[{"TagKey": "x", "TagValue": "1"}, {"TagKey": "x", "TagValue": "2"}]),
        "TagException",
        "Duplicate tag keys",
    )


def test_reserved_aws_prefix(kms, key):
    expect_error(
        lambda: kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "aws:owner", "TagValue": "me"}]),
        "TagException",
        "Tags beginning with aws: are reserved",
    )
    expect_error(
        lambda: kms.create_key(Tags=[{"TagKey": "aws:owner", "TagValue": "me"}]),
        "TagException",
        "Tags beginning with aws: are reserved",
    )


def test_too_many_tags(kms, key):
    fifty = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(50)]
    kms.tag_resource(KeyId=key["KeyId"], Tags=fifty)
    assert len(_tags(kms, key["KeyId"])) == 50
    # Replacing an existing tag's value at 50 is fine ...
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "k0", "TagValue": "new"}])
    # ... a 51st is not.
    expect_error(
        lambda: kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "one-more", "TagValue": "v"}]),
        "TagException",
        "Too many tags",
    )
    assert len(_tags(kms, key["KeyId"])) == 50
    expect_error(
        lambda: kms.create_key(Tags=[{"TagKey": f"k{i}", "TagValue": "v"} for i in range(51)]),
        "TagException",
        "Too many tags",
    )


def test_tag_key_and_value_lengths(kms, kms_raw, key):
    k128, v256 = "k" * 128, "v" * 256
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": k128, "TagValue": v256}])
    assert _tags(kms, key["KeyId"]) == {k128: v256}

    k129 = "k" * 129
    expect_error(
        lambda: kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": k129, "TagValue": "v"}]),
        "ValidationException",
        coral(f"Value '{k129}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"),
    )
    v257 = "v" * 257
    expect_error(
        lambda: kms.tag_resource(
            KeyId=key["KeyId"], Tags=[{"TagKey": "fine", "TagValue": "v"}, {"TagKey": "long", "TagValue": v257}]
        ),
        "ValidationException",
        coral(f"Value '{v257}' at 'tags.2.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"),
    )
    expect_error(
        lambda: kms_raw.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "", "TagValue": "v"}]),
        "ValidationException",
        coral("Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1"),
    )
    assert _tags(kms, key["KeyId"]) == {k128: v256}


def test_tags_on_unknown_key(kms):
    kid = str(uuid.uuid4())
    msg = not_found_key_message(kid)
    expect_error(lambda: kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "b"}]), "NotFoundException", msg)
    expect_error(lambda: kms.untag_resource(KeyId=kid, TagKeys=["a"]), "NotFoundException", msg)
    expect_error(lambda: kms.list_resource_tags(KeyId=kid), "NotFoundException", msg)


def test_tags_do_not_accept_aliases(kms, key, unique):
    name = f"alias/{unique('tag')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    expect_error(
        lambda: kms.tag_resource(KeyId=name, Tags=[{"TagKey": "a", "TagValue": "b"}]),
        "NotFoundException",
        f"Invalid keyId '{name}'",
    )
    expect_error(lambda: kms.list_resource_tags(KeyId=name), "NotFoundException", f"Invalid keyId '{name}'")
