from concurrent.futures import ThreadPoolExecutor

import pytest


def refusal(r):
    assert r.status_code == 409, r.text
    return r.json()["error"]


def test_issuing_an_available_battery_frees_its_slot(arm):
    battery = arm.first_asset("AVAILABLE")
    r = arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="CUST-1")
    assert r.status_code == 200 and "Idempotent-Replay" not in r.headers
    after = r.json()
    assert after["state"] == "ISSUED" and after["holder"] == "CUST-1"
    assert after["station_id"] is None and after["slot"] is None
    assert after["version"] == battery["version"] + 1
    assert after["updated_at"] != battery["updated_at"]
    slots = arm.http.get(f"/stations/{battery['station_id']}").json()["slots"]
    assert slots[battery["slot"] - 1]["asset_id"] is None
    assert arm.asset(battery["asset_id"]) == after


def test_a_returned_battery_goes_charging_into_a_free_slot_and_takes_its_position(arm):
    battery = arm.first_asset("AVAILABLE")
    arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C").raise_for_status()
    station_id, slot = arm.free_slot()
    r = arm.move(
        battery["asset_id"], movement_id="m-2", state="CHARGING", station_id=station_id, slot=slot
    )
    assert r.status_code == 200
    after = r.json()
    assert (after["state"], after["station_id"], after["slot"], after["holder"]) == (
        "CHARGING",
        station_id,
        slot,
        None,
    )
    station = arm.http.get(f"/stations/{station_id}").json()
    assert station["slots"][slot - 1]["asset_id"] == battery["asset_id"]
    assert after["last_position"] == {
        "latitude": station["latitude"],
        "longitude": station["longitude"],
        "at": "2025-06-01T10:00:00Z",
    }


