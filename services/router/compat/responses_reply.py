"""The router's answer -> OpenAI's `response` object.

Output items in OpenAI's order: the assistant's text as one `message` item, then one
`function_call` item per tool call. The object repeats the request's settings (tools,
tool_choice, text...) because the SDK's `Response` model requires them; `output_text`
is the SDK's own property and is not sent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from llmgw.router.v1 import chat_pb2
from services.router.compat.responses_request import json_value


def response_id() -> str:
    return "resp_" + secrets.token_hex(16)


def item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def usage(value: chat_pb2.CompletionUsage | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "input_tokens": value.prompt_tokens,
        # The chat usage carries no cache writes; the SDK's model requires the field.
        "input_tokens_details": {
            "cached_tokens": value.prompt_tokens_details.cached_tokens,
            "cache_write_tokens": 0,
        },
        "output_tokens": value.completion_tokens,
        "output_tokens_details": {
            "reasoning_tokens": value.completion_tokens_details.reasoning_tokens
        },
        "total_tokens": value.total_tokens,
    }


def message_item(item: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}]
        if status == "completed"
        else [],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def function_call_item(
    item: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    resp_id: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    *,
    status: str,
    output: Sequence[dict[str, Any]] = (),
    usage_value: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object in one of its states (in_progress, completed,
    incomplete, failed)."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "model": model,
        "output": list(output),
        "usage": usage_value,
        **echo,
    }


def status_of(finish_reason: str) -> tuple[str, str | None]:
    """(status, incomplete reason) for a chat finish reason."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def from_completion(
    reply: chat_pb2.CreateChatCompletionResponse, resp_id: str, echo: dict[str, Any]
) -> dict[str, Any]:
    """The unary answer."""
    output: list[dict[str, Any]] = []
    finish = ""
    if reply.choices:
        choice = reply.choices[0]
        finish = choice.finish_reason
        message = choice.message
        if message.HasField("refusal") and not message.content:
            item = message_item(item_id("msg"), "")
            item["content"] = [{"type": "refusal", "refusal": message.refusal}]
            output.append(item)
        elif message.content or not message.tool_calls:
            output.append(message_item(item_id("msg"), message.content))
        for call in message.tool_calls:
            output.append(
                function_call_item(
                    item_id("fc"), call.id, call.function.name, call.function.arguments or "{}"
                )
            )
    status, reason = status_of(finish)
    return response_object(
        resp_id,
        int(time.time()),
        reply.model,
        echo,
        status=status,
        output=output,
        usage_value=usage(reply.usage if reply.HasField("usage") else None),
        incomplete_reason=reason,
    )


def assistant_message(output: Sequence[dict[str, Any]]) -> chat_pb2.ChatMessage:
    """The answer as the chat message a later turn sends back (for stored responses)."""
    message = chat_pb2.ChatMessage(role="assistant")
    text = "".join(
        part.get("text") or part.get("refusal") or ""
        for item in output
        if item["type"] == "message"
        for part in item["content"]
    )
    for item in output:
        if item["type"] == "function_call":
            message.tool_calls.append(
                chat_pb2.ChatToolCall(
                    id=item["call_id"],
                    type="function",
                    function=chat_pb2.ChatFunctionCall(
                        name=item["name"], arguments=item["arguments"]
                    ),
                )
            )
    if text or not message.tool_calls:
        message.content.CopyFrom(json_value(text))
    return message
