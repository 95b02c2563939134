"""Cached answers: unary and streamed results through the event form and back, the
stored form's round trip, and garbage or other versions read as nothing."""

from __future__ import annotations

import struct

import pytest

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.router.cache import entry
from services.router.cache.entry import CachedAnswer
from services.router.stream_assembly import StreamAssembly

MODEL, PROVIDER = "gpt-4o", "openai"
USAGE = common_pb2.Usage(input_tokens=12, output_tokens=5, total_tokens=17)
Event = provider_pb2.StreamCompleteResponse


def _unary(**fields: object) -> provider_pb2.CompleteResponse:
    """A provider answer as the router sees it after the public model is filled in."""
    defaults: dict[str, object] = {
        "model": MODEL,
        "provider": PROVIDER,
        "finish_reason": common_pb2.FINISH_REASON_STOP,
        "usage": USAGE,
        "system_fingerprint": "fp_1",
    }
    response = provider_pb2.CompleteResponse(**{**defaults, **fields})  # type: ignore[arg-type]
    response.message.role = common_pb2.ROLE_ASSISTANT
    return response


def _text(response: provider_pb2.CompleteResponse, text: str) -> provider_pb2.CompleteResponse:
    response.message.content.add(text=text)
    return response


UNARY_ANSWERS = {
    "text": _text(_unary(), "Paris is  the capital\nof France.  "),
    "tool calls": _unary(
        message=common_pb2.Message(
            role=common_pb2.ROLE_ASSISTANT,
            tool_calls=[
                {"id": "call_a", "name": "weather", "arguments": '{"city": "Paris"}'},
                {"id": "call_b", "name": "weather", "arguments": '{"city": "Rome"}'},
            ],
        ),
        finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS,
    ),
    "text and tool call": _text(
        _unary(
            message=common_pb2.Message(
                role=common_pb2.ROLE_ASSISTANT,
                tool_calls=[{"id": "c", "name": "look", "arguments": "{}"}],
            )
        ),
        "Let me look.",
    ),
    "refusal": _unary(refusal="I can't help with that.", usage=None),
    "length, no usage": _text(
        _unary(finish_reason=common_pb2.FINISH_REASON_LENGTH, usage=None), "cut"
    ),
    "empty": _unary(finish_reason=common_pb2.FINISH_REASON_UNSPECIFIED, system_fingerprint=""),
}


@pytest.mark.parametrize("name", list(UNARY_ANSWERS))
def test_unary_to_events_to_unary_is_the_same_answer(name: str) -> None:
    response = UNARY_ANSWERS[name]
    answer = entry.from_response(response, MODEL, PROVIDER, created=1.0)
    assert (answer.model, answer.provider, answer.created) == (MODEL, PROVIDER, 1.0)
    assert entry.to_response(answer) == response


def test_unary_text_is_replayed_as_word_sized_pieces() -> None:
    answer = entry.from_response(UNARY_ANSWERS["text"], MODEL, PROVIDER)
    texts = [e.text for e in answer.events if e.WhichOneof("event") == "text"]
    assert texts == ["Paris ", "is  ", "the ", "capital\n", "of ", "France.  "]


def test_unary_events_end_with_finish_then_usage() -> None:
    answer = entry.from_response(UNARY_ANSWERS["tool calls"], MODEL, PROVIDER)
    calls = [e.tool_call for e in answer.events[:2]]
    assert [(c.index, c.id, c.name) for c in calls] == [
        (0, "call_a", "weather"),
        (1, "call_b", "weather"),
    ]
    finish, usage = answer.events[2:]
    assert finish.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    assert finish.WhichOneof("event") is None and not finish.HasField("usage")
    assert usage.usage == USAGE and usage.WhichOneof("event") is None
    assert len(answer.events) == 4


def test_unary_without_created_is_stamped_now() -> None:
    answer = entry.from_response(UNARY_ANSWERS["text"], MODEL, PROVIDER)
    assert answer.created > 1_600_000_000


