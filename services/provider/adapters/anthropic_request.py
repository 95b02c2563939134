"""The normalised request as an Anthropic Messages API body.

System and developer messages become the top-level `system`. Consecutive messages that
map to the same Anthropic role are merged, so the results of parallel tool calls reach
Anthropic as one user message of `tool_result` blocks (results first, as it requires).
Sampling options Anthropic does not offer (seed, penalties, logit bias) are dropped:
the public API is OpenAI-shaped and clients send them routinely.

Response formats: a JSON schema uses Anthropic's structured outputs
(`output_config.format`). Anthropic has no "any JSON object" mode, so `json_object` adds
a system instruction to answer with one JSON object and nothing else.
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

JSON_OBJECT_INSTRUCTION = (
    "Respond with a single JSON object and nothing else: no prose, no code fences."
)
_SYSTEM_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)
_CHOICE = {
    chat_pb2.ToolChoice.MODE_AUTO: "auto",
    chat_pb2.ToolChoice.MODE_NONE: "none",
    chat_pb2.ToolChoice.MODE_REQUIRED: "any",
    chat_pb2.ToolChoice.MODE_TOOL: "tool",
}
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


def build_body(
    request: provider_pb2.CompleteRequest, *, stream: bool, default_max_tokens: int
) -> dict[str, Any]:
    """Raises InvalidArgument when an assistant tool call's arguments are not a JSON
    object (Anthropic takes them as an object) or an image URL is unusable."""
    violations = Violations()
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        if message.role in _SYSTEM_ROLES:
            text = text_of(message)
            if text:
                system.append(text)
            continue
        if message.role == chat_pb2.ROLE_ASSISTANT:
            role, blocks = "assistant", _assistant_blocks(message, i, violations)
        elif message.role == chat_pb2.ROLE_TOOL:
            role, blocks = "user", [_tool_result(message, i, violations)]
        else:
            role, blocks = "user", _content_blocks(message, i, violations)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    violations.raise_if_any()
    for message in messages:
        _settle(message)

    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens if request.HasField("max_tokens") else default_max_tokens,
        "messages": messages,
    }
    response_format = request.response_format.type
    if response_format == chat_pb2.ResponseFormat.TYPE_JSON_OBJECT:
        system.append(JSON_OBJECT_INSTRUCTION)
    elif response_format == chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA:
        body["output_config"] = {
            "format": {
                "type": "json_schema",
                "schema": struct_to_dict(request.response_format.schema),
            }
        }
    if system:
        body["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": s} for s in system]
        )
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request)
        if choice is not None:
            body["tool_choice"] = choice
    if request.HasField("temperature"):
        body["temperature"] = request.temperature
    if request.HasField("top_p"):
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    return body


def _settle(message: dict[str, Any]) -> None:
    """Empty text blocks dropped (Anthropic rejects them), tool results first in a user
    turn, and a lone text block sent as a plain string."""
    content = [block for block in message["content"] if block["type"] != "text" or block["text"]]
    if not content:
        message["content"] = ""
    elif len(content) == 1 and content[0]["type"] == "text":
        message["content"] = content[0]["text"]
    else:
        if message["role"] == "user":
            content.sort(key=lambda block: block["type"] != "tool_result")
        message["content"] = content


def _content_blocks(
    message: chat_pb2.Message, i: int, violations: Violations
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(message.content):
        if part.HasField("text"):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif part.HasField("image_url"):
            field = f"messages[{i}].content[{j}].image_url.url"
            blocks.append(_image(part.image_url.url, field, violations))
    return blocks


def _image(url: str, field: str, violations: Violations) -> dict[str, Any]:
    inline = parse_data_url(url)
    if inline is not None:
        media_type, data = inline
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if not url.startswith(("https://", "http://")):
        violations.add(field, "must be an http(s) URL or a base64 data: URL")
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(
    message: chat_pb2.Message, i: int, violations: Violations
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(message)
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.tool_calls):
        field = f"messages[{i}].tool_calls[{j}].arguments"
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": arguments_object(call.arguments, field, violations),
            }
        )
    return blocks


def _tool_result(message: chat_pb2.Message, i: int, violations: Violations) -> dict[str, Any]:
    blocks = _content_blocks(message, i, violations)
    content: str | list[dict[str, Any]] = blocks
    if all(block["type"] == "text" for block in blocks):
        content = text_of(message)
    return {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": content}


def _tool(tool: chat_pb2.ToolDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = (
        struct_to_dict(tool.parameters) if tool.HasField("parameters") else dict(_EMPTY_SCHEMA)
    )
    return out


def _tool_choice(request: provider_pb2.CompleteRequest) -> dict[str, Any] | None:
    kind = _CHOICE.get(request.tool_choice.mode)
    serial = request.HasField("parallel_tool_calls") and not request.parallel_tool_calls
    if kind is None:
        if not serial:
            return None
        kind = "auto"
    choice: dict[str, Any] = {"type": kind}
    if kind == "tool":
        choice["name"] = request.tool_choice.tool_name
    if serial and kind != "none":
        choice["disable_parallel_tool_use"] = True
    return choice
