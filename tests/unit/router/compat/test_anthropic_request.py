"""Anthropic Messages bodies -> the native chat request: every block kind, and errors
that name Anthropic's field paths."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from services.common.errors import InvalidArgument
from services.common.validation import Violations
from services.router.chat_request import to_complete_request
from services.router.compat.anthropic_request import to_chat_request

PNG = "iVBORw0KGgo="


def native(body: dict[str, Any], **kwargs: bool) -> dict[str, Any]:
    """The translated request as OpenAI JSON, checked by the native validation too."""
    request = to_chat_request(body, **kwargs)
    problems = Violations()
    to_complete_request(request, problems)
    assert not problems.items, problems.items
    return json_format.MessageToDict(request, preserving_proto_field_name=True)


def violations(body: dict[str, Any], **kwargs: bool) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        to_chat_request(body, **kwargs)
    return {v.field: v.description for v in caught.value.violations}


def body(**fields: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    } | fields


def test_minimal_request() -> None:
    assert native(body()) == {
        "model": "m",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_system_string_and_blocks_become_one_system_message() -> None:
    assert native(body(system="Be brief."))["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }
    blocks = [
        {"type": "text", "text": "One."},
        {"type": "text", "text": "Two.", "cache_control": {}},
    ]
    assert native(body(system=blocks))["messages"][0]["content"] == "One.\n\nTwo."


def test_every_block_kind() -> None:
    out = native(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look:"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "weather",
                            "input": {"city": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "no such city"}],
                            "is_error": True,
                        },
                        {"type": "text", "text": "And now?"},
                    ],
                },
            ]
        )
    )
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "[tool error] no such city"},
        {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
    ]


def test_tools_and_tool_choice() -> None:
    tool = {"name": "weather", "description": "d", "input_schema": {"type": "object"}}
    out = native(
        body(
            tools=[tool],
            tool_choice={"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        )
    )
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}},
        }
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert out["parallel_tool_calls"] is False
    for kind, mode in (("auto", "auto"), ("any", "required"), ("none", "none")):
        assert native(body(tools=[tool], tool_choice={"type": kind}))["tool_choice"] == mode


def test_options() -> None:
    out = native(
        body(
            temperature=0.5,
            top_p=0.9,
            stop_sequences=["END"],
            metadata={"user_id": "u-1"},
            stream=True,
            service_tier="auto",
            thinking={"type": "disabled"},
        )
    )
    assert (out["temperature"], out["top_p"], out["stop"], out["user"]) == (
        0.5,
        0.9,
        ["END"],
        "u-1",
    )
    assert out["stream"] is True


def test_count_tokens_needs_no_max_tokens_and_ignores_sampling() -> None:
    out = native(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 9},
        counting=True,
    )
    assert "max_tokens" not in out and "temperature" not in out


def test_errors_name_anthropic_paths() -> None:
    problems = violations(
        {
            "max_tokens": 0,
            "top_k": 5,
            "temperature": 1.5,
            "messages": [
                {"role": "system", "content": "x"},
                {"role": "user", "content": [{"type": "document"}, {"type": "text"}]},
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                },
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "n", "input": []}],
                },
                {"role": "user", "content": [{"type": "tool_result", "content": "x"}]},
            ],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}, {"name": "x"}],
            "tool_choice": {"type": "tool"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "stop_sequences": "END",
        }
    )
    assert set(problems) == {
        "model",
        "max_tokens",
        "top_k",
        "temperature",
        "messages[0].role",
        "messages[1].content[0].type",
        "messages[1].content[1].text",
        "messages[2].content[0].source.type",
        "messages[3].content[0].input",
        "messages[4].content[0].tool_use_id",
        "tools[0].type",
        "tools[1].input_schema",
        "tool_choice.name",
        "thinking.type",
        "stop_sequences",
    }
    assert "web_search" in problems["tools[0].type"]
    assert "top_k" in problems["top_k"]


def test_bad_shapes() -> None:
    assert set(violations({"model": 3, "max_tokens": "8", "messages": []})) == {
        "model",
        "max_tokens",
        "messages",
    }
    problems = violations(
        body(messages=[{"role": "user", "content": 3}], system=7, tools={}, stream="yes")
    )
    assert set(problems) == {"messages[0].content", "system", "tools", "stream"}
    problems = violations(
        body(
            stop_sequences=["a", "b", "c", "d", "e"],
            tools=[{"name": "has space", "input_schema": {}}],
        )
    )
    assert set(problems) == {"stop_sequences", "tools[0].name"}
