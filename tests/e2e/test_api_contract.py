"""The public contract of device-change over HTTP: auth, tenancy, validation, shapes."""

import io
import uuid

import httpx
import pytest

from fleetops_common.auth import TokenService

from .platform import running_platform

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "device-change.db"
    with running_platform(f"sqlite:///{db}", fleet_size=300) as p:
        yield p


def token(platform, tenant="demo", role="operator"):
    s = platform.settings
    return TokenService(s.jwt_secret, issuer=s.jwt_issuer, audience=s.jwt_audience).mint(
        tenant=tenant, role=role
    )


def call(platform, method, path, *, role="operator", tenant="demo", **kw):
    headers = {"Authorization": f"Bearer {token(platform, tenant, role)}", **kw.pop("headers", {})}
    return httpx.request(method, platform.api.url + path, headers=headers, timeout=60, **kw)


def test_readyz_and_openapi_document_every_endpoint(platform):
    assert httpx.get(platform.api.url + "/readyz").status_code == 200
    spec = httpx.get(platform.api.url + "/openapi.json").json()
    for path in (
        "/v1/bulk-changes",
        "/v1/bulk-changes/csv",
        "/v1/bulk-changes/{bulk_change_id}",
        "/v1/bulk-changes/{bulk_change_id}/lines",
        "/v1/bulk-changes/{bulk_change_id}/cancel",
        "/v1/devices",
        "/v1/devices/{iccid}",
        "/v1/devices/{iccid}/history",
        "/v1/inventory/sync",
        "/v1/callbacks/thingspace",
    ):
        assert path in spec["paths"], path
    assert "422" in spec["paths"]["/v1/bulk-changes"]["post"]["responses"]


def test_calls_without_a_valid_token_are_refused_with_problem_details(platform):
    r = httpx.get(platform.api.url + "/v1/devices")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    r = httpx.get(platform.api.url + "/v1/devices", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "rejected" in r.json()["detail"]


def test_viewers_cannot_submit(platform):
    iccid = platform.active_iccids(1)[0]
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        role="viewer",
        json={
            "change_type": "update_device_status",
            "devices": [{"iccid": iccid}],
            "params": {"target_status": "SUSPENDED"},
            "dry_run": True,
        },
    )
    assert r.status_code == 403
    assert "operator" in r.json()["detail"]


def test_a_tenant_sees_only_its_own_devices_and_bulk_changes(platform):
    iccid = platform.active_iccids(1)[0]
    assert call(platform, "GET", f"/v1/devices/{iccid}", tenant="acme").status_code == 404
    assert call(platform, "GET", "/v1/devices", tenant="acme").json()["items"] == []
    dry = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        tenant="acme",
        json={
            "change_type": "update_device_status",
            "devices": [{"iccid": iccid}],
            "params": {"target_status": "SUSPENDED"},
            "dry_run": True,
        },
    ).json()
    assert dry["lines"][0]["valid"] is False and "unknown device" in dry["lines"][0]["reason"]


def test_malformed_input_names_the_field(platform):
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        json={"change_type": "update_device_status", "devices": [{"iccid": 12, "colour": "red"}]},
    )
    assert r.status_code == 422
    names = [p["name"] for p in r.json()["invalid_params"]]
    assert "body.devices[0].iccid" in names and "body.devices[0].colour" in names
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        json={"change_type": "teleport", "devices": [{"iccid": "1"}]},
    )
    assert r.status_code == 422 and r.json()["invalid_params"][0]["name"] == "body.change_type"
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        json={"change_type": "change_carrier_rate_plan", "devices": [{"iccid": "1"}], "params": {}},
    )
    assert r.status_code == 422
    assert r.json()["invalid_params"][0]["name"] == "body.params.rate_plan"


def test_a_body_that_is_not_json_is_refused_before_anything_is_stored(platform):
    before = call(platform, "GET", "/v1/bulk-changes").json()["items"]
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        content=b'{"change_type": "update_device_status", "devices": [{"iccid": "1"},',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["invalid_params"][0] == {"name": "body", "reason": "JSON decode error"}
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        content=b"iccid\n8914\n",
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 415 and "/v1/bulk-changes/csv" in r.json()["detail"]
    assert call(platform, "GET", "/v1/bulk-changes").json()["items"] == before


