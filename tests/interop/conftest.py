"""Fixtures of the trent interop suite.

- `dev_server`: one `trent serve --dev --in-memory` for the session (any credentials accepted,
  account 111122223333).
- `reset`: wipes the dev server (POST /moto-api/reset) before a test that counts keys or aliases.
- `kms_factory` / `kms` / `kms_raw`: boto3 KMS clients pointed at the dev server (`kms_raw` skips
  botocore's client-side parameter validation, so out-of-range values reach the server).
- `aws_cli`: runs `aws --endpoint-url ... kms ... --output json` and returns
  (returncode, parsed json, stderr) (a CliResult that also unpacks as that tuple).
- `nondev_server`: one `trent serve --data-dir DIR` per module, its admin credentials read from
  DIR/credentials; `nondev_factory` starts more on fresh directories.

The binary is $TRENT_BIN, else <repo>/target/debug/trent.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

import pytest
import requests

pytest.register_assert_rewrite("kmsutil")

from kmsutil import (  # noqa: E402
    DEV_ACCOUNT,
    REGION,
    NonDevServer,
    TrentServer,
    cli_env,
    make_kms_client,
    run_aws_cli,
    start_nondev,
)


@pytest.fixture(scope="session", autouse=True)
def isolated_aws_env():
    """Keep the machine's AWS configuration (profiles, endpoints, credentials, region) out of the
    clients the suite builds; tests that need a profile point at trent's files themselves."""
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith("AWS_"):
                mp.delenv(var)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory) -> TrentServer:
    log = tmp_path_factory.mktemp("trent-dev") / "stderr.log"
    server = TrentServer(["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0"], log).start()
    yield server
    server.stop()
    if server.died:
        pytest.fail(f"the dev server exited on its own (code {server.returncode}):\n{server.stderr_tail()}")


@pytest.fixture(scope="session")
def dev_endpoint(dev_server) -> str:
    return dev_server.endpoint


@pytest.fixture
def reset(dev_server) -> None:
    """Start the test from an empty dev server."""
    r = requests.post(dev_server.endpoint + "/moto-api/reset", timeout=30)
    assert r.status_code == 200, f"reset failed: HTTP {r.status_code} {r.text!r}"


@pytest.fixture(scope="session")
def kms_factory(dev_server) -> Callable[..., object]:
    cache: dict[tuple, object] = {}

    def make(region: str = REGION, validate: bool = True, endpoint: str | None = None, **creds):
        key = (region, validate, endpoint, tuple(sorted(creds.items())))
        if key not in cache:
            cache[key] = make_kms_client(endpoint or dev_server.endpoint, region=region, validate=validate, **creds)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def kms(kms_factory):
    return kms_factory()


@pytest.fixture(scope="session")
def kms_raw(kms_factory):
    """A client without botocore's client-side validation (min lengths, ranges, required members)."""
    return kms_factory(validate=False)


@pytest.fixture
def new_key(kms) -> Callable[..., dict]:
    """Create a symmetric key; returns its KeyMetadata."""

    def make(**kwargs) -> dict:
        return kms.create_key(**kwargs)["KeyMetadata"]

    return make


@pytest.fixture
def key(new_key) -> dict:
    return new_key(Description="interop test key")


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def aws_cli(dev_server):
    """Run the AWS CLI against the dev server: aws_cli(args, env=None) -> CliResult."""

    def run(args: list[str], env: dict | None = None, endpoint: str | None = None, global_args=None):
        return run_aws_cli(endpoint or dev_server.endpoint, args, env=env or cli_env(), global_args=global_args)

    return run


def _stop_all(started) -> None:
    """Stop every server a factory started; fail if one had exited on its own."""
    died = []
    for srv in started:
        srv.server.stop()
        if srv.server.died:
            died.append(f"{srv.data_dir} (code {srv.server.returncode}):\n{srv.server.stderr_tail()}")
    if died:
        pytest.fail("trent exited on its own: " + "\n".join(died))


@pytest.fixture(scope="module")
def nondev_factory(tmp_path_factory):
    """Start `trent serve --data-dir DIR` on a fresh DIR; every server is stopped at module end."""
    started: list[NonDevServer] = []

    def start(data_dir: Path | None = None) -> NonDevServer:
        base = tmp_path_factory.mktemp("trent-nondev")
        data_dir = data_dir or (base / "data")
        srv = start_nondev(data_dir, base / f"stderr-{len(started)}.log")
        started.append(srv)
        return srv

    yield start
    _stop_all(started)


@pytest.fixture(scope="module")
def nondev_server(nondev_factory) -> NonDevServer:
    return nondev_factory()


def pytest_report_header(config):
    from kmsutil import TRENT_BIN

    return [f"trent binary: {TRENT_BIN}", f"dev account: {DEV_ACCOUNT}, region: {REGION}"]


@pytest.fixture(scope="module")
def configured_server_factory(tmp_path_factory):
    """Start `trent serve --config FILE --data-dir DIR` with the given ConfiguredPrincipals on a
    fresh DIR; every server is stopped at module end."""
    from kmsutil import start_configured

    started = []

    def start(principals):
        srv = start_configured(tmp_path_factory.mktemp("trent-configured"), principals)
        started.append(srv)
        return srv

    yield start
    _stop_all(started)
