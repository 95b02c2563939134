"""The normalised request as an OpenAI Chat Completions body.

Used for OpenAI, Azure OpenAI and every OpenAI-compatible server (DeepSeek, xAI, vLLM,
llama.cpp). The developer role is sent as `system`: every compatible server accepts it,
and OpenAI treats system messages as developer messages for its reasoning models.
"""

from __future__ import annotations

from typing import Any

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.conversion import only_text, struct_to_dict, text_of

_ROLE = {
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_DEVELOPER: "system",
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
}
_CHOICE = {
    chat_pb2.ToolChoice.MODE_AUTO: "auto",
    chat_pb2.ToolChoice.MODE_NONE: "none",
    chat_pb2.ToolChoice.MODE_REQUIRED: "required",
}
_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed")


def build_body(
    request: provider_pb2.CompleteRequest, *, stream: bool, max_tokens_field: str
) -> dict[str, Any]:
    """`max_tokens_field`: `max_completion_tokens` for OpenAI and Azure (their reasoning
    models reject `max_tokens`), `max_tokens` for compatible servers."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(message) for message in request.messages],
    }
    if request.tools:
        # OpenAI rejects tool_choice and parallel_tool_calls without tools.
        body["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
        if request.HasField("parallel_tool_calls"):
            body["parallel_tool_calls"] = request.parallel_tool_calls
    for name in _SAMPLING:
        if request.HasField(name):
            body[name] = getattr(request, name)
    if request.HasField("max_tokens"):
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.user:
        body["user"] = request.user
    if request.logit_bias:
        # Biases are integers on the wire; the proto carries doubles.
        body["logit_bias"] = {
            token: int(bias) if bias.is_integer() else bias
            for token, bias in request.logit_bias.items()
        }
    response_format = _response_format(request.response_format)
    if response_format is not None:
        body["response_format"] = response_format
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _message(message: chat_pb2.Message) -> dict[str, Any]:
    if message.role == chat_pb2.ROLE_TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": text_of(message)}
    out: dict[str, Any] = {"role": _ROLE[message.role]}
    if message.tool_calls:
        out["content"] = text_of(message) or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    elif only_text(message):
        out["content"] = text_of(message)
    else:
        out["content"] = [_part(part) for part in message.content]
    if message.name:
        out["name"] = message.name
    return out


def _part(part: chat_pb2.ContentPart) -> dict[str, Any]:
    if part.HasField("text"):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.image_url.url}
    if part.image_url.detail:
        image["detail"] = part.image_url.detail
    return {"type": "image_url", "image_url": image}


def _tool(tool: chat_pb2.ToolDefinition) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.HasField("parameters"):
        function["parameters"] = struct_to_dict(tool.parameters)
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(choice: chat_pb2.ToolChoice) -> str | dict[str, Any] | None:
    if choice.mode == chat_pb2.ToolChoice.MODE_TOOL:
        return {"type": "function", "function": {"name": choice.tool_name}}
    return _CHOICE.get(choice.mode)


def _response_format(response_format: chat_pb2.ResponseFormat) -> dict[str, Any] | None:
    kind = response_format.type
    if kind == chat_pb2.ResponseFormat.TYPE_JSON_OBJECT:
        return {"type": "json_object"}
    if kind == chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": response_format.schema_name or "response",
                "schema": struct_to_dict(response_format.schema),
                "strict": response_format.strict,
            },
        }
    return None
