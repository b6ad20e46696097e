"""`trent bench` signs every request with SigV4 as an SDK does: against a server that verifies
signatures it completes with no errors and reports its figures as JSON."""

from __future__ import annotations

import json
import subprocess

import pytest

from kmsutil import TRENT_BIN, clean_env, make_kms_client


def bench_env() -> dict[str, str]:
    # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY would win over the credentials file.
    return {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}


@pytest.mark.parametrize(
    "operation,flags,spec",
    [
        ("Encrypt", [], "SYMMETRIC_DEFAULT"),
        ("Decrypt", [], "SYMMETRIC_DEFAULT"),
        ("GenerateDataKey", [], "SYMMETRIC_DEFAULT"),
        ("Sign", ["--key-spec", "ECC_NIST_P256"], "ECC_NIST_P256"),
        ("Verify", ["--key-spec", "ECC_NIST_EDWARDS25519", "--algorithm", "ED25519_PH_SHA_512"], "ECC_NIST_EDWARDS25519"),
        ("Sign", ["--key-spec", "ML_DSA_44"], "ML_DSA_44"),
        ("Decrypt", ["--key-spec", "RSA_2048"], "RSA_2048"),
        ("GenerateMac", ["--key-spec", "HMAC_384"], "HMAC_384"),
        ("VerifyMac", ["--key-spec", "HMAC_224"], "HMAC_224"),
        ("GenerateDataKeyPair", ["--key-pair-spec", "ML_KEM_768"], "ML_KEM_768"),
        # A ciphertext of the first material of a key then rotated three times.
        ("Decrypt", ["--rotations", "3"], "SYMMETRIC_DEFAULT"),
        # The same under the realistic key policy, which lets the admin rotate the key.
        ("Decrypt", ["--access", "realistic", "--rotations", "2"], "SYMMETRIC_DEFAULT"),
        # Through an AWS managed key's alias, made by bench's DescribeKey.
        ("Encrypt", ["--key-id", "alias/aws/ebs"], "SYMMETRIC_DEFAULT"),
    ],
)
def test_bench_runs_signed_against_a_verifying_server(nondev_server, operation, flags, spec):
    r = subprocess.run(
        [
            TRENT_BIN, "bench", "--endpoint", nondev_server.endpoint, "--operation", operation,
            "--concurrency", "2", "--duration", "1", "--warmup", "0", "--json",
            "--credentials-file", str(nondev_server.credentials_path), *flags,
        ],
        capture_output=True, text=True, timeout=60, env=bench_env(),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["operation"] == operation and out["concurrency"] == 2 and out["errors"] == 0
    assert out["key_spec"] == spec
    given = dict(zip(flags[::2], flags[1::2]))
    assert out["rotations"] == int(given.get("--rotations", 0))
    assert out["key_id"] == given.get("--key-id")
    assert out["access"] == given.get("--access", "default")
    assert out["requests"] > 0 and out["ops_per_sec"] > 0
    assert 0 < out["p50_ms"] <= out["p99_ms"] <= out["p999_ms"]


def test_bench_with_wrong_credentials_fails(nondev_server, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("[trent]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = nope\n")
    r = subprocess.run(
        [TRENT_BIN, "bench", "--endpoint", nondev_server.endpoint, "--duration", "1", "--warmup", "0", "--credentials-file", str(creds)],
        capture_output=True, text=True, timeout=60, env=bench_env(),
    )
    assert r.returncode == 2
    assert "UnrecognizedClientException" in r.stderr


def list_keys(nondev_server) -> list[dict]:
    kms = make_kms_client(nondev_server.endpoint, access_key=nondev_server.access_key,
                          secret_key=nondev_server.secret_key)
    return kms.list_keys()["Keys"]


@pytest.mark.parametrize(
    "flags,error",
    [
        # A key can be rotated on demand at most 25 times: refused by the argument parser.
        (["--rotations", "26"], "error: invalid value '26' for '--rotations <ROTATIONS>': 26 is not in 0..=25"),
        # bench rotates only the key it creates.
        (["--rotations", "2", "--key-id", "alias/aws/ebs"],
         "error: the argument '--rotations <ROTATIONS>' cannot be used with '--key-id <KEY_ID>'"),
        # ... and replaces only its own key's policy.
        (["--access", "realistic", "--key-id", "alias/aws/ebs"],
         "trent: --access realistic replaces the key policy of the key bench creates: it cannot be used "
         "with --key-id"),
    ],
    ids=["rotations-over-25", "rotations-with-key-id", "realistic-with-key-id"],
)
def test_bench_refuses_bad_arguments_before_making_anything(nondev_server, flags, error):
    before = list_keys(nondev_server)
    r = subprocess.run(
        [TRENT_BIN, "bench", "--endpoint", nondev_server.endpoint, "--operation", "Decrypt",
         "--duration", "1", "--warmup", "0", "--credentials-file", str(nondev_server.credentials_path), *flags],
        capture_output=True, text=True, timeout=60, env=bench_env(),
    )
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == error
    assert r.stdout == ""
    assert list_keys(nondev_server) == before
