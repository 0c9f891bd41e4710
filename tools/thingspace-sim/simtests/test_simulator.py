import time

import httpx

from thingspace_sim import SimConfig
from thingspace_sim.fleet import SimDevice, luhn_check_digit, seed_fleet
from thingspace_sim.state import SimState

from .conftest import ACCOUNT, session


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_fleet_is_deterministic_and_identifiers_pass_luhn():
    a = seed_fleet(500, seed=7, account=ACCOUNT)
    b = seed_fleet(500, seed=7, account=ACCOUNT)
    assert [(d.iccid, d.state, d.plan) for d in a.values()] == [
        (d.iccid, d.state, d.plan) for d in b.values()
    ]
    for d in a.values():
        assert len(d.iccid) == 20 and luhn_check_digit(d.iccid[:-1]) == d.iccid[-1]
        assert len(d.imei) == 15 and luhn_check_digit(d.imei[:-1]) == d.imei[-1]
    assert {d.state for d in a.values()} == {"active", "suspend", "pre-active", "deactive"}


def test_bad_credentials_get_gateway_faults(sim):
    r = httpx.post(
        f"{sim.url}/api/ts/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("x", "y"),
    )
    assert r.status_code == 401 and r.json()["fault"]["code"] == "900901"
    r = httpx.post(f"{sim.url}/api/m2m/v1/devices/actions/list", json={})
    assert r.status_code == 401 and r.json()["fault"]["code"] == "900902"


def test_stale_session_token_is_refused_with_the_carrier_code(sim):
    http = session(sim.url)
    r = http.post(
        "/v1/devices/actions/list",
        json={},
        headers={"VZ-M2M-Token": "00000000-0000-0000-0000-000000000000"},
    )
    assert r.status_code == 400
    assert r.json()["errorCode"].endswith("SessionToken.Invalid")
    r = http.post("/v1/devices/actions/list", json={}, headers={"VZ-M2M-Token": ""})
    assert r.json()["errorCode"].endswith("SessionToken.Format")


def test_device_list_pages_through_the_whole_fleet(sim):
    http = session(sim.url)
    seen, last = [], None
    while True:
        body = {"accountName": ACCOUNT, "maxNumberOfDevices": 70}
        if last:
            body["largestDeviceIdSeen"] = last
        r = http.post("/v1/devices/actions/list", json=body)
        page = r.json()
        assert r.status_code == (202 if page["hasMoreData"] else 200)
        seen += [d["deviceIds"][0]["id"] for d in page["devices"]]
        if not page["hasMoreData"]:
            break
        last = page["lastSeenDeviceId"]
    assert len(seen) == 200 and len(set(seen)) == 200


def test_each_action_answers_at_once_and_calls_back_per_device(sim, receiver):
    rec, rec_server = receiver
    http = session(sim.url)
    http.post(
        f"/v1/callbacks/{ACCOUNT}",
        json={
            "name": "CarrierService",
            "url": f"{rec_server.url}/callbacks",
            "username": "u",
            "password": "p",
        },
    ).raise_for_status()
    devices = http.post(
        "/v1/devices/actions/list", json={"accountName": ACCOUNT, "currentState": "active"}
    ).json()["devices"]
    ids = [d["deviceIds"][0]["id"] for d in devices[:3]]
    r = http.post(
        "/v1/devices/actions/suspend",
        json={
            "accountName": ACCOUNT,
            "devices": [{"deviceIds": [{"id": i, "kind": "iccid"}]} for i in ids],
        },
    )
    request_id = r.json()["requestId"]
    wait_for(lambda: len(rec.bodies) == 3)
    assert {b["requestId"] for b in rec.bodies} == {request_id}
    assert all(b["status"] == "Success" and b["username"] == "u" for b in rec.bodies)
    status = http.get(f"/v2/accounts/{ACCOUNT}/requests/{request_id}/status").json()
    assert status["status"] == "Success" and len(status["subRequests"]) == 3
    # Rules: a plan change on a now suspended device fails in its callback.
    http.put(
        "/v1/devices/actions/plan",
        json={
            "accountName": ACCOUNT,
            "servicePlan": "M2M_4G_5GB",
            "devices": [{"deviceIds": [{"id": ids[0], "kind": "iccid"}]}],
        },
    ).raise_for_status()
    wait_for(lambda: len(rec.bodies) == 4)
    failed = rec.bodies[-1]
    assert failed["status"] == "Failed"
    assert failed["faultResponse"]["faultcode"].endswith("DeviceState.Invalid")


