"""Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand and
ListKeyRotations, and the rotations the server does on schedule.

The module runs its own dev server, because it moves that server's clock months ahead
(`POST /trent-dev/advance-clock`, which also runs the scheduled work before it answers); the
session's dev server keeps real time. Each test reads the server's time from that endpoint.

Messages marked "trent's wording" are not published by AWS (see docs/rotation.md).
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from kmsutil import HEX64_RE, TrentServer, coral, expect_error, make_kms_client, run_aws_cli, wait_until

DAY = 86_400


def start_dev(tmp_dir, *extra: str, data_dir=None) -> TrentServer:
    store = ["--data-dir", str(data_dir)] if data_dir else ["--in-memory"]
    return TrentServer(
        ["serve", "--dev", *store, "--listen", "127.0.0.1:0", *extra],
        tmp_dir / f"stderr-{len(list(tmp_dir.glob('stderr-*')))}.log",
    ).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_dev(tmp_path_factory.mktemp("trent-rotation"))
    yield srv
    srv.stop()
    if srv.died:
        pytest.fail(f"the rotation dev server exited on its own:\n{srv.stderr_tail()}")


@pytest.fixture(scope="module")
def kms(server):
    return make_kms_client(server.endpoint)


@pytest.fixture(scope="module")
def kms_raw(server):
    """No client-side validation: out-of-range values reach the server."""
    return make_kms_client(server.endpoint, validate=False)


def advance(endpoint: str, seconds: int) -> float:
    """Move the server's clock `seconds` ahead; the scheduled work is done before the answer.
    Returns the server's time afterwards (epoch seconds)."""
    r = requests.post(endpoint + "/trent-dev/advance-clock", json={"Seconds": seconds}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["Now"]


def ts(d: dt.datetime) -> float:
    return d.timestamp()


def new_key_id(kms, **kw) -> str:
    return kms.create_key(**kw)["KeyMetadata"]["KeyId"]


def status(kms, key_id: str) -> dict:
    r = kms.get_key_rotation_status(KeyId=key_id)
    r.pop("ResponseMetadata")
    return r


def rotations(kms, key_id: str, **kw) -> list[dict]:
    r = kms.list_key_rotations(KeyId=key_id, **kw)
    assert r["Truncated"] is False and "NextMarker" not in r
    return r["Rotations"]


def current_material(kms, key_id: str) -> str:
    mid = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert HEX64_RE.match(mid), mid
    return mid


def rotate_and_wait(kms, key_id: str, done_before: int) -> dict:
    """RotateKeyOnDemand, then wait for the background rotation; returns the new entry."""
    r = kms.rotate_key_on_demand(KeyId=key_id)
    assert r["KeyId"] == kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    assert wait_until(lambda: len(rotations(kms, key_id)) == done_before + 1, timeout=10, every=0.05), (
        f"on-demand rotation {done_before + 1} of {key_id} did not complete"
    )
    # The rotation is complete: GetKeyRotationStatus no longer shows it in progress.
    assert wait_until(lambda: "OnDemandRotationStartDate" not in status(kms, key_id), timeout=5, every=0.05)
    return rotations(kms, key_id)[-1]


def decrypt(kms, blob: bytes) -> dict:
    return kms.decrypt(CiphertextBlob=blob)


# ---------------------------------------------------------------------------------------------
# Enable / Disable / GetKeyRotationStatus
# ---------------------------------------------------------------------------------------------


def test_a_new_key_does_not_rotate(kms):
    key_id = new_key_id(kms)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    assert status(kms, key_id) == {"KeyRotationEnabled": False, "KeyId": arn}


@pytest.mark.parametrize("period", [None, 90, 2560])
def test_enable_sets_the_period_and_the_next_rotation_date(kms, server, period):
    key_id = new_key_id(kms)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    before = advance(server.endpoint, 0)
    kms.enable_key_rotation(KeyId=key_id, **({"RotationPeriodInDays": period} if period else {}))
    after = advance(server.endpoint, 0)
    s = status(kms, key_id)
    days = period or 365
    assert s["KeyRotationEnabled"] is True
    assert s["KeyId"] == arn
    assert s["RotationPeriodInDays"] == days
    assert "OnDemandRotationStartDate" not in s
    # The first rotation is one period after the enable time.
    next_at = ts(s["NextRotationDate"])
    assert before + days * DAY - 1 <= next_at <= after + days * DAY + 1, (before, next_at, after)

    kms.disable_key_rotation(KeyId=key_id)
    assert status(kms, key_id) == {"KeyRotationEnabled": False, "KeyId": arn}


def test_enabling_again_with_the_same_period_keeps_the_date_and_a_new_period_restarts_it(kms, server):
    # trent's choice: AWS does not say how NextRotationDate changes with the period (unconfirmed).
    key_id = new_key_id(kms)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=100)
    first = status(kms, key_id)["NextRotationDate"]
    advance(server.endpoint, 0)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=100)
    assert status(kms, key_id)["NextRotationDate"] == first
    now = advance(server.endpoint, 0)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=200)
    s = status(kms, key_id)
    assert s["RotationPeriodInDays"] == 200
    assert abs(ts(s["NextRotationDate"]) - (now + 200 * DAY)) <= 1


