"""Shared helpers for the trent interop suite: starting servers, building clients, running the AWS
CLI, sending raw (optionally SigV4-signed) requests, and asserting errors as a user sees them."""

from __future__ import annotations

import base64
import configparser
import datetime as dt
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
TRENT_BIN = os.environ.get("TRENT_BIN") or str(REPO_ROOT / "target" / "debug" / "trent")

DEV_ACCOUNT = "111122223333"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
DEV_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DEV_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

JSON_11 = "application/x-amz-json-1.1"
LISTEN_RE = re.compile(r"^trent listening on (https?://127\.0\.0\.1:(\d+))\s*$")
ADMIN_RE = re.compile(r"^trent admin listening on (http://127\.0\.0\.1:\d+)\s*$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
DRY_RUN_MESSAGE = "The request would have succeeded, but the DryRun option is set."
UNRECOGNIZED_CLIENT_MESSAGE = "The security token included in the request is invalid."
ALIAS_PREFIX_MESSAGE = 'Alias must start with the prefix "alias/".'

DEFAULT_POLICY_TEMPLATE = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}


def default_policy(account: str) -> dict:
    doc = json.loads(json.dumps(DEFAULT_POLICY_TEMPLATE))
    doc["Statement"][0]["Principal"]["AWS"] = f"arn:aws:iam::{account}:root"
    return doc


