"""Every way an upstream fails, through each adapter: HTTP statuses, errors inside a
stream, broken and truncated streams, deadlines, and callers that go away."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import grpc
import pytest

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError, reason_name
from services.provider.adapters.registry import build_adapter
from tests.fakes import Behaviour
from tests.unit.provider.chat import collect, request, streamed_text
from tests.unit.provider.conftest import KEY, KEY_VARIABLE, Upstream, provider_config

_R = error_reason_pb2
CODE = grpc.StatusCode

# status -> (gRPC code, reason) for every family
STATUS_MAP = {
    400: (CODE.INVALID_ARGUMENT, _R.ERROR_REASON_UPSTREAM_INVALID_REQUEST),
    401: (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_AUTH_FAILED),
    403: (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_AUTH_FAILED),
    404: (CODE.NOT_FOUND, _R.ERROR_REASON_UPSTREAM_MODEL_NOT_FOUND),
    408: (CODE.DEADLINE_EXCEEDED, _R.ERROR_REASON_UPSTREAM_TIMEOUT),
    409: (CODE.ABORTED, _R.ERROR_REASON_UPSTREAM_UNAVAILABLE),
    422: (CODE.INVALID_ARGUMENT, _R.ERROR_REASON_UPSTREAM_INVALID_REQUEST),
    429: (CODE.RESOURCE_EXHAUSTED, _R.ERROR_REASON_UPSTREAM_RATE_LIMITED),
    500: (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_UNAVAILABLE),
    502: (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_UNAVAILABLE),
    503: (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_UNAVAILABLE),
    529: (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_OVERLOADED),
}


async def _failure(upstream: Upstream, *, stream: bool = False) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        if stream:
            await collect(upstream.adapter.stream(request(upstream.model), 5))
        else:
            await upstream.adapter.complete(request(upstream.model), 5)
    return caught.value


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", sorted(STATUS_MAP))
async def test_status_mapping(upstream: Upstream, status: int, stream: bool) -> None:
    upstream.fake.script(
        Behaviour(status=status, error_message=f"boom {status} key=sk-abcdef123456")
    )
    error = await _failure(upstream, stream=stream)
    assert (error.code, error.reason) == STATUS_MAP[status]
    assert error.metadata["provider"] == upstream.family
    assert error.metadata["upstream_status"] == str(status)
    assert f"boom {status}" in error.message
    assert "sk-abcdef123456" not in error.message


async def test_model_not_found_names_model_and_provider(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(status=404))
    error = await _failure(upstream)
    assert upstream.model in error.message and upstream.family in error.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ],
)
async def test_rate_limit_carries_retry_after(
    upstream: Upstream, headers: dict[str, str], expected: float
) -> None:
    upstream.fake.script(Behaviour(status=429, headers=headers))
    error = await _failure(upstream)
    assert error.code is CODE.RESOURCE_EXHAUSTED
    assert error.retry_after == expected


async def test_server_error_carries_retry_after(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(status=503, headers={"retry-after": "2"}))
    error = await _failure(upstream, stream=True)
    assert (error.code, error.retry_after) == (CODE.UNAVAILABLE, 2.0)


async def test_auth_failure_blames_the_gateway_not_the_caller(upstream: Upstream) -> None:
    config = provider_config(upstream.family, upstream.fake.url)
    adapter = build_adapter(upstream.family, config, {KEY_VARIABLE: "sk-wrong-key-000000"})
    try:
        with pytest.raises(GatewayError) as caught:
            await adapter.complete(request(upstream.model), 5)
    finally:
        await adapter.close()
    error = caught.value
    assert (error.code, error.reason) == (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_AUTH_FAILED)
    assert "gateway's credentials" in error.message
    assert "sk-wrong-key-000000" not in error.message and KEY not in error.message


@pytest.mark.parametrize("break_after", [0, 2])
async def test_broken_stream_is_unavailable(upstream: Upstream, break_after: int) -> None:
    upstream.fake.script(Behaviour(chunks=["a", "b", "c", "d"], break_after=break_after))
    events = []
    with pytest.raises(GatewayError) as caught:
        async for event in upstream.adapter.stream(request(upstream.model), 5):
            events.append(event)
    assert caught.value.code is CODE.UNAVAILABLE
    assert reason_name(caught.value.reason) == "UPSTREAM_UNAVAILABLE"
    assert "ended early" in caught.value.message
    assert all(event.finish_reason == 0 for event in events)


@pytest.mark.parametrize("truncate_after", [2, 100])
async def test_truncated_stream_is_unavailable(upstream: Upstream, truncate_after: int) -> None:
    upstream.fake.script(Behaviour(chunks=["a", "b", "c"], truncate_after=truncate_after))
    events = []
    with pytest.raises(GatewayError) as caught:
        async for event in upstream.adapter.stream(request(upstream.model), 5):
            events.append(event)
    assert (caught.value.code, caught.value.reason) == (
        CODE.UNAVAILABLE,
        _R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
    )
    assert "ended early" in caught.value.message
    assert streamed_text(events) in ("ab", "abc")
    assert all(event.finish_reason == 0 for event in events)


async def test_broken_connection_on_unary_is_connection_failed(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(break_after=0))
    error = await _failure(upstream)
    assert (error.code, error.reason) == (
        CODE.UNAVAILABLE,
        _R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
    )


async def test_error_inside_stream_is_raised_after_the_partial_events(upstream: Upstream) -> None:
    upstream.fake.script(
        Behaviour(chunks=["a", "b", "c"], error_after=2, error_message="model crashed")
    )
    events = []
    with pytest.raises(GatewayError) as caught:
        async for event in upstream.adapter.stream(request(upstream.model), 5):
            events.append(event)
    assert streamed_text(events) == "ab"
    assert caught.value.code is CODE.UNAVAILABLE
    assert "model crashed" in caught.value.message
    assert caught.value.metadata["provider"] == upstream.family


async def test_rate_limit_inside_stream(openai_up: Upstream, anthropic_up: Upstream) -> None:
    openai_up.fake.script(
        Behaviour(error_after=1, error_type="requests", error_code="rate_limit_exceeded")
    )
    anthropic_up.fake.script(Behaviour(error_after=1, error_type="rate_limit_error"))
    for up in (openai_up, anthropic_up):
        error = await _failure(up, stream=True)
        assert (error.code, error.reason) == (
            CODE.RESOURCE_EXHAUSTED,
            _R.ERROR_REASON_UPSTREAM_RATE_LIMITED,
        )


async def test_overloaded_inside_anthropic_stream(anthropic_up: Upstream) -> None:
    anthropic_up.fake.script(Behaviour(error_after=1))
    error = await _failure(anthropic_up, stream=True)
    assert (error.code, error.reason) == (CODE.UNAVAILABLE, _R.ERROR_REASON_UPSTREAM_OVERLOADED)


async def test_context_length_and_content_policy(
    openai_up: Upstream, anthropic_up: Upstream
) -> None:
    openai_up.fake.script(
        Behaviour(
            status=400,
            error_code="context_length_exceeded",
            error_message="This model's maximum context length is 128000 tokens.",
        ),
        Behaviour(status=400, error_code="content_filter", error_message="Filtered."),
    )
    anthropic_up.fake.script(
        Behaviour(status=400, error_message="prompt is too long: 250000 tokens > 200000 maximum")
    )
    assert (await _failure(openai_up)).reason == _R.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED
    assert (await _failure(openai_up)).reason == _R.ERROR_REASON_CONTENT_FILTERED
    assert (await _failure(anthropic_up)).reason == _R.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED


@pytest.mark.parametrize("stream", [False, True])
async def test_deadline_shorter_than_the_answer(upstream: Upstream, stream: bool) -> None:
    upstream.fake.script(Behaviour(delay=2.0))
    started = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        if stream:
            await collect(upstream.adapter.stream(request(upstream.model), 0.2))
        else:
            await upstream.adapter.complete(request(upstream.model), 0.2)
    assert time.monotonic() - started < 1.0
    assert (caught.value.code, caught.value.reason) == (
        CODE.DEADLINE_EXCEEDED,
        _R.ERROR_REASON_UPSTREAM_TIMEOUT,
    )


async def test_unreachable_provider(upstream: Upstream) -> None:
    await upstream.fake.stop()
    error = await _failure(upstream)
    assert (error.code, error.reason) == (
        CODE.UNAVAILABLE,
        _R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
    )
    assert upstream.family in error.message


async def _wait_cancelled(upstream: Upstream, within: float) -> float:
    started = time.monotonic()
    while upstream.fake.cancelled == 0:
        assert time.monotonic() - started < within, "the provider never saw the disconnect"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


async def test_closing_the_stream_closes_upstream_promptly(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(chunks=["x"] * 50, chunk_delay=0.05))
    async with aclosing(upstream.adapter.stream(request(upstream.model), 10)) as events:
        first = await anext(events)
        assert first.text == "x"
    assert await _wait_cancelled(upstream, 0.1) < 0.1


async def test_cancelling_the_consumer_closes_upstream_promptly(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(chunks=["x"] * 50, chunk_delay=0.05))
    received = asyncio.Event()

    async def consume() -> None:
        async for _event in upstream.adapter.stream(request(upstream.model), 10):
            received.set()

    task = asyncio.create_task(consume())
    await received.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_cancelled(upstream, 0.1) < 0.1
