"""The provider's upstream timing trailers (what the router subtracts to get the
gateway's overhead), through a real grpc.aio server and channel against the fakes."""

from __future__ import annotations

import grpc
import pytest

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.upstream_timing import (
    DURATION_TRAILER,
    FIRST_TOKEN_TRAILER,
    UpstreamTiming,
)
from tests.fakes import Behaviour
from tests.unit.provider.chat import user
from tests.unit.provider.conftest import Fakes

DELAY = 0.05


def _ask() -> provider_pb2.CompleteRequest:
    return provider_pb2.CompleteRequest(
        provider="openai", model="gpt-4o-mini", messages=[user("Hi")]
    )


async def test_a_completion_reports_its_upstream_time(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.openai.script(Behaviour(text="Hi back.", delay=DELAY))
    call = stub.Complete(_ask(), timeout=5)
    await call
    timing = UpstreamTiming()
    timing.read(await call.trailing_metadata())
    assert timing.duration is not None and DELAY <= timing.duration < 5
    assert timing.first_token is None


async def test_a_stream_reports_its_upstream_times_at_the_end(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.openai.script(Behaviour(text="one two three", delay=DELAY, chunk_delay=0.01))
    call = stub.StreamComplete(_ask(), timeout=5)
    events = [event async for event in call]
    assert events
    timing = UpstreamTiming()
    timing.read(await call.trailing_metadata())
    assert timing.first_token is not None and timing.duration is not None
    assert DELAY <= timing.first_token <= timing.duration < 5


async def test_a_failed_call_reports_no_upstream_time(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.openai.script(Behaviour(status=503))
    call = stub.Complete(_ask(), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    keys = {key for key, _ in await call.trailing_metadata() or ()}
    assert DURATION_TRAILER not in keys and FIRST_TOKEN_TRAILER not in keys


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e9", "soon", "1" * 40])
def test_a_malformed_or_unbounded_report_is_ignored(value: str) -> None:
    timing = UpstreamTiming()
    timing.read([(DURATION_TRAILER, value), (FIRST_TOKEN_TRAILER, value)])
    assert timing.duration is None and timing.first_token is None


def test_a_report_is_read_in_seconds() -> None:
    timing = UpstreamTiming()
    timing.read([(DURATION_TRAILER, "0.250000"), (FIRST_TOKEN_TRAILER, "0.125"), ("x", "y")])
    assert (timing.duration, timing.first_token) == (0.25, 0.125)
