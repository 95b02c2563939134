"""The HTTP executor against the downstream fake: results, the output cap, retries with
backoff and Retry-After, the error mapping, secrets, timeouts and URL safety."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError
from services.common.tool_config import HostAllowList
from services.launcher.processes import free_port
from services.tool.body import read_capped, result_value
from services.tool.executor_http import Execution
from tests.fakes import DownstreamBehaviour, FakeDownstream
from tests.unit.tool.conftest import MakeHarness

R = error_reason_pb2


def _result(execution: Execution) -> Any:
    return json_format.MessageToDict(execution.result)


async def _fails(coro: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await coro
    return caught.value


def _reason(error: GatewayError) -> int:
    return error.reason


async def test_builtin_tool_returns_the_downstream_json(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    execution = await harness.executor.execute(
        harness.entry("search_corpus"), {"query": "circuit breakers", "top_k": 2}, None
    )
    assert (execution.attempts, execution.truncated) == (1, False)
    results = _result(execution)["results"]
    assert results[0]["chunk_id"] == "routing-1"
    assert len(results) <= 2
    sent = downstream.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/search")
    assert sent.json == {"query": "circuit breakers", "top_k": 2}
    assert sent.headers["content-type"] == "application/json"


async def test_non_json_body_becomes_a_string(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    downstream.script(DownstreamBehaviour(text="plain words"))
    execution = await harness.executor.execute(harness.entry("weather"), {"city": "Oslo"}, None)
    assert execution.result.string_value == "plain words"


async def test_oversized_body_is_cut_at_the_cap_and_flagged(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    entry = harness.custom(
        name="big",
        description="d",
        parameters={"type": "object"},
        http={"method": "GET", "url_template": downstream.url + "/weather/x"},
        max_output_bytes=101,
    )
    # 2-byte characters: 101 bytes end in the middle of the 51st one, which is dropped.
    downstream.script(DownstreamBehaviour(text="é" * 5000))
    execution = await harness.executor.execute(entry, {}, None)
    assert execution.truncated
    assert execution.result.string_value == "é" * 50
    downstream.script(DownstreamBehaviour(pad_to=5000))
    padded = await harness.executor.execute(entry, {}, None)
    assert padded.truncated and len(padded.result.string_value.encode()) == 101


class _Counting:
    """A body source of `size` bytes arriving 1000 at a time; counts what it handed out."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.given = 0

    async def read(self, n: int = -1) -> bytes:
        assert n > 0, "an unbounded read would take the whole body"
        take = min(n, self.left, 1000)
        self.left -= take
        self.given += take
        return b"x" * take


async def test_body_reader_never_asks_for_more_than_cap_plus_one() -> None:
    source = _Counting(10_000_000)
    data, truncated = await read_capped(source, 4096)
    assert truncated and len(data) == 4096
    assert source.given == 4097
    small = _Counting(10)
    assert await read_capped(small, 4096) == (b"x" * 10, False)


