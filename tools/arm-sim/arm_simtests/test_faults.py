import time

import httpx
import pytest

from .conftest import WHEN


def test_throttling_answers_429_with_retry_after_from_the_configured_rate(arm):
    arm.configure(rate_limit_per_s=2)
    codes = [arm.http.get("/stations").status_code for _ in range(8)]
    # A burst gets the bucket's capacity (the rate) and a little refill at most.
    assert codes.count(200) in (2, 3) and codes.count(429) == 8 - codes.count(200)
    r = arm.http.get("/stations")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "RATE_LIMITED"
    time.sleep(1.0)
    assert arm.http.get("/stations").status_code == 200
    assert arm.stats()["throttled"] == codes.count(429) + 1


def test_a_slower_rate_asks_for_a_longer_wait(arm):
    arm.configure(rate_limit_per_s=0.25)
    assert arm.http.get("/stations").status_code == 200
    r = arm.http.get("/stations")
    assert r.status_code == 429 and r.headers["Retry-After"] == "4"


def test_error_rate_one_answers_503_and_applies_nothing(arm):
    battery = arm.first_asset("AVAILABLE")
    arm.configure(error_rate=1.0)
    r = arm.move(battery["asset_id"], movement_id="m-1", state="LOST")
    assert r.status_code == 503 and r.json()["error"]["code"] == "UNAVAILABLE"
    arm.configure(error_rate=0.0)
    assert arm.asset(battery["asset_id"])["state"] == "AVAILABLE"
    assert arm.stats()["movements_applied"] == 0


def test_error_rate_fails_about_that_share_of_calls(arm):
    arm.configure(error_rate=0.3)
    codes = [arm.http.get("/stations", params={"limit": 1}).status_code for _ in range(200)]
    failed = codes.count(503)
    assert 30 <= failed <= 90  # 60 expected; the bounds are ~4 standard deviations
    assert codes.count(200) == 200 - failed
    assert arm.stats()["errors_injected"] == failed


def test_error_next_fails_exactly_that_many_calls(arm):
    arm.configure(error_next=2)
    codes = [arm.http.get("/stations").status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]
    assert arm.sim.get("/config").json()["error_next"] == 0


def test_a_held_answer_times_the_client_out_but_the_movement_is_applied(arm):
    battery = arm.first_asset("AVAILABLE")
    arm.configure(timeout_next=1, timeout_hold_ms=1500)
    body = {"movement_id": "m-1", "state": "ISSUED", "holder": "C", "occurred_at": WHEN}
    url = f"/assets/{battery['asset_id']}/movements"
    with pytest.raises(httpx.ReadTimeout):
        arm.http.post(url, json=body, timeout=0.5)
    assert arm.asset(battery["asset_id"])["state"] == "ISSUED"
    again = arm.http.post(url, json=body)
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    stats = arm.stats()
    assert stats["timeouts_injected"] == 1
    assert (stats["movements_applied"], stats["movements_replayed"]) == (1, 1)


def test_timeout_rate_holds_answers_for_the_hold_time(arm):
    arm.configure(timeout_rate=1.0, timeout_hold_ms=300)
    started = time.monotonic()
    assert arm.http.get("/stations").status_code == 200
    assert time.monotonic() - started >= 0.3
    arm.configure(timeout_rate=0.0)
    started = time.monotonic()
    arm.http.get("/stations")
    assert time.monotonic() - started < 0.3


def test_latency_delays_every_call(arm):
    arm.configure(latency_ms=250)
    started = time.monotonic()
    assert arm.http.get("/assets/BAT-000001").status_code == 200
    assert time.monotonic() - started >= 0.25


def test_faults_never_touch_the_token_endpoint(arm):
    arm.configure(error_rate=1.0, rate_limit_per_s=0.01)
    assert arm.fetch_token()
    assert arm.fetch_token()


@pytest.mark.parametrize(
    "change", [{"error_rate": 3}, {"latency_ms": -1}, {"timeout_rate": "often"}, {"nope": 1}]
)
def test_bad_fault_settings_are_refused_and_change_nothing(arm, change):
    before = arm.sim.get("/config").json()
    r = arm.sim.put("/config", json=change)
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert arm.sim.get("/config").json() == before
