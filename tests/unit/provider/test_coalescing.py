"""Deltas already queued are coalesced; a delta that comes alone goes out alone, at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.framing import sse_batches
from services.provider.adapters.openai_response import StreamTranslator
from services.provider.adapters.stream_relay import coalesced, relay

Event = provider_pb2.StreamCompleteResponse


def _text(piece: str, rid: str = "r1") -> Event:
    return Event(id=rid, model="m", text=piece)


def test_adjacent_text_is_joined_and_nothing_else_is() -> None:
    call = Event(id="r1", model="m", tool_call=provider_pb2.ToolCallDelta(index=0, arguments="{"))
    last = Event(
        id="r1",
        model="m",
        text="!",
        finish_reason=common_pb2.FINISH_REASON_STOP,
    )
    usage = Event(id="r1", model="m", usage=common_pb2.Usage(input_tokens=1, output_tokens=2))
    events = [
        _text("Hel"),
        _text("lo"),
        call,
        _text(" wor"),
        _text("ld"),
        Event(id="r1", model="m", refusal="no"),
        Event(id="r1", model="m", refusal="pe"),
        _text("x", rid="r2"),
        last,
        usage,
    ]
    out = coalesced(events)
    assert [e.WhichOneof("event") for e in out] == [
        "text",
        "tool_call",
        "text",
        "refusal",
        "text",
        "text",
        None,
    ]
    assert [out[0].text, out[2].text, out[3].refusal, out[4].text] == [
        "Hello",
        " world",
        "nope",
        "x",
    ]
    # The event with the finish reason is not merged into the text before it.
    assert out[5].text == "!" and out[5].finish_reason == common_pb2.FINISH_REASON_STOP
    assert out[6].usage.output_tokens == 2


def test_a_single_event_is_returned_as_it_is() -> None:
    events = [_text("a")]
    assert coalesced(events) is events


class _Response:
    closed = False

    async def aclose(self) -> None:
        self.closed = True


def _sse(piece: str | None, finish: str | None = None) -> bytes:
    delta = {"content": piece} if piece is not None else {}
    chunk = {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def test_pieces_of_one_read_become_one_event_and_a_lone_piece_goes_at_once() -> None:
    reads: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def body() -> AsyncGenerator[bytes, None]:
        while (part := await reads.get()) is not None:
            yield part

    response: Any = _Response()
    relayed = relay(
        response,
        sse_batches(body(), 1 << 16),
        StreamTranslator("openai", "m"),
        "openai",
        5.0,
    )
    # Three pieces in one read: one event.
    reads.put_nowait(_sse("Hel") + _sse("lo") + _sse(","))
    first = await asyncio.wait_for(anext(relayed), 2)
    assert first.text == "Hello,"
    # One piece alone: it goes out without waiting for another read.
    reads.put_nowait(_sse(" world"))
    second = await asyncio.wait_for(anext(relayed), 2)
    assert second.text == " world"
    reads.put_nowait(_sse(None, "stop") + b"data: [DONE]\n\n")
    reads.put_nowait(None)
    rest = [event async for event in relayed]
    assert rest[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    assert "".join(e.text for e in [first, second, *rest]) == "Hello, world"


@pytest.mark.parametrize("split", [1, 7, 50])
async def test_the_text_is_the_same_however_the_body_is_cut(split: int) -> None:
    wire = b"".join(_sse(w) for w in ["a", "b", "c", "d"]) + _sse(None, "stop")
    wire += b"data: [DONE]\n\n"

    async def body() -> AsyncGenerator[bytes, None]:
        for i in range(0, len(wire), split):
            yield wire[i : i + split]

    response: Any = _Response()
    translator = StreamTranslator("openai", "m")
    frames = sse_batches(body(), 1 << 16)
    events = [e async for e in relay(response, frames, translator, "openai", 5.0)]
    assert "".join(e.text for e in events) == "abcd"
    assert events[-1].finish_reason == common_pb2.FINISH_REASON_STOP
