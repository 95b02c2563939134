"""Native chunks -> Anthropic's stream events: order, indexes, blocks and the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from google.protobuf import json_format

from llmgw.router.v1 import chat_pb2
from services.router.compat.anthropic_stream import MessageStream, sse


def chunk(**fields: Any) -> chat_pb2.StreamChatCompletionResponse:
    return json_format.ParseDict(
        {"id": "chatcmpl-1", "model": "gpt-4o-mini", **fields},
        chat_pb2.StreamChatCompletionResponse(),
    )


def delta(finish: str | None = None, **fields: Any) -> chat_pb2.StreamChatCompletionResponse:
    choice: dict[str, Any] = {"index": 0, "delta": fields}
    if finish is not None:
        choice["finish_reason"] = finish
    return chunk(choices=[choice])


def tool(index: int, arguments: str, call_id: str = "", name: str = "") -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call |= {"id": call_id, "type": "function"}
        call["function"]["name"] = name
    return call


USAGE = chunk(usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})


def run(*chunks: chat_pb2.StreamChatCompletionResponse) -> list[tuple[str, dict[str, Any]]]:
    state = MessageStream("gpt-4o-mini")
    events = [event for c in chunks for event in state.events(c)]
    return events + state.end()


def names(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in events]


def test_text_only() -> None:
    events = run(
        delta(role="assistant"), delta(content="Hel"), delta(content="lo"), delta("stop"), USAGE
    )
    assert names(events) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert (start["id"], start["model"], start["content"]) == ("msg_1", "gpt-4o-mini", [])
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "Hel"}
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 9,
            "output_tokens": 3,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def test_text_then_two_tool_calls() -> None:
    events = run(
        delta(content="Checking."),
        delta(tool_calls=[tool(0, "", "call_a", "weather")]),
        delta(tool_calls=[tool(0, '{"city":')]),
        delta(tool_calls=[tool(0, '"Paris"}')]),
        delta(tool_calls=[tool(1, '{"city":"Rome"}', "call_b", "weather")]),
        delta("tool_calls"),
        USAGE,
    )
    body = [(name, data) for name, data in events if name not in ("message_start", "ping")]
    assert [(name, data.get("index")) for name, data in body] == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert body[3][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "weather",
        "input": {},
    }
    assert [
        d["delta"]["partial_json"]
        for n, d in body
        if n == "content_block_delta" and d["index"] == 1
    ] == [
        '{"city":',
        '"Paris"}',
    ]
    assert body[7][1]["content_block"]["id"] == "call_b"
    assert body[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_error_mid_stream_becomes_an_error_event() -> None:
    state = MessageStream("m")
    state.events(delta(content="partial"))
    failed = chunk(error={"code": 14, "message": "provider went away"})
    assert state.events(failed) == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "provider went away"},
            },
        )
    ]


async def test_sse_frames_events_and_lets_the_failure_propagate() -> None:
    async def source() -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        yield delta(content="a")
        yield chunk(error={"code": 13, "message": "boom"})
        raise RuntimeError("the turn failed")

    pieces: list[bytes] = []
    with pytest.raises(RuntimeError):
        async for piece in sse(source(), "m"):
            pieces.append(piece)
    frames = b"".join(pieces).split(b"\n\n")
    assert frames[0].startswith(b"event: message_start\ndata: ")
    last = frames[-2]
    assert last.startswith(b"event: error\ndata: ")
    assert orjson.loads(last.split(b"data: ", 1)[1])["error"]["type"] == "api_error"


async def test_an_empty_stream_still_is_a_whole_message() -> None:
    async def source() -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        return
        yield  # pragma: no cover

    data = b"".join([piece async for piece in sse(source(), "m")])
    assert [line for line in data.split(b"\n") if line.startswith(b"event:")] == [
        b"event: message_start",
        b"event: ping",
        b"event: message_delta",
        b"event: message_stop",
    ]
