"""How the ThingSpace credential calls' failures reach the use cases."""

import httpx
import pytest

from device_change.adapters.thingspace.session import ThingSpaceSession
from device_change.adapters.thingspace.settings import ThingSpaceSettings
from device_change.app.ports import CarrierRejected, CarrierThrottled, CarrierUnavailable


def session_answering(login_status: int, headers: dict[str, str] | None = None):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(login_status, json={"errorCode": "x"}, headers=headers or {})

    return ThingSpaceSession(
        ThingSpaceSettings(), httpx.Client(transport=httpx.MockTransport(answer))
    )


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_login_failing_with_5xx_is_transient(status):
    with pytest.raises(CarrierUnavailable):
        session_answering(status).headers()


def test_a_throttled_login_carries_the_retry_after_hint():
    with pytest.raises(CarrierThrottled) as caught:
        session_answering(429, {"Retry-After": "2"}).headers()
    assert caught.value.retry_after_s == 2.0


def test_refused_credentials_are_permanent():
    with pytest.raises(CarrierRejected) as caught:
        session_answering(401).headers()
    assert caught.value.code == "login.401"
