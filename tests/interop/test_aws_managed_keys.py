"""AWS managed keys (`alias/aws/<service>`) through boto3 and the AWS CLI.

The predefined aliases are listed without a TargetKeyId until a request names one (DescribeKey,
Encrypt, Decrypt, GenerateDataKey, ReEncrypt, ...) and the caller would be allowed that request on
the key: that creates the key, KeyManager AWS, rotated every 365 days, under its service's AWS
managed key policy (AWS's own text, which differs from service to service). No such policy allows
management, so every management operation is refused with AccessDeniedException, as in AWS. A
caller that would not be allowed makes no key, and is answered as for any alias without one
(NotFoundException). trent leaves out AWS's kms:ViaService condition (it hosts no AWS services):
any principal of the account may use the key directly, as far as its service's policy allows.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import requests

from kmsutil import (
    DEV_ACCOUNT,
    OTHER_REGION,
    REGION,
    ConfiguredPrincipal,
    TrentServer,
    account_root_arn,
    alias_arn,
    alias_not_found_message,
    allow,
    assert_recent,
    deny,
    denied_message,
    expect_error,
    hidden_key_message,
    make_kms_client,
    now_utc,
    policy_doc,
)

DAY = 86_400
ROOT = account_root_arn(DEV_ACCOUNT)
B = "444455556666"  # another account
PREDEFINED = [
    "acm", "dynamodb", "ebs", "elasticfilesystem", "es", "glue", "kinesisvideo", "lambda", "rds",
    "redshift", "s3", "secretsmanager", "ssm", "xray",
]
PREDEFINED_ALIASES = [f"alias/aws/{s}" for s in PREDEFINED]


# GetKeyPolicy of the S3 and EBS keys: AWS's documents as read from real keys (us-east-1), less the
# kms:ViaService condition trent leaves out ("kms:ViaService" : "s3.us-east-1.amazonaws.com" and
# "ec2.us-east-1.amazonaws.com" in the first statement's StringEquals), in AWS's layout.
S3_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "auto-s3-2",
  "Statement" : [ {
    "Sid" : "Allow access through S3 for all principals in the account that are authorized to use S3",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "111122223333"
      }
    }
  }, {
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  } ]
}"""

