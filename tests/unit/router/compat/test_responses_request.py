"""Responses request -> chat request: every input item kind, tools, formats, and the
400s naming the Responses field."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from llmgw.router.v1 import chat_pb2
from services.common.errors import InvalidArgument
from services.router.compat.responses_request import to_chat_request, with_history


def _messages(chat: chat_pb2.CreateChatCompletionRequest) -> list[dict[str, Any]]:
    return [json_format.MessageToDict(m, preserving_proto_field_name=True) for m in chat.messages]


def _run(body: dict[str, Any], history: list[chat_pb2.ChatMessage] | None = None) -> Any:
    parsed = to_chat_request(body)
    return parsed, with_history(parsed, history or [])


def _refused(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidArgument) as refused:
        to_chat_request(body)
    return refused.value.message


def test_string_input_and_instructions() -> None:
    parsed, chat = _run({"model": "gpt-4o-mini", "input": "Hi", "instructions": "Be brief."})
    assert chat.model == "gpt-4o-mini"
    assert _messages(chat) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert parsed.echo["instructions"] == "Be brief."
    assert parsed.store is None and parsed.stream is False


def test_every_item_kind() -> None:
    _, chat = _run(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "rules"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "https://x/i.png", "detail": "low"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "calling", "annotations": []}],
                },
                {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "b", "name": "g", "arguments": '{"x":1}'},
                {"type": "function_call_output", "call_id": "a", "output": "A"},
                {
                    "type": "function_call_output",
                    "call_id": "b",
                    "output": [{"type": "input_text", "text": "B"}],
                },
            ],
        }
    )
    assert _messages(chat) == [
        {"role": "developer", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "calling"}]},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"x":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "A"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "B"}]},
    ]


def test_function_tools_choice_and_sampling() -> None:
    parsed, chat = _run(
        {
            "model": "m",
            "input": "x",
            "tools": [
                {
                    "type": "function",
                    "name": "f",
                    "description": "does f",
                    "parameters": {"type": "object", "properties": {}},
                    "strict": True,
                }
            ],
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": False,
            "max_output_tokens": 64,
            "temperature": 0.5,
            "top_p": 0.9,
            "metadata": {"k": "v"},
            "user": "u1",
        }
    )
    tool = chat.tools[0]
    assert (tool.type, tool.function.name, tool.function.description) == ("function", "f", "does f")
    assert tool.function.strict is True
    assert json_format.MessageToDict(chat.tool_choice) == {
        "type": "function",
        "function": {"name": "f"},
    }
    assert chat.parallel_tool_calls is False
    assert chat.max_completion_tokens == 64
    assert (chat.temperature, chat.top_p) == (0.5, 0.9)
    assert dict(chat.metadata) == {"k": "v"} and chat.user == "u1"
    assert parsed.echo["tool_choice"] == {"type": "function", "name": "f"}
    assert parsed.echo["tools"][0]["name"] == "f"


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_tool_choice_modes(mode: str) -> None:
    _, chat = _run({"model": "m", "input": "x", "tool_choice": mode})
    assert chat.tool_choice.string_value == mode


def test_text_formats() -> None:
    schema = {"type": "object"}
    _, chat = _run(
        {
            "model": "m",
            "input": "x",
            "text": {
                "format": {"type": "json_schema", "name": "s", "schema": schema, "strict": True}
            },
        }
    )
    assert chat.response_format.type == "json_schema"
    assert chat.response_format.json_schema.name == "s"
    assert json_format.MessageToDict(chat.response_format.json_schema.schema) == schema
    _, chat = _run({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}})
    assert chat.response_format.type == "json_object"
    _, chat = _run({"model": "m", "input": "x", "text": {"format": {"type": "text"}}})
    assert not chat.HasField("response_format")


def test_neutral_fields_the_sdks_send_are_accepted() -> None:
    parsed, _ = _run(
        {
            "model": "m",
            "input": "x",
            "include": ["reasoning.encrypted_content"],
            "truncation": "disabled",
            "reasoning": None,
            "top_logprobs": 0,
            "prompt_cache_key": "k",
            "service_tier": "auto",
            "store": False,
            "stream": True,
            "conversation": None,
            "background": False,
        }
    )
    assert parsed.store is False and parsed.stream is True


def test_history_goes_between_instructions_and_input() -> None:
    earlier = chat_pb2.ChatMessage(role="user")
    earlier.content.string_value = "earlier"
    parsed, chat = _run(
        {"model": "m", "input": "now", "instructions": "sys", "previous_response_id": "resp_1"},
        [earlier],
    )
    assert [m["content"] for m in _messages(chat)] == ["sys", "earlier", "now"]
    assert parsed.previous_response_id == "resp_1"


@pytest.mark.parametrize(
    "hosted", ["web_search", "web_search_preview", "file_search", "code_interpreter", "mcp"]
)
def test_hosted_tools_are_refused_by_name(hosted: str) -> None:
    message = _refused(
        {
            "model": "m",
            "input": "x",
            "tools": [
                {"type": "function", "name": "a"},
                {"type": "function", "name": "b"},
                {"type": hosted},
            ],
        }
    )
    assert message == (
        f"invalid request: tools[2].type: hosted tool '{hosted}' is not supported by this "
        "gateway; use function tools"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": 3}, "input"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"input": "x", "temperature": "hot"}, "temperature"),
        ({"input": "x", "max_output_tokens": 1.5}, "max_output_tokens"),
        ({"input": "x", "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"input": "x", "metadata": {"k": 1}}, "metadata.k"),
        ({"input": "x", "top_logprobs": 5}, "top_logprobs"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "prompt": {"id": "p"}}, "prompt"),
        ({"input": "x", "frobnicate": 1}, "frobnicate"),
        ({"input": []}, "input"),
        ({"input": "x", "truncation": "sometimes"}, "truncation"),
        ({"input": "x", "reasoning": "high"}, "reasoning"),
        ({"input": "x", "include": "all"}, "include"),
    ],
)
def test_wrong_fields_name_the_responses_path(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        to_chat_request({"model": "m", **body})
    assert field in [v.field for v in refused.value.violations]
