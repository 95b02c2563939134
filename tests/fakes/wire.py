"""Small encoding helpers shared by the protocol fakes."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import orjson

JSON = "application/json"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(raw: bytes) -> Any:
    return orjson.loads(raw)


def new_id(prefix: str, length: int = 24) -> str:
    """A random id in the provider's style, e.g. `chatcmpl-…`, `msg_…`, `toolu_…`."""
    return prefix + os.urandom(length // 2 + 1).hex()[:length]


def unix_now() -> int:
    return int(time.time())


def rfc3339_now() -> str:
    """UTC time with nanosecond-style precision, as Ollama formats `created_at`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; `data` is JSON-encoded unless already bytes."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def ndjson(data: Any) -> bytes:
    return orjson.dumps(data) + b"\n"


def json_type_name(value: Any) -> str:
    """The JSON Schema name of a decoded value's type, as validation errors word it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
