"""The data directory through the real binary: every file trent makes is its owner's alone (0600,
directories 0700); a data directory, root key file or credentials file open to group or others is
refused with the fix (or only warned about with --allow-insecure-permissions); a missing root key
file, a passphrase directory started without --passphrase (and the reverse) and a failed
passphrase read are refused without writing anything; and one `trent serve` at a time holds a data
or audit directory, while the admin commands keep working beside it."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from kmsutil import (
    TRENT_BIN,
    TrentServer,
    clean_env,
    create_principal,
    make_kms_client,
    principal,
    read_profile,
    run_trent,
    start_nondev,
)

PASSPHRASE = "correct horse battery staple"


def snapshot(path: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every file and directory under `path`: its mode and, for files, its bytes."""
    out: dict[str, tuple[int, bytes | None]] = {}
    if not path.exists():
        return out
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(path))
            st = p.lstat()
            out[rel] = (stat.S_IMODE(st.st_mode), p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


def modes(path: Path) -> dict[str, str]:
    """Every file and directory under `path` (itself included), with its mode in octal."""
    out = {".": oct(stat.S_IMODE(path.stat().st_mode))}
    for rel, (mode, _) in snapshot(path).items():
        out[rel] = oct(mode)
    return out


def serve_args(data: Path, *extra: str) -> list[str]:
    return ["serve", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--admin-listen", "off", *extra]


def run_serve(args: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`trent ARGS` that is expected to exit by itself, with no terminal to ask a passphrase at."""
    e = clean_env()
    e.update(env or {})
    return subprocess.run(
        [TRENT_BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=e,
        start_new_session=True,
    )


@pytest.fixture
def umask_022():
    """The usual umask, so that a private mode can only come from trent itself."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def served_dir(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Path:
    """A data directory a server has started on (and made one key in), now stopped."""
    data = tmp_path / "data"
    server = TrentServer(serve_args(data, *extra), tmp_path / "first.log", env=env).start()
    try:
        ak, sk = read_profile(data / "credentials", "trent")
        make_kms_client(server.endpoint, access_key=ak, secret_key=sk).create_key()
    finally:
        assert server.stop() == 0
    return data


def test_every_file_trent_makes_is_private(tmp_path, umask_022):
    data = tmp_path / "data"
    server = TrentServer(
        serve_args(data, "--audit-max-file-bytes", "2000", "--audit-digest-interval-secs", "1"),
        tmp_path / "log",
    ).start()
    try:
        ak, sk = read_profile(data / "credentials", "trent")
        kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for i in range(20):
            kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"n": str(i)})
        create_principal(data, "arn:aws:iam::111122223333:user/alice")
        time.sleep(1.5)  # a digest of the open file
        running = modes(data)
    finally:
        assert server.stop() == 0
    stopped = modes(data)
    for seen in (running, stopped):
        logs = [n for n in seen if n.startswith("audit/audit-") and n.endswith(".jsonl")]
        assert len(logs) >= 2, f"the audit log did not roll: {sorted(seen)}"
    for name in ["trent.db-wal", "trent.db-shm"]:
        assert name in running, f"{name} missing while the server runs: {sorted(running)}"
    for name in ["trent.db", "root.key", "credentials", "aws-config", "audit-signing-key", "audit",
                 "audit/head.json", "audit/audit-public-key.pem", "audit/audit-000000000001.jsonl.sig"]:
        assert name in stopped, f"{name} missing: {sorted(stopped)}"
    dirs = {".", "audit"}
    for seen in (running, stopped):
        wrong = {n: m for n, m in seen.items() if m != ("0o700" if n in dirs else "0o600")}
        assert wrong == {}, f"not private: {wrong}"


def test_a_data_directory_open_to_others_is_refused_and_the_flag_only_warns(tmp_path):
    data = served_dir(tmp_path)
    before = snapshot(data)
    data.chmod(0o755)
    r = run_serve(serve_args(data))
    assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (
        2,
        f"trent: data directory {data} is open to group or others (mode 0755): run `chmod 700 {data}`"
        " (or start with --allow-insecure-permissions to only warn)",
    ), r.stderr
    assert snapshot(data) == before

    server = TrentServer(serve_args(data, "--allow-insecure-permissions"), tmp_path / "log").start()
    try:
        ak, sk = read_profile(data / "credentials", "trent")
        make_kms_client(server.endpoint, access_key=ak, secret_key=sk).list_keys()
    finally:
        server.stop()
    assert (
        f"data directory {data} is open to group or others (mode 0755): run `chmod 700 {data}`"
        " (starting anyway: --allow-insecure-permissions)"
    ) in server.stderr_tail(20000)


@pytest.mark.parametrize("name,what", [("root.key", "root key file"), ("credentials", "credentials file")])
def test_a_key_or_credentials_file_open_to_others_is_refused(tmp_path, name, what):
    data = served_dir(tmp_path)
    (data / name).chmod(0o644)
    before = snapshot(data)
    r = run_serve(serve_args(data))
    assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (
        2,
        f"trent: {what} {data / name} is open to group or others (mode 0644): run `chmod 600 {data / name}`"
        " (or start with --allow-insecure-permissions to only warn)",
    ), r.stderr
    assert snapshot(data) == before
    # The admin commands check the same files.
    cp = principal("list", data)
    assert cp.returncode == 2 and f"run `chmod 600 {data / name}`" in cp.stderr, cp.stderr
    cp = run_trent(["principal", "list", "--data-dir", str(data), "--allow-insecure-permissions"])
    assert cp.returncode == 0, cp.stderr
    assert f"trent: warning: {what} {data / name} is open to group or others" in cp.stderr


def test_a_missing_root_key_file_is_refused_without_making_a_new_one(tmp_path):
    data = served_dir(tmp_path)
    (data / "root.key").unlink()
    before = snapshot(data)
    r = run_serve(serve_args(data))
    assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (
        2,
        f"trent: the root key file {data / 'root.key'} is missing, and {data} holds data sealed under it:"
        " restore the file from your backup (or point --root-key-file at it); trent does not make a new one",
    ), r.stderr
    assert snapshot(data) == before, "nothing is written, no new root key above all"
    cp = principal("list", data)
    assert cp.returncode == 2 and "is missing" in cp.stderr and not (data / "root.key").exists()


def test_a_passphrase_directory_needs_the_passphrase_and_a_key_file_directory_refuses_one(tmp_path):
    made_with_passphrase = served_dir(tmp_path / "p", "--passphrase", env={"TRENT_ROOT_PASSPHRASE": PASSPHRASE})
    before = snapshot(made_with_passphrase)
    r = run_serve(serve_args(made_with_passphrase), env={"TRENT_ROOT_PASSPHRASE": PASSPHRASE})
    assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (
        2,
        f"trent: {made_with_passphrase} was made with a passphrase: start it with --passphrase"
        " (the passphrase from TRENT_ROOT_PASSPHRASE or the terminal)",
    ), r.stderr
    assert snapshot(made_with_passphrase) == before, "no root key file is made, nothing is written"

    made_with_key_file = served_dir(tmp_path / "k")
    before = snapshot(made_with_key_file)
    r = run_serve(serve_args(made_with_key_file, "--passphrase"), env={"TRENT_ROOT_PASSPHRASE": PASSPHRASE})
    assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (
        2,
        f"trent: {made_with_key_file} was made with a root key file, not a passphrase: start it without --passphrase",
    ), r.stderr
    assert snapshot(made_with_key_file) == before, "no salt is written"


def test_a_failed_passphrase_read_leaves_the_directory_as_it_was(tmp_path):
    # A new directory: nothing is made at all.
    fresh = tmp_path / "fresh"
    r = run_serve(serve_args(fresh, "--passphrase"))
    assert r.returncode == 2, r.stderr
    assert "trent: cannot read the passphrase (set TRENT_ROOT_PASSPHRASE): " in r.stderr, r.stderr
    assert not fresh.exists(), f"left behind: {sorted(snapshot(fresh))}"
    # An empty directory made for it stays empty.
    fresh.mkdir(mode=0o700)
    r = run_serve(serve_args(fresh, "--passphrase"))
    assert r.returncode == 2 and snapshot(fresh) == {}, sorted(snapshot(fresh))
    # A directory made with a passphrase: byte for byte as it was.
    data = served_dir(tmp_path / "p", "--passphrase", env={"TRENT_ROOT_PASSPHRASE": PASSPHRASE})
    before = snapshot(data)
    r = run_serve(serve_args(data, "--passphrase"))
    assert r.returncode == 2 and "cannot read the passphrase" in r.stderr, r.stderr
    assert snapshot(data) == before


def test_a_value_given_to_passphrase_is_not_repeated(tmp_path):
    for args, env in [
        (["serve", "--data-dir", str(tmp_path / "d"), "--passphrase", "hunter2"], {}),
        (["serve", "--data-dir", str(tmp_path / "d"), "--passphrase=hunter2"], {}),
        (["serve", "--data-dir", str(tmp_path / "d")], {"TRENT_PASSPHRASE": "hunter2"}),
    ]:
        r = run_serve(args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert "hunter2" not in r.stderr + r.stdout, r.stderr
        assert "--passphrase (TRENT_PASSPHRASE) takes no value, or true or false; the value given is not shown" in r.stderr
    assert not (tmp_path / "d").exists()


def test_a_second_server_on_a_data_directory_is_refused_and_changes_nothing(tmp_path):
    data = tmp_path / "data"
    first = start_nondev(data, tmp_path / "first.log")
    try:
        kms = make_kms_client(first.endpoint, access_key=first.access_key, secret_key=first.secret_key)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.encrypt(KeyId=key, Plaintext=b"before")
        before = snapshot(data / "audit")
        # On another port, and on the first one's port (which it could not bind anyway).
        for listen in ["127.0.0.1:0", f"127.0.0.1:{first.server.port}"]:
            r = run_serve(["serve", "--data-dir", str(data), "--listen", listen, "--admin-listen", "off"])
            assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (
                2,
                f"trent: data directory {data} is in use by another trent serve (it holds the directory's lock):"
                " stop that one first, or give this one its own --data-dir",
            ), r.stderr
            assert r.stdout == ""
            assert snapshot(data / "audit") == before, "the second server touched the first one's audit log"
        # The first server serves on, and the admin commands work beside it.
        blob = kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after"
        ak, sk = create_principal(data, "arn:aws:iam::111122223333:user/bob")
        listed = principal("list", data)
        assert listed.returncode == 0 and ak in listed.stdout, listed.stderr
    finally:
        assert first.server.stop() == 0
    r = run_trent(["audit", "verify", str(data / "audit")])
    assert r.returncode == 0 and r.stdout.startswith("OK: "), r.stdout + r.stderr


def test_two_servers_may_not_share_an_audit_directory(tmp_path):
    audit = tmp_path / "shared-audit"
    first = TrentServer(serve_args(tmp_path / "one", "--audit-dir", str(audit)), tmp_path / "one.log").start()
    try:
        assert stat.S_IMODE(audit.stat().st_mode) == 0o700
        before = snapshot(audit)
        refusal = (
            f"trent: audit directory {audit} is in use by another trent serve (it holds the directory's lock):"
            " stop that one first, or give this one its own --audit-dir"
        )
        for args in [
            serve_args(tmp_path / "two", "--audit-dir", str(audit)),
            ["serve", "--in-memory", "--dev", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--audit-dir", str(audit)],
        ]:
            r = run_serve(args)
            assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (2, refusal), r.stderr
            assert snapshot(audit) == before
        assert not (tmp_path / "two" / "trent.db").exists(), "refused before the store was opened"
    finally:
        assert first.stop() == 0
    r = run_trent(["audit", "verify", str(audit)])
    assert r.returncode == 0 and r.stdout.startswith("OK: "), r.stdout + r.stderr
