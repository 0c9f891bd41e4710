"""Carry the OpenTelemetry context across the queue in message options (our own middleware)."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_tracer = trace.get_tracer("fleetops_common.queue")
OPTION = "otel"


class TracePropagation(Middleware):
    """Producer span + context in `message.options["otel"]`; consumer span as its child."""

    def __init__(self, *, system: str = "stub") -> None:
        self.system = system
        self._local = threading.local()

    def _attributes(self, message: dramatiq.Message[Any]) -> dict[str, str]:
        return {
            "messaging.system": self.system,
            "messaging.destination.name": message.queue_name,
            "messaging.message.id": message.message_id,
            "messaging.dramatiq.actor": message.actor_name,
        }

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: Any) -> None:
        if OPTION in message.options:
            return  # a retry re-enqueues the same message: keep its original context
        with _tracer.start_as_current_span(
            f"{message.queue_name} {message.actor_name} publish",
            kind=SpanKind.PRODUCER,
            attributes=self._attributes(message),
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            message.options[OPTION] = carrier

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        parent = propagate.extract(dict(message.options.get(OPTION) or {}))
        span = _tracer.start_span(
            f"{message.queue_name} {message.actor_name} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=self._attributes(message),
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        spans: dict[str, tuple[Any, object]] = getattr(self._local, "spans", {})
        spans[message.message_id] = (span, token)
        self._local.spans = spans

    def _finish(self, message: Any, exception: BaseException | None) -> None:
        spans: dict[str, tuple[Any, object]] = getattr(self._local, "spans", {})
        entry = spans.pop(message.message_id, None)
        if entry is None:
            return
        span, token = entry
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, str(exception)))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._finish(message, exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._finish(message, None)
