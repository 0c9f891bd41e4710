"""The callback lane: good callbacks stored straight away, everything else to the app."""

import json
from types import SimpleNamespace

import httpx
import pytest

from device_change.entrypoints.api.callbacks import PATH, CarrierCallbackLane

USERNAME, PASSWORD = "carrier", "s3cret"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class StubIntake:
    def __init__(self, error: BaseException | None = None) -> None:
        self.stored: list = []
        self.error = error

    def submit(self, outcomes, on_stored):
        if self.error is not None:
            on_stored(0, self.error)
            return
        self.stored.extend(outcomes)
        on_stored(len(outcomes), None)


def container(intake: StubIntake):
    return SimpleNamespace(
        settings=SimpleNamespace(callback_username=USERNAME, callback_password=PASSWORD),
        callback_intake=intake,
        cached_traceparent=lambda request_id: TRACEPARENT,
        request_traceparent=lambda request_id: None,
    )


class EchoApp:
    """Stands for FastAPI: answers 299 with the body it read, so a test sees it arrived whole."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": body})


def callback(**changes):
    body = {
        "username": USERNAME,
        "password": PASSWORD,
        "requestId": "req-1",
        "deviceIds": [{"id": "89148000000000000017", "kind": "Iccid"}],
        "status": "Success",
    }
    body.update(changes)
    return body


async def post(lane, content: bytes, content_type="application/json", path=PATH):
    transport = httpx.ASGITransport(app=lane)
    async with httpx.AsyncClient(transport=transport, base_url="http://dc") as client:
        return await client.post(path, content=content, headers={"content-type": content_type})


@pytest.mark.anyio
async def test_a_good_callback_is_stored_without_reaching_the_app():
    intake, app = StubIntake(), EchoApp()
    r = await post(CarrierCallbackLane(app, container(intake)), json.dumps(callback()).encode())
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0}
    assert [o.iccid for o in intake.stored] == ["89148000000000000017"]
    assert app.calls == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (json.dumps(callback(password="wrong")).encode(), "application/json"),
        (json.dumps(callback(requestId="")).encode(), "application/json"),
        (b'{"username": ', "application/json"),
        (json.dumps(callback()).encode(), "text/plain"),
        (json.dumps(callback(padding="x" * 70_000)).encode(), "application/json"),
    ],
    ids=["wrong credentials", "malformed", "not JSON", "not declared JSON", "oversize"],
)
async def test_anything_else_reaches_the_app_with_its_body_whole(content, content_type):
    intake, app = StubIntake(), EchoApp()
    r = await post(CarrierCallbackLane(app, container(intake)), content, content_type)
    assert r.status_code == 299 and r.content == content
    assert intake.stored == [] and app.calls == 1


@pytest.mark.anyio
async def test_other_paths_and_methods_go_to_the_app():
    app = EchoApp()
    lane = CarrierCallbackLane(app, container(StubIntake()))
    r = await post(lane, json.dumps(callback()).encode(), path="/v1/bulk-changes")
    assert r.status_code == 299 and app.calls == 1


@pytest.mark.anyio
async def test_a_callback_that_could_not_be_stored_is_refused_so_the_carrier_resends_it():
    intake, app = StubIntake(error=RuntimeError("database is locked")), EchoApp()
    r = await post(CarrierCallbackLane(app, container(intake)), json.dumps(callback()).encode())
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "5"
    assert "database is locked" in r.json()["detail"] and app.calls == 0
