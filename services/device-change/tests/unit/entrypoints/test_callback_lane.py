"""The callback lane: good callbacks stored straight away, everything else to the app."""

import asyncio
import json
import threading
from types import SimpleNamespace

import httpx
import pytest

from device_change.entrypoints.api.callbacks import PATH, CarrierCallbackLane, _WriterAnswers

USERNAME, PASSWORD = "carrier", "s3cret"


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


@pytest.mark.anyio
async def test_the_writers_answers_for_a_group_reach_the_loop_in_one_wake_up(monkeypatch):
    loop = asyncio.get_running_loop()
    wake_ups = []
    wake = loop.call_soon_threadsafe
    monkeypatch.setattr(
        loop, "call_soon_threadsafe", lambda cb, *args: wake_ups.append(cb) or wake(cb, *args)
    )
    answers = _WriterAnswers.of(loop)
    futures = [loop.create_future() for _ in range(4)]
    futures[3].cancel()  # its caller gave up waiting
    deliveries = [answers.deliver_to(f) for f in futures]

    def writer() -> None:  # one group's answers, as the intake's writer gives them
        deliveries[0](1, None)
        deliveries[1](0, None)
        deliveries[2](0, RuntimeError("database is locked"))
        deliveries[3](1, None)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()  # the loop is blocked here, so every answer is in before it runs again
    results = await asyncio.gather(*futures[:3], return_exceptions=True)
    assert results[:2] == [1, 0] and isinstance(results[2], RuntimeError)
    assert len(wake_ups) == 1


class SilentIntake:
    """A writer that never answers (a database that hangs)."""

    def submit(self, outcomes, on_stored):
        pass


@pytest.mark.anyio
async def test_a_callback_the_writer_never_answers_is_refused_after_the_timeout(monkeypatch):
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(_WriterAnswers, "_current", (loop, _WriterAnswers(loop, timeout_s=0.05)))
    started = loop.time()
    r = await post(
        CarrierCallbackLane(EchoApp(), container(SilentIntake())), json.dumps(callback()).encode()
    )
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert loop.time() - started < 2


@pytest.mark.anyio
async def test_answers_are_kept_apart_from_those_given_up_on():
    loop = asyncio.get_running_loop()
    answers = _WriterAnswers(loop, timeout_s=0.05)
    late, prompt = loop.create_future(), loop.create_future()
    answer_late = answers.deliver_to(late)
    await asyncio.sleep(0.03)
    answer_prompt = answers.deliver_to(prompt)
    answer_prompt(1, None)
    assert await prompt == 1
    with pytest.raises(TimeoutError):
        await late
    answer_late(1, None)  # the writer answers after all: nothing breaks, nothing changes
    await asyncio.sleep(0)
    assert isinstance(late.exception(), TimeoutError)
