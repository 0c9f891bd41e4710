"""One trace from the API request through the queue and worker to the carrier call."""

import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fleetops_common.telemetry import setup_tracing

from .platform import running_platform

pytestmark = pytest.mark.e2e


def test_request_worker_carrier_call_share_a_trace_and_the_stored_callback_links_to_it(tmp_path):
    exporter = InMemorySpanExporter()
    setup_tracing("device-change-test", span_exporter=exporter)
    with running_platform(f"sqlite:///{tmp_path / 'dc.db'}", fleet_size=50) as platform:
        iccid = platform.active_iccids(1)[0]
        exporter.clear()
        r = platform.http.post(
            "/v1/bulk-changes",
            json={
                "change_type": "update_device_status",
                "devices": [{"iccid": iccid}],
                "params": {"target_status": "SUSPENDED"},
            },
        )
        platform.wait_finished(r.json()["id"], timeout_s=60)
        time.sleep(0.5)
    spans = exporter.get_finished_spans()
    submit = next(
        s
        for s in spans
        if s.kind is SpanKind.SERVER and s.attributes.get("http.route") == "/v1/bulk-changes"
    )
    trace_id = submit.context.trace_id
    consumer = [s for s in spans if s.kind is SpanKind.CONSUMER and "send_carrier_batch" in s.name]
    assert consumer and consumer[0].context.trace_id == trace_id
    carrier_calls = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT
        and "suspend" in str(s.attributes.get("url.full", "") or s.attributes.get("http.url", ""))
    ]
    assert carrier_calls and carrier_calls[0].context.trace_id == trace_id
    stored = next(s for s in spans if s.name == "store thingspace callbacks")
    assert any(link.context.trace_id == trace_id for link in stored.links)
