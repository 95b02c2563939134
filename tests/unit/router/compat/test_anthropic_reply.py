"""The native answer as Anthropic's `message` object."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format

from llmgw.router.v1 import chat_pb2
from services.router.compat.anthropic_reply import error_event, to_message


def reply(
    message: dict[str, Any], finish: str, usage: dict[str, Any] | None = None
) -> chat_pb2.CreateChatCompletionResponse:
    return json_format.ParseDict(
        {
            "id": "chatcmpl-abc",
            "object": "chat.completion",
            "model": "claude-sonnet",
            "choices": [
                {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
            ],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
        },
        chat_pb2.CreateChatCompletionResponse(),
    )


def test_text_answer() -> None:
    assert to_message(reply({"content": "Hi."}, "stop")) == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet",
        "content": [{"type": "text", "text": "Hi."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 4,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def test_text_and_tool_calls() -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "weather", "arguments": "{not json"},
        },
    ]
    message = to_message(reply({"content": "Checking.", "tool_calls": calls}, "tool_calls"))
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {
            "type": "tool_use",
            "id": "call_2",
            "name": "weather",
            "input": {"_raw_arguments": "{not json"},
        },
    ]
    assert message["stop_reason"] == "tool_use"


def test_stop_reasons_refusal_and_cached_usage() -> None:
    assert to_message(reply({"content": "cut"}, "length"))["stop_reason"] == "max_tokens"
    refused = to_message(reply({"refusal": "I can't."}, "stop"))
    assert (refused["content"], refused["stop_reason"]) == (
        [{"type": "text", "text": "I can't."}],
        "refusal",
    )
    cached = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 60},
    }
    usage = to_message(reply({"content": "x"}, "stop", cached))["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (40, 60)


def test_error_events_use_anthropic_types() -> None:
    assert error_event(grpc.StatusCode.UNAVAILABLE.value[0], "down") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "down"},
    }
    assert (
        error_event(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], "x")["error"]["type"]
        == "rate_limit_error"
    )
    assert error_event(grpc.StatusCode.INTERNAL.value[0], "x")["error"]["type"] == "api_error"