def test_a_submission_streamed_in_pieces_in_any_key_order_is_stored_whole(platform):
    iccids = platform.active_iccids(12)[9:12]
    raw = (
        '{"devices": ['
        + ", ".join(f'{{"iccid": "{i}"}}' for i in iccids)
        + '], "params": {"target_status": "SUSPENDED"}, "change_type": "update_device_status"}'
    ).encode()

    def pieces():
        for start in range(0, len(raw), 11):
            yield raw[start : start + 11]

    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        content=pieces(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["total"] == 3
    lines = call(platform, "GET", f"/v1/bulk-changes/{r.json()['id']}/lines").json()["items"]
    assert [ln["iccid"] for ln in lines] == iccids
    state = platform.wait_finished(r.json()["id"], timeout_s=60)
    assert state["counts"]["SUCCEEDED"] == 3


def test_dry_run_shape_and_nothing_stored(platform):
    iccid = platform.active_iccids(1)[0]
    before = call(platform, "GET", "/v1/bulk-changes").json()["items"]
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        json={
            "change_type": "change_carrier_rate_plan",
            "devices": [{"iccid": iccid}, {"iccid": iccid}, {"iccid": "8914800000000000000"}],
            "params": {"rate_plan": "NO_SUCH_PLAN"},
            "dry_run": True,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] == 0 and body["invalid"] == 3
    assert {"iccid", "valid", "reason"} <= set(body["lines"][0])
    assert "not in the carrier's list" in body["lines"][0]["reason"]
    assert "duplicate of line 1" in body["lines"][1]["reason"]
    assert call(platform, "GET", "/v1/bulk-changes").json()["items"] == before


def test_idempotency_key_returns_the_same_bulk_change(platform):
    iccid = platform.active_iccids(3)[2]
    key = str(uuid.uuid4())
    body = {
        "change_type": "update_device_status",
        "devices": [{"iccid": iccid}],
        "params": {"target_status": "SUSPENDED"},
    }
    first = call(platform, "POST", "/v1/bulk-changes", json=body, headers={"Idempotency-Key": key})
    again = call(platform, "POST", "/v1/bulk-changes", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    state = platform.wait_finished(first.json()["id"], timeout_s=60)
    lines = call(platform, "GET", f"/v1/bulk-changes/{first.json()['id']}/lines").json()
    assert state["counts"]["SUCCEEDED"] == 1, lines
    assert lines["items"][0]["carrier_request_id"] and lines["items"][0]["attempts"] == 1


def test_csv_upload_with_a_header_row(platform):
    iccids = platform.active_iccids(6)[4:6]
    csv_text = "iccid\n" + "\n".join(iccids) + "\n"
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes/csv",
        files={"file": ("devices.csv", io.BytesIO(csv_text.encode()), "text/csv")},
        data={
            "change_type": "update_device_status",
            "params": '{"target_status": "SUSPENDED"}',
            "dry_run": "true",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["valid"] == 2
    bad = call(
        platform,
        "POST",
        "/v1/bulk-changes/csv",
        files={"file": ("d.csv", io.BytesIO(b"serial\n1\n"), "text/csv")},
        data={"change_type": "update_device_status", "params": "{}"},
    )
    assert bad.status_code == 422 and "unknown column" in bad.json()["detail"]


def test_failed_lines_are_listed_with_reasons(platform):
    iccids = platform.active_iccids(8)[6:8]
    r = call(
        platform,
        "POST",
        "/v1/bulk-changes",
        json={
            "change_type": "update_device_status",
            "devices": [{"iccid": iccids[0]}, {"iccid": "89148000000000099999"}],
            "params": {"target_status": "SUSPENDED"},
        },
    )
    bulk_id = r.json()["id"]
    state = platform.wait_finished(bulk_id, timeout_s=60)
    assert state["status"] == "COMPLETED_WITH_ERRORS"
    assert state["counts"]["SUCCEEDED"] == 1 and state["counts"]["FAILED"] == 1
    failed = call(platform, "GET", f"/v1/bulk-changes/{bulk_id}/lines?status=FAILED").json()
    assert len(failed["items"]) == 1 and failed["items"][0]["reason"].startswith("pre-flight:")


def test_callbacks_with_wrong_credentials_are_refused(platform):
    r = httpx.post(
        platform.api.url + "/v1/callbacks/thingspace",
        json={
            "username": "x",
            "password": "y",
            "requestId": "r",
            "deviceIds": [],
            "status": "Success",
        },
    )
    assert r.status_code == 401


def callback_body(platform, request_id, iccid, **extra):
    s = platform.settings
    return {
        "username": s.callback_username,
        "password": s.callback_password,
        "requestId": request_id,
        "deviceIds": [{"id": iccid, "kind": "Iccid"}],
        "status": "Success",
        **extra,
    }


def test_a_good_callback_is_stored_once_and_a_repeat_is_acknowledged_as_duplicate(platform):
    body = callback_body(platform, f"req-{uuid.uuid4().hex}", "89148000000000000017")
    url = platform.api.url + "/v1/callbacks/thingspace"
    first = httpx.post(url, json=body)
    assert first.status_code == 200 and first.json() == {"accepted": 1, "duplicates": 0}
    again = httpx.post(url, json=body)
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicates": 1}


def test_a_callback_whose_body_arrives_in_pieces_is_read_whole(platform):
    raw = httpx.Request(
        "POST", "/", json=callback_body(platform, f"req-{uuid.uuid4().hex}", "89148000000000000025")
    ).content

    def pieces():
        for at in range(0, len(raw), 7):
            yield raw[at : at + 7]

    r = httpx.post(
        platform.api.url + "/v1/callbacks/thingspace",
        content=pieces(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"username": ', "body"),  # not JSON
        (None, "body"),  # no requestId: the problem names it
    ],
)
def test_a_malformed_callback_gets_problem_details_naming_what_is_wrong(platform, content, field):
    if content is None:
        body = callback_body(platform, "", "89148000000000000033")
        body.pop("requestId")
        r = httpx.post(platform.api.url + "/v1/callbacks/thingspace", json=body)
        assert r.status_code == 422 and "requestId is missing" in r.json()["detail"]
    else:
        r = httpx.post(
            platform.api.url + "/v1/callbacks/thingspace",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["invalid_params"][0]["name"].startswith(field)
