"""Aliases through boto3: CreateAlias, UpdateAlias, DeleteAlias, ListAliases (KeyId filter,
pagination) and the naming rules."""

from __future__ import annotations

import uuid

import pytest

from kmsutil import (
    ALIAS_PREFIX_MESSAGE,
    DEV_ACCOUNT,
    REGION,
    alias_arn,
    alias_not_found_message,
    assert_recent,
    coral,
    expect_error,
    not_found_key_message,
)


def _aliases_of(kms, key_id=None, **kw):
    args = dict(kw)
    if key_id:
        args["KeyId"] = key_id
    out = []
    for page in kms.get_paginator("list_aliases").paginate(**args):
        out.extend(page["Aliases"])
    return out


def test_create_alias_and_list_it(kms, key, unique):
    name = f"alias/{unique('create')}"
    resp = kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200

    entries = [a for a in _aliases_of(kms) if a["AliasName"] == name]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["AliasArn"] == alias_arn(name)
    assert entry["TargetKeyId"] == key["KeyId"]  # the key id, not its ARN
    assert_recent(entry["CreationDate"])
    assert_recent(entry["LastUpdatedDate"])


def test_create_alias_with_key_arn(kms, key, unique):
    name = f"alias/{unique('byarn')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["Arn"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_list_aliases_key_id_filter(kms, new_key, unique):
    a, b = new_key(), new_key()
    names_a = sorted(f"alias/{unique('fa')}" for _ in range(3))
    names_b = [f"alias/{unique('fb')}"]
    for n in names_a:
        kms.create_alias(AliasName=n, TargetKeyId=a["KeyId"])
    for n in names_b:
        kms.create_alias(AliasName=n, TargetKeyId=b["KeyId"])

    for ident in (a["KeyId"], a["Arn"]):
        got = _aliases_of(kms, key_id=ident)
        assert sorted(x["AliasName"] for x in got) == names_a
        assert all(x["TargetKeyId"] == a["KeyId"] for x in got)
    assert [x["AliasName"] for x in _aliases_of(kms, key_id=b["KeyId"])] == names_b
    # A key without aliases lists none.
    assert kms.list_aliases(KeyId=new_key()["KeyId"])["Aliases"] == []


def test_list_aliases_key_id_filter_unknown_key(kms):
    kid = str(uuid.uuid4())
    expect_error(lambda: kms.list_aliases(KeyId=kid), "NotFoundException", not_found_key_message(kid))


def test_list_aliases_pagination(kms, key, unique):
    names = {f"alias/{unique('page')}" for _ in range(5)}
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=key["KeyId"])
    pages, marker = [], None
    while True:
        args = {"KeyId": key["KeyId"], "Limit": 2}
        if marker:
            args["Marker"] = marker
        page = kms.list_aliases(**args)
        pages.append(page)
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p["Aliases"]) for p in pages] == [2, 2, 1]
    seen = [a["AliasName"] for p in pages for a in p["Aliases"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == names


def test_list_aliases_pagination_over_all_aliases(reset, kms, new_key, unique):
    k = new_key()
    names = {f"alias/{unique('all')}" for _ in range(4)}
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=k["KeyId"])
    pages = list(kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 3}))
    assert all(len(p["Aliases"]) <= 3 for p in pages)
    seen = [a["AliasName"] for p in pages for a in p["Aliases"]]
    assert len(seen) == len(set(seen))
    # AWS also lists AWS managed aliases (alias/aws/...); ours are all there.
    assert names <= set(seen)
    assert all(s in names or s.startswith("alias/aws/") for s in seen)


@pytest.mark.parametrize(
    "limit,constraint",
    [(0, "Member must have value greater than or equal to 1"), (101, "Member must have value less than or equal to 100")],
    ids=["too-small", "too-large"],
)
def test_list_aliases_limit_range(kms_raw, limit, constraint):
    expect_error(
        lambda: kms_raw.list_aliases(Limit=limit),
        "ValidationException",
        coral(f"Value '{limit}' at 'limit' failed to satisfy constraint: {constraint}"),
    )


def test_alias_must_start_with_prefix(kms, key):
    resp = expect_error(
        lambda: kms.create_alias(AliasName="no-prefix", TargetKeyId=key["KeyId"]),
        "ValidationException",
        startswith=ALIAS_PREFIX_MESSAGE,
    )
    # AWS continues: ' Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html'
    assert "kms-alias" in resp["Error"]["Message"]


