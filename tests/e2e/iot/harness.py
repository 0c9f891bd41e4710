"""iot-sync end to end, in-test: the ARM simulator, iot-sync and a webhook receiver on real
loopback ports, and the field (stations, trackers, personnel, a monitor) as real paho clients
on the test broker.

Topics are written out here as the protocol sheet and docs/topics.md state them, not built
with iot-sync's own topic builder: these tests check the contract, not the code against
itself. Every test runs under its own topic prefix and client ids on the shared broker.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import paho.mqtt.client as mqtt
from fastapi import FastAPI, Request
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from arm_sim import create_app as create_arm_sim
from arm_sim.config import SimConfig
from fleetops_common.auth import TokenService
from fleetops_devstack.mqtt_broker import Broker
from fleetops_devstack.servers import ServerThread, free_port
from iot_sync.adapters.arm.settings import ArmSettings
from iot_sync.adapters.mqtt.consumer import end_session
from iot_sync.adapters.mqtt.settings import MqttSettings
from iot_sync.entrypoints.consume import Consumer
from iot_sync.entrypoints.runtime import build_app
from iot_sync.settings import IotSyncSettings

WAIT_S = 15.0
T = TypeVar("T")


# ---- waiting for events, never sleeping as an assertion --------------------------------


def eventually(
    fetch: Callable[[], T],
    check: Callable[[T], bool],
    *,
    what: str,
    timeout_s: float = WAIT_S,
    every_s: float = 0.05,
) -> T:
    """Fetch until `check` passes; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s; last seen {value!r}")
        time.sleep(every_s)


def new_traceparent() -> tuple[str, str]:
    """(traceparent, trace id) of a fresh sampled W3C trace context."""
    trace_id = uuid.uuid4().hex
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01", trace_id


def trace_id_of(traceparent: str | None) -> str | None:
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 else None


# ---- the broker --------------------------------------------------------------------------


# ---- field devices -----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    correlation_data: bytes | None
    user_properties: dict[str, str]

    @property
    def envelope(self) -> dict[str, Any]:
        value = json.loads(self.payload) if self.payload else {}
        return value if isinstance(value, dict) else {}

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.envelope.get("data") or {})


def envelope(
    data: Any,
    *,
    seq: int | None = None,
    message_id: str | None = None,
    actor: dict[str, str] | None = None,
    correlation_id: str | None = None,
    traceparent: str | None = None,
    kind: str | None = None,
    ts: datetime | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message_id or f"m-{uuid.uuid4().hex}",
        "ts": (ts or datetime.now(UTC)).isoformat(),
        "data": data,
    }
    if seq is not None:
        body["seq"] = seq
    if actor is not None:
        body["actor"] = actor
    if correlation_id is not None:
        body["correlation_id"] = correlation_id
    if traceparent is not None:
        body["traceparent"] = traceparent
    if kind is not None:
        body["type"] = kind
    return body


