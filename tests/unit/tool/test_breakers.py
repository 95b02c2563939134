"""Downstream circuit breakers through the executor: open, half-open, close, metrics."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError
from tests.fakes import DownstreamBehaviour, FakeDownstream
from tests.unit.tool.conftest import Harness, MakeHarness

BREAKER = {
    "consecutive_failures": 2,
    "open_seconds": 10,
    "probe_timeout": 5,
    "min_requests": 100,
}
NO_RETRY = {"max_attempts": 1, "initial_backoff_seconds": 0, "max_backoff_seconds": 0}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gauge(downstream: str) -> float | None:
    return REGISTRY.get_sample_value("llmgw_tool_breaker_state", {"downstream": downstream})


async def _call(harness: Harness) -> GatewayError | None:
    try:
        await harness.executor.execute(harness.entry("weather"), {"city": "Oslo"}, None)
    except GatewayError as error:
        return error
    return None


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def harness(make_harness: MakeHarness, clock: Clock) -> Harness:
    return await make_harness(clock=clock, breaker=BREAKER, retry=NO_RETRY)


async def test_open_breaker_rejects_without_calling_the_downstream(
    harness: Harness, downstream: FakeDownstream, clock: Clock
) -> None:
    key = harness.entry("weather").template.downstream
    downstream.set_default(DownstreamBehaviour(status=503))
    assert [(await _call(harness)) is not None for _ in range(2)] == [True, True]
    assert _gauge(key) == 1
    clock.now += 4
    rejected = await _call(harness)
    assert rejected is not None
    assert rejected.code is grpc.StatusCode.UNAVAILABLE
    assert rejected.reason == error_reason_pb2.ERROR_REASON_CIRCUIT_OPEN
    assert rejected.retry_after == pytest.approx(6)
    assert downstream.hits == 2
    # Every tool on the same host:port shares the breaker.
    with pytest.raises(GatewayError) as other:
        await harness.executor.execute(harness.entry("search_corpus"), {"query": "x"}, None)
    assert other.value.reason == error_reason_pb2.ERROR_REASON_CIRCUIT_OPEN
    assert downstream.hits == 2


async def test_a_successful_probe_closes_the_breaker(
    harness: Harness, downstream: FakeDownstream, clock: Clock
) -> None:
    key = harness.entry("weather").template.downstream
    downstream.set_default(DownstreamBehaviour(status=503))
    for _ in range(2):
        await _call(harness)
    clock.now += 10
    downstream.set_default(None)
    assert await _call(harness) is None
    assert _gauge(key) == 0
    assert await _call(harness) is None
    assert downstream.hits == 4


async def test_a_failed_probe_opens_it_again(
    harness: Harness, downstream: FakeDownstream, clock: Clock
) -> None:
    downstream.set_default(DownstreamBehaviour(status=503))
    for _ in range(2):
        await _call(harness)
    clock.now += 10
    probe = await _call(harness)
    assert probe is not None and probe.reason == error_reason_pb2.ERROR_REASON_TOOL_FAILED
    again = await _call(harness)
    assert again is not None and again.reason == error_reason_pb2.ERROR_REASON_CIRCUIT_OPEN
    assert again.retry_after == pytest.approx(10)
    assert downstream.hits == 3


async def test_only_one_probe_at_a_time(
    harness: Harness, downstream: FakeDownstream, clock: Clock
) -> None:
    downstream.set_default(DownstreamBehaviour(status=503))
    for _ in range(2):
        await _call(harness)
    clock.now += 10
    downstream.set_default(DownstreamBehaviour(delay=0.3))
    probe = asyncio.create_task(_call(harness))
    for _ in range(400):
        if downstream.stats().in_flight:
            break
        await asyncio.sleep(0.005)
    second = await _call(harness)
    assert second is not None and second.reason == error_reason_pb2.ERROR_REASON_CIRCUIT_OPEN
    assert await probe is None
    assert downstream.hits == 3


async def test_client_errors_do_not_count_against_the_downstream(
    harness: Harness, downstream: FakeDownstream
) -> None:
    downstream.set_default(DownstreamBehaviour(status=422))
    for _ in range(4):
        error = await _call(harness)
        assert error is not None and error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert downstream.hits == 4


async def test_timeouts_count_as_failures(
    make_harness: MakeHarness, downstream: FakeDownstream, clock: Clock
) -> None:
    harness = await make_harness(
        clock=clock, breaker=BREAKER, retry=NO_RETRY, default_timeout_seconds=0.05
    )
    downstream.set_default(DownstreamBehaviour(delay=5))
    for _ in range(2):
        timed_out = await _call(harness)
        assert timed_out is not None and timed_out.code is grpc.StatusCode.DEADLINE_EXCEEDED
    rejected = await _call(harness)
    assert rejected is not None and rejected.reason == error_reason_pb2.ERROR_REASON_CIRCUIT_OPEN


async def test_a_disabled_breaker_never_opens(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness(breaker={**BREAKER, "enabled": False}, retry=NO_RETRY)
    downstream.set_default(DownstreamBehaviour(status=503))
    for _ in range(4):
        await _call(harness)
    assert downstream.hits == 4
