"""Builders of normalised chat requests and readers of stream events, for these tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2


def message(role: chat_pb2.Role, text: str = "", **fields: Any) -> chat_pb2.Message:
    content = [chat_pb2.ContentPart(text=text)] if text else []
    return chat_pb2.Message(role=role, content=content, **fields)


def system(text: str) -> chat_pb2.Message:
    return message(chat_pb2.ROLE_SYSTEM, text)


def developer(text: str) -> chat_pb2.Message:
    return message(chat_pb2.ROLE_DEVELOPER, text)


def user(text: str, **fields: Any) -> chat_pb2.Message:
    return message(chat_pb2.ROLE_USER, text, **fields)


def assistant(text: str = "", calls: tuple[chat_pb2.ToolCall, ...] = ()) -> chat_pb2.Message:
    return message(chat_pb2.ROLE_ASSISTANT, text, tool_calls=list(calls))


def tool_result(call_id: str, text: str, name: str = "") -> chat_pb2.Message:
    return message(chat_pb2.ROLE_TOOL, text, tool_call_id=call_id, name=name)


def call(call_id: str, name: str, arguments: str) -> chat_pb2.ToolCall:
    return chat_pb2.ToolCall(id=call_id, name=name, arguments=arguments)


def image(url: str, detail: str = "") -> chat_pb2.ContentPart:
    return chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=url, detail=detail))


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 64}},
    "required": ["city"],
}


def tool(
    name: str, description: str = "", schema: dict[str, Any] | None = None
) -> chat_pb2.ToolDefinition:
    definition = chat_pb2.ToolDefinition(name=name, description=description)
    if schema is not None:
        definition.parameters.CopyFrom(struct(schema))
    return definition


def request(model: str, *messages: chat_pb2.Message, **fields: Any) -> provider_pb2.CompleteRequest:
    return provider_pb2.CompleteRequest(
        provider="test", model=model, messages=list(messages) or [user("Hello there")], **fields
    )


async def collect(
    events: AsyncIterator[provider_pb2.StreamCompleteResponse],
) -> list[provider_pb2.StreamCompleteResponse]:
    return [event async for event in events]


def streamed_text(events: list[provider_pb2.StreamCompleteResponse]) -> str:
    return "".join(event.text for event in events if event.WhichOneof("event") == "text")


def assembled_calls(
    events: list[provider_pb2.StreamCompleteResponse],
) -> list[tuple[str, str, str]]:
    """(id, name, arguments) per call, checking the delta contract on the way: indexes
    are 0-based ordinals, and id and name come in a call's first delta only."""
    calls: list[list[str]] = []
    for event in events:
        if event.WhichOneof("event") != "tool_call":
            continue
        delta = event.tool_call
        if delta.index == len(calls):
            assert delta.id and delta.name, "a call's first delta names it"
            calls.append([delta.id, delta.name, delta.arguments])
        else:
            assert delta.index < len(calls), "indexes are ordinals in order of appearance"
            assert not delta.id and not delta.name, "id and name only in the first delta"
            calls[delta.index][2] += delta.arguments
    return [(c[0], c[1], c[2]) for c in calls]


def check_stream_contract(events: list[provider_pb2.StreamCompleteResponse]) -> None:
    """Every event carries id and model; exactly the last carries the finish reason."""
    assert events, "a stream has at least its final event"
    response_id, model = events[0].id, events[0].model
    assert response_id and model
    for event in events:
        assert (event.id, event.model) == (response_id, model)
    assert all(event.finish_reason == 0 for event in events[:-1])
    assert events[-1].finish_reason != 0
    assert events[-1].HasField("usage")