class Device:
    """A raw paho client (clean session): a station controller, tracker, phone or monitor."""

    def __init__(self, broker: Broker, client_id: str, *, v5: bool) -> None:
        self.v5 = v5
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        if v5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv311,
                clean_session=True,
            )
        self.client.username_pw_set("field-device")
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert connected.wait(WAIT_S), f"{client_id} did not connect to {broker}"

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        props = vars(message.properties) if message.properties is not None else {}
        received = Received(
            topic=message.topic,
            payload=bytes(message.payload),
            retain=bool(message.retain),
            correlation_data=props.get("CorrelationData"),
            user_properties=dict(props.get("UserProperty", [])),
        )
        with self._arrived:
            self.received.append(received)
            self._arrived.notify_all()

    def subscribe(self, *topic_filters: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe([(f, 1) for f in topic_filters])
        assert done.wait(WAIT_S), f"no SUBACK for {topic_filters}"

    def publish(
        self,
        topic: str,
        payload: bytes | dict[str, Any],
        *,
        correlation_data: str | None = None,
        response_topic: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        properties = None
        if self.v5 and (correlation_data or response_topic or traceparent):
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if correlation_data is not None:
                properties.CorrelationData = correlation_data.encode()
            if response_topic is not None:
                properties.ResponseTopic = response_topic
            if traceparent is not None:
                properties.UserProperty = ("traceparent", traceparent)
        info = self.client.publish(topic, raw, qos=1, properties=properties)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def wait_for(
        self, check: Callable[[Received], bool], *, what: str, timeout_s: float = WAIT_S
    ) -> Received:
        def found() -> Received | None:
            return next((m for m in self.received if check(m)), None)

        with self._arrived:
            self._arrived.wait_for(lambda: found() is not None, timeout_s)
            hit = found()
        if hit is None:
            seen = [(m.topic, m.payload[:160]) for m in self.received[-8:]]
            raise AssertionError(f"{what}: nothing within {timeout_s} s; last seen {seen}")
        return hit

    def matching(self, check: Callable[[Received], bool]) -> list[Received]:
        with self._arrived:
            return [m for m in self.received if check(m)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Sent:
    message_id: str
    correlation_id: str
    seq: int | None


class Station:
    """A swap-station controller: calls iot-sync and reads the answers.

    v5: the answer address is a response topic of the station's own choosing, matched by
    correlation data. 3.1.1: the `rtrn/…` twin of the call topic, matched by the envelope's
    `correlation_id`.
    """

    def __init__(self, platform: IotPlatform, station_id: str, *, v5: bool) -> None:
        self.platform, self.station_id, self.v5 = platform, station_id, v5
        p = platform.prefix
        self.device = platform.device(f"station-{station_id}", v5=v5)
        if v5:
            self.reply_topic: str | None = f"{p}/inbox/station/{station_id}/{uuid.uuid4().hex[:8]}"
            self.device.subscribe(self.reply_topic)
        else:
            self.reply_topic = None
            self.device.subscribe(f"{p}/rtrn/abs/station/{station_id}/+")

    def topic(self, verb: str) -> str:
        return f"{self.platform.prefix}/call/abs/station/{self.station_id}/{verb}"

    def send(
        self,
        verb: str,
        data: dict[str, Any],
        *,
        seq: int | None = None,
        message_id: str | None = None,
        traceparent: str | None = None,
    ) -> Sent:
        seq = seq if seq is not None else self.platform.next_seq(f"station/{self.station_id}")
        correlation_id = f"corr-{uuid.uuid4().hex[:12]}"
        body = envelope(
            data,
            seq=seq,
            message_id=message_id,
            actor={"kind": "station", "id": self.station_id},
            correlation_id=None if self.v5 else correlation_id,
            traceparent=None if self.v5 else traceparent,
        )
        self.device.publish(
            self.topic(verb),
            body,
            correlation_data=correlation_id if self.v5 else None,
            response_topic=self.reply_topic,
            traceparent=traceparent if self.v5 else None,
        )
        return Sent(body["id"], correlation_id, seq)

    def answer(self, sent: Sent, *, timeout_s: float = WAIT_S) -> Received:
        def is_answer(m: Received) -> bool:
            if self.v5:
                return m.topic == self.reply_topic and m.correlation_data == (
                    sent.correlation_id.encode()
                )
            return m.envelope.get("correlation_id") == sent.correlation_id

        return self.device.wait_for(
            is_answer, what=f"answer to {sent} at {self.station_id}", timeout_s=timeout_s
        )

    def call(self, verb: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return self.answer(self.send(verb, data, **kw)).data

    def authorize(self, customer_id: str, returned_battery_id: str | None = None) -> dict[str, Any]:
        data = {"customer_id": customer_id}
        if returned_battery_id is not None:
            data["returned_battery_id"] = returned_battery_id
        return self.call("authorize", data)

    def dispense(self, customer_id: str, battery_id: str) -> dict[str, Any]:
        return self.call("dispense_confirm", {"customer_id": customer_id, "battery_id": battery_id})


class Person:
    """A member of field personnel with a device scanner; confirmations come on the echo topic."""

    def __init__(self, platform: IotPlatform, person_id: str, *, v5: bool) -> None:
        self.platform, self.person_id, self.v5 = platform, person_id, v5
        self.device = platform.device(f"person-{person_id}", v5=v5)
        self.device.subscribe(f"{platform.prefix}/echo/abs/personnel/{person_id}/+")

    def act(self, action: str, data: dict[str, Any]) -> Received:
        correlation_id = f"corr-{uuid.uuid4().hex[:12]}"
        body = envelope(
            data,
            actor={"kind": "person", "id": self.person_id},
            correlation_id=correlation_id,
        )
        self.device.publish(
            f"{self.platform.prefix}/emit/abs/personnel/{self.person_id}/{action}",
            body,
            correlation_data=correlation_id if self.v5 else None,
        )
        return self.device.wait_for(
            lambda m: m.envelope.get("correlation_id") == correlation_id,
            what=f"echo of {action} by {self.person_id}",
        )

    def scan(self, asset_id: str) -> dict[str, Any]:
        return self.act("asset_scan", {"asset_id": asset_id}).data

    def report(self, action: str, asset_id: str, note: str | None = None) -> dict[str, Any]:
        data = {"asset_id": asset_id, **({"note": note} if note else {})}
        return self.act(action, data).data


class Tracker:
    """A battery's tracker (gps) and battery management system (bms): fire and forget."""

    def __init__(self, platform: IotPlatform, battery_id: str, region: str, site: str) -> None:
        self.platform, self.battery_id = platform, battery_id
        self.region, self.site = region, site
        self.device = platform.monitor  # one connection is enough for fire and forget

    def topic(self, app: str) -> str:
        return f"{self.platform.prefix}/dt/arm/{app}/{self.region}/{self.site}/{self.battery_id}"

    def _send(self, app: str, data: dict[str, Any], seq: int | None = None) -> str:
        body = envelope(
            data,
            seq=seq if seq is not None else self.platform.next_seq(f"{app}/{self.battery_id}"),
            actor={"kind": "device", "id": self.battery_id},
        )
        self.device.publish(self.topic(app), body)
        return str(body["id"])

    def position(self, latitude: float, longitude: float) -> str:
        return self._send("gps", {"latitude": latitude, "longitude": longitude})

    def charge(self, charge_pct: float, *, seq: int | None = None) -> str:
        return self._send("bms", {"charge_pct": charge_pct}, seq=seq)

    @contextmanager
    def reporting(self, latitude: float, longitude: float, every_s: float = 0.25) -> Iterator[None]:
        """Keep sending this position until the block ends (a tracker that is alive)."""
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                self.position(latitude, longitude)
                stop.wait(every_s)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


# ---- the webhook receiver (the customer notification channel) ---------------------------


@dataclass(frozen=True)
class Hook:
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver:
    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self._cond = threading.Condition()
        app = FastAPI()

        @app.post("/hooks/customers")
        async def receive(request: Request) -> dict[str, bool]:
            hook = Hook({k.lower(): v for k, v in request.headers.items()}, await request.json())
            with self._cond:
                self.hooks.append(hook)
                self._cond.notify_all()
            return {"ok": True}

        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return f"{self.server.url}/hooks/customers"

    def wait_for(self, check: Callable[[Hook], bool], *, what: str) -> Hook:
        def found() -> Hook | None:
            return next((h for h in self.hooks if check(h)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, WAIT_S)
            hit = found()
        if hit is None:
            seen = [(h.body.get("customer_id"), h.body.get("event")) for h in self.hooks]
            raise AssertionError(f"{what}: no webhook within {WAIT_S} s; got {seen}")
        return hit

    def events_for(self, customer_id: str) -> list[str]:
        with self._cond:
            return [h.body["event"] for h in self.hooks if h.body.get("customer_id") == customer_id]


# ---- the platform ------------------------------------------------------------------------


class IotPlatform:
    def __init__(
        self,
        *,
        broker: Broker,
        prefix: str,
        settings: IotSyncSettings,
        arm: ServerThread,
        hooks: WebhookReceiver,
    ) -> None:
        self.broker, self.prefix, self.settings = broker, prefix, settings
        self.arm, self.hooks = arm, hooks
        self.api: ServerThread | None = None
        self.consumer: Consumer | None = None
        self._seqs: dict[str, int] = {}
        self._seq_lock = threading.Lock()
        self._devices: list[Device] = []
        tokens = TokenService(
            settings.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        self._token = tokens.mint(tenant="demo", role="admin")
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{settings.port}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=30,
        )
        self.arm_http = httpx.Client(base_url=arm.url, timeout=30)
        token = self.arm_http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.arm.client_id,
                "client_secret": settings.arm.client_secret,
            },
        )
        self.arm_http.headers["Authorization"] = (
            f"Bearer {token.raise_for_status().json()['access_token']}"
        )
        # Sees what iot-sync sends everyone: notices, errors, retained service state.
        self.monitor = self.device("monitor", v5=broker.speaks_v5)
        self.monitor.subscribe(f"{prefix}/emit/abs/#", f"{prefix}/stat/abs/#")

    # iot-sync's lifecycle -------------------------------------------------------------
    def start_iot_sync(self) -> None:
        """The API process; with `mqtt_in_process=False` also `iot-sync consume`'s parts,
        wired on their own (own container, engine and MQTT clients), as the split stack runs
        them in two processes."""
        assert self.api is None, "iot-sync is already running"
        api = ServerThread(build_app(self.settings), port=self.settings.port)
        api.__enter__()
        self.api = api
        eventually(self._ready, bool, what="iot-sync /readyz", timeout_s=60)
        if not self.settings.mqtt_in_process:
            consumer = Consumer(self.settings)
            consumer.start()
            self.consumer = consumer

    def stop_iot_sync(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer = None
        if self.api is not None:
            self.api.__exit__(None, None, None)
            self.api = None

    def restart_iot_sync(self, **changes: Any) -> None:
        """Stop iot-sync, then start it again on the same database and MQTT session."""
        self.stop_iot_sync()
        if changes:
            self.settings = self.settings.model_copy(update=changes)
        self.start_iot_sync()

    def _ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.stop_iot_sync()
        for device in self._devices:
            device.close()
        self.http.close()
        self.arm_http.close()
        end_session(self.settings.mqtt)  # the broker forgets this test's persistent session

    # the field ------------------------------------------------------------------------
    def device(self, name: str, *, v5: bool) -> Device:
        device = Device(self.broker, f"{self.prefix}-{name}-{len(self._devices)}", v5=v5)
        self._devices.append(device)
        return device

    def station(self, station_id: str, *, v5: bool | None = None) -> Station:
        return Station(self, station_id, v5=self.broker.speaks_v5 if v5 is None else v5)

    def person(self, person_id: str) -> Person:
        return Person(self, person_id, v5=self.broker.speaks_v5)

    def tracker(self, battery_id: str, *, region: str, site: str = "site-1") -> Tracker:
        return Tracker(self, battery_id, region, site)

    def next_seq(self, sender: str) -> int:
        with self._seq_lock:  # trackers may report from threads of their own
            self._seqs[sender] = self._seqs.get(sender, 0) + 1
            return self._seqs[sender]

    def notices(self, customer_id: str, event: str) -> list[Received]:
        topic = f"{self.prefix}/emit/abs/notify/{customer_id}/{event}"
        return self.monitor.matching(lambda m: m.topic == topic)

    def wait_notice(self, customer_id: str, event: str) -> Received:
        topic = f"{self.prefix}/emit/abs/notify/{customer_id}/{event}"
        return self.monitor.wait_for(lambda m: m.topic == topic, what=f"notice {topic}")

    # iot-sync's REST API --------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def customers(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/customers")["items"])

    def personnel(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/personnel")["items"])

    def stations(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/stations")["items"])

    def inventory(self, station_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/stations/{station_id}/inventory"))

    def service_of(self, customer_id: str) -> dict[str, Any]:
        items = self.get("/v1/services", customer_id=customer_id)["items"]
        assert len(items) == 1, f"{customer_id} has {len(items)} services"
        return dict(items[0])

    def asset(self, asset_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/assets/{asset_id}"))

    def arm_asset(self, asset_id: str) -> dict[str, Any]:
        return dict(self.arm_http.get(f"/arm/v1/assets/{asset_id}").raise_for_status().json())

    def signals(self, result: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self.get("/v1/signals", result=result, limit=limit)["items"])

    def settlements(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/settlements")["items"])

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.get("/v1/audit", **params)["items"])

    def service_input(self, service_id: str, value: str) -> dict[str, Any]:
        response = self.http.post(f"/v1/services/{service_id}/inputs", json={"input": value})
        response.raise_for_status()
        return dict(response.json())

    def wait_asset(self, asset_id: str, state: str) -> dict[str, Any]:
        return eventually(
            lambda: self.asset(asset_id),
            lambda a: a["state"] == state,
            what=f"battery {asset_id} {state} in iot-sync",
        )

    def wait_arm_asset(
        self, asset_id: str, check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        return eventually(
            lambda: self.arm_asset(asset_id), check, what=f"battery {asset_id} in ARM"
        )

    def wait_service(self, customer_id: str, state: str) -> dict[str, Any]:
        return eventually(
            lambda: self.service_of(customer_id),
            lambda s: s["state"] == state,
            what=f"service of {customer_id} {state}",
        )

    # seeded data, chosen by what it is rather than by id ------------------------------
    def customer(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        found = [c for c in self.customers() if check(c)]
        assert found, f"no seeded customer who is {what}"
        return found[0]

    def good_customers(self, battery_class: str = "STANDARD") -> list[str]:
        return [
            c["customer_id"]
            for c in self.customers()
            if c["standing"] == "GOOD"
            and c["service_state"] == "ACTIVE"
            and c["plan"]["battery_class"] == battery_class
            and c["plan"]["swap_quota"] > 1
        ]

    def available(self, station_id: str, battery_class: str | None = None) -> list[dict[str, Any]]:
        return [
            a
            for a in self.inventory(station_id)["items"]
            if a["state"] == "AVAILABLE"
            and (battery_class is None or a["battery_class"] == battery_class)
        ]

    def station_with(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        for station in self.stations():
            if check(station):
                return station
        raise AssertionError(f"no seeded station {what}")

    def issue_battery(self, customer_id: str, station_id: str) -> str:
        """Given: the customer swaps at the station and walks away with a battery."""
        station = self.station(station_id)
        held = self.service_of(customer_id)["battery_id"]
        granted = station.authorize(customer_id, returned_battery_id=held)
        assert granted["decision"] == "GRANTED", granted
        confirmed = station.dispense(customer_id, granted["battery_id"])
        assert confirmed["result"] == "accepted", confirmed
        return str(granted["battery_id"])


def iot_settings(
    *,
    broker: Broker,
    prefix: str,
    database_url: str,
    arm_url: str,
    webhook_url: str,
    **overrides: Any,
) -> IotSyncSettings:
    mqtt_settings = MqttSettings(
        host=broker.host,
        port=broker.port,
        protocol="5" if broker.speaks_v5 else "3.1.1",
        client_id=f"{prefix}-iot-sync",
        topic_prefix=prefix,
        **overrides.pop("mqtt", {}),
    )
    values: dict[str, Any] = {
        "database_url": database_url,
        "port": free_port(),
        "log_json": True,
        "log_level": "WARNING",
        "mqtt": mqtt_settings,
        "arm": ArmSettings(base_url=arm_url, backoff_initial_s=0.05, backoff_max_s=0.5),
        "webhook_url": webhook_url,
        "relay_every_s": 0.1,
        "loss_check_every_s": 0.2,
        "release_held_every_s": 0.2,
        **overrides,
    }
    return IotSyncSettings(**values)


@contextmanager
def running_iot_platform(
    *, broker: Broker, database_url: str, **overrides: Any
) -> Iterator[IotPlatform]:
    prefix = f"e2e-{uuid.uuid4().hex[:10]}"
    arm_port = free_port()
    hooks = WebhookReceiver()
    with (
        ServerThread(create_arm_sim(SimConfig(port=arm_port)), port=arm_port) as arm,
        hooks.server,
    ):
        settings = iot_settings(
            broker=broker,
            prefix=prefix,
            database_url=database_url,
            arm_url=arm.url,
            webhook_url=hooks.url,
            **overrides,
        )
        platform = IotPlatform(
            broker=broker, prefix=prefix, settings=settings, arm=arm, hooks=hooks
        )
        try:
            platform.start_iot_sync()
            yield platform
        finally:
            platform.close()
