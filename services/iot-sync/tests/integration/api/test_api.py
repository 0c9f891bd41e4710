"""The REST contract of issue 3, through HTTP."""

from datetime import UTC, datetime
from itertools import count

import pytest

pytestmark = pytest.mark.integration
_ids = count(1)


def call(station: str, verb: str, data: dict, *, seq: int) -> dict:
    n = next(_ids)
    return {
        "topic": f"call/abs/station/{station}/{verb}",
        "envelope": {
            "id": f"msg-{n}",
            "ts": datetime.now(UTC).isoformat(),
            "seq": seq,
            "actor": {"kind": "station", "id": station},
            "correlation_id": f"corr-{n}",
            "data": data,
        },
    }


def post_signals(api, *items, role="operator"):
    return api.client.post("/v1/signals", json={"items": list(items)}, headers=api.token(role))


def test_health_needs_no_token_and_readiness_waits_for_warm_up(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").status_code == 503
    api.client.app.state.ready = True
    assert api.client.get("/readyz").status_code == 200


def test_every_v1_route_needs_a_bearer_token(api):
    response = api.client.get("/v1/customers")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_customers_are_listed_with_standing_and_plan(api):
    items = api.client.get("/v1/customers", headers=api.token("viewer")).json()["items"]
    by_id = {c["customer_id"]: c for c in items}
    assert by_id["CUST-0001"]["standing"] == "GOOD"
    assert by_id["CUST-0004"]["standing"] == "OVERDUE"
    assert by_id["CUST-0001"]["plan"]["battery_class"] == "STANDARD"
    assert by_id["CUST-0006"]["service_state"] == "SUSPENDED"


def test_personnel_are_listed_with_role_and_assignment(api):
    items = api.client.get("/v1/personnel", headers=api.token("viewer")).json()["items"]
    tech = next(p for p in items if p["person_id"] == "TECH-001")
    assert (tech["role"], tech["regions"]) == ("TECHNICIAN", ["region-1"])


def test_stations_and_their_inventory_come_from_arm(api):
    stations = api.client.get("/v1/stations", headers=api.token("viewer")).json()["items"]
    assert [s["station_id"] for s in stations] == ["ST-0001", "ST-0002"]
    inventory = api.client.get("/v1/stations/ST-0001/inventory", headers=api.token("viewer")).json()
    assert [a["asset_id"] for a in inventory["items"]] == ["BAT-000001", "BAT-000002", "BAT-000003"]
    assert inventory["free_slots"] == [4, 5, 6]
    assert inventory["counts"] == {"AVAILABLE": 3}


def test_a_swap_over_http_shows_in_the_service_and_the_asset(api):
    response = post_signals(
        api,
        call("ST-0001", "authorize", {"customer_id": "CUST-0001"}, seq=1),
        call(
            "ST-0001",
            "dispense_confirm",
            {"customer_id": "CUST-0001", "battery_id": "BAT-000001"},
            seq=2,
        ),
    )
    assert response.status_code == 200, response.text
    assert [o["result"] for o in response.json()["items"]] == ["accepted", "accepted"]

    viewer = api.token("viewer")
    services = api.client.get(
        "/v1/services", params={"customer_id": "CUST-0001"}, headers=viewer
    ).json()
    [service] = services["items"]
    assert {k: service[k] for k in ("service_id", "customer_id", "state", "battery_id")} == {
        "service_id": "SVC-0001",
        "customer_id": "CUST-0001",
        "state": "BATTERY_ISSUED",
        "battery_id": "BAT-000001",
    }
    asset = api.client.get("/v1/assets/BAT-000001", headers=viewer).json()
    assert {k: asset[k] for k in ("asset_id", "state", "station_id", "holder")} == {
        "asset_id": "BAT-000001",
        "state": "ISSUED",
        "station_id": None,
        "holder": "CUST-0001",
    }
    history = api.client.get("/v1/services/SVC-0001/history", headers=viewer).json()["items"]
    assert [(h["from_state"], h["to_state"]) for h in history] == [("ACTIVE", "BATTERY_ISSUED")]
    moves = api.client.get("/v1/assets/BAT-000001/history", headers=viewer).json()["items"]
    assert [m["to_state"] for m in moves] == ["ISSUED"]


def test_refused_signals_are_listed_with_their_reason(api):
    post_signals(api, call("ST-0001", "authorize", {"customer_id": "CUST-0004"}, seq=1))
    rejected = api.client.get(
        "/v1/signals", params={"result": "rejected"}, headers=api.token("viewer")
    ).json()
    [entry] = rejected["items"]
    assert (entry["verb"], entry["reason_code"]) == ("authorize", "bad_standing")


def test_a_malformed_signal_is_a_problem_naming_the_field_and_is_logged(api):
    bad = call("ST-0001", "authorize", {"customer_id": "CUST-0001"}, seq=1)
    del bad["envelope"]["ts"]
    response = post_signals(api, bad)

    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["invalid_params"][0]["name"] == "body.items[0].envelope"
    assert "ts" in problem["invalid_params"][0]["reason"]
    logged = api.client.get(
        "/v1/signals", params={"result": "malformed"}, headers=api.token("viewer")
    ).json()
    assert logged["items"][0]["reason_code"] == "missing_field"


def test_malformed_signals_are_listed_among_the_rejected_with_their_reason(api):
    bad = call("ST-0001", "authorize", {"customer_id": "CUST-0001"}, seq=1)
    bad["envelope"]["seq"] = "1"
    assert post_signals(api, bad).status_code == 422
    post_signals(api, call("ST-0002", "authorize", {"customer_id": "CUST-0004"}, seq=1))

    rejected = api.client.get(
        "/v1/signals", params={"result": "rejected"}, headers=api.token("viewer")
    ).json()["items"]

    assert sorted((e["result"], e["reason_code"]) for e in rejected) == [
        ("malformed", "wrong_type"),
        ("rejected", "bad_standing"),
    ]


def test_a_replayed_signal_is_reported_as_a_duplicate(api):
    signal = call("ST-0001", "authorize", {"customer_id": "CUST-0001"}, seq=1)
    post_signals(api, signal)
    assert post_signals(api, signal).json()["items"][0]["result"] == "duplicate"


def test_a_viewer_may_read_but_not_ingest(api):
    response = post_signals(
        api, call("ST-0001", "authorize", {"customer_id": "CUST-0001"}, seq=1), role="viewer"
    )
    assert response.status_code == 403


def test_an_unknown_battery_is_a_404_problem(api):
    response = api.client.get("/v1/assets/BAT-404", headers=api.token("viewer"))
    assert response.status_code == 404 and response.json()["type"].endswith("/not-found")


def test_a_service_input_that_does_not_apply_is_a_409_problem(api):
    response = api.client.post(
        "/v1/services/SVC-0001/inputs",
        json={"input": "ASSET_SETTLEMENT_COMPLETE"},
        headers=api.token(),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"


def test_a_confirmed_deposit_lifts_a_suspension_over_http(api):
    response = api.client.post(
        "/v1/services/SVC-0006/inputs", json={"input": "DEPOSIT_CONFIRMED"}, headers=api.token()
    )
    assert response.status_code == 200 and response.json()["state"] == "ACTIVE"


def test_reconciliation_reports_drift_with_arm(api):
    admin = api.token("admin")
    assert api.client.post("/v1/admin/reconcile", headers=admin).json()["in_step"] is True
    post_signals(
        api,
        call(
            "ST-0001",
            "dispense_confirm",
            {"customer_id": "CUST-0001", "battery_id": "BAT-000002"},
            seq=1,
        ),
    )
    report = api.client.post("/v1/admin/reconcile", headers=admin).json()
    assert {(d["asset_id"], d["kind"]) for d in report["drifts"]} >= {("BAT-000002", "state")}

    while api.container.delivery.deliver_pending().delivered:
        pass
    assert api.client.post("/v1/admin/reconcile", headers=admin).json()["in_step"] is True


def test_a_loss_settlement_is_recorded_and_visible(api):
    post_signals(
        api,
        call(
            "ST-0001",
            "dispense_confirm",
            {"customer_id": "CUST-0001", "battery_id": "BAT-000002"},
            seq=1,
        ),
    )
    report = post_signals(
        api,
        {
            "topic": "emit/abs/personnel/AGENT-001/report_lost",
            "envelope": {
                "id": "lost-1",
                "ts": datetime.now(UTC).isoformat(),
                "data": {"asset_id": "BAT-000002"},
            },
        },
    )
    assert report.json()["items"][0]["result"] == "accepted", report.text
    while api.container.delivery.deliver_pending().delivered:
        pass
    [settlement] = api.client.get("/v1/settlements", headers=api.token("viewer")).json()["items"]
    assert (settlement["customer_id"], settlement["battery_id"], settlement["evidence"]) == (
        "CUST-0001",
        "BAT-000002",
        "manual_report",
    )
