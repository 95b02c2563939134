"""Upstreams that misbehave on purpose or by accident: idle streams kept open with
keep-alives, oversized events and bodies, stack traces in error bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
import pytest

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError
from services.common.http_replies import PATH_OMITTED, STACK_TRACE_OMITTED, quote
from services.provider.adapters.framing import FrameTooLarge, ndjson_lines, sse_events
from tests.fakes import Behaviour
from tests.unit.provider.chat import collect, request
from tests.unit.provider.conftest import upstream_for

_R = error_reason_pb2


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("family", ["openai", "anthropic", "ollama"])
async def test_a_stream_of_keepalives_only_is_abandoned(family: str) -> None:
    async with upstream_for(family, stream_idle_timeout=0.5) as up:
        up.fake.set_default(Behaviour(keepalive_only=0.05))
        started = time.monotonic()
        with pytest.raises(GatewayError) as caught:
            await collect(up.adapter.stream(request(up.model), 30))
        elapsed = time.monotonic() - started
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == _R.ERROR_REASON_UPSTREAM_TIMEOUT
    assert "no stream event for 0.5s" in caught.value.message
    assert 0.4 < elapsed < 5


async def test_a_slow_but_live_stream_is_not_idle() -> None:
    async with upstream_for("openai", stream_idle_timeout=0.5) as up:
        up.fake.set_default(Behaviour(text="one two three four", chunk_delay=0.2))
        events = await collect(up.adapter.stream(request(up.model), 30))
    assert "".join(e.text for e in events) == "one two three four"


async def test_an_sse_event_past_the_limit_is_refused() -> None:
    small = [e async for e in sse_events(_chunks(b"data: 12345\n\n"), 16)]
    assert small == [("", b"12345")]
    with pytest.raises(FrameTooLarge):
        [e async for e in sse_events(_chunks(b"data: " + b"x" * 100 + b"\n\n"), 16)]
    # An event that never ends (no newline at all) is refused as it grows, too.
    with pytest.raises(FrameTooLarge):
        [e async for e in sse_events(_chunks(*([b"data: xxxxxxxx"] * 10)), 32)]
    with pytest.raises(FrameTooLarge):
        [e async for e in sse_events(_chunks(b"data: 12345678\n" * 10), 32)]


async def test_an_ndjson_line_past_the_limit_is_refused() -> None:
    assert [line async for line in ndjson_lines(_chunks(b'{"a":1}\n\n'), 16)] == [b'{"a":1}']
    with pytest.raises(FrameTooLarge):
        [line async for line in ndjson_lines(_chunks(b"x" * 100 + b"\n"), 16)]
    with pytest.raises(FrameTooLarge):
        [line async for line in ndjson_lines(_chunks(*([b"x" * 10] * 10)), 32)]


@pytest.mark.parametrize("family", ["openai", "anthropic", "ollama"])
async def test_an_oversized_stream_event_ends_the_stream(family: str) -> None:
    async with upstream_for(family, max_event_bytes=200) as up:
        up.fake.set_default(Behaviour(chunks=["x" * 1000]))
        with pytest.raises(GatewayError) as caught:
            await collect(up.adapter.stream(request(up.model), 10))
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "over 200 bytes (max_event_bytes)" in caught.value.message


@pytest.mark.parametrize("family", ["openai", "anthropic", "ollama"])
async def test_an_oversized_unary_answer_is_refused(family: str) -> None:
    async with upstream_for(family, max_response_bytes=2000) as up:
        up.fake.set_default(Behaviour(text="word " * 1000))
        with pytest.raises(GatewayError) as caught:
            await up.adapter.complete(request(up.model), 10)
        up.fake.set_default(Behaviour(text="short"))
        answer = await up.adapter.complete(request(up.model), 10)
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "over 2000 bytes (max_response_bytes)" in caught.value.message
    assert answer.message.content[0].text == "short"


TRACEBACK = """Internal error
Traceback (most recent call last):
  File "/srv/upstream/app/server.py", line 88, in handle
    return model.generate(prompt)
  File "/usr/lib/python3.12/site-packages/engine/core.py", line 12, in generate
    raise RuntimeError("CUDA out of memory")
RuntimeError: CUDA out of memory"""


@pytest.mark.parametrize("family", ["openai", "anthropic", "ollama"])
async def test_an_upstream_stack_trace_is_not_relayed(family: str) -> None:
    async with upstream_for(family) as up:
        up.fake.set_default(Behaviour(status=500, error_message=TRACEBACK))
        with pytest.raises(GatewayError) as caught:
            await up.adapter.complete(request(up.model), 10)
    error = caught.value
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert "Internal error" in error.message
    assert STACK_TRACE_OMITTED in error.message
    for leaked in ("Traceback", 'File "', "/srv/", "site-packages", "line 88"):
        assert leaked not in error.message


@pytest.mark.parametrize(
    ("said", "kept", "dropped"),
    [
        (
            "java.lang.IllegalStateException: bad\n\tat com.acme.Model.run(Model.java:42)",
            "IllegalStateException: bad",
            "Model.java",
        ),
        ("TypeError: x\n    at handler (/app/src/index.js:10:5)", "TypeError: x", "index.js"),
        ("panic: boom\n\ngoroutine 1 [running]:\nmain.main()", "panic: boom", "goroutine"),
        ("cannot open /var/lib/models/w.bin: denied", f"cannot open {PATH_OMITTED}", "/var/lib"),
        ("no route for /v1/chat/completions", "/v1/chat/completions", "[path]"),
    ],
)
def test_quote_drops_traces_and_paths(said: str, kept: str, dropped: str) -> None:
    quoted = quote(said)
    assert kept in quoted
    assert dropped not in quoted