def _stream() -> list[Event]:
    piece = provider_pb2.ToolCallDelta
    return [
        Event(id="resp_1", model="gpt-4o-2024-08-06", text="Checking "),
        Event(id="resp_1", model="gpt-4o-2024-08-06"),  # a keep-alive carrying nothing
        Event(id="resp_1", text="both."),
        Event(id="resp_1", tool_call=piece(index=0, id="call_a", name="weather", arguments='{"ci')),
        Event(id="resp_1", tool_call=piece(index=1, id="call_b", name="weather", arguments="{}")),
        Event(id="resp_1", tool_call=piece(index=0, arguments='ty": "Paris"}')),
        Event(id="resp_1", finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS),
        Event(id="resp_1", usage=USAGE),
    ]


def test_stream_events_to_unary_is_the_assembled_message() -> None:
    events = _stream()
    answer = entry.from_events(events, MODEL, PROVIDER, created=2.0)
    assembly = StreamAssembly()
    for event in events:
        assembly.add(event)
    response = entry.to_response(answer)
    assert response.message == assembly.message()
    assert [c.arguments for c in response.message.tool_calls] == ['{"city": "Paris"}', "{}"]
    assert response.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    assert response.usage == USAGE
    assert (response.model, response.provider, response.id) == (MODEL, PROVIDER, "")


def test_stream_events_are_kept_in_order_without_ids_and_empty_events() -> None:
    events = _stream()
    answer = entry.from_events(events, MODEL, PROVIDER)
    expected = [e for i, e in enumerate(_stream()) if i != 1]
    assert len(answer.events) == len(expected)
    for kept, original in zip(answer.events, expected, strict=True):
        assert (kept.id, kept.model) == ("", "")
        original.ClearField("id")
        original.ClearField("model")
        assert kept == original
    assert events[0].id == "resp_1"  # the caller's events are not modified


def test_stream_refusal_is_kept() -> None:
    events = [Event(refusal="I can't "), Event(refusal="help."), Event(finish_reason=1)]
    response = entry.to_response(entry.from_events(events, MODEL, PROVIDER))
    assert response.refusal == "I can't help."
    assert not response.message.content and not response.HasField("usage")


@pytest.mark.parametrize("name", list(UNARY_ANSWERS))
def test_encode_decode_round_trip(name: str) -> None:
    answer = entry.from_response(UNARY_ANSWERS[name], "model/é", "prov", created=1234.5)
    assert entry.decode(entry.encode(answer)) == answer


def test_encode_decode_round_trip_of_a_stream() -> None:
    answer = entry.from_events(_stream(), MODEL, PROVIDER, created=3.0)
    decoded = entry.decode(entry.encode(answer))
    assert decoded == answer and decoded.system_fingerprint == ""


def _valid() -> bytes:
    return entry.encode(entry.from_response(UNARY_ANSWERS["text"], MODEL, PROVIDER))


def _with_header(header: bytes) -> bytes:
    return entry.MAGIC + bytes([entry.FORMAT_VERSION]) + struct.pack(">I", len(header)) + header


GARBAGE = {
    "empty": b"",
    "json": b'{"model": "gpt-4o"}',
    "magic only": entry.MAGIC,
    "no header": entry.MAGIC + bytes([entry.FORMAT_VERSION]),
    "other version": entry.MAGIC + bytes([entry.FORMAT_VERSION + 1]) + _valid()[5:],
    "truncated": _valid()[:-3],
    "trailing byte": _valid() + b"\x00",
    "header not json": _with_header(b"\xff\xfe"),
    "header a list": _with_header(b"[]"),
    "header missing model": _with_header(b'{"provider": "p", "created": 1}'),
    "header wrong types": _with_header(b'{"model": 1, "provider": "p", "created": "x"}'),
    "event not protobuf": _with_header(b'{"model": "m", "provider": "p", "created": 1}')
    + struct.pack(">I", 3)
    + b"\xff\xff\xff",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_and_other_versions_decode_to_none(name: str) -> None:
    assert entry.decode(GARBAGE[name]) is None


def test_the_valid_value_the_garbage_is_made_from_decodes() -> None:
    assert isinstance(entry.decode(_valid()), CachedAnswer)
