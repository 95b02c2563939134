"""A downstream response body: read up to a cap, then turned into the tool's result."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from google.protobuf import json_format, struct_pb2

from services.common.struct_checks import check_json
from services.common.validation import Violations


class ByteSource(Protocol):
    """What aiohttp's response `content` offers: `read(n)` returns at most n bytes,
    b"" at the end."""

    async def read(self, n: int = -1) -> bytes: ...


async def read_capped(source: ByteSource, cap: int) -> tuple[bytes, bool]:
    """The first `cap` bytes and whether the body went on. Never asks for more than
    `cap + 1` bytes in all: a huge body is not read, the caller closes the connection."""
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await source.read(cap + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return data[:cap], size > cap


def utf8_prefix(data: bytes) -> str:
    """`data` as text, a character cut in half at the end dropped. Bytes that are not
    UTF-8 elsewhere become U+FFFD."""
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        # An incomplete sequence at the very end: the cap cut a character.
        if error.reason == "unexpected end of data":
            head = data[: error.start]
            try:
                return head.decode()
            except UnicodeDecodeError:
                return head.decode(errors="replace")
        return data.decode(errors="replace")


def decode_json(data: bytes) -> Any:
    """The body as JSON; ValueError when it is not (NaN, >64-bit integers, nesting
    deeper than 1024 levels are refused too, as they have no google.protobuf.Value)."""
    return orjson.loads(data)


def result_value(data: bytes, truncated: bool) -> struct_pb2.Value:
    """The downstream's JSON as a Value; any other body, a cut one, or JSON nested past
    the shared bound (which the caller's protobuf decoder would refuse), as a string."""
    value = struct_pb2.Value()
    if truncated:
        value.string_value = utf8_prefix(data)
        return value
    if not data.strip():
        value.null_value = struct_pb2.NULL_VALUE
        return value
    try:
        json_format.ParseDict(decode_json(data), value)
    except (ValueError, json_format.ParseError):
        value.Clear()
    if value.WhichOneof("kind") is None or not check_json(Violations(), "result", value):
        value.Clear()
        value.string_value = utf8_prefix(data)
    return value