def test_alias_reserved_aws_prefix(kms, key):
    # alias/aws/ is reserved for AWS managed keys. Real KMS's exact code for this is not documented
    # (NotAuthorizedException has been observed); accept the plausible ones, status 400.
    expect_error(
        lambda: kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=key["KeyId"]),
        {"NotAuthorizedException", "InvalidAliasNameException", "ValidationException"},
    )


def test_alias_invalid_characters(kms, key):
    name = "alias/bad name!"
    expect_error(
        lambda: kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"]),
        "ValidationException",
        coral(
            f"Value '{name}' at 'aliasName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        ),
    )


def test_alias_name_length(kms, key):
    ok = "alias/" + "a" * 250  # 256 characters
    kms.create_alias(AliasName=ok, TargetKeyId=key["KeyId"])
    try:
        assert kms.describe_key(KeyId=ok)["KeyMetadata"]["KeyId"] == key["KeyId"]
    finally:
        kms.delete_alias(AliasName=ok)
    long = "alias/" + "a" * 251  # 257
    expect_error(
        lambda: kms.create_alias(AliasName=long, TargetKeyId=key["KeyId"]),
        "ValidationException",
        coral(f"Value '{long}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"),
    )


def test_alias_allowed_characters(kms, key, unique):
    name = f"alias/{unique('Ok_chars')}/sub-dir_9"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_alias_already_exists(kms, new_key, unique):
    a, b = new_key(), new_key()
    name = f"alias/{unique('dup')}"
    kms.create_alias(AliasName=name, TargetKeyId=a["KeyId"])
    expect_error(
        lambda: kms.create_alias(AliasName=name, TargetKeyId=b["KeyId"]),
        "AlreadyExistsException",
        f"An alias with the name {alias_arn(name)} already exists",
    )
    # Unchanged.
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == a["KeyId"]


def test_alias_names_are_per_region(kms, kms_factory, unique):
    name = f"alias/{unique('region')}"
    us = kms.create_key()["KeyMetadata"]
    eu_client = kms_factory(region="eu-west-1")
    eu = eu_client.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=name, TargetKeyId=us["KeyId"])
    eu_client.create_alias(AliasName=name, TargetKeyId=eu["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == us["KeyId"]
    assert eu_client.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == eu["KeyId"]


def test_create_alias_for_unknown_key(kms, unique):
    kid = str(uuid.uuid4())
    expect_error(
        lambda: kms.create_alias(AliasName=f"alias/{unique('nokey')}", TargetKeyId=kid),
        "NotFoundException",
        not_found_key_message(kid),
    )


def test_create_alias_target_must_be_a_key(kms, key, unique):
    first = f"alias/{unique('first')}"
    kms.create_alias(AliasName=first, TargetKeyId=key["KeyId"])
    # AWS's answer (recorded): an alias name or an alias ARN, existing or not, is refused.
    for target in (first, alias_arn(first), f"alias/{unique('nowhere')}"):
        expect_error(
            lambda: kms.create_alias(AliasName=f"alias/{unique('second')}", TargetKeyId=target),
            "ValidationException",
            "Aliases must refer to keys. Not aliases",
        )


def test_alias_names_with_a_colon_are_refused(kms, new_key, unique):
    # The model's pattern allows ':', AWS does not (recorded answer).
    a, b = new_key(), new_key()
    expect_error(
        lambda: kms.create_alias(AliasName="alias/my:alias", TargetKeyId=a["KeyId"]),
        "ValidationException",
        "alias/my:alias contains invalid characters for an alias",
    )
    name = f"alias/{unique('colon')}"
    kms.create_alias(AliasName=name, TargetKeyId=a["KeyId"])
    expect_error(
        lambda: kms.update_alias(AliasName=name + ":x", TargetKeyId=b["KeyId"]),
        "ValidationException",
        f"{name}:x contains invalid characters for an alias",
    )
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == a["KeyId"]
    assert not [x for x in _aliases_of(kms) if ":" in x["AliasName"]]


def test_update_alias(kms, new_key, unique):
    a, b = new_key(), new_key()
    name = f"alias/{unique('upd')}"
    kms.create_alias(AliasName=name, TargetKeyId=a["KeyId"])
    before = [x for x in _aliases_of(kms, key_id=a["KeyId"]) if x["AliasName"] == name][0]

    resp = kms.update_alias(AliasName=name, TargetKeyId=b["KeyId"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == b["KeyId"]
    assert [x["AliasName"] for x in _aliases_of(kms, key_id=a["KeyId"])] == []
    after = [x for x in _aliases_of(kms, key_id=b["KeyId"]) if x["AliasName"] == name][0]
    assert after["TargetKeyId"] == b["KeyId"]
    assert after["CreationDate"] == before["CreationDate"]
    assert after["LastUpdatedDate"] >= before["LastUpdatedDate"]
    # Encrypt through the alias now uses the new key.
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == b["Arn"]

    kms.update_alias(AliasName=name, TargetKeyId=a["Arn"])  # by ARN
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == a["KeyId"]


def test_update_alias_errors(kms, key, unique):
    missing = f"alias/{unique('missing')}"
    expect_error(
        lambda: kms.update_alias(AliasName=missing, TargetKeyId=key["KeyId"]),
        "NotFoundException",
        alias_not_found_message(missing),
    )
    name = f"alias/{unique('upderr')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kid = str(uuid.uuid4())
    expect_error(
        lambda: kms.update_alias(AliasName=name, TargetKeyId=kid), "NotFoundException", not_found_key_message(kid)
    )


def test_update_alias_needs_the_same_key_type_and_usage(kms, key, unique):
    # AWS: both keys symmetric, both asymmetric or both HMAC, and of one key usage; the spec may
    # differ within a type.
    def make(spec, usage):
        return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]

    ec_sign = make("ECC_NIST_P256", "SIGN_VERIFY")
    ed_sign = make("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    ec_agree = make("ECC_NIST_P384", "KEY_AGREEMENT")
    hmac_256 = make("HMAC_256", "GENERATE_VERIFY_MAC")
    hmac_512 = make("HMAC_512", "GENERATE_VERIFY_MAC")
    kem = make("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")

    name = f"alias/{unique('types')}"
    kms.create_alias(AliasName=name, TargetKeyId=ec_sign["KeyId"])
    kms.update_alias(AliasName=name, TargetKeyId=ed_sign["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == ed_sign["KeyId"]

    def refused(target, frm):
        expect_error(
            lambda: kms.update_alias(AliasName=name, TargetKeyId=target["KeyId"]),
            "ValidationException",
            f"Alias {alias_arn(name)} points to a key of spec {frm['KeySpec']} and usage {frm['KeyUsage']}; "
            f"it cannot be moved to a key of spec {target['KeySpec']} and usage {target['KeyUsage']}.",
        )

    refused(ec_agree, ed_sign)  # same type, other usage
    refused(key, ed_sign)  # symmetric
    refused(kem, ed_sign)
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == ed_sign["KeyId"]

    mac = f"alias/{unique('mac')}"
    kms.create_alias(AliasName=mac, TargetKeyId=hmac_256["KeyId"])
    kms.update_alias(AliasName=mac, TargetKeyId=hmac_512["KeyId"])
    assert kms.describe_key(KeyId=mac)["KeyMetadata"]["KeyId"] == hmac_512["KeyId"]


def test_delete_alias(kms, key, unique):
    name = f"alias/{unique('del')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    resp = kms.delete_alias(AliasName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert name not in [a["AliasName"] for a in _aliases_of(kms, key_id=key["KeyId"])]
    expect_error(lambda: kms.describe_key(KeyId=name), "NotFoundException", alias_not_found_message(name))
    expect_error(lambda: kms.delete_alias(AliasName=name), "NotFoundException", alias_not_found_message(name))
    # The key is untouched, and the name is free again.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])


def test_delete_alias_requires_prefix(kms):
    expect_error(lambda: kms.delete_alias(AliasName="no-prefix"), "ValidationException", startswith=ALIAS_PREFIX_MESSAGE)


def test_fifty_aliases_per_key(kms, key, unique):
    for _ in range(50):
        kms.create_alias(AliasName=f"alias/{unique('fifty')}", TargetKeyId=key["KeyId"])
    # The 51st exceeds the per-key quota. AWS's message is not documented: code and status.
    expect_error(
        lambda: kms.create_alias(AliasName=f"alias/{unique('fifty')}", TargetKeyId=key["KeyId"]),
        "LimitExceededException",
    )
    assert len(_aliases_of(kms, key_id=key["KeyId"])) == 50


def test_alias_arn_usable_as_key_id(kms, key, unique):
    name = f"alias/{unique('arn')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    arn = f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}"
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == key["Arn"]
