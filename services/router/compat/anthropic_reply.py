"""The native answer (OpenAI-shaped, folded) as an Anthropic `message` object, and the
pieces the stream shares with it: ids, stop reasons, usage and error types."""

from __future__ import annotations

from typing import Any

import grpc
import orjson

from llmgw.router.v1 import chat_pb2

# Native finish reason -> Anthropic stop_reason. The native "stop" covers stop
# sequences too; which one matched is not known, so it reads as `end_turn`. The
# gateway-side tool loop's limit has no Anthropic value: the turn simply ended.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "max_iterations": "end_turn",
}
# gRPC status of a failed stream -> Anthropic's error type (as Envoy maps statuses on
# this path: 401, 403, 404, 413, 429, 503/529, other 4xx, other 5xx).
ERROR_TYPES = {
    grpc.StatusCode.UNAUTHENTICATED: "authentication_error",
    grpc.StatusCode.PERMISSION_DENIED: "permission_error",
    grpc.StatusCode.NOT_FOUND: "not_found_error",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "rate_limit_error",
    grpc.StatusCode.UNAVAILABLE: "overloaded_error",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid_request_error",
    grpc.StatusCode.FAILED_PRECONDITION: "invalid_request_error",
    grpc.StatusCode.OUT_OF_RANGE: "invalid_request_error",
    grpc.StatusCode.ALREADY_EXISTS: "invalid_request_error",
    grpc.StatusCode.ABORTED: "invalid_request_error",
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def message_id(native_id: str) -> str:
    """`msg_...` from the native `chatcmpl-...` id (same suffix, so logs correlate)."""
    return "msg_" + native_id.removeprefix("chatcmpl-")


def stop_reason(finish_reason: str) -> str:
    return STOP_REASONS.get(finish_reason, "end_turn")


def usage(native: chat_pb2.CompletionUsage) -> dict[str, int]:
    """Anthropic counts cached prompt tokens apart from `input_tokens`; the native
    prompt count includes them."""
    cached = native.prompt_tokens_details.cached_tokens
    return {
        "input_tokens": max(native.prompt_tokens - cached, 0),
        "output_tokens": native.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as Anthropic's `input` object. Arguments a model sent
    malformed (or not as an object) are kept as text under `_raw_arguments`, so nothing
    is lost and the client sees why its tool cannot run."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def error_event(code: int, message: str) -> dict[str, Any]:
    """Anthropic's `error` event body for a failed stream's status."""
    status = _CODES.get(code, grpc.StatusCode.UNKNOWN)
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def to_message(reply: chat_pb2.CreateChatCompletionResponse) -> dict[str, Any]:
    """The whole answer as Anthropic's `message`."""
    content: list[dict[str, Any]] = []
    finish = "stop"
    if reply.choices:
        choice = reply.choices[0]
        finish = choice.finish_reason or "stop"
        message = choice.message
        if message.content:
            content.append({"type": "text", "text": message.content})
        if message.HasField("refusal") and message.refusal:
            content.append({"type": "text", "text": message.refusal})
            finish = "content_filter"
        content.extend(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": tool_input(call.function.arguments),
            }
            for call in message.tool_calls
        )
    return {
        "id": message_id(reply.id),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": None,
        "usage": usage(reply.usage),
    }
