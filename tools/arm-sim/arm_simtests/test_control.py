def test_stats_count_requests_and_reset_stats_zeroes_them(arm):
    for _ in range(3):
        arm.http.get("/stations")
    assert arm.stats()["requests"] == 3
    zeroed = arm.sim.post("/reset-stats").json()
    assert set(zeroed.values()) == {0}
    assert arm.stats()["requests"] == 0


def test_reset_restores_the_seed_forgets_movements_and_faults(arm):
    battery = arm.first_asset("AVAILABLE")
    body = {"movement_id": "m-1", "state": "ISSUED", "holder": "C"}
    arm.move(battery["asset_id"], **body).raise_for_status()
    arm.configure(latency_ms=5)
    assert arm.sim.post("/reset").json() == {"status": "reset"}
    assert arm.asset(battery["asset_id"]) == battery
    assert arm.sim.get("/config").json()["latency_ms"] == 0
    assert arm.stats()["requests"] == 1  # the read just above; the reset zeroed the rest
    again = arm.move(battery["asset_id"], **body)  # the movement id is forgotten: applied anew
    assert again.status_code == 200 and "Idempotent-Replay" not in again.headers


def test_a_station_can_be_taken_offline(arm):
    r = arm.sim.put("/stations/ST-0003", json={"online": False})
    assert r.status_code == 200 and r.json()["online"] is False
    assert arm.http.get("/stations/ST-0003").json()["online"] is False
    assert arm.sim.put("/stations/ST-0003", json={"online": "no"}).status_code == 400
    assert arm.sim.put("/stations/ST-9999", json={"online": True}).status_code == 404
