"""The creating request's trace context is stored with the investigation and handed to
every attempt that runs it (services/common/trace_origin.py)."""

from __future__ import annotations

import asyncio
import secrets

import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from services.common.trace_origin import NO_ORIGIN, TraceOrigin
from services.investigation.jobs import JobStore
from tests.unit.investigation.conftest import CLAIM_IDLE_S, alert_investigation


def _request_span() -> tuple[NonRecordingSpan, TraceOrigin]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    context = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "v1")]),
    )
    return NonRecordingSpan(context), TraceOrigin(f"00-{trace_id}-{span_id}-01", "vendor=v1")


async def test_every_attempt_gets_the_creating_requests_context(
    store: JobStore, redis_client: aioredis.Redis
) -> None:
    span, expected = _request_span()
    with trace.use_span(span):
        await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    record = await redis_client.hmget("inv:{i}:rec", ["traceparent", "tracestate"])
    assert record == [expected.traceparent.encode(), b"vendor=v1"]

    first = await store.claim("w1", block_ms=10)
    assert first is not None and first.origin == expected
    # The first worker goes silent; the takeover links to the same request.
    await asyncio.sleep(CLAIM_IDLE_S * 1.5)
    second = await store.claim("w2", block_ms=10)
    assert second is not None and second.attempt == 2
    assert second.origin == expected


async def test_an_alert_opened_investigation_keeps_its_webhook_calls_context(
    store: JobStore,
) -> None:
    span, expected = _request_span()
    with trace.use_span(span):
        _, opened = await store.open_for_alert(
            alert_investigation(fingerprint="fp1"), investigation_id="a", owner="", key_name=""
        )
    assert opened
    job = await store.claim("w", block_ms=10)
    assert job is not None and job.origin == expected


async def test_created_outside_any_trace_it_links_to_nothing(store: JobStore) -> None:
    await store.create(alert_investigation(), investigation_id="n", owner="", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None and job.origin == NO_ORIGIN
    assert job.origin.links() == []
