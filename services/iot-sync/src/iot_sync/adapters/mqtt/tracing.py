"""W3C trace context for MQTT: the `traceparent` user property (v5) or envelope field."""

from __future__ import annotations

from opentelemetry import trace


def traceparent_of(span: trace.Span) -> str | None:
    """The `traceparent` header naming `span`; None when it has no valid context."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