async def test_transient_failures_are_retried_with_backoff(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    downstream.script(DownstreamBehaviour(path="/search", status=503, times=2))
    execution = await harness.executor.execute(
        harness.entry("search_corpus"), {"query": "redis"}, None
    )
    assert execution.attempts == 3
    assert downstream.hits_by_path == {"/search": 3}
    # initial 0.01 then doubled, capped at 0.02, each within 20 % jitter.
    first, second = harness.waits.seconds
    assert 0.008 <= first <= 0.012 and 0.016 <= second <= 0.024


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
async def test_each_transient_status_is_retried(
    make_harness: MakeHarness, downstream: FakeDownstream, status: int
) -> None:
    harness = await make_harness()
    downstream.script(DownstreamBehaviour(status=status))
    execution = await harness.executor.execute(harness.entry("weather"), {"city": "Rome"}, None)
    assert execution.attempts == 2


async def test_retry_after_is_a_floor_of_the_wait(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    downstream.script(DownstreamBehaviour(status=429, headers={"retry-after": "3"}))
    execution = await harness.executor.execute(harness.entry("weather"), {"city": "Rome"}, None)
    assert execution.attempts == 2
    assert harness.waits.seconds == [3.0]


async def test_a_retry_that_would_end_past_the_deadline_is_not_made(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    downstream.set_default(DownstreamBehaviour(status=503, headers={"retry-after": "30"}))
    error = await _fails(
        harness.executor.execute(harness.entry("weather"), {"city": "Rome"}, time.monotonic() + 5)
    )
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.retry_after == 30
    assert downstream.hits == 1


async def test_persistent_5xx_is_unavailable_with_retry_info(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    downstream.set_default(
        DownstreamBehaviour(status=503, message="maintenance", headers={"retry-after": "7"})
    )
    error = await _fails(harness.executor.execute(harness.entry("weather"), {"city": "R"}, None))
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.message == "the downstream service failed (HTTP 503): maintenance"
    assert error.retry_after == 7
    assert error.metadata["downstream_status"] == "503"
    assert downstream.hits == 3


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT, "the downstream service refused the arguments"),
        (422, grpc.StatusCode.INVALID_ARGUMENT, "the downstream service refused the arguments"),
        (401, grpc.StatusCode.FAILED_PRECONDITION, "the tool's credentials were refused"),
        (403, grpc.StatusCode.FAILED_PRECONDITION, "the tool's credentials were refused"),
        (409, grpc.StatusCode.FAILED_PRECONDITION, "the downstream service refused the call"),
        (302, grpc.StatusCode.FAILED_PRECONDITION, "tools do not follow redirects"),
        (501, grpc.StatusCode.UNAVAILABLE, "the downstream service failed (HTTP 501)"),
    ],
)
async def test_other_answers_are_never_retried(
    make_harness: MakeHarness,
    downstream: FakeDownstream,
    status: int,
    code: grpc.StatusCode,
    message: str,
) -> None:
    harness = await make_harness()
    headers = {"location": "http://169.254.169.254/"} if status == 302 else {}
    downstream.set_default(DownstreamBehaviour(status=status, message="no", headers=headers))
    error = await _fails(harness.executor.execute(harness.entry("weather"), {"city": "R"}, None))
    assert error.code is code
    assert message in error.message
    assert downstream.hits == 1


async def test_downstream_validation_reason_is_quoted(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    entry = harness.entry("review_code")
    # The fake itself refuses a body breaking its contract with 422.
    harness_entry_args = {"code": "x = 1"}
    downstream.script(DownstreamBehaviour(status=422, message="'language' is not supported"))
    error = await _fails(harness.executor.execute(entry, harness_entry_args, None))
    assert error.message == (
        "the downstream service refused the arguments: 'language' is not supported"
    )
    assert _reason(error) == R.ERROR_REASON_TOOL_ARGUMENTS_INVALID


async def test_404_is_not_found_only_when_arguments_shaped_the_url(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    missing = await _fails(
        harness.executor.execute(harness.entry("get_chunk"), {"chunk_id": "nope"}, None)
    )
    assert missing.code is grpc.StatusCode.NOT_FOUND
    assert "chunk 'nope' not found" in missing.message
    fixed = harness.custom(
        name="gone",
        description="d",
        parameters={"type": "object"},
        http={"method": "GET", "url_template": downstream.url + "/no/such/endpoint"},
    )
    gone = await _fails(harness.executor.execute(fixed, {}, None))
    assert gone.code is grpc.StatusCode.UNAVAILABLE
    assert downstream.hits == 2


async def test_headers_are_expanded_at_call_time_and_never_reported(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    environ = {"WEATHER_KEY": "first-secret-value"}
    harness = await make_harness(environ=environ)
    entry = harness.custom(
        name="keyed",
        description="d",
        parameters=harness.section["definitions"][0]["parameters"],
        http={
            "method": "GET",
            "url_template": downstream.url + "/weather/{city}",
            "headers": {"Authorization": "Bearer ${WEATHER_KEY}"},
        },
    )
    await harness.executor.execute(entry, {"city": "Oslo"}, None)
    environ["WEATHER_KEY"] = "rotated-secret-value"
    downstream.script(
        DownstreamBehaviour(status=400, message="bad key rotated-secret-value for Oslo")
    )
    error = await _fails(harness.executor.execute(entry, {"city": "Oslo"}, None))
    sent = [r.headers["authorization"] for r in downstream.requests]
    assert sent == ["Bearer first-secret-value", "Bearer rotated-secret-value"]
    assert "rotated-secret-value" not in error.message
    assert error.message.endswith("bad key [redacted] for Oslo")


async def test_an_attempt_past_the_tool_timeout_is_retried_then_deadline_exceeded(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    entry = harness.custom(
        name="slow",
        description="d",
        parameters={"type": "object"},
        http={"method": "GET", "url_template": downstream.url + "/weather/slow"},
        timeout_seconds=0.1,
        retry={"max_attempts": 2, "initial_backoff_seconds": 0, "max_backoff_seconds": 0},
    )
    downstream.set_default(DownstreamBehaviour(delay=5))
    error = await _fails(harness.executor.execute(entry, {}, None))
    assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert _reason(error) == R.ERROR_REASON_TOOL_TIMEOUT
    assert downstream.hits == 2


async def test_the_deadline_cuts_an_attempt_short_and_is_not_retried(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    downstream.set_default(DownstreamBehaviour(delay=5))
    error = await _fails(
        harness.executor.execute(harness.entry("weather"), {"city": "R"}, time.monotonic() + 0.1)
    )
    assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert downstream.hits == 1
    passed = await _fails(
        harness.executor.execute(harness.entry("weather"), {"city": "R"}, time.monotonic() - 1)
    )
    assert passed.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert downstream.hits == 1


async def test_connection_failures_are_retried_then_unavailable(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness()
    port = free_port()
    entry = harness.custom(
        name="closed",
        description="d",
        parameters={"type": "object"},
        http={"method": "GET", "url_template": f"http://127.0.0.1:{port}/x"},
    )
    error = await _fails(harness.executor.execute(entry, {}, None))
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert _reason(error) == R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED
    assert len(harness.waits.seconds) == 2


async def test_a_broken_connection_is_retried(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    # POST: aiohttp itself resends only idempotent methods on a dropped connection.
    downstream.script(DownstreamBehaviour(break_connection=True))
    execution = await harness.executor.execute(
        harness.entry("search_corpus"), {"query": "envoy"}, None
    )
    assert execution.attempts == 2
    assert _result(execution)["results"][0]["chunk_id"] == "envoy-1"
    assert downstream.hits == 2


async def test_arguments_cannot_leave_their_placeholder(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    entry = harness.entry("get_chunk")
    error = await _fails(
        harness.executor.execute(entry, {"chunk_id": "../../admin?x=1#@evil.example:80"}, None)
    )
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert [r.path for r in downstream.requests] == [
        "/chunks/..%2F..%2Fadmin%3Fx%3D1%23%40evil.example%3A80"
    ]
    dots = await _fails(harness.executor.execute(entry, {"chunk_id": ".."}, None))
    assert dots.code is grpc.StatusCode.INVALID_ARGUMENT
    assert downstream.hits == 1


async def test_the_host_is_checked_again_at_call_time(
    make_harness: MakeHarness, downstream: FakeDownstream
) -> None:
    harness = await make_harness()
    entry = harness.entry("weather")
    harness.executor._allow_list = lambda: HostAllowList(["search.internal"])
    error = await _fails(harness.executor.execute(entry, {"city": "R"}, None))
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "not in tools.allowed_hosts" in error.message
    assert downstream.hits == 0


def test_downstream_json_nested_past_the_bound_becomes_a_string() -> None:
    deep = b'{"a":' * 40 + b"1" + b"}" * 40
    assert result_value(deep, truncated=False).string_value == deep.decode()
    shallow = b'{"a":' * 5 + b"1" + b"}" * 5
    assert result_value(shallow, truncated=False).HasField("struct_value")
