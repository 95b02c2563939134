"""The creation context queued work keeps: taken from the current span, bounded for
storage, and turned back into a Link (never into a parent)."""

from __future__ import annotations

import secrets

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from services.common.trace_origin import (
    MAX_TRACESTATE,
    NO_ORIGIN,
    TRACEPARENT_LENGTH,
    TraceOrigin,
    current_origin,
)


def _context(state: TraceState | None = None, sampled: bool = True) -> SpanContext:
    return SpanContext(
        trace_id=int(secrets.token_hex(16), 16),
        span_id=int(secrets.token_hex(8), 16),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=state,
    )


def _origin_in(context: SpanContext) -> TraceOrigin:
    with trace.use_span(NonRecordingSpan(context)):
        return current_origin()


def test_no_current_span_is_no_origin() -> None:
    assert current_origin() == NO_ORIGIN
    assert NO_ORIGIN.links() == []


def test_the_current_span_is_stored_and_linked_back() -> None:
    context = _context(TraceState([("vendor", "abc"), ("other", "x-1")]))
    origin = _origin_in(context)
    trace_id, span_id = (
        trace.format_trace_id(context.trace_id),
        trace.format_span_id(context.span_id),
    )
    assert origin.traceparent == f"00-{trace_id}-{span_id}-01"
    assert len(origin.traceparent) == TRACEPARENT_LENGTH
    assert origin.tracestate == "vendor=abc,other=x-1"
    (link,) = origin.links()
    assert (link.context.trace_id, link.context.span_id) == (context.trace_id, context.span_id)
    assert link.context.trace_state == context.trace_state


def test_an_unsampled_span_is_linked_too() -> None:
    origin = _origin_in(_context(sampled=False))
    assert origin.traceparent.endswith("-00")
    assert len(origin.links()) == 1


def test_a_long_tracestate_is_truncated_long_entries_first_then_from_the_right() -> None:
    long_entry = ("big", "v" * 200)
    entries = [("a0", "x" * 100), long_entry] + [(f"k{i}", "y" * 100) for i in range(1, 10)]
    origin = _origin_in(_context(TraceState(entries)))
    kept = origin.tracestate.split(",")
    assert len(origin.tracestate) <= MAX_TRACESTATE
    # The 200-character entry went first, then the rightmost ones, order kept.
    assert not any(entry.startswith("big=") for entry in kept)
    assert [entry.split("=")[0] for entry in kept] == ["a0", "k1", "k2", "k3"]
    assert len(origin.links()) == 1


def test_a_stored_value_that_does_not_parse_links_to_nothing() -> None:
    assert TraceOrigin("00-not-a-trace-01").links() == []
    assert TraceOrigin(f"00-{'0' * 32}-{'1' * 16}-01").links() == []
    # A bad tracestate alone does not lose the link.
    good = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    assert len(TraceOrigin(good, "=,=").links()) == 1
