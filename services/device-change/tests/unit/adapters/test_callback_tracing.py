"""A stored group of callbacks is one span, linked to the carrier calls it answers."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from device_change.bootstrap import OtelCallbackTracing

CARRIER_CALL = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def traceparents(request_id: str) -> str | None:
    if request_id == "req-broken":
        raise RuntimeError("database is gone")
    return {"req-1": CARRIER_CALL}.get(request_id)


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelCallbackTracing(traceparents, tracer_provider=provider)


def test_the_span_links_every_known_carrier_call_and_skips_the_rest(tracing, exporter):
    with tracing.storing(["req-1", "req-unknown", "req-broken"], callbacks=7):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "store thingspace callbacks" and span.kind is SpanKind.CONSUMER
    assert [format(link.context.span_id, "016x") for link in span.links] == ["b7ad6b7169203331"]
    assert span.attributes["fleetops.callbacks"] == 7
    assert list(span.attributes["thingspace.request_ids"]) == [
        "req-1",
        "req-unknown",
        "req-broken",
    ]


def test_the_store_inside_is_traced_as_its_child(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = OtelCallbackTracing(traceparents, tracer_provider=provider)
    inner = provider.get_tracer("sqlalchemy")
    with tracing.storing(["req-1"], callbacks=1), inner.start_as_current_span("INSERT"):
        pass
    insert, stored = exporter.get_finished_spans()
    assert insert.parent.span_id == stored.context.span_id


def test_a_failed_store_leaves_an_error_on_its_span(tracing, exporter):
    with pytest.raises(OSError, match="disk full"), tracing.storing(["req-1"], callbacks=1):
        raise OSError("disk full")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert any(event.name == "exception" for event in span.events)


def test_links_stop_at_the_sdk_limit(tracing, exporter):
    many = ["req-1"] * (OtelCallbackTracing.MAX_LINKS + 50)
    with tracing.storing(many, callbacks=len(many)):
        pass
    (span,) = exporter.get_finished_spans()
    assert len(span.links) == OtelCallbackTracing.MAX_LINKS
