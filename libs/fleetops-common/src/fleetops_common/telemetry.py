"""OpenTelemetry for every Fleetops process: one provider, W3C context across boundaries."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.engine import Engine

_lock = threading.Lock()
_httpx_done = False


def setup_tracing(
    service_name: str, *, exporter: str = "none", span_exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the process's tracer provider once; later calls add their exporter to it.

    OpenTelemetry refuses to replace a global provider, so a test that passes its own
    exporter (e.g. an InMemorySpanExporter) gets it attached to whatever provider exists.
    """
    with _lock:
        propagate.set_global_textmap(
            CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
        )
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
            trace.set_tracer_provider(provider)
        if span_exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        elif exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return provider


def instrument_fastapi(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")


def instrument_httpx() -> None:
    global _httpx_done
    with _lock:
        if _httpx_done:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        _httpx_done = True


def instrument_sqlalchemy(engine: Engine) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)


def inject_traceparent() -> dict[str, str]:
    """The current context as W3C headers (`traceparent`, maybe `tracestate`)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(carrier))


def link_from(traceparent: str | Mapping[str, str] | None) -> trace.Link | None:
    """A span link to the span a stored traceparent describes."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent} if isinstance(traceparent, str) else dict(traceparent)
    span_context = trace.get_current_span(context_from(carrier)).get_span_context()
    return trace.Link(span_context) if span_context.is_valid else None


def current_trace_ids() -> tuple[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