EBS_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "auto-ebs-2",
  "Statement" : [ {
    "Sid" : "Allow access through EBS for all principals in the account that are authorized to use EBS",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "111122223333"
      }
    }
  }, {
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  } ]
}"""

# X-Ray's, with its third statement for the xray.amazonaws.com service principal.
XRAY_POLICY = {
    "Version": "2012-10-17",
    "Id": "auto-xray-1",
    "Statement": [
        {
            "Sid": "Allow access through X-Ray for all principals in the account that are authorized to use X-Ray",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant",
                       "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}},
        },
        {
            "Sid": "Allow direct access to key metadata to the account",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
            "Resource": "*",
        },
        {
            "Sid": "Allow X-Ray Service with service principal name xray.amazonaws.com to describe the key directly",
            "Effect": "Allow",
            "Principal": {"Service": "xray.amazonaws.com"},
            "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
            "Resource": "*",
        },
    ],
}

INCORRECT_KEY_MESSAGE = "The key ID in the request does not identify a CMK that can perform this operation."


def all_aliases(kms, **kw) -> list[dict]:
    out = []
    for page in kms.get_paginator("list_aliases").paginate(**kw):
        out.extend(page["Aliases"])
    return out


def alias_entry(kms, name: str) -> dict:
    [entry] = [a for a in all_aliases(kms) if a["AliasName"] == name]
    return entry


@pytest.fixture
def s3_key(kms) -> dict:
    """The AWS managed key of alias/aws/s3 (made on first use)."""
    return kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]


@pytest.fixture
def ebs_key(kms) -> dict:
    """The AWS managed key of alias/aws/ebs (made on first use)."""
    return kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]


# --------------------------------------------------------------------------------------------
# Creation on first use
# --------------------------------------------------------------------------------------------


def test_describe_key_creates_the_managed_key_once(reset, kms):
    entry = alias_entry(kms, "alias/aws/s3")
    assert entry == {"AliasName": "alias/aws/s3", "AliasArn": alias_arn("alias/aws/s3")}
    keys_before = {k["KeyId"] for k in kms.list_keys()["Keys"]}

    md = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    assert md["Enabled"] is True and md["KeyState"] == "Enabled"
    assert md["Description"] == "Default key that protects my S3 objects when no other key is defined"
    assert (md["KeySpec"], md["KeyUsage"], md["Origin"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS")
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["MultiRegion"] is False
    assert md["AWSAccountId"] == DEV_ACCOUNT
    assert_recent(md["CreationDate"])

    # The same key every time, by alias name or alias ARN, and no other key was made.
    assert kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyId"] == md["KeyId"]
    assert kms.describe_key(KeyId=alias_arn("alias/aws/s3"))["KeyMetadata"]["KeyId"] == md["KeyId"]
    assert kms.describe_key(KeyId=md["Arn"])["KeyMetadata"] == md
    keys_after = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert keys_after == keys_before | {md["KeyId"]}

    entry = alias_entry(kms, "alias/aws/s3")
    assert entry["TargetKeyId"] == md["KeyId"]
    assert_recent(entry["CreationDate"])
    assert_recent(entry["LastUpdatedDate"])

    policy = kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"]
    assert policy == S3_POLICY
    assert kms.list_key_policies(KeyId=md["KeyId"])["PolicyNames"] == ["default"]


def test_describe_key_by_alias_arn_creates_it(reset, kms):
    md = kms.describe_key(KeyId=alias_arn("alias/aws/ssm"))["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    assert md["Description"] == "Default key that protects my SSM parameters when no other key is defined"
    assert kms.describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]["KeyId"] == md["KeyId"]


def test_encrypt_creates_the_managed_key_and_it_works(reset, kms):
    enc = kms.encrypt(KeyId="alias/aws/ebs", Plaintext=b"volume key", EncryptionContext={"v": "1"})
    md = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert enc["KeyId"] == md["Arn"]
    assert md["KeyManager"] == "AWS"
    assert md["Description"] == "Default key that protects my EBS volumes when no other key is defined"
    assert kms.get_key_policy(KeyId=md["Arn"], PolicyName="default")["Policy"] == EBS_POLICY

    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"v": "1"})
    assert (dec["Plaintext"], dec["KeyId"]) == (b"volume key", md["Arn"])
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"v": "1"}, KeyId="alias/aws/ebs")
    assert dec["Plaintext"] == b"volume key"

    dk = kms.generate_data_key(KeyId="alias/aws/ebs", KeySpec="AES_256")
    assert dk["KeyId"] == md["Arn"]
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    dk = kms.generate_data_key_without_plaintext(KeyId=alias_arn("alias/aws/ebs"), NumberOfBytes=16)
    assert dk["KeyId"] == md["Arn"]


def test_generate_data_key_and_reencrypt_destination_create_their_keys(reset, kms):
    dk = kms.generate_data_key(KeyId="alias/aws/lambda", KeySpec="AES_128")
    lam = kms.describe_key(KeyId="alias/aws/lambda")["KeyMetadata"]
    assert dk["KeyId"] == lam["Arn"] and lam["KeyManager"] == "AWS"

    re = kms.re_encrypt(CiphertextBlob=dk["CiphertextBlob"], DestinationKeyId="alias/aws/rds")
    rds = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
    assert (re["SourceKeyId"], re["KeyId"]) == (lam["Arn"], rds["Arn"])
    assert rds["Description"] == "Default key that protects my RDS database volumes when no other key is defined"
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]


def test_decrypt_with_a_managed_alias_creates_its_key(reset, kms, new_key):
    blob = kms.encrypt(KeyId=new_key()["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert "TargetKeyId" not in alias_entry(kms, "alias/aws/acm")
    # Decrypt names alias/aws/acm: its key is made (ACM's policy allows Decrypt), then the
    # ciphertext, of another key, is refused.
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId="alias/aws/acm"), "IncorrectKeyException",
                 INCORRECT_KEY_MESSAGE)
    target = alias_entry(kms, "alias/aws/acm")["TargetKeyId"]
    md = kms.describe_key(KeyId="alias/aws/acm")["KeyMetadata"]
    assert (md["KeyId"], md["KeyManager"]) == (target, "AWS")
    assert md["Description"] == "Default key that protects my ACM private keys when no other key is defined"
    # ACM's policy allows no Encrypt (ACM encrypts through grants for its own resources only).
    expect_error(lambda: kms.encrypt(KeyId="alias/aws/acm", Plaintext=b"x"), "AccessDeniedException",
                 denied_message(ROOT, "Encrypt", md["Arn"], "no-resource"))
    assert json.loads(kms.get_key_policy(KeyId=target, PolicyName="default")["Policy"])["Id"] == "auto-acm-4"


def test_reencrypt_source_with_a_managed_alias_creates_its_key(reset, kms, new_key):
    mine = new_key()["KeyId"]
    blob = kms.encrypt(KeyId=mine, Plaintext=b"x")["CiphertextBlob"]
    assert "TargetKeyId" not in alias_entry(kms, "alias/aws/es")
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=blob, SourceKeyId="alias/aws/es", DestinationKeyId=mine),
                 "IncorrectKeyException", INCORRECT_KEY_MESSAGE)
    md = kms.describe_key(KeyId="alias/aws/es")["KeyMetadata"]
    assert alias_entry(kms, "alias/aws/es")["TargetKeyId"] == md["KeyId"]
    assert md["KeyManager"] == "AWS"
    # And its own ciphertexts re-encrypt from it.
    own = kms.encrypt(KeyId="alias/aws/es", Plaintext=b"doc")["CiphertextBlob"]
    re = kms.re_encrypt(CiphertextBlob=own, SourceKeyId="alias/aws/es", DestinationKeyId=mine)
    assert (re["SourceKeyId"], re["KeyId"]) == (md["Arn"], kms.describe_key(KeyId=mine)["KeyMetadata"]["Arn"])


def test_dry_run_by_an_allowed_caller_creates_the_key(reset, kms):
    # DryRun answers what the request would: that needs the key, so a caller that may use it makes it.
    expect_error(lambda: kms.encrypt(KeyId="alias/aws/redshift", Plaintext=b"x", DryRun=True),
                 "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
    md = kms.describe_key(KeyId="alias/aws/redshift")["KeyMetadata"]
    assert alias_entry(kms, "alias/aws/redshift")["TargetKeyId"] == md["KeyId"]
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [md["KeyId"]]


def test_concurrent_first_uses_make_one_key(reset, kms):
    barrier = threading.Barrier(16)
    results: list = [None] * 16

    def first_use(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                results[i] = kms.describe_key(KeyId="alias/aws/lambda")["KeyMetadata"]["Arn"]
            else:
                results[i] = kms.encrypt(KeyId="alias/aws/lambda", Plaintext=b"x")["KeyId"]
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1
    [key] = kms.list_keys()["Keys"]
    assert key["KeyArn"] == results[0]
    assert alias_entry(kms, "alias/aws/lambda")["TargetKeyId"] == key["KeyId"]


def test_only_predefined_names_are_created(reset, kms):
    for name in ("alias/aws/nope", "alias/aws/S3"):
        expect_error(lambda: kms.describe_key(KeyId=name), "NotFoundException", alias_not_found_message(name))
        expect_error(lambda: kms.encrypt(KeyId=name, Plaintext=b"x"), "NotFoundException",
                     alias_not_found_message(name))
    assert {a["AliasName"] for a in all_aliases(kms)} == set(PREDEFINED_ALIASES)
    assert kms.list_keys()["Keys"] == []


def test_managed_keys_are_per_region(reset, kms, kms_factory):
    east = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    west_kms = kms_factory(region=OTHER_REGION)
    # The other region's predefined alias has no key yet; its own is made on first use.
    west_entry = [a for a in all_aliases(west_kms) if a["AliasName"] == "alias/aws/s3"]
    assert west_entry == [{"AliasName": "alias/aws/s3", "AliasArn": alias_arn("alias/aws/s3", OTHER_REGION)}]
    west = west_kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert west["KeyId"] != east["KeyId"]
    assert west["Arn"].startswith(f"arn:aws:kms:{OTHER_REGION}:{DEV_ACCOUNT}:key/")


# --------------------------------------------------------------------------------------------
# ListAliases
# --------------------------------------------------------------------------------------------


def test_list_aliases_shows_predefined_aliases_without_target(reset, kms, new_key):
    k = new_key()
    kms.create_alias(AliasName="alias/zz-mine", TargetKeyId=k["KeyId"])
    kms.create_alias(AliasName="alias/aaa-mine", TargetKeyId=k["KeyId"])
    kms.describe_key(KeyId="alias/aws/glue")
    listed = all_aliases(kms)
    names = [a["AliasName"] for a in listed]
    assert names == sorted(["alias/aaa-mine", "alias/zz-mine", *PREDEFINED_ALIASES])
    for a in listed:
        assert a["AliasArn"] == alias_arn(a["AliasName"])
        created = a["AliasName"] in ("alias/aaa-mine", "alias/zz-mine", "alias/aws/glue")
        assert ("TargetKeyId" in a) == created, a
        assert ("CreationDate" in a) == created, a
        assert ("LastUpdatedDate" in a) == created, a

    # Pages of 4 in name order, each alias once, predefined ones included.
    pages, marker = [], None
    while True:
        args = {"Limit": 4, **({"Marker": marker} if marker else {})}
        page = kms.list_aliases(**args)
        pages.append([a["AliasName"] for a in page["Aliases"]])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p) for p in pages] == [4, 4, 4, 4]
    assert [n for p in pages for n in p] == names


def test_list_aliases_key_id_filter_and_managed_keys(reset, kms, new_key):
    glue = kms.describe_key(KeyId="alias/aws/glue")["KeyMetadata"]
    for ident in (glue["KeyId"], glue["Arn"]):
        [entry] = kms.list_aliases(KeyId=ident)["Aliases"]
        assert (entry["AliasName"], entry["TargetKeyId"]) == ("alias/aws/glue", glue["KeyId"])
    # A customer key's aliases never include the predefined ones.
    assert kms.list_aliases(KeyId=new_key()["KeyId"])["Aliases"] == []


def test_list_keys_and_aws_cli(reset, kms, aws_cli):
    rc, out, err = aws_cli(["describe-key", "--key-id", "alias/aws/secretsmanager"])
    assert rc == 0, err
    md = out["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    assert md["Description"] == "Default key that protects my Secrets Manager data when no other key is defined"
    assert {"KeyId": md["KeyId"], "KeyArn": md["Arn"]} in kms.list_keys()["Keys"]

    rc, out, err = aws_cli(["list-aliases"])
    assert rc == 0, err
    by_name = {a["AliasName"]: a for a in out["Aliases"]}
    assert set(by_name) == set(PREDEFINED_ALIASES)
    assert by_name["alias/aws/secretsmanager"]["TargetKeyId"] == md["KeyId"]
    assert "TargetKeyId" not in by_name["alias/aws/s3"]

    r = aws_cli(["put-key-policy", "--key-id", md["KeyId"], "--policy-name", "default", "--policy", "{}"])
    assert r.returncode != 0
    assert r.error_code == "AccessDeniedException"
    assert r.error_message == denied_message(ROOT, "PutKeyPolicy", md["Arn"], "no-resource")


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


def test_aws_aliases_cannot_be_created_moved_or_deleted(kms, new_key, s3_key):
    mine = new_key()
    # alias/aws/ is reserved for AWS managed keys; the code real AWS answers is unconfirmed
    # (moto: NotAuthorizedException without a message).
    for name in ("alias/aws/s3", "alias/aws/ebs", "alias/aws/custom"):
        expect_error(lambda: kms.create_alias(AliasName=name, TargetKeyId=mine["KeyId"]), "NotAuthorizedException", "")
    expect_error(lambda: kms.update_alias(AliasName="alias/aws/s3", TargetKeyId=mine["KeyId"]),
                 "NotAuthorizedException", "")
    expect_error(lambda: kms.delete_alias(AliasName="alias/aws/s3"), "NotAuthorizedException", "")
    assert kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyId"] == s3_key["KeyId"]


def test_customer_alias_cannot_point_to_a_managed_key(kms, new_key, unique, s3_key):
    name = f"alias/{unique('to-managed')}"
    expect_error(lambda: kms.create_alias(AliasName=name, TargetKeyId=s3_key["KeyId"]), "AccessDeniedException",
                 denied_message(ROOT, "CreateAlias", s3_key["Arn"], "no-resource"))
    mine = new_key()
    kms.create_alias(AliasName=name, TargetKeyId=mine["KeyId"])
    expect_error(lambda: kms.update_alias(AliasName=name, TargetKeyId=s3_key["Arn"]), "AccessDeniedException",
                 denied_message(ROOT, "UpdateAlias", s3_key["Arn"], "no-resource"))
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == mine["KeyId"]


MANAGEMENT = [
    ("PutKeyPolicy", lambda k, i: k.put_key_policy(KeyId=i, PolicyName="default",
                                                   Policy=json.dumps(policy_doc(allow("kms:*", principal=ROOT))))),
    ("ScheduleKeyDeletion", lambda k, i: k.schedule_key_deletion(KeyId=i, PendingWindowInDays=7)),
    ("CancelKeyDeletion", lambda k, i: k.cancel_key_deletion(KeyId=i)),
    ("DisableKey", lambda k, i: k.disable_key(KeyId=i)),
    ("EnableKey", lambda k, i: k.enable_key(KeyId=i)),
    ("EnableKeyRotation", lambda k, i: k.enable_key_rotation(KeyId=i)),
    ("DisableKeyRotation", lambda k, i: k.disable_key_rotation(KeyId=i)),
    ("RotateKeyOnDemand", lambda k, i: k.rotate_key_on_demand(KeyId=i)),
    ("TagResource", lambda k, i: k.tag_resource(KeyId=i, Tags=[{"TagKey": "a", "TagValue": "b"}])),
    ("UntagResource", lambda k, i: k.untag_resource(KeyId=i, TagKeys=["a"])),
    ("UpdateKeyDescription", lambda k, i: k.update_key_description(KeyId=i, Description="mine now")),
]


@pytest.mark.parametrize("action,call", MANAGEMENT, ids=[m[0] for m in MANAGEMENT])
def test_managed_key_refuses_management(kms, s3_key, action, call):
    expect_error(lambda: call(kms, s3_key["KeyId"]), "AccessDeniedException",
                 denied_message(ROOT, action, s3_key["Arn"], "no-resource"))
    md = kms.describe_key(KeyId=s3_key["KeyId"])["KeyMetadata"]
    assert (md["KeyState"], md["Description"]) == ("Enabled", s3_key["Description"])
    assert kms.get_key_policy(KeyId=s3_key["KeyId"], PolicyName="default")["Policy"] == S3_POLICY
    assert kms.list_resource_tags(KeyId=s3_key["KeyId"])["Tags"] == []


def test_managed_key_allows_reading_and_grants_where_its_policy_does(kms, ebs_key):
    # EBS's policy allows CreateGrant to the account's principals, and RevokeGrant to the account.
    assert kms.list_resource_tags(KeyId=ebs_key["KeyId"])["Tags"] == []
    assert kms.list_key_rotations(KeyId=ebs_key["KeyId"])["Rotations"] == []
    grant = kms.create_grant(KeyId=ebs_key["KeyId"], GranteePrincipal=f"arn:aws:iam::{DEV_ACCOUNT}:role/app",
                             RetiringPrincipal=DEV_ACCOUNT, Operations=["Decrypt"])
    assert grant["GrantId"] in [g["GrantId"] for g in kms.list_grants(KeyId=ebs_key["KeyId"])["Grants"]]
    kms.revoke_grant(KeyId=ebs_key["KeyId"], GrantId=grant["GrantId"])


def test_s3_key_refuses_grants_as_its_policy_says(kms, s3_key):
    # S3's policy allows no CreateGrant (nor RevokeGrant), unlike EBS's.
    expect_error(lambda: kms.create_grant(KeyId=s3_key["KeyId"], GranteePrincipal=f"arn:aws:iam::{DEV_ACCOUNT}:role/app",
                                          Operations=["Decrypt"]),
                 "AccessDeniedException", denied_message(ROOT, "CreateGrant", s3_key["Arn"], "no-resource"))
    assert kms.list_grants(KeyId=s3_key["KeyId"])["Grants"] == []


@pytest.mark.parametrize("grantee,retiring", [
    (f"arn:aws:iam::{B}:user/carol", None),
    (f"arn:aws:iam::{B}:root", None),
    (B, None),
    (f"arn:aws:iam::{DEV_ACCOUNT}:role/app", f"arn:aws:iam::{B}:role/retirer"),
], ids=["user", "root", "account-id", "retiring-principal"])
def test_managed_key_grants_stay_in_its_account(kms, ebs_key, grantee, retiring):
    # An AWS managed key is never used across accounts: no grant to another account's principal.
    args = {"RetiringPrincipal": retiring} if retiring else {}
    expect_error(lambda: kms.create_grant(KeyId=ebs_key["Arn"], GranteePrincipal=grantee, Operations=["Encrypt", "Decrypt"],
                                          **args),
                 "AccessDeniedException", denied_message(ROOT, "CreateGrant", ebs_key["Arn"], "no-resource"))
    grants = kms.list_grants(KeyId=ebs_key["KeyId"])["Grants"]
    assert [g for g in grants if B in g["GranteePrincipal"] + g.get("RetiringPrincipal", "")] == []


# --------------------------------------------------------------------------------------------
# Rotation
# --------------------------------------------------------------------------------------------


def test_rotation_is_always_enabled_every_365_days(kms, s3_key):
    st = kms.get_key_rotation_status(KeyId=s3_key["KeyId"])
    assert st["KeyRotationEnabled"] is True
    assert st["RotationPeriodInDays"] == 365
    expected = s3_key["CreationDate"] + dt.timedelta(days=365)
    assert abs((st["NextRotationDate"] - expected).total_seconds()) < 5


def test_managed_key_rotates_after_a_year(tmp_path):
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0"], tmp_path / "log").start()
    try:
        kms = make_kms_client(server.endpoint)
        md = kms.describe_key(KeyId="alias/aws/dynamodb")["KeyMetadata"]
        blob = kms.encrypt(KeyId="alias/aws/dynamodb", Plaintext=b"row")["CiphertextBlob"]

        r = requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 364 * DAY}, timeout=10)
        assert r.status_code == 200
        assert kms.list_key_rotations(KeyId=md["KeyId"])["Rotations"] == []

        r = requests.post(server.endpoint + "/trent-dev/advance-clock", json={"Seconds": 2 * DAY}, timeout=10)
        assert r.status_code == 200
        [rotation] = kms.list_key_rotations(KeyId=md["KeyId"])["Rotations"]
        assert rotation["RotationType"] == "AUTOMATIC"
        after = kms.describe_key(KeyId="alias/aws/dynamodb")["KeyMetadata"]
        assert after["KeyId"] == md["KeyId"]
        assert after["CurrentKeyMaterialId"] != md["CurrentKeyMaterialId"]
        assert rotation["KeyMaterialId"] == after["CurrentKeyMaterialId"]
        st = kms.get_key_rotation_status(KeyId=md["KeyId"])
        assert st["KeyRotationEnabled"] is True
        assert st["NextRotationDate"] > now_utc() + dt.timedelta(days=365 + 300)
        # Old ciphertexts still decrypt; new ones use the new material.
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"row"
        new_blob = kms.encrypt(KeyId="alias/aws/dynamodb", Plaintext=b"row2")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=new_blob)["Plaintext"] == b"row2"
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# Other principals (a configured server)
# --------------------------------------------------------------------------------------------

PRINCIPALS = [
    ConfiguredPrincipal("admin", f"arn:aws:iam::{DEV_ACCOUNT}:user/admin", {"all": policy_doc(allow("kms:*"))}),
    ConfiguredPrincipal("bob", f"arn:aws:iam::{DEV_ACCOUNT}:user/bob"),
    ConfiguredPrincipal("carol", f"arn:aws:iam::{B}:user/carol", {"all": policy_doc(allow("kms:*"))}),
    # Allowed everything, then denied everything: the Deny wins.
    ConfiguredPrincipal("dennis", f"arn:aws:iam::{DEV_ACCOUNT}:user/dennis",
                        {"all": policy_doc(allow("kms:*")), "none": policy_doc(deny("kms:*"))}),
]


@pytest.fixture(scope="module")
def srv(configured_server_factory):
    return configured_server_factory(PRINCIPALS)


def test_principals_of_the_account_use_the_key_and_only_that(srv):
    admin, bob, carol = srv.client("admin"), srv.client("bob"), srv.client("carol")
    a_alias = f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:alias/aws/xray"
    # Another account cannot use (or make) this account's managed key.
    expect_error(lambda: carol.encrypt(KeyId=a_alias, Plaintext=b"x"), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "Encrypt"))
    assert "TargetKeyId" not in alias_entry(admin, "alias/aws/xray")

    # Any principal of the account may use it, without an identity policy (the first statement;
    # AWS would also require kms:ViaService).
    blob = bob.encrypt(KeyId="alias/aws/xray", Plaintext=b"trace")["CiphertextBlob"]
    md = bob.describe_key(KeyId="alias/aws/xray")["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    assert bob.decrypt(CiphertextBlob=blob)["Plaintext"] == b"trace"
    expect_error(lambda: carol.decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "Decrypt"))

    # Reading metadata is delegated to the account: bob, with no identity policy, may not.
    expect_error(lambda: bob.get_key_policy(KeyId=md["KeyId"], PolicyName="default"), "AccessDeniedException",
                 denied_message(srv.arn("bob"), "GetKeyPolicy", md["Arn"], "no-identity"))
    assert json.loads(admin.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"]) == XRAY_POLICY
    assert admin.get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"] is True

    # Even kms:* in an identity policy does not let anyone manage it.
    for action, call in MANAGEMENT:
        expect_error(lambda: call(admin, md["KeyId"]), "AccessDeniedException",
                     denied_message(srv.arn("admin"), action, md["Arn"], "no-resource"))


def test_a_principal_denied_kms_makes_no_managed_key(srv):
    admin, bob, dennis = srv.client("admin"), srv.client("bob"), srv.client("dennis")
    name = "alias/aws/kinesisvideo"
    # The key does not exist, and dennis may not make it: answered as for any alias without a key.
    for call in (
        lambda: dennis.describe_key(KeyId=name),
        lambda: dennis.describe_key(KeyId=alias_arn(name)),
        lambda: dennis.encrypt(KeyId=name, Plaintext=b"x"),
        lambda: dennis.encrypt(KeyId=name, Plaintext=b"x", DryRun=True),
        lambda: dennis.generate_data_key(KeyId=name, KeySpec="AES_256"),
    ):
        expect_error(call, "NotFoundException", alias_not_found_message(name))
    assert alias_entry(admin, name) == {"AliasName": name, "AliasArn": alias_arn(name)}

    # bob, of the same account and with no identity policy at all, makes it and uses it.
    md = bob.describe_key(KeyId=name)["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    assert alias_entry(admin, name)["TargetKeyId"] == md["KeyId"]
    blob = bob.encrypt(KeyId=name, Plaintext=b"frame")["CiphertextBlob"]
    assert bob.decrypt(CiphertextBlob=blob)["Plaintext"] == b"frame"
    # Now that the key exists, dennis is refused by his identity policy, as for any key.
    expect_error(lambda: dennis.describe_key(KeyId=name), "AccessDeniedException",
                 denied_message(srv.arn("dennis"), "DescribeKey", md["Arn"], "deny-identity"))
    expect_error(lambda: dennis.decrypt(CiphertextBlob=blob), "AccessDeniedException",
                 denied_message(srv.arn("dennis"), "Decrypt", md["Arn"], "deny-identity"))


def test_managed_key_grants_refused_to_another_account_and_unusable_from_it(srv):
    admin, carol = srv.client("admin"), srv.client("carol")
    md = admin.describe_key(KeyId="alias/aws/glue")["KeyMetadata"]
    expect_error(lambda: admin.create_grant(KeyId=md["Arn"], GranteePrincipal=srv.arn("carol"),
                                            Operations=["Encrypt", "Decrypt"]),
                 "AccessDeniedException", denied_message(srv.arn("admin"), "CreateGrant", md["Arn"], "no-resource"))
    assert admin.list_grants(KeyId=md["KeyId"])["Grants"] == []
    expect_error(lambda: carol.encrypt(KeyId=md["Arn"], Plaintext=b"x"), "AccessDeniedException",
                 hidden_key_message(srv.arn("carol"), "Encrypt"))
    # A grant to a principal of the key's own account works (Glue's policy allows CreateGrant).
    grant = admin.create_grant(KeyId=md["Arn"], GranteePrincipal=srv.arn("bob"), Operations=["Decrypt"])
    assert [g["GrantId"] for g in admin.list_grants(KeyId=md["KeyId"])["Grants"]] == [grant["GrantId"]]