def test_issued_needs_a_holder(arm):
    battery = arm.first_asset("AVAILABLE")
    error = refusal(arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED"))
    assert error["code"] == "INVALID_TRANSITION"
    assert arm.asset(battery["asset_id"])["version"] == battery["version"]


def test_only_an_available_battery_is_issued(arm):
    battery = arm.first_asset("CHARGING")
    error = refusal(arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C"))
    assert error["code"] == "INVALID_TRANSITION"
    assert error["details"] == {"from_state": "CHARGING", "to_state": "ISSUED"}


@pytest.mark.parametrize(
    "place",
    [
        {},
        {"station_id": "ST-0001"},
        {"station_id": "ST-0001", "slot": 99},
        {"station_id": "X", "slot": 1},
    ],
)
def test_available_or_charging_needs_a_real_station_and_slot(arm, place):
    battery = arm.first_asset("AVAILABLE")
    arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C").raise_for_status()
    error = refusal(arm.move(battery["asset_id"], movement_id="m-2", state="CHARGING", **place))
    assert error["code"] == "INVALID_TRANSITION"


def test_a_slot_holding_another_battery_is_occupied(arm):
    mover, sitter = arm.all_pages("/assets", state="AVAILABLE")[:2]
    r = arm.move(
        mover["asset_id"],
        movement_id="m-1",
        state="AVAILABLE",
        station_id=sitter["station_id"],
        slot=sitter["slot"],
    )
    error = refusal(r)
    assert error["code"] == "SLOT_OCCUPIED"
    assert error["details"]["asset_id"] == sitter["asset_id"]
    assert arm.asset(mover["asset_id"])["slot"] == mover["slot"]


def test_a_battery_may_stay_in_its_own_slot_while_it_changes_state(arm):
    battery = arm.first_asset("CHARGING")
    r = arm.move(
        battery["asset_id"],
        movement_id="m-1",
        state="AVAILABLE",
        station_id=battery["station_id"],
        slot=battery["slot"],
        charge_pct=100,
    )
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["slot"], r.json()["charge_pct"]) == (
        "AVAILABLE",
        battery["slot"],
        100,
    )


def test_retired_is_final(arm):
    battery = arm.first_asset("AVAILABLE")
    arm.move(battery["asset_id"], movement_id="m-1", state="RETIRED").raise_for_status()
    for n, state in enumerate(["AVAILABLE", "IN_INSPECTION", "LOST", "RETIRED"]):
        place = {"station_id": battery["station_id"], "slot": battery["slot"]}
        body = place if state == "AVAILABLE" else {}
        error = refusal(
            arm.move(battery["asset_id"], movement_id=f"m-{n + 2}", state=state, **body)
        )
        assert error["code"] == "INVALID_TRANSITION"


def test_a_lost_battery_keeps_who_had_it_and_can_be_found_again(arm):
    battery = arm.first_asset("AVAILABLE")
    arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C").raise_for_status()
    lost = arm.move(battery["asset_id"], movement_id="m-2", state="LOST").json()
    assert lost["state"] == "LOST" and lost["holder"] == "C"
    found = arm.move(battery["asset_id"], movement_id="m-3", state="IN_INSPECTION")
    assert found.status_code == 200 and found.json()["holder"] is None


def test_damaged_goes_only_to_inspection_or_retirement(arm):
    battery = arm.first_asset("AVAILABLE")
    arm.move(battery["asset_id"], movement_id="m-1", state="DAMAGED").raise_for_status()
    error = refusal(arm.move(battery["asset_id"], movement_id="m-2", state="ISSUED", holder="C"))
    assert error["code"] == "INVALID_TRANSITION"
    assert (
        arm.move(battery["asset_id"], movement_id="m-3", state="IN_INSPECTION").status_code == 200
    )


def test_the_same_movement_again_is_a_replay_that_changes_nothing(arm):
    battery = arm.first_asset("AVAILABLE")
    body = {"movement_id": "m-1", "state": "ISSUED", "holder": "C"}
    first = arm.move(battery["asset_id"], **body)
    again = arm.move(battery["asset_id"], **body)
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    stats = arm.stats()
    assert (stats["movements_applied"], stats["movements_replayed"]) == (1, 1)
    assert stats["assets_moved_more_than_once_by_same_movement"] == 0


def test_a_replay_answers_the_asset_as_it_is_now_even_with_its_old_expected_version(arm):
    battery = arm.first_asset("AVAILABLE")
    v = battery["version"]
    arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C", expected_version=v)
    arm.move(battery["asset_id"], movement_id="m-2", state="LOST").raise_for_status()
    again = arm.move(
        battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C", expected_version=v
    )
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json()["state"] == "LOST" and again.json()["version"] == v + 2


def test_a_movement_id_belongs_to_one_asset(arm):
    one, other = arm.all_pages("/assets", state="AVAILABLE")[:2]
    arm.move(one["asset_id"], movement_id="m-1", state="DAMAGED").raise_for_status()
    error = refusal(arm.move(other["asset_id"], movement_id="m-1", state="DAMAGED"))
    assert error["code"] == "MOVEMENT_ID_REUSED"
    assert arm.asset(other["asset_id"])["state"] == "AVAILABLE"


def test_a_refused_movement_is_not_remembered(arm):
    battery = arm.first_asset("AVAILABLE")
    refusal(arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED"))
    r = arm.move(battery["asset_id"], movement_id="m-1", state="ISSUED", holder="C")
    assert r.status_code == 200 and "Idempotent-Replay" not in r.headers
    assert arm.stats()["movements_rejected"] == 1


def test_a_stale_expected_version_is_a_version_conflict(arm):
    battery = arm.first_asset("AVAILABLE")
    v = battery["version"]
    error = refusal(
        arm.move(battery["asset_id"], movement_id="m-1", state="LOST", expected_version=v + 1)
    )
    assert error["code"] == "VERSION_CONFLICT"
    assert error["details"]["current_version"] == v
    r = arm.move(battery["asset_id"], movement_id="m-2", state="LOST", expected_version=v)
    assert r.status_code == 200 and r.json()["version"] == v + 1


@pytest.mark.parametrize(
    "body",
    [
        {"movement_id": "m-1", "state": "LOST"},  # no occurred_at
        {"movement_id": "m-1", "state": "LOST", "occurred_at": "2025-06-01T10:00:00"},  # naive
        {"movement_id": "m-1", "state": "SOLD", "occurred_at": "2025-06-01T10:00:00Z"},
        {"state": "LOST", "occurred_at": "2025-06-01T10:00:00Z"},
    ],
)
def test_a_malformed_movement_is_a_validation_error(arm, body):
    battery = arm.first_asset("AVAILABLE")
    r = arm.http.post(f"/assets/{battery['asset_id']}/movements", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert r.json()["error"]["details"]["errors"]


def test_a_movement_of_an_unknown_asset_is_404(arm):
    r = arm.move("BAT-999999", movement_id="m-1", state="LOST")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ASSET_NOT_FOUND"


def test_concurrent_copies_of_one_movement_apply_it_once(arm):
    battery = arm.first_asset("AVAILABLE")
    body = {"movement_id": "m-1", "state": "ISSUED", "holder": "C"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: arm.move(battery["asset_id"], **body), range(8)))
    assert [r.status_code for r in answers] == [200] * 8
    replays = [r.headers.get("Idempotent-Replay") for r in answers]
    assert replays.count("true") == 7
    assert arm.asset(battery["asset_id"])["version"] == battery["version"] + 1
    stats = arm.stats()
    assert (stats["movements_applied"], stats["movements_replayed"]) == (1, 7)
