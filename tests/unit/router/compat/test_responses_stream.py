"""Chunks -> the Responses event stream: text, a function call, two calls, and an
error mid-stream; every event parses as the SDK's event model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from google.rpc import status_pb2
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from llmgw.router.v1 import chat_pb2
from services.common.errors import GatewayError, Unavailable
from services.router.compat.responses_request import to_chat_request
from services.router.compat.responses_stream import ResponseStream, events

EVENT = TypeAdapter(ResponseStreamEvent)
ECHO = to_chat_request({"model": "m", "input": "x"}).echo
Chunk = chat_pb2.StreamChatCompletionResponse


def _text(piece: str) -> Chunk:
    return Chunk(
        model="gpt-4o-mini",
        choices=[
            chat_pb2.ChatCompletionChunkChoice(delta=chat_pb2.ChatCompletionDelta(content=piece))
        ],
    )


def _call(index: int, fragment: str, call_id: str = "", name: str = "") -> Chunk:
    call = chat_pb2.ChatToolCall(
        index=index, function=chat_pb2.ChatFunctionCall(arguments=fragment)
    )
    if call_id:
        call.id, call.type, call.function.name = call_id, "function", name
    return Chunk(
        choices=[
            chat_pb2.ChatCompletionChunkChoice(
                delta=chat_pb2.ChatCompletionDelta(tool_calls=[call])
            )
        ]
    )


def _finish(reason: str) -> Chunk:
    return Chunk(choices=[chat_pb2.ChatCompletionChunkChoice(finish_reason=reason)])


USAGE = Chunk(usage=chat_pb2.CompletionUsage(prompt_tokens=5, completion_tokens=2, total_tokens=7))


async def _chunks(
    items: Sequence[Chunk], error: GatewayError | None = None
) -> AsyncIterator[Chunk]:
    for item in items:
        yield item
    if error is not None:
        raise error


def _parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    parsed = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        name = name_line.removeprefix("event: ")
        body = orjson.loads(data_line.removeprefix("data: "))
        assert body["type"] == name
        if name != "error":
            EVENT.validate_python(body)  # the SDK's own model of the event
        parsed.append((name, body))
    return parsed


async def _run(
    items: Sequence[Chunk], error: GatewayError | None = None
) -> tuple[ResponseStream, list[tuple[str, dict[str, Any]]]]:
    stream = ResponseStream("resp_" + "0" * 32, "m", ECHO)
    data = b""
    gen = events(stream, _chunks(items, error))
    try:
        async for piece in gen:
            data += piece
    except GatewayError:
        pass
    parsed = _parse(data)
    assert [body["sequence_number"] for _, body in parsed] == list(range(len(parsed)))
    return stream, parsed


async def test_text() -> None:
    stream, parsed = await _run([_text("Hel"), _text("lo"), _finish("stop"), USAGE])
    assert [name for name, _ in parsed] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = dict(parsed)["response.output_text.done"]
    assert done["text"] == "Hello"
    completed = parsed[-1][1]["response"]
    assert completed["status"] == "completed"
    assert completed["model"] == "gpt-4o-mini"
    assert completed["usage"]["total_tokens"] == 7
    assert completed["output"][0]["content"][0]["text"] == "Hello"
    assert stream.final == completed


async def test_one_function_call() -> None:
    _, parsed = await _run(
        [_call(0, '{"ci', "c1", "weather"), _call(0, 'ty":"P"}'), _finish("tool_calls"), USAGE]
    )
    assert [name for name, _ in parsed] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = dict(parsed)["response.output_item.added"]["item"]
    assert (added["type"], added["call_id"], added["name"]) == ("function_call", "c1", "weather")
    done = dict(parsed)["response.output_item.done"]["item"]
    assert done["arguments"] == '{"city":"P"}' and done["status"] == "completed"


async def test_two_calls_after_text() -> None:
    _, parsed = await _run(
        [
            _text("Checking."),
            _call(0, "{}", "c1", "f"),
            _call(1, '{"x":1}', "c2", "g"),
            _finish("tool_calls"),
            USAGE,
        ]
    )
    added = [body for name, body in parsed if name == "response.output_item.added"]
    assert [(a["output_index"], a["item"]["type"]) for a in added] == [
        (0, "message"),
        (1, "function_call"),
        (2, "function_call"),
    ]
    output = parsed[-1][1]["response"]["output"]
    assert [item.get("call_id") for item in output] == [None, "c1", "c2"]
    assert [item.get("arguments") for item in output[1:]] == ["{}", '{"x":1}']


async def test_length_ends_incomplete() -> None:
    _, parsed = await _run([_text("cut"), _finish("length"), USAGE])
    assert parsed[-1][0] == "response.incomplete"
    assert parsed[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_error_mid_stream() -> None:
    failure = Chunk(error=status_pb2.Status(code=14, message="provider went away"))
    stream, parsed = await _run([_text("a"), failure], Unavailable("provider went away"))
    names = [name for name, _ in parsed]
    assert names[-2:] == ["response.failed", "error"]
    assert "response.completed" not in names
    failed = parsed[-2][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "provider went away"}
    error = parsed[-1][1]
    # The SDK raises on an event whose data holds an `error` mapping.
    assert error["error"]["message"] == "provider went away"
    assert error["message"] == "provider went away"
    assert stream.final is None


async def test_error_propagates_after_the_events() -> None:
    failure = Chunk(error=status_pb2.Status(code=14, message="gone"))
    stream = ResponseStream("resp_x", "m", ECHO)
    gen = events(stream, _chunks([_text("a"), failure], Unavailable("gone")))
    with pytest.raises(Unavailable):
        async for _ in gen:
            pass


async def test_nothing_before_the_first_chunk() -> None:
    stream = ResponseStream("resp_x", "m", ECHO)
    gen = events(stream, _chunks([], Unavailable("admission failed")))
    with pytest.raises(Unavailable):
        await gen.__anext__()


async def test_a_failed_save_fails_the_response() -> None:
    async def refuse(_final: dict[str, Any]) -> None:
        raise Unavailable("session service unavailable")

    stream = ResponseStream("resp_x", "m", ECHO)
    data = b""
    with pytest.raises(Unavailable):
        async for piece in events(stream, _chunks([_text("a"), USAGE]), refuse):
            data += piece
    names = [name for name, _ in _parse(data)]
    assert names[-2:] == ["response.failed", "error"]
    assert "response.completed" not in names
