"""A request nested too deep to decode is INVALID_ARGUMENT naming the field.

The protobuf decoder refuses messages nested past 100 message levels, about 31 JSON
levels inside a `google.protobuf.Struct`: a caller's JSON (tool parameters, a session
context) that deep never reaches a handler. The server interceptor refuses any request
that does not decode; for one the decoder refused, `undecodable` finds which field holds
the too-deep JSON by walking the wire format, so the refusal can name it, with the depth
the checks of decoded JSON allow (`struct_checks`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor

from services.common.errors import InvalidArgument
from services.common.struct_checks import MAX_JSON_DEPTH

_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"
_LIST = "google.protobuf.ListValue"


@dataclass(frozen=True)
class Undecodable:
    """Stands for a request the decoder refused; `field` holds JSON nested too deep, or
    is None for any other corruption. The server interceptor refuses it."""

    field: str | None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _length_delimited(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, payload) of each length-delimited field; others are skipped."""
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, at = _varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == 2:
            size, at = _varint(data, at)
            yield number, data[at : at + size]
            at += size
        else:
            raise ValueError("unsupported wire type")


def _json_depth(data: bytes, kind: str, limit: int) -> int:
    """Levels of objects and arrays in a serialized Struct, Value or ListValue; counting
    stops once past `limit`."""
    if limit < 0:
        return 0
    if kind == _VALUE:
        for number, payload in _length_delimited(data):
            if number == 5:
                return _json_depth(payload, _STRUCT, limit)
            if number == 6:
                return _json_depth(payload, _LIST, limit)
        return 0
    deepest = 0
    for number, payload in _length_delimited(data):
        if number != 1:
            continue
        if kind == _LIST:
            values = [payload]
        else:
            values = [p for n, p in _length_delimited(payload) if n == 2]
        for value in values:
            deepest = max(deepest, _json_depth(value, _VALUE, limit - 1))
            if deepest >= limit:
                return deepest + 1
    return deepest + 1


def _map_key(entry: bytes) -> str:
    for number, payload in _length_delimited(entry):
        if number == 1:
            return payload.decode("utf-8", "replace")[:32]
    return ""


def find_deep_field(descriptor: Descriptor, data: bytes, path: str = "") -> str | None:
    """The first field (JSON path, `tools[0].function.parameters`) holding JSON nested
    deeper than `MAX_JSON_DEPTH`, or None."""
    seen: dict[int, int] = {}
    for number, raw in _length_delimited(data):
        field = descriptor.fields_by_number.get(number)
        if field is None or field.message_type is None:
            continue
        payload = raw
        index = seen.get(number, 0)
        seen[number] = index + 1
        where = f"{path}.{field.name}" if path else field.name
        kind = field.message_type
        if kind.GetOptions().map_entry:
            value_field = kind.fields_by_name["value"]
            if value_field.message_type is None:
                continue
            where = f"{where}[{_map_key(raw)}]"
            kind = value_field.message_type
            payload = next((p for n, p in _length_delimited(raw) if n == 2), b"")
        elif field.is_repeated:
            where = f"{where}[{index}]"
        if kind.full_name in (_STRUCT, _VALUE, _LIST):
            if _json_depth(payload, kind.full_name, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
                return where
            continue
        found = find_deep_field(kind, payload, where)
        if found is not None:
            return found
    return None


def undecodable(data: bytes, deserializer: Callable[[bytes], Any]) -> Undecodable:
    """What a request the decoder refused stands for: naming the field when it holds
    JSON nested too deep (the message type is the generated deserializer's,
    `Request.FromString`), else no field."""
    descriptor = _descriptor_of(deserializer)
    if descriptor is None:
        return Undecodable(None)
    try:
        return Undecodable(find_deep_field(descriptor, data))
    except (ValueError, IndexError, RecursionError):
        return Undecodable(None)


def too_deep(request: Undecodable) -> InvalidArgument:
    assert request.field is not None
    return InvalidArgument.for_field(
        request.field, f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays"
    )


def _descriptor_of(deserializer: Callable[[bytes], Any]) -> Descriptor | None:
    """The message type behind a generated deserializer (`Request.FromString`)."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return descriptor if isinstance(descriptor, Descriptor) else None
