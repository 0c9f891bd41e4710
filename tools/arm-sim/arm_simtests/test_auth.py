import time

import httpx

from arm_sim import SimConfig

from .conftest import Arm, start


def test_a_call_without_a_token_is_unauthorized(arm):
    r = httpx.get(f"{arm.url}/arm/v1/stations")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_token_is_unauthorized(arm):
    r = httpx.get(f"{arm.url}/arm/v1/stations", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    assert arm.stats()["unauthorized"] == 1


def test_an_expired_token_says_so_and_a_new_one_works(arm):
    assert arm.http.get("/stations").status_code == 200
    arm.sim.post("/expire-tokens").raise_for_status()
    r = arm.http.get("/stations")
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_EXPIRED"
    fresh = arm.fetch_token()
    r = arm.http.get("/stations", headers={"Authorization": f"Bearer {fresh}"})
    assert r.status_code == 200


def test_a_token_expires_after_its_lifetime():
    config = SimConfig(stations=2, slots_per_station=2, batteries=1, token_lifetime_s=1)
    with start(config) as server:
        arm = Arm(server.url, config)
        assert arm.http.get("/stations").status_code == 200
        time.sleep(1.1)
        r = arm.http.get("/stations")
        assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_EXPIRED"
        arm.close()


def test_token_needs_the_right_client_and_grant(arm):
    url = f"{arm.url}/oauth2/token"
    good = {"client_id": "iot-sync", "client_secret": "iot-sync-arm-secret"}
    r = httpx.post(url, data={**good, "client_secret": "wrong", "grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_CLIENT"
    r = httpx.post(url, data={**good, "grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "UNSUPPORTED_GRANT_TYPE"
    r = httpx.post(url, data={**good, "grant_type": "client_credentials"})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    # RFC 6749 also lets a client authenticate with HTTP Basic.
    r = httpx.post(
        url, data={"grant_type": "client_credentials"}, auth=("iot-sync", "iot-sync-arm-secret")
    )
    assert r.status_code == 200 and r.json()["access_token"] != body["access_token"]
    assert arm.stats()["tokens_issued"] == 3  # the fixture's, and the two above
