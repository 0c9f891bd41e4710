"""Tracing: a swap signal's trace context reaches the state change, ARM and the customer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fleetops_common.telemetry import setup_tracing

from .harness import Broker, IotPlatform, eventually, new_traceparent, trace_id_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_tracing("iot-sync-e2e", span_exporter=exporter)
    yield exporter
    exporter.shutdown()  # stays attached to the process's provider, but keeps nothing more


def _hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def _url(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


def test_a_swap_signals_traceparent_reaches_the_state_change_the_arm_call_and_the_notice(
    v5_broker: Broker, platform: IotPlatform, spans: InMemorySpanExporter
) -> None:
    # Given a customer authorized at a station
    customer_id = platform.good_customers()[0]
    station_id = platform.station_with(
        lambda s: bool(platform.available(s["station_id"], "STANDARD")), "with a battery"
    )["station_id"]
    station = platform.station(station_id)
    granted = station.authorize(customer_id)
    service_id = platform.service_of(customer_id)["service_id"]
    battery = granted["battery_id"]

    # When the station confirms the dispense inside a trace of its own (v5 user property)
    traceparent, trace_id = new_traceparent()
    sent = station.send(
        "dispense_confirm",
        {"customer_id": customer_id, "battery_id": battery},
        traceparent=traceparent,
    )

    # Then the answer continues that trace
    answer = station.answer(sent)
    assert answer.data["result"] == "accepted"
    assert trace_id_of(answer.user_properties.get("traceparent")) == trace_id
    # the consumer received the signal in that trace, and the transaction that changed
    # the service (one per batch) links to it
    receive = eventually(
        lambda: [
            s
            for s in spans.get_finished_spans()
            if s.name == "iot-sync receive" and _hex(s.context.trace_id) == trace_id
        ],
        bool,
        what="the consumer's receive span in the station's trace",
    )
    assert receive[0].kind is SpanKind.CONSUMER
    batch = [
        s
        for s in spans.get_finished_spans()
        if s.name == "iot-sync process signals"
        and any(link.context.span_id == receive[0].context.span_id for link in s.links)
    ]
    assert batch, "no batch transaction links to the received signal"
    # the new service state, retained for everyone, carries the trace
    state = platform.monitor.wait_for(
        lambda m: (
            m.topic == f"{platform.prefix}/stat/abs/service/{service_id}"
            and m.data.get("state") == "BATTERY_ISSUED"
        ),
        what="the retained BATTERY_ISSUED state",
    )
    assert trace_id_of(state.user_properties.get("traceparent")) == trace_id
    assert trace_id_of(state.envelope.get("traceparent")) == trace_id
    # the ARM movement of the battery is a call in that trace
    arm_calls = eventually(
        lambda: [
            s
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.CLIENT and f"/arm/v1/assets/{battery}/movements" in _url(s)
        ],
        bool,
        what="the ARM movement call span",
    )
    assert {_hex(s.context.trace_id) for s in arm_calls} == {trace_id}
    # and the customer's notices, on the webhook (W3C header) and on MQTT, carry it too
    hook = platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_issued",
        what="battery_issued webhook",
    )
    assert trace_id_of(hook.headers.get("traceparent")) == trace_id
    notice = platform.wait_notice(customer_id, "battery_issued")
    assert trace_id_of(notice.user_properties.get("traceparent")) == trace_id