@pytest.mark.parametrize(
    "period, constraint",
    [
        (89, "Member must have value greater than or equal to 90"),
        (2561, "Member must have value less than or equal to 2560"),
        (0, "Member must have value greater than or equal to 90"),
    ],
)
def test_a_period_out_of_range_is_a_validation_error(kms_raw, period, constraint):
    key_id = new_key_id(kms_raw)
    expect_error(
        lambda: kms_raw.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=period),
        "ValidationException",
        coral(f"Value '{period}' at 'rotationPeriodInDays' failed to satisfy constraint: {constraint}"),
    )
    assert status(kms_raw, key_id)["KeyRotationEnabled"] is False


def test_the_exact_89_day_message(kms_raw):
    key_id = new_key_id(kms_raw)
    expect_error(
        lambda: kms_raw.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=89),
        "ValidationException",
        "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: "
        "Member must have value greater than or equal to 90",
    )


def test_the_cli_enables_and_shows_rotation(kms, server):
    key_id = new_key_id(kms)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    r = run_aws_cli(server.endpoint, ["enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "180"])
    assert r.returncode == 0, r.stderr
    r = run_aws_cli(server.endpoint, ["get-key-rotation-status", "--key-id", key_id])
    assert r.returncode == 0, r.stderr
    assert r.json["KeyRotationEnabled"] is True
    assert r.json["KeyId"] == arn
    assert r.json["RotationPeriodInDays"] == 180
    assert "NextRotationDate" in r.json
    # Above the model's maximum: the CLI's botocore checks only the minimum, so the server answers.
    r = run_aws_cli(server.endpoint, ["enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "2561"])
    assert r.returncode != 0
    assert r.error_code == "ValidationException"
    assert r.error_message == coral(
        "Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: "
        "Member must have value less than or equal to 2560"
    )


@pytest.mark.parametrize(
    "spec, usage",
    [("RSA_2048", "ENCRYPT_DECRYPT"), ("ECC_NIST_P256", "SIGN_VERIFY"), ("HMAC_256", "GENERATE_VERIFY_MAC")],
)
def test_asymmetric_and_hmac_keys_do_not_rotate(kms, spec, usage):
    md = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    # AWS names only the exception; the message is trent's wording.
    msg = f"{arn} key spec is {spec} which is not valid for this operation."
    expect_error(lambda: kms.enable_key_rotation(KeyId=key_id), "UnsupportedOperationException", msg)
    expect_error(lambda: kms.disable_key_rotation(KeyId=key_id), "UnsupportedOperationException", msg)
    # RotateKeyOnDemand: AWS's answer (recorded) has an empty message, sent as no message member.
    resp = expect_error(lambda: kms.rotate_key_on_demand(KeyId=key_id), "UnsupportedOperationException", "")
    assert "message" not in resp
    expect_error(lambda: kms.list_key_rotations(KeyId=key_id), "UnsupportedOperationException", msg)
    # trent's choice, unconfirmed: AWS may answer GetKeyRotationStatus with KeyRotationEnabled=false
    # instead (local-kms does, saying AWS does).
    expect_error(lambda: kms.get_key_rotation_status(KeyId=key_id), "UnsupportedOperationException", msg)


def test_on_demand_rotation_checks_the_key_state_before_the_key_spec(kms):
    md = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    kms.disable_key(KeyId=md["KeyId"])
    # AWS's answer (recorded): the state is checked first.
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=md["KeyId"]), "DisabledException", f"{md['Arn']} is disabled.")
    kms.enable_key(KeyId=md["KeyId"])
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=md["KeyId"]), "UnsupportedOperationException", "")