def key_arn(key_id: str, region: str = REGION, account: str = DEV_ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def alias_arn(alias_name: str, region: str = REGION, account: str = DEV_ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:{alias_name}"


def not_found_key_message(key_id: str, region: str = REGION, account: str = DEV_ACCOUNT) -> str:
    return f"Key '{key_arn(key_id, region, account)}' does not exist"


def alias_not_found_message(alias_name: str, region: str = REGION, account: str = DEV_ACCOUNT) -> str:
    return f"Alias {alias_arn(alias_name, region, account)} is not found."


def coral(*violations: str) -> str:
    """A Coral validation message from its violations."""
    if len(violations) == 1:
        return f"1 validation error detected: {violations[0]}"
    return f"{len(violations)} validation errors detected: " + "; ".join(violations)


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def trent_available() -> tuple[bool, str]:
    if not os.path.isfile(TRENT_BIN) or not os.access(TRENT_BIN, os.X_OK):
        return False, f"trent binary not found at {TRENT_BIN} (build it with `cargo build`, or set TRENT_BIN)"
    return True, ""


def clean_env() -> dict[str, str]:
    """The environment for a trent process: without TRENT_* settings (trent reads its flags from
    them too), so that only the arguments the suite passes apply."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRENT_")}


@dataclass
class TrentServer:
    """A trent process started with `trent serve ...`, stopped with SIGTERM."""

    args: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    # Run the server as this uid (and gid, no supplementary groups): needs root.
    user: int | None = None
    # More keyword arguments for subprocess.Popen (cwd, preexec_fn, ...).
    popen_kwargs: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    endpoint: str = ""
    port: int = 0
    stdout_lines: list[str] = field(default_factory=list)
    killed: bool = False
    died: bool = False  # exited before the suite stopped it
    returncode: int | None = None

    def start(self, timeout: float = 60.0) -> "TrentServer":
        ok, why = trent_available()
        if not ok:
            pytest.fail(why, pytrace=False)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = clean_env()
        env.setdefault("RUST_BACKTRACE", "1")
        # Servers run side by side: each admin listener (metrics, health) takes a free port.
        env["TRENT_ADMIN_LISTEN"] = "127.0.0.1:0"
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(
            [TRENT_BIN, *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
            **({"user": self.user, "group": self.user, "extra_groups": []} if self.user is not None else {}),
            **self.popen_kwargs,
        )
        found: "queue.Queue[str | None]" = queue.Queue()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            announced = False
            for line in self.proc.stdout:
                self.stdout_lines.append(line.rstrip("\n"))
                if not announced and LISTEN_RE.match(line.strip()):
                    announced = True
                    found.put(line.strip())
            found.put(None)

        self._pump = threading.Thread(target=pump, name="trent-stdout", daemon=True)
        self._pump.start()
        try:
            line = found.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.stop()
            pytest.fail(
                f"`trent {' '.join(self.args)}` did not print 'trent listening on http://127.0.0.1:PORT'"
                f" (exit code {self.proc.returncode}).\nstdout:\n" + "\n".join(self.stdout_lines)
                + "\nstderr (tail):\n" + self.stderr_tail(),
                pytrace=False,
            )
        m = LISTEN_RE.match(line)
        assert m
        self.endpoint = m.group(1)
        self.port = int(m.group(2))
        return self

    @property
    def admin_endpoint(self) -> str:
        """The admin listener (metrics, health) the server announced."""
        for line in self.stdout_lines:
            m = ADMIN_RE.match(line.strip())
            if m:
                return m.group(1)
        raise AssertionError("the server announced no admin listener: " + "\n".join(self.stdout_lines))

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is not None and self.returncode is None:
            self.died = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        if getattr(self, "_pump", None) is not None:
            self._pump.join(timeout=5)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        return self.returncode


@dataclass
class NonDevServer:
    server: TrentServer
    data_dir: Path
    access_key: str
    secret_key: str
    credentials_path: Path
    config_path: Path

    @property
    def endpoint(self) -> str:
        return self.server.endpoint


def start_nondev(data_dir: Path, log_path: Path, extra_args: list[str] | None = None) -> NonDevServer:
    args = ["serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *(extra_args or [])]
    server = TrentServer(args, log_path).start()
    creds = data_dir / "credentials"
    deadline = time.monotonic() + 10
    while not creds.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not creds.exists():
        server.stop()
        pytest.fail(f"trent did not write {creds}", pytrace=False)
    ak, sk = read_profile(creds, "trent")
    return NonDevServer(server, data_dir, ak, sk, creds, data_dir / "aws-config")


def read_profile(path: Path, profile: str) -> tuple[str, str]:
    cp = configparser.ConfigParser()
    cp.read(path)
    assert cp.has_section(profile), f"{path} has no [{profile}] section: {path.read_text()!r}"
    return cp[profile]["aws_access_key_id"].strip(), cp[profile]["aws_secret_access_key"].strip()


def run_trent(args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    ok, why = trent_available()
    if not ok:
        pytest.fail(why, pytrace=False)
    return subprocess.run(
        [TRENT_BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        env=clean_env(),
    )


CRED_LINE_RE = {
    "ak": re.compile(r"aws_access_key_id\s*=\s*(\S+)"),
    "sk": re.compile(r"aws_secret_access_key\s*=\s*(\S+)"),
}


def principal_documented(sub: str, data_dir: Path, *rest: str) -> subprocess.CompletedProcess:
    """`trent principal <sub> --data-dir DIR ...`, the documented form."""
    return run_trent(["principal", sub, "--data-dir", str(data_dir), *rest])


def principal(sub: str, data_dir: Path, *rest: str) -> subprocess.CompletedProcess:
    """`trent principal <sub> ...` on DIR. Uses the documented form (`principal <sub> --data-dir DIR`);
    if this trent only takes `principal --data-dir DIR <sub>`, falls back to that so that the
    authentication tests still run (test_auth.py::test_principal_cli_documented_form reports the
    difference on its own)."""
    cp = principal_documented(sub, data_dir, *rest)
    if cp.returncode == 2 and "--data-dir" in cp.stderr and "unexpected argument" in cp.stderr:
        cp = run_trent(["principal", "--data-dir", str(data_dir), sub, *rest])
    return cp


def create_principal(data_dir: Path, arn: str) -> tuple[str, str]:
    """`trent principal create`, returning (access key id, secret access key)."""
    cp = principal("create", data_dir, "--arn", arn)
    assert cp.returncode == 0, f"principal create failed ({cp.returncode}): {cp.stdout}\n{cp.stderr}"
    ak = CRED_LINE_RE["ak"].search(cp.stdout)
    sk = CRED_LINE_RE["sk"].search(cp.stdout)
    assert ak and sk, f"principal create printed no credentials: {cp.stdout!r}"
    return ak.group(1), sk.group(1)


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def client_config(validate: bool = True) -> Config:
    # One attempt: a retried 5xx or throttle would hide what the server really answered.
    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        parameter_validation=validate,
        connect_timeout=5,
        read_timeout=60,
    )


def make_kms_client(
    endpoint: str,
    region: str = REGION,
    access_key: str = DEV_ACCESS_KEY,
    secret_key: str = DEV_SECRET_KEY,
    validate: bool = True,
):
    return boto3.session.Session().client(
        "kms",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=client_config(validate),
    )


def expect_error(
    call: Callable[[], Any],
    code: str | set[str] | tuple[str, ...],
    message: str | None = None,
    status: int | None = 400,
    startswith: str | None = None,
    contains: str | tuple[str, ...] | None = None,
) -> dict:
    """Run `call`, expect a ClientError; check code, HTTP status and message. Returns the response."""
    with pytest.raises(ClientError) as ei:
        call()
    resp = ei.value.response
    got_code = resp.get("Error", {}).get("Code")
    got_msg = resp.get("Error", {}).get("Message", "")
    got_status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
    codes = {code} if isinstance(code, str) else set(code)
    assert got_code in codes, f"expected {sorted(codes)}, got {got_code!r}: {got_msg!r}"
    if status is not None:
        assert got_status == status, f"{got_code}: expected HTTP {status}, got {got_status}"
    if message is not None:
        assert got_msg == message
    if startswith is not None:
        assert got_msg.startswith(startswith), f"{got_msg!r} does not start with {startswith!r}"
    if contains is not None:
        for part in (contains,) if isinstance(contains, str) else contains:
            assert part in got_msg, f"{got_msg!r} does not contain {part!r}"
    assert resp["ResponseMetadata"].get("RequestId"), "error response without x-amzn-RequestId"
    return resp


def error_message(resp: dict) -> str:
    return resp.get("Error", {}).get("Message", "")


def assert_request_id(resp: dict) -> None:
    rid = resp["ResponseMetadata"].get("RequestId", "")
    assert rid, "response without x-amzn-RequestId"
    headers = resp["ResponseMetadata"].get("HTTPHeaders", {})
    assert "x-amzn-requestid" in headers


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def assert_recent(ts: dt.datetime, seconds: float = 300) -> None:
    assert isinstance(ts, dt.datetime)
    delta = abs((ts - now_utc()).total_seconds())
    assert delta < seconds, f"{ts} is {delta:.0f}s away from now"


# --------------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def error_code(self) -> str | None:
        """The code as a client reads it: `__type` after '#' and before ':', else X-Amzn-ErrorType."""
        raw = None
        try:
            doc = self.json()
            if isinstance(doc, dict):
                raw = doc.get("__type") or doc.get("code")
        except ValueError:
            pass
        raw = raw or self.headers.get("x-amzn-ErrorType")
        if not raw:
            return None
        return raw.split("#")[-1].split(":")[0]

    @property
    def error_message(self) -> str | None:
        try:
            doc = self.json()
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        return doc.get("message", doc.get("Message"))


def raw_call(
    endpoint: str,
    target: str | None,
    body: bytes | str,
    *,
    region: str = REGION,
    access_key: str = DEV_ACCESS_KEY,
    secret_key: str = DEV_SECRET_KEY,
    sign: bool = True,
    sign_time: dt.datetime | None = None,
    content_type: str | None = JSON_11,
    extra_headers: dict[str, str] | None = None,
    path: str = "/",
) -> RawResponse:
    """POST a request as an AWS SDK would, signed with botocore's SigV4 (service `kms`)."""
    if isinstance(body, str):
        body = body.encode()
    headers: dict[str, str] = {}
    if target is not None:
        headers["X-Amz-Target"] = target
    if content_type is not None:
        headers["Content-Type"] = content_type
    if extra_headers:
        headers.update(extra_headers)
    req = AWSRequest(method="POST", url=endpoint + path, data=body, headers=headers)
    if sign:
        signer = SigV4Auth(Credentials(access_key, secret_key), "kms", region)
        if sign_time is not None:
            with mock.patch("botocore.auth.get_current_datetime", return_value=sign_time):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
    prepared = req.prepare()
    r = requests.post(prepared.url, headers=dict(prepared.headers.items()), data=prepared.body, timeout=60)
    return RawResponse(r.status_code, r.headers, r.content)


def kms_call(endpoint: str, operation: str, payload: Any, **kw) -> RawResponse:
    return raw_call(endpoint, f"TrentService.{operation}", json.dumps(payload), **kw)


# --------------------------------------------------------------------------------------------
# AWS CLI
# --------------------------------------------------------------------------------------------


def aws_cli_base() -> list[str]:
    exe = shutil.which("aws")
    return [exe] if exe else [sys.executable, "-m", "awscli"]


CLI_ERROR_RE = re.compile(
    r"An error occurred \(([^)]+)\) when calling the (\w+) operation(?: \([^)]*\))?: ?(.*)", re.S
)


@dataclass
class CliResult:
    returncode: int
    json: Any
    stderr: str
    stdout: str

    def __iter__(self):  # (returncode, parsed json, stderr)
        return iter((self.returncode, self.json, self.stderr))

    @property
    def error_code(self) -> str | None:
        m = CLI_ERROR_RE.search(self.stderr)
        return m.group(1) if m else None

    @property
    def error_message(self) -> str | None:
        m = CLI_ERROR_RE.search(self.stderr)
        return m.group(3).strip() if m else None


def cli_env(
    access_key: str | None = DEV_ACCESS_KEY,
    secret_key: str | None = DEV_SECRET_KEY,
    region: str | None = REGION,
    credentials_file: Path | None = None,
    config_file: Path | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_MAX_ATTEMPTS"] = "1"
    env["AWS_RETRY_MODE"] = "standard"
    env["AWS_PAGER"] = ""
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials_file) if credentials_file else os.devnull
    env["AWS_CONFIG_FILE"] = str(config_file) if config_file else os.devnull
    if access_key is not None:
        env["AWS_ACCESS_KEY_ID"] = access_key
    if secret_key is not None:
        env["AWS_SECRET_ACCESS_KEY"] = secret_key
    if region is not None:
        env["AWS_DEFAULT_REGION"] = region
    return env


def run_aws_cli(
    endpoint: str,
    args: list[str],
    env: dict[str, str] | None = None,
    global_args: list[str] | None = None,
    timeout: float = 60.0,
) -> CliResult:
    """`aws --endpoint-url URL kms <args> --output json`; returns (returncode, parsed json, stderr)."""
    cmd = [*aws_cli_base(), "--endpoint-url", endpoint, *(global_args or []), "kms", *args, "--output", "json"]
    cp = subprocess.run(
        cmd, env=env if env is not None else cli_env(), capture_output=True, text=True, timeout=timeout
    )
    parsed = None
    if cp.stdout.strip():
        try:
            parsed = json.loads(cp.stdout)
        except ValueError:
            parsed = None
    return CliResult(cp.returncode, parsed, cp.stderr, cp.stdout)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(data: str) -> bytes:
    return base64.b64decode(data)


def assert_symmetric_metadata(
    md: dict,
    *,
    account: str = DEV_ACCOUNT,
    region: str = REGION,
    description: str = "",
    state: str = "Enabled",
    origin: str = "AWS_KMS",
) -> None:
    """The full KeyMetadata of a customer managed symmetric key, as DescribeKey shows it."""
    assert UUID_RE.match(md["KeyId"]), md["KeyId"]
    # A v4 UUID: version nibble 4, variant 10xx.
    assert md["KeyId"][14] == "4" and md["KeyId"][19] in "89ab", md["KeyId"]
    assert md["AWSAccountId"] == account
    assert md["Arn"] == key_arn(md["KeyId"], region, account)
    assert_recent(md["CreationDate"], seconds=3600)
    assert md["Enabled"] is (state == "Enabled")
    assert md["Description"] == description
    assert md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["KeyState"] == state
    assert md["Origin"] == origin
    assert md["KeyManager"] == "CUSTOMER"
    assert md["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["MultiRegion"] is False
    # Members that only other kinds of keys carry.
    for absent in ("SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms", "MultiRegionConfiguration",
                   "CustomKeyStoreId", "CloudHsmClusterId", "ValidTo", "ExpirationModel"):
        assert absent not in md, f"{absent} present in symmetric AWS_KMS KeyMetadata: {md[absent]!r}"
    if state != "PendingDeletion":
        assert "DeletionDate" not in md
        assert "PendingDeletionWindowInDays" not in md
    if "CurrentKeyMaterialId" in md:
        assert HEX64_RE.match(md["CurrentKeyMaterialId"]), md["CurrentKeyMaterialId"]


# --------------------------------------------------------------------------------------------
# Servers with principals from a config file (access control, grants)
# --------------------------------------------------------------------------------------------


def statement(effect: str, actions: str | list[str], resource: str | list[str] = "*",
              principal: str | list[str] | None = None, condition: dict | None = None,
              sid: str | None = None) -> dict:
    """One policy statement. `principal` (ARNs, or "*") makes it a key policy statement."""
    s: dict[str, Any] = {"Effect": effect, "Action": actions, "Resource": resource}
    if sid is not None:
        s = {"Sid": sid, **s}
    if principal is not None:
        s["Principal"] = "*" if principal == "*" else {"AWS": principal}
    if condition is not None:
        s["Condition"] = condition
    return s


def allow(actions, resource="*", **kw) -> dict:
    return statement("Allow", actions, resource, **kw)


def deny(actions, resource="*", **kw) -> dict:
    return statement("Deny", actions, resource, **kw)


def policy_doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def account_root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


# What AWS's console puts in a key policy for key administrators: managing the key, not using it.
KEY_ADMIN_ACTIONS = [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
]


def denied_message(principal_arn: str, action: str, resource: str, why: str) -> str:
    """AWS's AccessDeniedException message. `why`: "no-resource", "no-identity", "deny-resource",
    "deny-identity"."""
    head = f"User: {principal_arn} is not authorized to perform: kms:{action} on resource: {resource}"
    return head + {
        "no-resource": f" because no resource-based policy allows the kms:{action} action",
        "no-identity": f" because no identity-based policy allows the kms:{action} action",
        "deny-resource": " with an explicit deny in a resource-based policy",
        "deny-identity": " with an explicit deny in an identity-based policy",
    }[why]


def hidden_key_message(principal_arn: str, action: str) -> str:
    """AWS's AccessDeniedException message for another account's key, refused or absent."""
    return (
        f"User: {principal_arn} is not authorized to perform: kms:{action} on this resource because the "
        "resource does not exist in this Region, no resource-based policies allow access, or a "
        "resource-based policy explicitly denies access"
    )


@dataclass
class ConfiguredPrincipal:
    """A `[[principals]]` entry: `name` is what the tests call it."""

    name: str
    arn: str
    policies: dict[str, Any] = field(default_factory=dict)  # policy name -> document (dict or text)
    access_key: str = ""
    secret_key: str = ""

    def __post_init__(self) -> None:
        if not self.access_key:
            self.access_key = ("AKIA" + re.sub(r"[^A-Za-z0-9]", "", self.name).upper() + "0" * 16)[:20]
        if not self.secret_key:
            self.secret_key = f"{self.name}-secret-" + "s" * 24

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


def toml_str(s: str) -> str:
    # JSON's string escapes (ASCII only) are valid TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=True)


def principals_toml(principals: list[ConfiguredPrincipal]) -> str:
    out = []
    for p in principals:
        out += ["[[principals]]", f"arn = {toml_str(p.arn)}", f"access_key_id = {toml_str(p.access_key)}",
                f"secret_access_key = {toml_str(p.secret_key)}"]
        if p.policies:
            out.append("[principals.policies]")
            for name, doc in p.policies.items():
                text = doc if isinstance(doc, str) else json.dumps(doc)
                out.append(f"{toml_str(name)} = {toml_str(text)}")
        out.append("")
    return "\n".join(out)


@dataclass
class ConfiguredServer:
    """`trent serve --config FILE --data-dir DIR` with the principals of FILE."""

    server: TrentServer
    data_dir: Path
    config_path: Path
    principals: dict[str, ConfiguredPrincipal]
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def arn(self, name: str) -> str:
        return self.principals[name].arn

    def client(self, name: str, validate: bool = True):
        """A boto3 KMS client signing as principal `name` (cached)."""
        key = f"{name}/{validate}"
        if key not in self._clients:
            p = self.principals[name]
            self._clients[key] = make_kms_client(self.endpoint, access_key=p.access_key, secret_key=p.secret_key,
                                                 validate=validate)
        return self._clients[key]

    def cli(self, name: str, args: list[str]) -> CliResult:
        """The AWS CLI (`aws kms <args>`) signing as principal `name`."""
        p = self.principals[name]
        return run_aws_cli(self.endpoint, args, env=cli_env(access_key=p.access_key, secret_key=p.secret_key))

    def admin_command(self, *args: str) -> subprocess.CompletedProcess:
        """`trent principal <args> --data-dir DIR` (the documented form)."""
        return run_trent(["principal", *args, "--data-dir", str(self.data_dir)])


def start_configured(base: Path, principals: list[ConfiguredPrincipal]) -> ConfiguredServer:
    """Write a config file with `principals` under `base` and start a non-dev server on it."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "trent.toml"
    config.write_text(principals_toml(principals))
    data_dir = base / "data"
    server = TrentServer(
        ["serve", "--config", str(config), "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        base / "stderr.log",
    ).start()
    return ConfiguredServer(server, data_dir, config, {p.name: p for p in principals})


def wait_until(check: Callable[[], bool], timeout: float = 3.0, every: float = 0.1) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


# The audit log's files, as a reader of the data directory sees them.
AUDIT_LOG_NAME = re.compile(r"^audit-\d{12}\.jsonl$")


def audit_lines(audit_dir: Path) -> list[str]:
    """Every line of the audit log in `audit_dir`, oldest file first."""
    out: list[str] = []
    for f in sorted(p for p in audit_dir.iterdir() if AUDIT_LOG_NAME.match(p.name)):
        out += f.read_text().splitlines()
    return out


def audit_records(audit_dir: Path) -> list[dict]:
    """Every record of the audit log in `audit_dir`, parsed, in order."""
    return [json.loads(line) for line in audit_lines(audit_dir)]


def audit_by_request_id(audit_dir: Path) -> dict[str, list[dict]]:
    """The records of the audit log in `audit_dir` by their requestID."""
    out: dict[str, list[dict]] = {}
    for r in audit_records(audit_dir):
        out.setdefault(r.get("requestID"), []).append(r)
    return out
