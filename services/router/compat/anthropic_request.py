"""Anthropic Messages request JSON -> the native `CreateChatCompletionRequest`.

Field problems are reported with Anthropic's JSON paths (`messages[1].content[0].type`),
all at once, as INVALID_ARGUMENT (HTTP 400, `invalid_request_error` through Envoy).

Decisions where the two shapes differ:
- `model` may name any catalogue model (GPT, Claude, Ollama, local): the router routes it.
- `top_k` has no native field (OpenAI-shaped providers have no equivalent), so a request
  that sets it is refused rather than silently sampled differently.
- `thinking` blocks in the history are dropped (clients send earlier turns back as they
  got them); asking for extended thinking (`thinking.type: enabled`) is refused, as the
  answer could never carry thinking blocks. Server tools (any tool `type` other than
  `custom`) and fields the gateway cannot honour (`mcp_servers`, `container`) are refused.
- Other unknown top-level fields are ignored, as the SDKs add new optional fields
  (`service_tier`, say) before every server understands them; per-block
  `cache_control` hints are ignored too.
- A stop sequence that ended the answer is reported as `end_turn`: the native answer
  says only "stop".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format, struct_pb2

from llmgw.router.v1 import chat_pb2
from services.common.validation import Violations
from services.router.chat_request import MAX_STOP_SEQUENCES, TOOL_NAME

MAX_TOKENS_LIMIT = 2**31 - 1
# Fields Anthropic defines that would change the answer in ways the gateway cannot give.
UNSUPPORTED_FIELDS = {
    "top_k": "top_k is not supported: no provider behind the gateway's native request "
    "takes it; leave it out (use temperature or top_p)",
    "mcp_servers": "MCP servers are not supported; give the tools in `tools`",
    "container": "code execution containers are not supported",
}
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")


def _shown(value: Any) -> str:
    return repr(value)[:80] if isinstance(value, str) else type(value).__name__


def _text_blocks(value: Any, path: str, problems: Violations, *, noun: str) -> list[str]:
    """A string, or a list of text blocks, as its texts."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        problems.add(path, f"{noun} must be a string or an array of text blocks")
        return []
    texts = []
    for i, block in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(block, dict) or block.get("type") != "text":
            problems.add(f"{where}.type", "must be 'text'")
        elif not isinstance(block.get("text"), str):
            problems.add(f"{where}.text", "required: a string")
        else:
            texts.append(block["text"])
    return texts


def _image_part(block: dict[str, Any], path: str, problems: Violations) -> dict[str, Any] | None:
    """An image block as the native `image_url` content part (a data: URL for base64)."""
    source = block.get("source")
    if not isinstance(source, dict):
        problems.add(f"{path}.source", "required: an object")
        return None
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if media_type not in IMAGE_MEDIA_TYPES:
            problems.add(
                f"{path}.source.media_type", f"must be one of {', '.join(IMAGE_MEDIA_TYPES)}"
            )
            return None
        if not isinstance(data, str) or not data:
            problems.add(f"{path}.source.data", "required: base64 text")
            return None
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            problems.add(f"{path}.source.url", "required: an http(s) URL")
            return None
        return {"type": "image_url", "image_url": {"url": url}}
    problems.add(f"{path}.source.type", f"{_shown(kind)} is not supported (use 'base64' or 'url')")
    return None


def _tool_result(
    block: dict[str, Any], path: str, problems: Violations
) -> chat_pb2.ChatMessage | None:
    """A `tool_result` block as a native `tool` message (is_error noted in its text)."""
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        problems.add(f"{path}.tool_use_id", "required: a string")
        return None
    content = block.get("content", "")
    texts = _text_blocks(content, f"{path}.content", problems, noun="tool_result content")
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"[tool error] {text}"
    return chat_pb2.ChatMessage(
        role="tool", tool_call_id=tool_use_id, content=struct_pb2.Value(string_value=text)
    )