def test_a_key_with_imported_material_has_no_automatic_rotation(kms):
    md = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    assert md["KeyState"] == "PendingImport"
    # The form AWS documents (key-state table, footnote 6).
    msg = f"{arn} origin is EXTERNAL which is not valid for this operation."
    expect_error(lambda: kms.enable_key_rotation(KeyId=key_id), "UnsupportedOperationException", msg)
    expect_error(lambda: kms.disable_key_rotation(KeyId=key_id), "UnsupportedOperationException", msg)
    expect_error(lambda: kms.get_key_rotation_status(KeyId=key_id), "UnsupportedOperationException", msg)
    # On-demand rotation needs material PENDING_ROTATION; this key has none (it is pending import).
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=key_id), "KMSInvalidStateException", f"{arn} is pending import.")
    # Imported keys do support on-demand rotation, so they can be listed: nothing yet.
    assert rotations(kms, key_id) == []


def test_a_disabled_key_keeps_its_setting_but_cannot_change_it(kms):
    md = kms.create_key()["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=120)
    before = status(kms, key_id)
    kms.disable_key(KeyId=key_id)
    msg = f"{arn} is disabled."
    expect_error(lambda: kms.enable_key_rotation(KeyId=key_id), "DisabledException", msg)
    expect_error(lambda: kms.disable_key_rotation(KeyId=key_id), "DisabledException", msg)
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=key_id), "DisabledException", msg)
    # GetKeyRotationStatus works in the Disabled state, and the status does not change.
    assert status(kms, key_id) == before


def test_a_key_pending_deletion_shows_no_rotation_until_deletion_is_cancelled(kms):
    md = kms.create_key()["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    before = status(kms, key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert status(kms, key_id) == {"KeyRotationEnabled": False, "KeyId": arn}
    msg = f"{arn} is pending deletion."
    expect_error(lambda: kms.enable_key_rotation(KeyId=key_id), "KMSInvalidStateException", msg)
    expect_error(lambda: kms.disable_key_rotation(KeyId=key_id), "KMSInvalidStateException", msg)
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=key_id), "KMSInvalidStateException", msg)
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    assert status(kms, key_id) == before


# ---------------------------------------------------------------------------------------------
# Automatic rotation on schedule (dev clock)
# ---------------------------------------------------------------------------------------------


def test_automatic_rotation_end_to_end(kms, server):
    key_id = new_key_id(kms)
    first_material = current_material(kms, key_id)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    blob_a = kms.encrypt(KeyId=key_id, Plaintext=b"A")["CiphertextBlob"]
    assert decrypt(kms, blob_a)["KeyMaterialId"] == first_material

    now = advance(server.endpoint, 91 * DAY)
    rots = rotations(kms, key_id)
    assert len(rots) == 1, rots
    r1 = rots[0]
    assert r1["KeyId"] == key_id
    assert r1["RotationType"] == "AUTOMATIC"
    assert r1["KeyMaterialState"] == "CURRENT"
    assert abs(ts(r1["RotationDate"]) - now) <= 2
    second_material = current_material(kms, key_id)
    assert second_material != first_material
    assert r1["KeyMaterialId"] == second_material
    # The next rotation is one period after this one.
    s = status(kms, key_id)
    assert s["KeyRotationEnabled"] is True and s["RotationPeriodInDays"] == 90
    assert abs(ts(s["NextRotationDate"]) - (ts(r1["RotationDate"]) + 90 * DAY)) < 0.002

    # Old ciphertext decrypts with the old material; new ciphertext uses the new one.
    d = decrypt(kms, blob_a)
    assert d["Plaintext"] == b"A" and d["KeyMaterialId"] == first_material
    blob_b = kms.encrypt(KeyId=key_id, Plaintext=b"B")["CiphertextBlob"]
    d = decrypt(kms, blob_b)
    assert d["Plaintext"] == b"B" and d["KeyMaterialId"] == second_material

    advance(server.endpoint, 90 * DAY + 1)
    rots = rotations(kms, key_id)
    assert [r["RotationType"] for r in rots] == ["AUTOMATIC", "AUTOMATIC"]
    assert [r["KeyMaterialState"] for r in rots] == ["NON_CURRENT", "CURRENT"]
    third_material = current_material(kms, key_id)
    assert third_material not in (first_material, second_material)
    assert rots[1]["KeyMaterialId"] == third_material
    for blob, plain, mid in [(blob_a, b"A", first_material), (blob_b, b"B", second_material)]:
        d = decrypt(kms, blob)
        assert (d["Plaintext"], d["KeyMaterialId"]) == (plain, mid)


