"""The Responses API's `input` -> chat messages, and the typed reads every Responses
field goes through (a wrong type is a violation naming the field's Responses path,
`input[2].content[0].text`).

Items: messages (a role and no type, or `type: message`) with string content or
input_text / output_text / input_image parts; `function_call` items (consecutive ones
become one assistant message with several tool calls, as chat providers expect);
`function_call_output` items (tool messages); `reasoning` items are dropped.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from llmgw.router.v1 import chat_pb2
from services.common.text_checks import shown
from services.common.validation import Violations

MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
MAX_INPUT_ITEMS = 10_000


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "unknown"


class Reader:
    """Typed reads of JSON members, one violation per wrong type."""

    def __init__(self) -> None:
        self.problems = Violations()

    def typed(self, value: object, path: str, kind: str, *, nullable: bool = True) -> Any:
        actual = _kind(value)
        if actual == kind or (nullable and actual == "null"):
            return value
        self.problems.add(path, f"must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}")
        return None

    def integer(self, value: object, path: str) -> int | None:
        number = self.typed(value, path, "number")
        if number is None:
            return None
        if isinstance(number, float) and not number.is_integer():
            self.problems.add(path, "must be an integer")
            return None
        return int(number)


def json_value(data: object) -> struct_pb2.Value:
    """A JSON value as a protobuf Value."""
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value


def _content(reader: Reader, content: object, path: str) -> struct_pb2.Value | None:
    """Message content: a string, or input_text/output_text/input_image parts."""
    if isinstance(content, str):
        return json_value(content)
    if not isinstance(content, list):
        reader.problems.add(path, "must be a string or an array of content parts")
        return None
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{path}[{i}]"
        if not isinstance(part, dict):
            reader.problems.add(where, "must be an object with a `type`")
            continue
        part_type = part.get("type")
        if part_type in ("input_text", "output_text", "text"):
            text = reader.typed(part.get("text"), f"{where}.text", "string", nullable=False)
            if text is not None:
                parts.append({"type": "text", "text": text})
        elif part_type == "refusal":
            text = reader.typed(part.get("refusal"), f"{where}.refusal", "string", nullable=False)
            if text is not None:
                parts.append({"type": "text", "text": text})
        elif part_type == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                reader.problems.add(
                    f"{where}.image_url", "required: an URL or data URL (file_id is not supported)"
                )
                continue
            image = {"url": url}
            detail = part.get("detail")
            if isinstance(detail, str) and detail:
                image["detail"] = detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            reader.problems.add(
                f"{where}.type",
                f"unsupported content part type {shown(str(part_type))} "
                "(use input_text, output_text or input_image)",
            )
    return json_value(parts)


def _tool_output(reader: Reader, output: object, path: str) -> struct_pb2.Value | None:
    """A function_call_output's `output`: a string or input_text parts."""
    if isinstance(output, str):
        return json_value(output)
    if not isinstance(output, list):
        reader.problems.add(path, "must be a string or an array of input_text parts")
        return None
    texts: list[dict[str, Any]] = []
    for i, part in enumerate(output):
        where = f"{path}[{i}]"
        if not isinstance(part, dict) or part.get("type") != "input_text":
            reader.problems.add(f"{where}.type", "only input_text parts are supported here")
            continue
        text = reader.typed(part.get("text"), f"{where}.text", "string", nullable=False)
        if text is not None:
            texts.append({"type": "text", "text": text})
    return json_value(texts)


def string(reader: Reader, item: dict[str, Any], key: str, path: str) -> str:
    value = reader.typed(item.get(key), f"{path}.{key}", "string", nullable=False)
    return value if isinstance(value, str) else ""


def input_messages(reader: Reader, value: object) -> list[chat_pb2.ChatMessage]:
    """`input` -> chat messages; consecutive function_call items make one assistant
    message with several tool calls, as chat providers expect."""
    if isinstance(value, str):
        return [chat_pb2.ChatMessage(role="user", content=json_value(value))]
    if not isinstance(value, list):
        reader.problems.add("input", "required: a string or an array of input items")
        return []
    if len(value) > MAX_INPUT_ITEMS:
        reader.problems.add("input", f"at most {MAX_INPUT_ITEMS} items")
        return []
    messages: list[chat_pb2.ChatMessage] = []
    calls: chat_pb2.ChatMessage | None = None
    for i, item in enumerate(value):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            reader.problems.add(path, "must be an object")
            continue
        item_type = item.get("type", "message" if "role" in item else None)
        if item_type == "function_call":
            if calls is None:
                calls = chat_pb2.ChatMessage(role="assistant")
                messages.append(calls)
            arguments = string(reader, item, "arguments", path)
            calls.tool_calls.append(
                chat_pb2.ChatToolCall(
                    id=string(reader, item, "call_id", path),
                    type="function",
                    function=chat_pb2.ChatFunctionCall(
                        name=string(reader, item, "name", path), arguments=arguments
                    ),
                )
            )
            continue
        calls = None
        if item_type == "message":
            role = item.get("role")
            if role not in MESSAGE_ROLES:
                reader.problems.add(
                    f"{path}.role", "must be one of user, assistant, system, developer"
                )
                continue
            content = _content(reader, item.get("content"), f"{path}.content")
            if content is not None:
                messages.append(chat_pb2.ChatMessage(role=role, content=content))
        elif item_type == "function_call_output":
            output = _tool_output(reader, item.get("output"), f"{path}.output")
            call_id = string(reader, item, "call_id", path)
            if output is not None:
                messages.append(
                    chat_pb2.ChatMessage(role="tool", tool_call_id=call_id, content=output)
                )
        elif item_type == "reasoning":
            continue  # Another model's hidden reasoning: nothing a chat provider takes.
        else:
            reader.problems.add(
                f"{path}.type",
                f"unsupported input item type {shown(str(item_type))} (use message, "
                "function_call or function_call_output)",
            )
    return messages