def _user(content: list[Any], path: str, problems: Violations) -> list[chat_pb2.ChatMessage]:
    """A user turn: its tool results as `tool` messages, its other blocks as user messages,
    in their order."""
    out: list[chat_pb2.ChatMessage] = []
    parts: list[dict[str, Any]] = []

    def flush() -> None:
        if parts:
            out.append(_message("user", parts))
            parts.clear()

    for i, block in enumerate(content):
        where = f"{path}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            if not isinstance(block.get("text"), str):
                problems.add(f"{where}.text", "required: a string")
            else:
                parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            part = _image_part(block, where, problems)
            if part is not None:
                parts.append(part)
        elif kind == "tool_result":
            flush()
            result = _tool_result(block, where, problems)
            if result is not None:
                out.append(result)
        else:
            problems.add(f"{where}.type", _block_problem(kind, "text, image or tool_result"))
    flush()
    return out


def _assistant(content: list[Any], path: str, problems: Violations) -> list[chat_pb2.ChatMessage]:
    """An assistant turn: its texts and tool calls as one message; thinking dropped."""
    texts: list[str] = []
    calls: list[chat_pb2.ChatToolCall] = []
    for i, block in enumerate(content):
        where = f"{path}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            if not isinstance(block.get("text"), str):
                problems.add(f"{where}.text", "required: a string")
            else:
                texts.append(block["text"])
        elif kind == "tool_use":
            call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if not isinstance(call_id, str) or not call_id:
                problems.add(f"{where}.id", "required: a string")
            elif not isinstance(name, str) or not name:
                problems.add(f"{where}.name", "required: a string")
            elif not isinstance(arguments, dict):
                problems.add(f"{where}.input", "must be an object")
            else:
                calls.append(
                    chat_pb2.ChatToolCall(
                        id=call_id,
                        type="function",
                        function=chat_pb2.ChatFunctionCall(
                            name=name, arguments=orjson.dumps(arguments).decode()
                        ),
                    )
                )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            problems.add(f"{where}.type", _block_problem(kind, "text, tool_use or thinking"))
    if not texts and not calls:
        return []
    message = chat_pb2.ChatMessage(role="assistant", tool_calls=calls)
    if texts:
        message.content.string_value = "".join(texts)
    return [message]


def _block_problem(kind: Any, allowed: str) -> str:
    if kind is None:
        return f"required: one of {allowed}"
    return f"block type {_shown(kind)} is not supported here (use {allowed})"


def _message(role: str, parts: list[dict[str, Any]]) -> chat_pb2.ChatMessage:
    message = chat_pb2.ChatMessage(role=role)
    json_format.ParseDict(parts, message.content)
    return message


def _messages(value: Any, problems: Violations) -> list[chat_pb2.ChatMessage]:
    if not isinstance(value, list) or not value:
        problems.add("messages", "required: a non-empty array")
        return []
    out: list[chat_pb2.ChatMessage] = []
    for i, item in enumerate(value):
        path = f"messages[{i}]"
        if not isinstance(item, dict):
            problems.add(path, "must be an object")
            continue
        role, content = item.get("role"), item.get("content")
        if role not in ("user", "assistant"):
            problems.add(f"{path}.role", "must be 'user' or 'assistant'")
            continue
        if isinstance(content, str):
            out.append(
                chat_pb2.ChatMessage(role=role, content=struct_pb2.Value(string_value=content))
            )
            continue
        if not isinstance(content, list):
            problems.add(f"{path}.content", "required: a string or an array of content blocks")
            continue
        turn = _user if role == "user" else _assistant
        out.extend(turn(content, f"{path}.content", problems))
    return out


def _tools(value: Any, problems: Violations) -> list[chat_pb2.ChatTool]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add("tools", "must be an array")
        return []
    out = []
    for i, tool in enumerate(value):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            problems.add(path, "must be an object")
            continue
        name = tool.get("name")
        kind = tool.get("type", "custom")
        if kind not in ("custom", None):
            problems.add(
                f"{path}.type",
                f"server tool {_shown(name)} ({_shown(kind)}) is not supported: the gateway "
                "offers only client tools (name, description, input_schema)",
            )
            continue
        schema, description = tool.get("input_schema"), tool.get("description", "")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            problems.add(f"{path}.name", f"required: a string matching {TOOL_NAME.pattern}")
        elif not isinstance(schema, dict):
            problems.add(f"{path}.input_schema", "required: a JSON Schema object")
        elif not isinstance(description, str):
            problems.add(f"{path}.description", "must be a string")
        else:
            function = chat_pb2.ChatFunctionDefinition(name=name, description=description)
            json_format.ParseDict(schema, function.parameters)
            out.append(chat_pb2.ChatTool(type="function", function=function))
    return out


