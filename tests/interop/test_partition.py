"""The partition a server serves (`aws` unless --partition, TRENT_PARTITION or `partition` in the
TOML file says otherwise): every ARN it makes is in it (keys, aliases, the default key policy's
account root, grants, the admin principal), an ARN of another partition is refused as AWS refuses
another region's, principals of another partition are refused with a clear message, and a data
directory keeps the partition it was made for."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid

from kmsutil import (
    DEV_ACCOUNT,
    TRENT_BIN,
    TrentServer,
    clean_env,
    expect_error,
    make_kms_client,
    principals_toml,
    read_profile,
    run_trent,
    ConfiguredPrincipal,
)

A = DEV_ACCOUNT


def serve(tmp_path, name: str, *args: str, env: dict | None = None) -> TrentServer:
    return TrentServer(["serve", "--listen", "127.0.0.1:0", *args], tmp_path / f"{name}.log", env=env).start()


def refused_start(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = clean_env()
    full_env.update(env or {})
    return subprocess.run([TRENT_BIN, "serve", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                          timeout=60, env=full_env, stdin=subprocess.DEVNULL)


def test_every_arn_a_server_makes_is_in_its_partition(tmp_path):
    data = tmp_path / "cn"
    server = serve(tmp_path, "cn", "--data-dir", str(data), "--partition", "aws-cn")
    try:
        ak, sk = read_profile(data / "credentials", "trent")
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        md = kms.create_key()["KeyMetadata"]
        key_id = md["KeyId"]
        assert md["Arn"] == f"arn:aws-cn:kms:us-east-1:{A}:key/{key_id}"
        assert kms.describe_key(KeyId=md["Arn"])["KeyMetadata"]["KeyId"] == key_id
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws-cn:iam::{A}:root"}
        kms.create_alias(AliasName="alias/cn", TargetKeyId=key_id)
        aliases = {a["AliasName"]: a for a in kms.list_aliases(KeyId=key_id)["Aliases"]}
        assert aliases["alias/cn"]["AliasArn"] == f"arn:aws-cn:kms:us-east-1:{A}:alias/cn"
        blob = kms.encrypt(KeyId=f"arn:aws-cn:kms:us-east-1:{A}:alias/cn", Plaintext=b"x")
        assert blob["KeyId"] == md["Arn"]
        # An alias that does not exist is named in the partition too, by name and by alias ARN.
        for ref in ("alias/none", f"arn:aws-cn:kms:us-east-1:{A}:alias/none"):
            expect_error(lambda: kms.describe_key(KeyId=ref), "NotFoundException",
                         f"Alias arn:aws-cn:kms:us-east-1:{A}:alias/none is not found.")
        grant = kms.create_grant(KeyId=md["Arn"], GranteePrincipal=f"arn:aws-cn:iam::{A}:role/app",
                                 Operations=["Decrypt"])
        listed = kms.list_grants(KeyId=key_id)["Grants"][0]
        assert (listed["GrantId"], listed["KeyId"], listed["IssuingAccount"]) == (
            grant["GrantId"], md["Arn"], f"arn:aws-cn:iam::{A}:root")
        # The admin principal is of the partition too.
        assert any(f"arn:aws-cn:iam::{A}:user/admin" in line for line in server.stdout_lines)
        # An ARN of the aws partition names nothing here (trent's words; AWS's are unconfirmed).
        expect_error(lambda: kms.describe_key(KeyId=f"arn:aws:kms:us-east-1:{A}:key/{key_id}"), "NotFoundException",
                     "Invalid arn aws")
        # A key policy naming a principal of the aws partition is refused.
        bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                                                      "Action": "kms:*", "Resource": "*"}]}
        expect_error(lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(bad)),
                     "MalformedPolicyDocumentException",
                     "Policy contains a statement with one or more invalid principals.")
        # Principals are managed in the partition too, and the data directory keeps it.
        r = run_trent(["principal", "create", "--data-dir", str(data), "--partition", "aws-cn",
                       "--arn", f"arn:aws-cn:iam::{A}:user/bob"])
        assert r.returncode == 0, r.stderr
        r = run_trent(["principal", "create", "--data-dir", str(data), "--partition", "aws-cn",
                       "--arn", f"arn:aws:iam::{A}:user/carol"])
        assert r.returncode != 0
        assert f"'arn:aws:iam::{A}:user/carol' is in partition aws, and this trent serves partition aws-cn " \
               "(--partition)" in r.stderr, r.stderr
        r = run_trent(["principal", "list", "--data-dir", str(data)])
        assert r.returncode != 0
        assert "this data directory serves partition aws-cn, not aws (--partition)" in r.stderr, r.stderr
    finally:
        server.stop()
    r = refused_start("--data-dir", str(data))
    assert r.returncode != 0
    assert "this data directory serves partition aws-cn, not aws (--partition)" in r.stderr, r.stderr


def test_the_aws_partition_refuses_other_partitions(tmp_path):
    data = tmp_path / "aws"
    server = serve(tmp_path, "aws", "--data-dir", str(data))
    try:
        ak, sk = read_profile(data / "credentials", "trent")
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        md = kms.create_key()["KeyMetadata"]
        assert md["Arn"].startswith("arn:aws:kms:us-east-1:")
        for arn in (f"arn:aws-cn:kms:us-east-1:{A}:key/{md['KeyId']}",
                    f"arn:aws-us-gov:kms:us-east-1:{A}:key/{uuid.uuid4()}"):
            partition = arn.split(":")[1]
            expect_error(lambda: kms.describe_key(KeyId=arn), "NotFoundException", f"Invalid arn {partition}")
            expect_error(lambda: kms.encrypt(KeyId=arn, Plaintext=b"x"), "NotFoundException",
                         f"Invalid arn {partition}")
        expect_error(lambda: kms.encrypt(KeyId=f"arn:aws-cn:kms:us-east-1:{A}:alias/x", Plaintext=b"x"),
                     "NotFoundException", "Invalid arn aws-cn")
        r = run_trent(["principal", "create", "--data-dir", str(data), "--arn", f"arn:aws-cn:iam::{A}:user/x"])
        assert r.returncode != 0
        assert f"'arn:aws-cn:iam::{A}:user/x' is in partition aws-cn, and this trent serves partition aws " \
               "(--partition)" in r.stderr, r.stderr
    finally:
        server.stop()


def test_the_partition_from_the_file_and_the_environment(tmp_path):
    cfg = tmp_path / "trent.toml"
    cfg.write_text('partition = "aws-us-gov"\n' + principals_toml(
        [ConfiguredPrincipal("gov", f"arn:aws-us-gov:iam::{A}:user/gov", {"all": {"Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}})]))
    server = serve(tmp_path, "file", "--config", str(cfg), "--data-dir", str(tmp_path / "gov"))
    try:
        p = ConfiguredPrincipal("gov", f"arn:aws-us-gov:iam::{A}:user/gov")
        kms = make_kms_client(server.endpoint, access_key=p.access_key, secret_key=p.secret_key)
        assert kms.create_key()["KeyMetadata"]["Arn"].startswith("arn:aws-us-gov:kms:")
    finally:
        server.stop()
    server = serve(tmp_path, "env", "--in-memory", "--dev", env={"TRENT_PARTITION": "aws-iso-b"})
    try:
        assert make_kms_client(server.endpoint).create_key()["KeyMetadata"]["Arn"].startswith("arn:aws-iso-b:kms:")
    finally:
        server.stop()
    # The flag beats the variable.
    server = serve(tmp_path, "flag", "--in-memory", "--dev", "--partition", "aws", env={"TRENT_PARTITION": "aws-cn"})
    try:
        assert make_kms_client(server.endpoint).create_key()["KeyMetadata"]["Arn"].startswith("arn:aws:kms:")
    finally:
        server.stop()


def test_what_a_partition_setting_refuses(tmp_path):
    r = refused_start("--in-memory", "--dev", "--partition", "gcp")
    assert r.returncode != 0
    assert "--partition: 'gcp' is not a partition name (aws, aws-cn, aws-us-gov, ...)" in r.stderr, r.stderr
    # A config file principal of another partition.
    cfg = tmp_path / "trent.toml"
    cfg.write_text(principals_toml([ConfiguredPrincipal("cn", f"arn:aws-cn:iam::{A}:user/cn")]))
    r = refused_start("--config", str(cfg), "--data-dir", str(tmp_path / "data"))
    assert r.returncode != 0
    assert f"'arn:aws-cn:iam::{A}:user/cn' is in partition aws-cn, and this trent serves partition aws " \
           "(--partition)" in r.stderr, r.stderr


def test_a_data_directory_made_before_the_setting_is_of_the_aws_partition(tmp_path):
    """A store with keys and no partition recorded was made when trent served only `aws`: its key
    material is wrapped under its arn:aws: key ARNs. Served as another partition, every key would
    be unusable and the store marked as of that partition for good; it is refused instead."""
    data = tmp_path / "old"
    server = serve(tmp_path, "old", "--data-dir", str(data))
    try:
        ak, sk = read_profile(data / "credentials", "trent")
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]
    finally:
        server.stop()
    # As a build from before the setting left it.
    db = sqlite3.connect(data / "trent.db")
    with db:
        assert db.execute("DELETE FROM settings WHERE name = 'partition'").rowcount == 1
    db.close()
    r = refused_start("--data-dir", str(data), "--partition", "aws-cn")
    assert r.returncode != 0
    assert "this data directory serves partition aws, not aws-cn (--partition)" in r.stderr, r.stderr
    # Served as aws, as it was made, every key still serves.
    server = serve(tmp_path, "old-again", "--data-dir", str(data))
    try:
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"old"
    finally:
        server.stop()
