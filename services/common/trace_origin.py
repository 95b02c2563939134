"""The trace context of a request that queued work, kept with the work and linked from
the span that later runs it.

A queued job (an investigation) runs after the request that created it has ended,
maybe hours later and on another replica. Following OpenTelemetry's messaging
conventions for consumer spans, the span that runs it starts a trace of its own and
carries a span Link to the creating request's span (its "creation context"), rather
than becoming a child of a span that ended long ago: the request's trace stays the
request's duration, the job's trace the job's, and a backend navigates between them.

The context is the W3C pair, bounded before it is stored: `traceparent` is 55
characters; `tracestate` (a caller may send up to 32 entries of 256 characters) is
truncated to `MAX_TRACESTATE` the way the W3C specification says a vendor may: entries
longer than 128 characters go first, then entries from the right (the oldest).
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Characters of tracestate kept (W3C allows 512 as the smallest a system may keep).
MAX_TRACESTATE = 512
# Entries longer than this are the first a truncation drops (W3C trace-context, 3.3.1.5).
_LONG_ENTRY = 128
# The one length a version-00 traceparent has.
TRACEPARENT_LENGTH = 55

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class TraceOrigin:
    """A stored creation context; empty strings: none (tracing was off, or no span)."""

    traceparent: str = ""
    tracestate: str = ""

    def span_context(self) -> SpanContext | None:
        """The creating span's context, None when there is none or it does not parse."""
        if not self.traceparent:
            return None
        carrier = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            carrier[TRACESTATE] = self.tracestate
        context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
        return context if context.is_valid else None

    def links(self) -> list[Link]:
        """A Link to the creating span, or none."""
        context = self.span_context()
        return [Link(context)] if context is not None else []


NO_ORIGIN = TraceOrigin()


def _bounded_state(header: str) -> str:
    if len(header) <= MAX_TRACESTATE:
        return header
    entries = [entry for entry in header.split(",") if len(entry) <= _LONG_ENTRY]
    while entries and len(",".join(entries)) > MAX_TRACESTATE:
        entries.pop()
    return ",".join(entries)


def current_origin() -> TraceOrigin:
    """The current span's context (the request being served), bounded for storage;
    NO_ORIGIN when no valid span is current (tracing off)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return NO_ORIGIN
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    traceparent = carrier.get(TRACEPARENT, "")
    if len(traceparent) != TRACEPARENT_LENGTH:
        return NO_ORIGIN
    return TraceOrigin(traceparent, _bounded_state(carrier.get(TRACESTATE, "")))