def test_pending_changes_refuse_a_second_change(sim, receiver):
    rec, rec_server = receiver
    http = session(sim.url)
    httpx.put(f"{sim.url}/_sim/config", json={"callback_delay_ms": 500}).raise_for_status()
    http.post(
        f"/v1/callbacks/{ACCOUNT}",
        json={"name": "CarrierService", "url": f"{rec_server.url}/callbacks"},
    ).raise_for_status()
    device = http.post(
        "/v1/devices/actions/list", json={"accountName": ACCOUNT, "currentState": "active"}
    ).json()["devices"][0]
    ref = [{"deviceIds": [{"id": device["deviceIds"][0]["id"], "kind": "iccid"}]}]
    http.post("/v1/devices/actions/suspend", json={"accountName": ACCOUNT, "devices": ref})
    http.post("/v1/devices/actions/suspend", json={"accountName": ACCOUNT, "devices": ref})
    wait_for(lambda: len(rec.bodies) == 2)
    statuses = sorted(b["status"] for b in rec.bodies)
    assert statuses == ["Failed", "Success"]
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["changes_applied"] == 1 and stats["devices_changed_more_than_once"] == 0


def test_rate_limit_answers_429_and_faults_are_counted(sim):
    http = session(sim.url)
    httpx.put(f"{sim.url}/_sim/config", json={"rate_limit_per_s": 2}).raise_for_status()
    codes = [
        http.post(
            "/v1/devices/actions/list", json={"accountName": ACCOUNT, "maxNumberOfDevices": 1}
        ).status_code
        for _ in range(6)
    ]
    assert 429 in codes
    httpx.put(f"{sim.url}/_sim/config", json={"rate_limit_per_s": 0, "error_rate": 1.0})
    r = http.post("/v1/devices/actions/list", json={})
    assert r.status_code in (500, 503)
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["throttled"] >= 1 and stats["errors_injected"] == 1
    bad = httpx.put(f"{sim.url}/_sim/config", json={"error_rate": 3})
    assert bad.status_code == 422


def test_devices_are_found_by_imei_and_msisdn_and_a_changed_imei_is_found_by_its_new_value():
    state = SimState(SimConfig(fleet_size=50))
    device = next(d for d in state.devices.values() if d.msisdn)
    by = {"imei": device.imei, "msisdn": device.msisdn, "iccid": device.iccid}
    for kind, value in by.items():
        request = state.open_request("suspend", {}, [{"deviceIds": [{"kind": kind, "id": value}]}])
        assert request.outcomes[0].device is device, kind
        device.pending_request = None
        assert state.device_by_id(value) is device

    other_imei = next(d.imei for d in state.devices.values() if d is not device)
    refused = state.open_request(
        "deviceId",
        {"deviceIdsTo": [{"kind": "imei", "id": other_imei}]},
        [{"deviceIds": [{"kind": "iccid", "id": device.iccid}]}],
    )
    assert not refused.outcomes[0].ok  # an IMEI in use is refused

    new_imei = "356938035643809"
    change = state.open_request(
        "deviceId",
        {"deviceIdsTo": [{"kind": "imei", "id": new_imei}]},
        [{"deviceIds": [{"kind": "iccid", "id": device.iccid}]}],
    )
    state.settle(change, change.outcomes[0])
    assert state.device_by_id(new_imei) is device
    assert state.device_by_id(by["imei"]) is None

    late = SimDevice(
        iccid="89148000000000099990",
        imei="356938035643817",
        msisdn="5559990000",
        state="active",
        plan="M2M_4G_1GB",
        account=ACCOUNT,
        created_at="2026-01-01T00:00:00Z",
    )
    state.add_device(late)
    assert state.device_by_id("5559990000") is late and state.device_by_id(late.imei) is late
