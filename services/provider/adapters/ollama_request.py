"""The normalised request as an Ollama `/api/chat` body.

Ollama differences handled here: tool-call arguments are objects; tool results are
`role: tool` messages naming the tool (`tool_name`, looked up from the assistant's call
when the message has no name); images are base64 strings, so only `data:` URLs can be
sent; sampling options live under `options` (`max_tokens` is `num_predict`); a response
format is `format` (`"json"` or a JSON Schema). Ollama has no tool choice: `none` sends
no tools, a specific tool sends only that tool, `required` cannot be enforced and sends
them all. `user`, `logit_bias` and `parallel_tool_calls` have no Ollama equivalent and
are dropped.
"""

from __future__ import annotations

from typing import Any

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.validation import Violations
from services.provider.adapters.conversion import (
    arguments_object,
    parse_data_url,
    struct_to_dict,
    text_of,
)

_SYSTEM_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)
_OPTIONS = (
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
    ("max_tokens", "num_predict"),
)


def build_body(request: provider_pb2.CompleteRequest, *, stream: bool) -> dict[str, Any]:
    """Raises InvalidArgument for tool-call arguments that are not a JSON object and for
    images given by URL."""
    violations = Violations()
    tool_names: dict[str, str] = {}
    messages = [
        _message(message, i, tool_names, violations) for i, message in enumerate(request.messages)
    ]
    violations.raise_if_any()
    body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": stream}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    options: dict[str, Any] = {
        option: getattr(request, field) for field, option in _OPTIONS if request.HasField(field)
    }
    if request.stop:
        options["stop"] = list(request.stop)
    if options:
        body["options"] = options
    response_format = request.response_format.type
    if response_format == chat_pb2.ResponseFormat.TYPE_JSON_OBJECT:
        body["format"] = "json"
    elif response_format == chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA:
        body["format"] = struct_to_dict(request.response_format.schema)
    return body


def _message(
    message: chat_pb2.Message, i: int, tool_names: dict[str, str], violations: Violations
) -> dict[str, Any]:
    role = message.role
    out: dict[str, Any] = {"content": text_of(message)}
    if role == chat_pb2.ROLE_ASSISTANT:
        out["role"] = "assistant"
        if message.tool_calls:
            out["tool_calls"] = [
                _tool_call(call, f"messages[{i}].tool_calls[{j}].arguments", violations)
                for j, call in enumerate(message.tool_calls)
            ]
            tool_names.update((call.id, call.name) for call in message.tool_calls)
    elif role == chat_pb2.ROLE_TOOL:
        out["role"] = "tool"
        name = message.name or tool_names.get(message.tool_call_id)
        if name:
            out["tool_name"] = name
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
    else:
        out["role"] = "system" if role in _SYSTEM_ROLES else "user"
        images = _images(message, i, violations)
        if images:
            out["images"] = images
    return out


def _tool_call(call: chat_pb2.ToolCall, field: str, violations: Violations) -> dict[str, Any]:
    arguments = arguments_object(call.arguments, field, violations)
    out: dict[str, Any] = {"function": {"name": call.name, "arguments": arguments}}
    if call.id:
        out["id"] = call.id
    return out


def _images(message: chat_pb2.Message, i: int, violations: Violations) -> list[str]:
    images = []
    for j, part in enumerate(message.content):
        if not part.HasField("image_url"):
            continue
        inline = parse_data_url(part.image_url.url)
        if inline is None:
            violations.add(
                f"messages[{i}].content[{j}].image_url.url",
                "Ollama takes images inline only: use a base64 data: URL",
            )
            continue
        images.append(inline[1])
    return images


def _tools(request: provider_pb2.CompleteRequest) -> list[dict[str, Any]]:
    choice = request.tool_choice
    tools = list(request.tools)
    if choice.mode == chat_pb2.ToolChoice.MODE_NONE:
        return []
    if choice.mode == chat_pb2.ToolChoice.MODE_TOOL:
        tools = [tool for tool in tools if tool.name == choice.tool_name] or tools
    return [_tool(tool) for tool in tools]


def _tool(tool: chat_pb2.ToolDefinition) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.HasField("parameters"):
        function["parameters"] = struct_to_dict(tool.parameters)
    return {"type": "function", "function": function}
