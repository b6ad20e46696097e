"""The same flows through the unmodified AWS CLI (`aws --endpoint-url ... kms ...`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid

from kmsutil import (
    DEV_ACCOUNT,
    DRY_RUN_MESSAGE,
    HEX64_RE,
    REGION,
    alias_arn,
    assert_symmetric_metadata,
    cli_env,
    coral,
    default_policy,
    key_arn,
    not_found_key_message,
    unb64,
)


def ok(res):
    assert res.returncode == 0, f"aws exited {res.returncode}: {res.stderr}"
    return res.json


def fails(res, code, message=None):
    assert res.returncode != 0, f"expected {code}, the command succeeded: {res.stdout}"
    assert res.error_code == code, f"expected {code}: {res.stderr}"
    if message is not None:
        assert res.error_message == message, res.stderr
    return res


def _cli_metadata(md: dict) -> dict:
    """The CLI prints timestamps as numbers or ISO strings depending on version: normalize."""
    md = dict(md)
    for k in ("CreationDate", "DeletionDate"):
        if k in md:
            v = md[k]
            md[k] = (
                dt.datetime.fromtimestamp(v, dt.timezone.utc)
                if isinstance(v, (int, float))
                else dt.datetime.fromisoformat(v)
            )
    return md


def _write(tmp_path, name, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return f"fileb://{p}"


def test_cli_key_lifecycle(aws_cli):
    md = ok(aws_cli(["create-key", "--description", "from the cli", "--tags",
                     "TagKey=team,TagValue=crypto", "TagKey=env,TagValue=dev"]))["KeyMetadata"]
    assert_symmetric_metadata(_cli_metadata(md), description="from the cli")
    kid = md["KeyId"]

    described = ok(aws_cli(["describe-key", "--key-id", kid]))["KeyMetadata"]
    assert described == md

    listed = ok(aws_cli(["list-keys"]))["Keys"]
    assert {"KeyId": kid, "KeyArn": key_arn(kid)} in listed

    assert ok(aws_cli(["update-key-description", "--key-id", kid, "--description", "renamed"])) is None
    assert ok(aws_cli(["describe-key", "--key-id", md["Arn"]]))["KeyMetadata"]["Description"] == "renamed"

    ok(aws_cli(["disable-key", "--key-id", kid]))
    d = ok(aws_cli(["describe-key", "--key-id", kid]))["KeyMetadata"]
    assert (d["KeyState"], d["Enabled"]) == ("Disabled", False)
    ok(aws_cli(["enable-key", "--key-id", kid]))
    d = ok(aws_cli(["describe-key", "--key-id", kid]))["KeyMetadata"]
    assert (d["KeyState"], d["Enabled"]) == ("Enabled", True)

    sched = ok(aws_cli(["schedule-key-deletion", "--key-id", kid, "--pending-window-in-days", "7"]))
    assert sched["KeyId"] == md["Arn"]
    assert sched["KeyState"] == "PendingDeletion"
    assert sched["PendingWindowInDays"] == 7
    d = ok(aws_cli(["describe-key", "--key-id", kid]))["KeyMetadata"]
    assert d["KeyState"] == "PendingDeletion" and "DeletionDate" in d
    fails(aws_cli(["enable-key", "--key-id", kid]), "KMSInvalidStateException", f"{md['Arn']} is pending deletion.")

    assert ok(aws_cli(["cancel-key-deletion", "--key-id", kid]))["KeyId"] == md["Arn"]
    d = ok(aws_cli(["describe-key", "--key-id", kid]))["KeyMetadata"]
    assert (d["KeyState"], d["Enabled"]) == ("Disabled", False)
    assert "DeletionDate" not in d
    fails(aws_cli(["cancel-key-deletion", "--key-id", kid]), "KMSInvalidStateException", f"{md['Arn']} is not pending deletion.")


def test_cli_schedule_key_deletion_default_window(aws_cli):
    kid = ok(aws_cli(["create-key"]))["KeyMetadata"]["KeyId"]
    assert ok(aws_cli(["schedule-key-deletion", "--key-id", kid]))["PendingWindowInDays"] == 30
    res = fails(aws_cli(["schedule-key-deletion", "--key-id", kid, "--pending-window-in-days", "7"]),
                "KMSInvalidStateException")
    assert res.error_message == f"{key_arn(kid)} is pending deletion."


def test_cli_list_keys_pagination(reset, aws_cli):
    made = {ok(aws_cli(["create-key"]))["KeyMetadata"]["KeyId"] for _ in range(5)}
    # The CLI follows NextMarker by itself; --page-size sets Limit.
    everything = ok(aws_cli(["list-keys", "--page-size", "2"]))
    assert {k["KeyId"] for k in everything["Keys"]} == made
    first = ok(aws_cli(["list-keys", "--max-items", "3", "--page-size", "2"]))
    assert len(first["Keys"]) == 3
    assert first.get("NextToken")
    rest = ok(aws_cli(["list-keys", "--page-size", "2", "--starting-token", first["NextToken"]]))
    assert {k["KeyId"] for k in first["Keys"] + rest["Keys"]} == made
    low = ok(aws_cli(["list-keys", "--no-paginate", "--limit", "2"]))
    assert len(low["Keys"]) == 2 and low["Truncated"] is True and low["NextMarker"]


def test_cli_aliases(aws_cli):
    a = ok(aws_cli(["create-key"]))["KeyMetadata"]
    b = ok(aws_cli(["create-key"]))["KeyMetadata"]
    name = f"alias/cli-{uuid.uuid4().hex[:10]}"
    assert ok(aws_cli(["create-alias", "--alias-name", name, "--target-key-id", a["KeyId"]])) is None
    listed = ok(aws_cli(["list-aliases", "--key-id", a["KeyId"]]))["Aliases"]
    assert [(x["AliasName"], x["AliasArn"], x["TargetKeyId"]) for x in listed] == [(name, alias_arn(name), a["KeyId"])]

    fails(aws_cli(["create-alias", "--alias-name", name, "--target-key-id", b["KeyId"]]),
          "AlreadyExistsException", f"An alias with the name {alias_arn(name)} already exists")
    res = fails(aws_cli(["create-alias", "--alias-name", "cli-no-prefix", "--target-key-id", a["KeyId"]]),
                "ValidationException")
    assert res.error_message.startswith('Alias must start with the prefix "alias/".')

    ok(aws_cli(["update-alias", "--alias-name", name, "--target-key-id", b["KeyId"]]))
    assert ok(aws_cli(["describe-key", "--key-id", name]))["KeyMetadata"]["KeyId"] == b["KeyId"]
    assert ok(aws_cli(["list-aliases", "--key-id", a["KeyId"]]))["Aliases"] == []

    ok(aws_cli(["delete-alias", "--alias-name", name]))
    fails(aws_cli(["describe-key", "--key-id", name]), "NotFoundException",
          f"Alias {alias_arn(name)} is not found.")


def test_cli_tags(aws_cli):
    kid = ok(aws_cli(["create-key"]))["KeyMetadata"]["KeyId"]
    ok(aws_cli(["tag-resource", "--key-id", kid, "--tags", "TagKey=a,TagValue=1", "TagKey=b,TagValue=2"]))
    tags = ok(aws_cli(["list-resource-tags", "--key-id", kid]))
    assert sorted((t["TagKey"], t["TagValue"]) for t in tags["Tags"]) == [("a", "1"), ("b", "2")]
    # (The CLI follows NextMarker itself and drops Truncated/NextMarker from what it prints.)
    page = ok(aws_cli(["list-resource-tags", "--key-id", kid, "--no-paginate", "--limit", "1"]))
    assert len(page["Tags"]) == 1 and page["Truncated"] is True and page["NextMarker"]
    ok(aws_cli(["untag-resource", "--key-id", kid, "--tag-keys", "a", "missing"]))
    assert ok(aws_cli(["list-resource-tags", "--key-id", kid]))["Tags"] == [{"TagKey": "b", "TagValue": "2"}]
    fails(aws_cli(["tag-resource", "--key-id", kid, "--tags", "TagKey=aws:x,TagValue=1"]),
          "TagException", "Tags beginning with aws: are reserved")


def test_cli_policies(aws_cli, tmp_path):
    kid = ok(aws_cli(["create-key"]))["KeyMetadata"]["KeyId"]
    got = ok(aws_cli(["get-key-policy", "--key-id", kid, "--policy-name", "default"]))
    assert json.loads(got["Policy"]) == default_policy(DEV_ACCOUNT)
    assert ok(aws_cli(["list-key-policies", "--key-id", kid]))["PolicyNames"] == ["default"]

    doc = default_policy(DEV_ACCOUNT)
    doc["Statement"][0]["Sid"] = "Changed by the CLI"
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    ok(aws_cli(["put-key-policy", "--key-id", kid, "--policy-name", "default", "--policy", f"file://{path}"]))
    got = ok(aws_cli(["get-key-policy", "--key-id", kid, "--policy-name", "default"]))
    assert json.loads(got["Policy"]) == doc

    bad = tmp_path / "bad.json"
    bad.write_text("{this is not json")
    fails(aws_cli(["put-key-policy", "--key-id", kid, "--policy-name", "default", "--policy", f"file://{bad}"]),
          "MalformedPolicyDocumentException")


def test_cli_encrypt_decrypt_every_key_form(aws_cli, tmp_path):
    md = ok(aws_cli(["create-key"]))["KeyMetadata"]
    name = f"alias/cli-{uuid.uuid4().hex[:10]}"
    ok(aws_cli(["create-alias", "--alias-name", name, "--target-key-id", md["KeyId"]]))
    plaintext = os.urandom(200)
    src = _write(tmp_path, "pt.bin", plaintext)
    for i, ident in enumerate([md["KeyId"], md["Arn"], name, alias_arn(name)]):
        enc = ok(aws_cli(["encrypt", "--key-id", ident, "--plaintext", src,
                          "--encryption-context", "purpose=cli,team=crypto"]))
        assert enc["KeyId"] == md["Arn"]
        assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        blob = _write(tmp_path, f"ct{i}.bin", unb64(enc["CiphertextBlob"]))
        dec = ok(aws_cli(["decrypt", "--ciphertext-blob", blob, "--key-id", ident,
                          "--encryption-context", "team=crypto,purpose=cli"]))
        assert unb64(dec["Plaintext"]) == plaintext
        assert dec["KeyId"] == md["Arn"]
        assert HEX64_RE.match(dec["KeyMaterialId"])

    # Wrong context, and a tampered blob.
    fails(aws_cli(["decrypt", "--ciphertext-blob", blob, "--encryption-context", "purpose=other,team=crypto"]),
          "InvalidCiphertextException", "")
    raw = bytearray(unb64(enc["CiphertextBlob"]))
    raw[-1] ^= 1
    fails(aws_cli(["decrypt", "--ciphertext-blob", _write(tmp_path, "bad.bin", bytes(raw)),
                   "--encryption-context", "purpose=cli,team=crypto"]), "InvalidCiphertextException", "")


def test_cli_data_keys_random_and_re_encrypt(aws_cli, tmp_path):
    a = ok(aws_cli(["create-key"]))["KeyMetadata"]
    b = ok(aws_cli(["create-key"]))["KeyMetadata"]

    gdk = ok(aws_cli(["generate-data-key", "--key-id", a["KeyId"], "--key-spec", "AES_256",
                      "--encryption-context", "file=x"]))
    assert gdk["KeyId"] == a["Arn"] and len(unb64(gdk["Plaintext"])) == 32
    assert HEX64_RE.match(gdk["KeyMaterialId"])
    blob = _write(tmp_path, "dk.bin", unb64(gdk["CiphertextBlob"]))
    dec = ok(aws_cli(["decrypt", "--ciphertext-blob", blob, "--encryption-context", "file=x"]))
    assert dec["Plaintext"] == gdk["Plaintext"]

    gdk64 = ok(aws_cli(["generate-data-key", "--key-id", a["Arn"], "--number-of-bytes", "64"]))
    assert len(unb64(gdk64["Plaintext"])) == 64

    nopt = ok(aws_cli(["generate-data-key-without-plaintext", "--key-id", a["KeyId"], "--key-spec", "AES_128"]))
    assert "Plaintext" not in nopt and nopt["KeyId"] == a["Arn"]

    rnd = ok(aws_cli(["generate-random", "--number-of-bytes", "48"]))
    assert len(unb64(rnd["Plaintext"])) == 48

    re = ok(aws_cli(["re-encrypt", "--ciphertext-blob", blob, "--source-encryption-context", "file=x",
                     "--destination-key-id", b["KeyId"], "--destination-encryption-context", "file=y"]))
    assert re["SourceKeyId"] == a["Arn"] and re["KeyId"] == b["Arn"]
    assert HEX64_RE.match(re["SourceKeyMaterialId"]) and HEX64_RE.match(re["DestinationKeyMaterialId"])
    moved = _write(tmp_path, "moved.bin", unb64(re["CiphertextBlob"]))
    dec = ok(aws_cli(["decrypt", "--ciphertext-blob", moved, "--encryption-context", "file=y"]))
    assert dec["Plaintext"] == gdk["Plaintext"] and dec["KeyId"] == b["Arn"]
    fails(aws_cli(["decrypt", "--ciphertext-blob", moved, "--key-id", a["KeyId"], "--encryption-context", "file=y"]),
          "IncorrectKeyException")


def test_cli_errors(aws_cli, tmp_path):
    kid = str(uuid.uuid4())
    fails(aws_cli(["describe-key", "--key-id", kid]), "NotFoundException", not_found_key_message(kid))
    fails(aws_cli(["describe-key", "--key-id", "nope"]), "NotFoundException", "Invalid keyId 'nope'")
    fails(aws_cli(["generate-random", "--number-of-bytes", "1025"]), "ValidationException",
          coral("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"))

    k = ok(aws_cli(["create-key"]))["KeyMetadata"]
    src = _write(tmp_path, "pt.bin", b"dry")
    fails(aws_cli(["encrypt", "--key-id", k["KeyId"], "--plaintext", src, "--dry-run"]),
          "DryRunOperationException", DRY_RUN_MESSAGE)
    fails(aws_cli(["generate-data-key", "--key-id", k["KeyId"], "--number-of-bytes", "1025"]), "ValidationException",
          coral("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"))
    ok(aws_cli(["disable-key", "--key-id", k["KeyId"]]))
    fails(aws_cli(["encrypt", "--key-id", k["KeyId"], "--plaintext", src]), "DisabledException",
          f"{k['Arn']} is disabled.")
    fails(aws_cli(["decrypt", "--ciphertext-blob", _write(tmp_path, "junk.bin", os.urandom(100))]),
          "InvalidCiphertextException", "")


def test_cli_regions(aws_cli):
    md = ok(aws_cli(["create-key"], env=cli_env(region="eu-west-1")))["KeyMetadata"]
    assert md["Arn"] == key_arn(md["KeyId"], region="eu-west-1")
    fails(aws_cli(["describe-key", "--key-id", md["KeyId"]], env=cli_env(region=REGION)), "NotFoundException",
          not_found_key_message(md["KeyId"]))
    # --region on the command line wins over the environment.
    assert ok(aws_cli(["describe-key", "--key-id", md["KeyId"], "--region", "eu-west-1"]))["KeyMetadata"]["Arn"] == md["Arn"]
