"""Helpers the families' converters share, between the normalised chat model and JSON."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2
from services.common.validation import Violations


def text_of(message: chat_pb2.Message) -> str:
    """The message's text parts, concatenated (parts are pieces of one text)."""
    return "".join(part.text for part in message.content if part.HasField("text"))


def only_text(message: chat_pb2.Message) -> bool:
    return all(part.HasField("text") for part in message.content)


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A JSON Schema or other Struct as plain JSON values. Whole numbers come back as
    ints (Struct stores doubles), so `"maxItems": 3` is not sent as `3.0`."""
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return None


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 payload) of a `data:<type>;base64,<payload>` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    return header.removesuffix(";base64") or "application/octet-stream", payload


def arguments_object(arguments: str, field: str, violations: Violations) -> dict[str, Any]:
    """Tool-call arguments as the object Anthropic and Ollama need. Text that is not a
    JSON object is the caller's error, recorded against `field`; empty text is `{}`."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        violations.add(field, "must be valid JSON")
        return {}
    if not isinstance(value, dict):
        violations.add(field, "must be a JSON object")
        return {}
    return value


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cached: int = 0,
    cache_write: int = 0,
    reasoning: int = 0,
) -> chat_pb2.Usage:
    return chat_pb2.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cached_input_tokens=cached,
        cache_write_input_tokens=cache_write,
        reasoning_tokens=reasoning,
    )