def test_rotation_is_not_due_before_its_date(kms, server):
    key_id = new_key_id(kms)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    advance(server.endpoint, 89 * DAY)
    assert rotations(kms, key_id) == []


def test_a_missed_schedule_catches_up_with_one_rotation(kms, server):
    key_id = new_key_id(kms)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    now = advance(server.endpoint, 400 * DAY)
    rots = rotations(kms, key_id)
    assert len(rots) == 1, rots  # not four
    assert rots[0]["RotationType"] == "AUTOMATIC"
    assert abs(ts(rots[0]["RotationDate"]) - now) <= 2
    s = status(kms, key_id)
    assert abs(ts(s["NextRotationDate"]) - (ts(rots[0]["RotationDate"]) + 90 * DAY)) < 0.002
    # Running the schedule again does nothing more.
    advance(server.endpoint, 0)
    assert len(rotations(kms, key_id)) == 1


def test_a_disabled_key_is_rotated_once_enabled_again(kms, server):
    key_id = new_key_id(kms)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    kms.disable_key(KeyId=key_id)
    advance(server.endpoint, 91 * DAY)
    assert rotations(kms, key_id) == []
    advance(server.endpoint, 200 * DAY)
    assert rotations(kms, key_id) == []
    kms.enable_key(KeyId=key_id)
    now = advance(server.endpoint, 0)
    rots = rotations(kms, key_id)
    assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC", rots
    assert abs(ts(rots[0]["RotationDate"]) - now) <= 2
    assert abs(ts(status(kms, key_id)["NextRotationDate"]) - (ts(rots[0]["RotationDate"]) + 90 * DAY)) < 0.002


def test_disabling_rotation_stops_the_schedule(kms, server):
    key_id = new_key_id(kms)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    kms.disable_key_rotation(KeyId=key_id)
    advance(server.endpoint, 91 * DAY)
    assert rotations(kms, key_id) == []


# ---------------------------------------------------------------------------------------------
# RotateKeyOnDemand
# ---------------------------------------------------------------------------------------------


