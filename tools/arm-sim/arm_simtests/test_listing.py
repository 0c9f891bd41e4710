import pytest


def test_stations_page_through_all_with_next_cursor(arm):
    first = arm.http.get("/stations", params={"limit": 2}).json()
    assert [s["station_id"] for s in first["items"]] == ["ST-0001", "ST-0002"]
    assert first["next_cursor"]
    stations = arm.all_pages("/stations", limit=2)
    assert [s["station_id"] for s in stations] == [f"ST-000{n}" for n in range(1, 6)]
    assert set(stations[0]) == {
        "station_id", "name", "region", "site", "latitude", "longitude", "slot_count", "online",
    }  # fmt: skip
    assert all(s["slot_count"] == 4 and s["online"] for s in stations)


def test_a_station_shows_its_slots_and_what_is_in_them(arm):
    station = arm.http.get("/stations/ST-0002").json()
    assert [s["slot"] for s in station["slots"]] == [1, 2, 3, 4]
    in_station = arm.all_pages("/assets", station_id="ST-0002")
    assert sorted(a["asset_id"] for a in in_station) == sorted(
        s["asset_id"] for s in station["slots"] if s["asset_id"]
    )
    assert all(a["station_id"] == "ST-0002" for a in in_station)


def test_assets_page_through_all_without_gaps_or_repeats(arm):
    assets = arm.all_pages("/assets", limit=3)
    assert [a["asset_id"] for a in assets] == [f"BAT-{n:06d}" for n in range(1, 15)]
    asset = assets[0]
    assert asset["kind"] == "BATTERY" and asset["version"] == 1
    assert asset["last_position"]["at"] and asset["updated_at"]


@pytest.mark.parametrize("state", ["AVAILABLE", "CHARGING"])
def test_assets_filter_by_state_across_pages(arm, state):
    everything = arm.all_pages("/assets")
    wanted = [a["asset_id"] for a in everything if a["state"] == state]
    assert wanted, "the seed should hold both states"
    assert [a["asset_id"] for a in arm.all_pages("/assets", state=state, limit=2)] == wanted


def test_filters_combine_and_a_station_without_matches_gives_an_empty_page(arm):
    both = arm.all_pages("/assets", station_id="ST-0001", state="AVAILABLE")
    assert all(a["station_id"] == "ST-0001" and a["state"] == "AVAILABLE" for a in both)
    empty = arm.http.get("/assets", params={"station_id": "ST-9999"}).json()
    assert empty == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/assets", {"limit": 0}, "VALIDATION_ERROR"),
        ("/assets", {"limit": 501}, "VALIDATION_ERROR"),
        ("/assets", {"state": "SOLD"}, "VALIDATION_ERROR"),
        ("/assets", {"cursor": "not-a-cursor"}, "INVALID_CURSOR"),
        ("/stations", {"cursor": "!!"}, "INVALID_CURSOR"),
    ],
)
def test_bad_list_parameters_are_refused_with_400(arm, path, params, code):
    r = arm.http.get(path, params=params)
    assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_a_cursor_of_one_list_is_not_taken_by_another(arm):
    cursor = arm.http.get("/stations", params={"limit": 1}).json()["next_cursor"]
    r = arm.http.get("/assets", params={"cursor": cursor})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_CURSOR"


def test_unknown_station_and_asset_are_404_in_the_error_shape(arm):
    r = arm.http.get("/stations/ST-9999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "STATION_NOT_FOUND"
    r = arm.http.get("/assets/BAT-999999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ASSET_NOT_FOUND"
    assert set(r.json()["error"]) == {"code", "message", "details"}