def _tool_choice(
    value: Any, request: chat_pb2.CreateChatCompletionRequest, problems: Violations
) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in TOOL_CHOICE_TYPES:
        problems.add("tool_choice.type", f"must be one of {', '.join(TOOL_CHOICE_TYPES)}")
        return
    if kind == "tool":
        name = value.get("name")
        if not isinstance(name, str) or not name:
            problems.add("tool_choice.name", "required for type 'tool'")
            return
        json_format.ParseDict({"type": "function", "function": {"name": name}}, request.tool_choice)
    else:
        request.tool_choice.string_value = {"auto": "auto", "any": "required", "none": "none"}[kind]
    disable = value.get("disable_parallel_tool_use")
    if disable is not None:
        if not isinstance(disable, bool):
            problems.add("tool_choice.disable_parallel_tool_use", "must be a boolean")
        else:
            request.parallel_tool_calls = not disable


def _number(
    body: dict[str, Any], name: str, problems: Violations, low: float, high: float
) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.add(name, f"must be a number in [{low:g}, {high:g}]")
        return None
    return float(value)


def _system(value: Any, problems: Violations) -> list[chat_pb2.ChatMessage]:
    if value is None:
        return []
    texts = _text_blocks(value, "system", problems, noun="system")
    if not texts:
        return []
    return [
        chat_pb2.ChatMessage(
            role="system", content=struct_pb2.Value(string_value="\n\n".join(texts))
        )
    ]


def _refused(body: dict[str, Any], problems: Violations) -> None:
    for name, why in UNSUPPORTED_FIELDS.items():
        if body.get(name) is not None:
            problems.add(name, why)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        problems.add(
            "thinking.type", "extended thinking is not supported: the answer has no thinking blocks"
        )


def _options(
    body: dict[str, Any], request: chat_pb2.CreateChatCompletionRequest, problems: Violations
) -> None:
    """Sampling, stop sequences, the end-user id and streaming."""
    setters: dict[str, Callable[[float], None]] = {
        "temperature": lambda v: setattr(request, "temperature", v),
        "top_p": lambda v: setattr(request, "top_p", v),
    }
    for name, setter in setters.items():
        number = _number(body, name, problems, 0.0, 1.0)
        if number is not None:
            setter(number)
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            problems.add("stop_sequences", "must be an array of non-empty strings")
        elif len(stops) > MAX_STOP_SEQUENCES:
            problems.add(
                "stop_sequences", f"at most {MAX_STOP_SEQUENCES} (what every provider takes)"
            )
        elif stops:
            json_format.ParseDict(stops, request.stop)
    metadata = body.get("metadata")
    if metadata is not None:
        user = metadata.get("user_id") if isinstance(metadata, dict) else None
        if not isinstance(metadata, dict):
            problems.add("metadata", "must be an object")
        elif user is not None and not isinstance(user, str):
            problems.add("metadata.user_id", "must be a string")
        elif user:
            request.user = user
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        problems.add("stream", "must be a boolean")
    else:
        request.stream = stream


def to_chat_request(
    body: dict[str, Any], *, counting: bool = False
) -> chat_pb2.CreateChatCompletionRequest:
    """The native request for an Anthropic Messages body (`counting`: a count_tokens body,
    which has no `max_tokens`); INVALID_ARGUMENT naming every problem otherwise."""
    problems = Violations()
    request = chat_pb2.CreateChatCompletionRequest()
    model = body.get("model")
    if not isinstance(model, str) or not model:
        problems.add("model", "required: a string")
    else:
        request.model = model
    if not counting:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            problems.add("max_tokens", "required: an integer")
        elif not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            problems.add("max_tokens", "must be at least 1")
        else:
            request.max_tokens = max_tokens
    _refused(body, problems)
    request.messages.extend(_system(body.get("system"), problems))
    request.messages.extend(_messages(body.get("messages"), problems))
    request.tools.extend(_tools(body.get("tools"), problems))
    _tool_choice(body.get("tool_choice"), request, problems)
    if not counting:
        _options(body, request, problems)
    problems.raise_if_any()
    return request