def test_on_demand_rotation(kms):
    key_id = new_key_id(kms)
    first_material = current_material(kms, key_id)
    blob_a = kms.encrypt(KeyId=key_id, Plaintext=b"A")["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=key_id)
    scheduled = status(kms, key_id)["NextRotationDate"]

    entry = rotate_and_wait(kms, key_id, 0)
    assert entry["RotationType"] == "ON_DEMAND"
    assert entry["KeyMaterialState"] == "CURRENT"
    assert entry["KeyId"] == key_id
    assert ts(entry["RotationDate"]) > 0
    new_material = current_material(kms, key_id)
    assert new_material != first_material and entry["KeyMaterialId"] == new_material
    # On-demand rotation leaves the automatic schedule alone.
    s = status(kms, key_id)
    assert s["KeyRotationEnabled"] is True and s["RotationPeriodInDays"] == 365
    assert s["NextRotationDate"] == scheduled
    assert decrypt(kms, blob_a)["KeyMaterialId"] == first_material
    blob_b = kms.encrypt(KeyId=key_id, Plaintext=b"B")["CiphertextBlob"]
    assert decrypt(kms, blob_b)["KeyMaterialId"] == new_material


def test_on_demand_rotation_does_not_need_automatic_rotation(kms):
    key_id = new_key_id(kms)
    entry = rotate_and_wait(kms, key_id, 0)
    assert entry["RotationType"] == "ON_DEMAND"
    assert status(kms, key_id)["KeyRotationEnabled"] is False


def test_the_cli_rotates_on_demand(kms, server):
    md = kms.create_key()["KeyMetadata"]
    r = run_aws_cli(server.endpoint, ["rotate-key-on-demand", "--key-id", md["KeyId"]])
    assert r.returncode == 0, r.stderr
    assert r.json == {"KeyId": md["Arn"]}
    assert wait_until(lambda: len(rotations(kms, md["KeyId"])) == 1, timeout=10)


def test_on_demand_rotation_is_refused_close_to_an_automatic_one(kms, server):
    md = kms.create_key()["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    due = ts(status(kms, key_id)["NextRotationDate"])
    now = advance(server.endpoint, 0)
    advance(server.endpoint, int(due - now) - 10 * 60)
    # AWS names the exception; the message is trent's wording.
    expect_error(
        lambda: kms.rotate_key_on_demand(KeyId=key_id),
        "ConflictException",
        f"{arn} cannot be rotated now: a rotation of this key is in progress or an automatic rotation is "
        "scheduled to begin within the next 20 minutes.",
    )
    assert rotations(kms, key_id) == []


def test_the_26th_on_demand_rotation_exceeds_the_limit(kms):
    md = kms.create_key()["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    for i in range(25):
        rotate_and_wait(kms, key_id, i)
    assert len(rotations(kms, key_id)) == 25
    # AWS names the exception and the limit (25); the message is AWS's (recorded).
    expect_error(
        lambda: kms.rotate_key_on_demand(KeyId=key_id),
        "LimitExceededException",
        "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be "
        f"performed for this key: {arn}",
    )
    # Automatic rotation is not limited.
    kms.enable_key_rotation(KeyId=key_id)


# ---------------------------------------------------------------------------------------------
# ListKeyRotations
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotated_three_times(kms):
    """A key rotated on demand three times: (key id, [first material, rotated materials...])."""
    key_id = new_key_id(kms)
    materials = [current_material(kms, key_id)]
    for i in range(3):
        rotate_and_wait(kms, key_id, i)
        materials.append(current_material(kms, key_id))
    return key_id, materials


def test_list_rotations_omits_the_first_material_by_default(kms, rotated_three_times):
    key_id, materials = rotated_three_times
    rots = rotations(kms, key_id)
    assert rots == rotations(kms, key_id, IncludeKeyMaterial="ROTATIONS_ONLY")
    # trent's choice: oldest first (AWS does not document the order).
    assert [r["KeyMaterialId"] for r in rots] == materials[1:]
    assert [r["KeyMaterialState"] for r in rots] == ["NON_CURRENT", "NON_CURRENT", "CURRENT"]
    assert [r["RotationType"] for r in rots] == ["ON_DEMAND"] * 3
    dates = [ts(r["RotationDate"]) for r in rots]
    assert dates == sorted(dates)
    for r in rots:
        assert set(r) == {"KeyId", "KeyMaterialId", "KeyMaterialState", "RotationDate", "RotationType"}


def test_list_rotations_with_all_key_material_lists_the_first_material_first(kms, rotated_three_times):
    key_id, materials = rotated_three_times
    rots = rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [r["KeyMaterialId"] for r in rots] == materials
    assert rots[0] == {"KeyId": key_id, "KeyMaterialId": materials[0], "KeyMaterialState": "NON_CURRENT"}
    assert [r["KeyMaterialState"] for r in rots] == ["NON_CURRENT"] * 3 + ["CURRENT"]
    assert rots[1:] == rotations(kms, key_id)


def test_list_rotations_of_a_key_never_rotated(kms):
    key_id = new_key_id(kms)
    first = current_material(kms, key_id)
    assert rotations(kms, key_id) == []
    assert rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL") == [
        {"KeyId": key_id, "KeyMaterialId": first, "KeyMaterialState": "CURRENT"}
    ]


def test_list_rotations_pages(kms, rotated_three_times):
    key_id, materials = rotated_three_times
    seen, marker, pages = [], None, 0
    while True:
        r = kms.list_key_rotations(KeyId=key_id, Limit=1, **({"Marker": marker} if marker else {}))
        pages += 1
        assert len(r["Rotations"]) == 1
        seen += r["Rotations"]
        if not r["Truncated"]:
            assert "NextMarker" not in r
            break
        assert r["NextMarker"]
        marker = r["NextMarker"]
    assert pages == 3
    assert [e["KeyMaterialId"] for e in seen] == materials[1:]
    # boto3's paginator and the CLI (which pages by itself) see the same list.
    pg = kms.get_paginator("list_key_rotations").paginate(KeyId=key_id, PaginationConfig={"PageSize": 1})
    assert [e["KeyMaterialId"] for p in pg for e in p["Rotations"]] == materials[1:]


def test_the_cli_lists_rotations_across_pages(kms, server, rotated_three_times):
    key_id, materials = rotated_three_times
    r = run_aws_cli(server.endpoint, ["list-key-rotations", "--key-id", key_id, "--page-size", "1"])
    assert r.returncode == 0, r.stderr
    assert [e["KeyMaterialId"] for e in r.json["Rotations"]] == materials[1:]


def test_list_rotations_refuses_a_bad_marker(kms, rotated_three_times):
    key_id, _ = rotated_three_times
    expect_error(
        lambda: kms.list_key_rotations(KeyId=key_id, Marker="not-a-marker-trent-issued"),
        "InvalidMarkerException",
        "The request was rejected because the marker that specifies where pagination should next begin is not valid.",
    )


def test_list_rotations_validates_its_parameters(kms_raw, rotated_three_times):
    key_id, _ = rotated_three_times
    expect_error(
        lambda: kms_raw.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="SOME"),
        "ValidationException",
        coral(
            "Value 'SOME' at 'includeKeyMaterial' failed to satisfy constraint: "
            "Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"
        ),
    )
    expect_error(
        lambda: kms_raw.list_key_rotations(KeyId=key_id, Limit=0),
        "ValidationException",
        coral("Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    )


def test_list_rotations_of_an_rsa_key_is_unsupported(kms):
    md = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    expect_error(
        lambda: kms.list_key_rotations(KeyId=md["KeyId"]),
        "UnsupportedOperationException",
        f"{md['Arn']} key spec is RSA_2048 which is not valid for this operation.",
    )


# ---------------------------------------------------------------------------------------------
# Restarts (a data directory)
# ---------------------------------------------------------------------------------------------


def test_rotations_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    srv = start_dev(tmp_path, data_dir=data)
    try:
        kms = make_kms_client(srv.endpoint)
        key_id = new_key_id(kms)
        first = current_material(kms, key_id)
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
        blob_a = kms.encrypt(KeyId=key_id, Plaintext=b"A")["CiphertextBlob"]
        rotate_and_wait(kms, key_id, 0)
        second = current_material(kms, key_id)
        blob_b = kms.encrypt(KeyId=key_id, Plaintext=b"B")["CiphertextBlob"]
        listed = rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
        sched = status(kms, key_id)
    finally:
        srv.stop()
    assert srv.returncode == 0 and not srv.died

    srv = start_dev(tmp_path, data_dir=data)
    try:
        kms = make_kms_client(srv.endpoint)
        assert current_material(kms, key_id) == second
        assert rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL") == listed
        assert status(kms, key_id) == sched
        for blob, plain, mid in [(blob_a, b"A", first), (blob_b, b"B", second)]:
            d = decrypt(kms, blob)
            assert (d["Plaintext"], d["KeyMaterialId"]) == (plain, mid)
    finally:
        srv.stop()


def test_a_rotation_due_while_down_is_done_once_at_start(tmp_path):
    data = tmp_path / "data"
    srv = start_dev(tmp_path, data_dir=data)
    try:
        kms = make_kms_client(srv.endpoint)
        key_id = new_key_id(kms)
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
        blob_a = kms.encrypt(KeyId=key_id, Plaintext=b"A")["CiphertextBlob"]
    finally:
        srv.stop()

    # 400 days later as far as the service clock knows, with the periodic check far off: the
    # rotation is done at start, before the first request is served, and only once.
    srv = start_dev(
        tmp_path, "--dev-clock-offset-secs", str(400 * DAY), "--deletion-check-secs", "3600", data_dir=data
    )
    try:
        kms = make_kms_client(srv.endpoint)
        rots = rotations(kms, key_id)
        assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC", rots
        now = advance(srv.endpoint, 0)
        assert abs(ts(rots[0]["RotationDate"]) - now) <= 30
        assert abs(ts(status(kms, key_id)["NextRotationDate"]) - (ts(rots[0]["RotationDate"]) + 90 * DAY)) < 0.002
        assert decrypt(kms, blob_a)["Plaintext"] == b"A"
    finally:
        srv.stop()
