"""Cache keys: every answer-relevant field changes the key, per-attempt and
answer-neutral fields do not, map ordering does not; tool requests are not cacheable."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.router.cache.key import cache_key, cacheable

MODEL = "gpt-4o"
Change = Callable[[provider_pb2.CompleteRequest], None]


def _schema(**properties: str) -> struct_pb2.Struct:
    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}})
    return schema


def _request() -> provider_pb2.CompleteRequest:
    """A request with every answer-relevant field set (tools aside: never cached)."""
    request = provider_pb2.CompleteRequest(
        provider="openai",
        model="gpt-4o-2024-08-06",
        messages=[
            common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=[{"text": "Be brief."}]),
            common_pb2.Message(
                role=common_pb2.ROLE_USER,
                content=[
                    {"text": "What is this?"},
                    {"image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                ],
                name="alice",
            ),
            common_pb2.Message(
                role=common_pb2.ROLE_ASSISTANT,
                tool_calls=[{"id": "call_1", "name": "look", "arguments": '{"x": 1}'}],
            ),
            common_pb2.Message(
                role=common_pb2.ROLE_TOOL,
                content=[{"text": "a cat"}],
                tool_call_id="call_1",
                name="look",
            ),
        ],
        tool_choice=common_pb2.ToolChoice(mode=common_pb2.ToolChoice.MODE_NONE),
        parallel_tool_calls=False,
        temperature=0.2,
        top_p=0.9,
        max_tokens=100,
        stop=["END"],
        presence_penalty=0.1,
        frequency_penalty=0.3,
        seed=7,
        user="user-1",
        response_format=common_pb2.ResponseFormat(
            type=common_pb2.ResponseFormat.TYPE_JSON_SCHEMA,
            schema_name="answer",
            schema=_schema(a="string", b="number"),
            strict=True,
        ),
        logit_bias={"50256": -100.0, "15": 2.0},
        include_usage=True,
    )
    return request


def _set(field: str, value: object) -> Change:
    return lambda r: setattr(r, field, value)


ANSWER_CHANGES: dict[str, Change] = {
    "message role": lambda r: setattr(r.messages[0], "role", common_pb2.ROLE_DEVELOPER),
    "message text": lambda r: setattr(r.messages[1].content[0], "text", "What is that?"),
    "image url": lambda r: setattr(r.messages[1].content[1].image_url, "url", "https://e/b"),
    "image detail": lambda r: setattr(r.messages[1].content[1].image_url, "detail", "high"),
    "message name": lambda r: setattr(r.messages[1], "name", "bob"),
    "tool call id": lambda r: setattr(r.messages[2].tool_calls[0], "id", "call_2"),
    "tool call name": lambda r: setattr(r.messages[2].tool_calls[0], "name", "peek"),
    "tool call arguments": lambda r: setattr(r.messages[2].tool_calls[0], "arguments", "{}"),
    "tool_call_id": lambda r: setattr(r.messages[3], "tool_call_id", "call_9"),
    "a message more": lambda r: r.messages.add(role=common_pb2.ROLE_USER).content.add(text="?"),
    "message order": lambda r: r.messages[0].CopyFrom(r.messages[3]),
    "tool_choice mode": lambda r: setattr(r.tool_choice, "mode", common_pb2.ToolChoice.MODE_AUTO),
    "tool_choice tool": lambda r: setattr(r.tool_choice, "tool_name", "look"),
    "parallel_tool_calls": _set("parallel_tool_calls", True),
    "temperature": _set("temperature", 0.3),
    "temperature unset": lambda r: r.ClearField("temperature"),
    "top_p": _set("top_p", 1.0),
    "max_tokens": _set("max_tokens", 101),
    "stop": lambda r: r.stop.append("STOP"),
    "presence_penalty": _set("presence_penalty", 0.0),
    "frequency_penalty": _set("frequency_penalty", 0.0),
    "seed": _set("seed", 8),
    "seed unset": lambda r: r.ClearField("seed"),
    "response_format type": lambda r: setattr(
        r.response_format, "type", common_pb2.ResponseFormat.TYPE_JSON_OBJECT
    ),
    "response_format name": lambda r: setattr(r.response_format, "schema_name", "other"),
    "response_format schema": lambda r: r.response_format.schema.CopyFrom(_schema(a="string")),
    "response_format strict": lambda r: setattr(r.response_format, "strict", False),
    "logit_bias value": lambda r: r.logit_bias.__setitem__("15", 3.0),
    "logit_bias token": lambda r: r.logit_bias.__setitem__("16", 1.0),
}


def _changed(change: Change) -> provider_pb2.CompleteRequest:
    request = _request()
    change(request)
    return request


@pytest.mark.parametrize("name", sorted(ANSWER_CHANGES))
def test_every_answer_relevant_field_changes_the_key(name: str) -> None:
    changed = _changed(ANSWER_CHANGES[name])
    assert changed != _request()  # the change took effect
    assert cache_key(changed, MODEL) != cache_key(_request(), MODEL)


def test_changes_give_pairwise_distinct_keys() -> None:
    keys = {cache_key(_changed(change), MODEL) for change in ANSWER_CHANGES.values()}
    assert len(keys) == len(ANSWER_CHANGES)


def test_the_public_model_changes_the_key() -> None:
    request = _request()
    assert cache_key(request, MODEL) != cache_key(request, "gpt-4o-mini")
    # The model name is length-prefixed: it cannot borrow bytes from the request.
    assert cache_key(provider_pb2.CompleteRequest(), "ab") != cache_key(
        provider_pb2.CompleteRequest(), "a"
    )


@pytest.mark.parametrize(
    "change",
    [
        _set("provider", "azure"),
        _set("model", "gpt-4o-2024-11-20"),
        _set("include_usage", False),
        _set("user", "user-2"),
        lambda r: r.ClearField("user"),
    ],
    ids=["provider", "deployment model", "include_usage", "user", "no user"],
)
def test_per_attempt_and_answer_neutral_fields_do_not(change: Change) -> None:
    assert cache_key(_changed(change), MODEL) == cache_key(_request(), MODEL)


def test_the_key_does_not_modify_the_request() -> None:
    request = _request()
    cache_key(request, MODEL)
    assert request == _request()


def test_map_and_struct_ordering_do_not_change_the_key() -> None:
    forward, backward = _request(), _request()
    forward.ClearField("logit_bias")
    backward.ClearField("logit_bias")
    tokens = [(str(t), float(t % 7)) for t in range(40)]
    for token, bias in tokens:
        forward.logit_bias[token] = bias
    for token, bias in reversed(tokens):
        backward.logit_bias[token] = bias
    names = [f"p{i}" for i in range(20)]
    forward.response_format.schema.CopyFrom(_schema(**dict.fromkeys(names, "string")))
    backward.response_format.schema.CopyFrom(_schema(**dict.fromkeys(reversed(names), "string")))
    assert cache_key(forward, MODEL) == cache_key(backward, MODEL)


def test_the_key_is_hex_sha256() -> None:
    key = cache_key(_request(), MODEL)
    assert len(key) == 64 and int(key, 16) >= 0


def test_requests_with_tools_are_not_cacheable() -> None:
    request = _request()
    assert cacheable(request)
    request.tools.add(name="look", description="Looks.")
    assert not cacheable(request)
