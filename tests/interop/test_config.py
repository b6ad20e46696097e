"""Configuration: every setting from a flag, a TRENT_* variable or the TOML file, in that order of
precedence; and the passphrase-derived root key (Argon2id)."""

from __future__ import annotations

import os
import subprocess

from kmsutil import TRENT_BIN, TrentServer, clean_env, make_kms_client


def key_account(server: TrentServer) -> str:
    arn = make_kms_client(server.endpoint).create_key()["KeyMetadata"]["Arn"]
    return arn.split(":")[4]


def test_the_config_file_sets_every_serve_setting(tmp_path):
    cfg = tmp_path / "trent.toml"
    cfg.write_text('listen = "127.0.0.1:0"\ndev = true\nin_memory = true\ndev_account = "444455556666"\n')
    server = TrentServer(["serve", "--config", str(cfg)], tmp_path / "log").start()
    try:
        assert key_account(server) == "444455556666"
    finally:
        server.stop()


def test_variables_beat_the_file_and_flags_beat_variables(tmp_path):
    cfg = tmp_path / "trent.toml"
    cfg.write_text('listen = "127.0.0.1:0"\ndev = true\nin_memory = true\ndev_account = "444455556666"\n')
    server = TrentServer(["serve", "--config", str(cfg)], tmp_path / "log1", env={"TRENT_DEV_ACCOUNT": "555566667777"}).start()
    try:
        assert key_account(server) == "555566667777"
    finally:
        server.stop()
    server = TrentServer(
        ["serve", "--config", str(cfg), "--dev-account", "666677778888"],
        tmp_path / "log2",
        env={"TRENT_DEV_ACCOUNT": "555566667777"},
    ).start()
    try:
        assert key_account(server) == "666677778888"
    finally:
        server.stop()


def test_variables_alone_configure_a_server(tmp_path):
    env = {"TRENT_LISTEN": "127.0.0.1:0", "TRENT_DEV": "true", "TRENT_IN_MEMORY": "true", "TRENT_DEV_ACCOUNT": "777788889999"}
    server = TrentServer(["serve"], tmp_path / "log", env=env).start()
    try:
        assert key_account(server) == "777788889999"
    finally:
        server.stop()


def test_an_unknown_setting_in_the_file_is_refused(tmp_path):
    cfg = tmp_path / "trent.toml"
    cfg.write_text('listen = "127.0.0.1:0"\nlisten_port = 5\n')
    r = subprocess.run([TRENT_BIN, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=30, env=clean_env())
    assert r.returncode == 2
    assert r.stderr.startswith(f"trent: {cfg}: ")
    assert "unknown field `listen_port`" in r.stderr


def test_passphrase_root_key_survives_restart_and_refuses_a_wrong_passphrase(tmp_path):
    data = tmp_path / "data"
    args = ["serve", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--passphrase"]
    server = TrentServer(args, tmp_path / "log1", env={"TRENT_ROOT_PASSPHRASE": "correct horse battery staple"}).start()
    try:
        creds = (data / "credentials").read_text().split()
        ak, sk = creds[creds.index("aws_access_key_id") + 2], creds[creds.index("aws_secret_access_key") + 2]
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"under a passphrase")["CiphertextBlob"]
    finally:
        server.stop()
    assert not (data / "root.key").exists(), "a passphrase-derived root key leaves no key file"

    server = TrentServer(args, tmp_path / "log2", env={"TRENT_ROOT_PASSPHRASE": "correct horse battery staple"}).start()
    try:
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under a passphrase"
    finally:
        server.stop()

    env = clean_env()
    env["TRENT_ROOT_PASSPHRASE"] = "wrong horse"
    r = subprocess.run([TRENT_BIN, *args], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr.strip().endswith(
        "trent: the root key does not match this data directory (wrong key file or passphrase)"
    ), r.stderr
