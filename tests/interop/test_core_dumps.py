"""Secrets stay out of core dumps: a `trent serve` killed with SIGABRT (which asks the kernel for a
core dump) leaves none, even when its parent gave it an unlimited core size; with the unsafe
--allow-core-dumps the kernel does write one where core_pattern says (which proves that this test
would see a core), and that core holds neither the root key nor a principal's secret access key,
which live in pages marked MADV_DONTDUMP.

How cores are made is the host's choice (/proc/sys/kernel/core_pattern). These tests need a
pattern that names a file (on this machine and in CI: `core`, in the process's working
directory); with a pattern that pipes to a program (`|...`) or names the file with % fields they
only check what is observable from outside (the limits) and skip the rest, saying why."""

from __future__ import annotations

import base64
import resource
import signal
import time
from pathlib import Path

import pytest

from kmsutil import TrentServer, make_kms_client, read_profile

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern").read_text().strip()
USES_PID = Path("/proc/sys/kernel/core_uses_pid").read_text().strip() == "1"


def core_path(cwd: Path, pid: int) -> Path | None:
    """Where the kernel writes the core of process `pid` running in `cwd`, or None when this test
    cannot tell (a pipe, or % fields)."""
    if CORE_PATTERN.startswith("|") or "%" in CORE_PATTERN:
        return None
    path = Path(CORE_PATTERN) if CORE_PATTERN.startswith("/") else cwd / CORE_PATTERN
    return path.with_name(f"{path.name}.{pid}") if USES_PID else path


def unlimited_core() -> None:
    """In the child, before exec: the largest core size the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def can_dump() -> tuple[bool, str]:
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        return False, "the hard RLIMIT_CORE of this test run is 0: no process here can dump core"
    if core_path(Path("/"), 1) is None:
        return False, f"core_pattern {CORE_PATTERN!r} does not name a file this test can look for"
    return True, ""


def core_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError("no core size line in /proc/PID/limits")


def start(tmp_path: Path, data: Path, name: str, *extra: str) -> TrentServer:
    cwd = tmp_path / f"cwd-{name}"
    cwd.mkdir()
    return TrentServer(
        ["serve", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--key-pool-size", "0", *extra],
        tmp_path / f"{name}.log",
        popen_kwargs={"cwd": cwd, "preexec_fn": unlimited_core},
    ).start()


def abort(server: TrentServer) -> int:
    """SIGABRT, then the exit status once the kernel is done with the process (a core is written
    before the parent can reap it)."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGABRT)
    code = server.proc.wait(timeout=120)
    server.stop()
    return code


def use_secrets(server: TrentServer, data: Path) -> str:
    """Requests that need the admin's secret (SigV4), the root key (a new key's material is wrapped
    under it) and the grant token key; returns the admin's secret."""
    ak, sk = read_profile(data / "credentials", "trent")
    kms = make_kms_client(server.endpoint, access_key=ak, secret_key=sk)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"hello")
    kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::111122223333:user/bob", Operations=["Decrypt"])
    return sk


def test_an_aborted_server_leaves_no_core(tmp_path):
    data = tmp_path / "data"
    server = start(tmp_path, data, "default")
    pid = server.proc.pid
    use_secrets(server, data)
    # The parent allowed a core of any size; the server took that back itself.
    assert core_limit(pid) == "0 0"
    code = abort(server)
    assert code == -signal.SIGABRT, f"exit status {code}"
    ok, why = can_dump()
    if not ok:
        pytest.skip(f"no core file to look for ({why}); the core size limit 0 above is what is checked")
    core = core_path(tmp_path / "cwd-default", pid)
    assert not core.exists(), f"a core was written: {core} ({core.stat().st_size} bytes)"


def test_with_allow_core_dumps_the_core_holds_no_root_key_and_no_secret(tmp_path):
    ok, why = can_dump()
    if not ok:
        pytest.skip(why)
    data = tmp_path / "data"
    # The first start makes the admin, prints its secret and writes the credentials file: the
    # secret passes through ordinary buffers then. The server aborted here is a later start,
    # which only ever holds the secret as trent holds its principals' secrets.
    first = start(tmp_path, data, "first")
    use_secrets(first, data)
    assert first.stop() == 0
    server = start(tmp_path, data, "debug", "--allow-core-dumps")
    pid = server.proc.pid
    secret = use_secrets(server, data)
    assert "--allow-core-dumps: a core dump of this process may be written" in server.stderr_tail(20000)
    code = abort(server)
    assert code == -signal.SIGABRT, f"exit status {code}"
    core = core_path(tmp_path / "cwd-debug", pid)
    deadline = time.monotonic() + 10
    while not core.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert core.exists(), f"no core at {core}: this test cannot see cores here"
    blob = core.read_bytes()
    assert len(blob) > 1_000_000, f"a core of only {len(blob)} bytes"
    root_key = (data / "root.key").read_bytes()
    needles = {
        root_key: "the root key",
        root_key.hex().encode(): "the root key (hex)",
        base64.b64encode(root_key): "the root key (base64)",
        secret.encode(): "the admin's secret access key",
    }
    found = [label for needle, label in needles.items() if needle in blob]
    assert found == [], f"found in the core: {found}"
