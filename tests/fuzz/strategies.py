"""Hypothesis strategies for what callers can send: any message of a method's request type
(every field optional, scalars across their whole range, enum numbers that name nothing,
NaN and infinities, deep JSON, long and hostile strings), raw bytes, and REST requests
(paths, query strings, JSON bodies of the right shape, of the wrong shape, and not JSON).
"""

from __future__ import annotations

import json
import math
import urllib.parse
from typing import Any, Literal

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.fuzz.surfaces import VARIABLE, RestRule

# Nesting of ordinary messages generated (JSON values nest much deeper, on purpose).
MAX_DEPTH = 3

# Strings that mean something to the gateway: names, patterns, roles, paths, escapes.
MEANINGFUL = [
    "",
    "*",
    "..",
    "../../etc/passwd",
    "%FF",
    "\x00",
    "\ufeff",
    "\u202e",
    "NaN",
    "null",
    "{}",
    "sessions/",
    "sessions/abc",
    "sessions/../x",
    "tools/weather",
    "tools/search_corpus",
    "consumers/",
    "consumers/alice",
    "consumers/alice/keys/k1",
    "groups/team",
    "investigations/i1",
    "gpt-4o-mini",
    "fast",
    "gpt-unknown",
    "claude-sonnet",
    "llama",
    "ollama/llama3.2",
    "nomatch-model",
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "function",
    "ROLE_USER",
    "UNIT_TOKENS",
    "WINDOW_MINUTE",
    "2024-01-01",
    "0001-01-01",
    "9999-12-31",
    "300000000000s",
    "-1s",
    "10.0.0.0/8",
    "::1",
    "*.example.com",
    "http://169.254.169.254/latest",
    "${SECRET}",
    "Bearer x",
]


def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(MEANINGFUL),
        st.text(max_size=24),
        st.text(min_size=200, max_size=2_000),
        st.integers(5_000, 120_000).map(lambda n: "x" * n),
    )


def floats(width: Literal[32, 64] = 64) -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(width=width),  # NaN and the infinities included
        st.sampled_from([0.0, -0.0, 1.0, 2.0, 1e308, -1e-308, math.nan, math.inf, -math.inf]),
    )


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, -1 if low < 0 else 1]))


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_INT32: _integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: _integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: _integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: _integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: _integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: _integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: _integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: _integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: _integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: _integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FLOAT: floats(32),
    FieldDescriptor.TYPE_DOUBLE: floats(),
}


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """JSON-like values, NaN and infinities included (JSON cannot carry them; Struct can)."""
    leaves = st.one_of(st.none(), st.booleans(), floats(), st.text(max_size=16))
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def deep(levels: int) -> Any:
    """A JSON value nested `levels` deep (objects and lists alternating)."""
    value: Any = 1
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


def deep_json() -> st.SearchStrategy[Any]:
    return st.integers(1, 80).map(deep)


def _value(message: Message, value: Any) -> None:
    """Sets a google.protobuf.Value `message` from a JSON-like `value`."""
    if value is None:
        message.null_value = 0
    elif isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, int | float):
        message.number_value = float(value)
    elif isinstance(value, str):
        message.string_value = value
    elif isinstance(value, list):
        listed = message.list_value
        for item in value:
            _value(listed.values.add(), item)
    else:
        fields = message.struct_value.fields
        for key, item in value.items():
            _value(fields[key], item)


@st.composite
def _well_known(draw: st.DrawFn, descriptor: Descriptor) -> Message:
    cls = message_factory.GetMessageClass(descriptor)
    message = cls()
    name = descriptor.full_name
    if name == "google.protobuf.Value":
        _value(message, draw(st.one_of(json_values(), deep_json())))
    elif name == "google.protobuf.Struct":
        for key, item in draw(
            st.dictionaries(st.text(max_size=12), st.one_of(json_values(), deep_json()), max_size=4)
        ).items():
            _value(message.fields[key], item)
    elif name == "google.protobuf.ListValue":
        for item in draw(st.lists(json_values(), max_size=4)):
            _value(message.values.add(), item)
    elif name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
        message.seconds = draw(_integers(-(2**62), 2**62))
        message.nanos = draw(_integers(-(2**31), 2**31 - 1))
    elif name == "google.protobuf.FieldMask":
        message.paths.extend(draw(st.lists(texts(), max_size=4)))
    return message


WELL_KNOWN = {
    "google.protobuf.Value",
    "google.protobuf.Struct",
    "google.protobuf.ListValue",
    "google.protobuf.Duration",
    "google.protobuf.Timestamp",
    "google.protobuf.FieldMask",
}


def _field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    if field.type == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in list(field.enum_type.values)]
        return st.one_of(st.sampled_from(numbers), _integers(-(2**31), 2**31 - 1))
    if field.type == FieldDescriptor.TYPE_STRING:
        return texts()
    return _SCALARS[field.type]


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> Message:
    """Any message of `descriptor`'s type: each field absent or set to anything."""
    if descriptor.full_name in WELL_KNOWN:
        return draw(_well_known(descriptor))
    message = message_factory.GetMessageClass(descriptor)()
    if depth > MAX_DEPTH or not descriptor.fields:
        return message
    chosen = draw(st.lists(st.sampled_from(list(descriptor.fields)), unique=True, max_size=8))
    for field in chosen:
        name = field.name
        if _is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            entries = draw(
                st.dictionaries(
                    _field_values(key_field, depth), _field_values(value_field, depth), max_size=4
                )
            )
            target = getattr(message, name)
            for key, value in entries.items():
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    target[key].CopyFrom(value)
                else:
                    target[key] = value
        elif field.is_repeated:
            values = draw(st.lists(_field_values(field, depth), max_size=4))
            target = getattr(message, name)
            for value in values:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    target.add().CopyFrom(value)
                else:
                    target.append(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, name).CopyFrom(draw(_field_values(field, depth)))
        else:
            setattr(message, name, draw(_field_values(field, depth)))
    return message


def raw_bytes() -> st.SearchStrategy[bytes]:
    """Bytes that are rarely a valid message: random, truncated varints, invalid UTF-8."""
    return st.one_of(
        st.binary(max_size=512),
        st.sampled_from([b"\x0a\x02\xff\xfe", b"\x0a\xff\xff\xff\xff\x0f", b"\x08", b"\xff" * 8]),
    )


# -- REST ------------------------------------------------------------------------------


def _segment() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["abc", "alice", "weather", "k1", "x-1", "A_b", "..", "%FF", "%2F"]),
        texts().map(lambda t: urllib.parse.quote(t[:300], safe="")),
    )


@st.composite
def rest_paths(draw: st.DrawFn, template: str) -> str:
    """`template` with each variable filled: its pattern's literal parts kept, each `*`
    replaced by a random segment (sometimes the variable is one random segment)."""

    def fill(match: Any) -> str:
        pattern = match.group(2) or "*"
        if draw(st.integers(0, 3)) == 0:  # now and then, not the variable's pattern at all
            return str(draw(_segment()))
        return "/".join(
            draw(_segment()) if part in ("*", "**") else part for part in pattern.split("/")
        )

    return VARIABLE.sub(fill, template)


@st.composite
def rest_bodies(draw: st.DrawFn, rule: RestRule) -> tuple[bytes, str]:
    """A body and its content type: the method's request (or its body field) as JSON, any
    JSON, JSON with NaN tokens, or not JSON at all."""
    kind = draw(st.sampled_from(["shaped", "shaped", "any", "nan", "garbage", "empty"]))
    if kind == "empty":
        return b"", draw(st.sampled_from(["application/json", ""]))
    if kind == "garbage":
        return draw(st.binary(max_size=256)), draw(
            st.sampled_from(["application/json", "text/plain", "application/grpc"])
        )
    if kind == "any":
        return json.dumps(draw(st.one_of(json_values(), deep_json()))).encode(), "application/json"
    message = draw(messages(rule.method.input))
    try:
        as_json: Any = json_format.MessageToDict(message, preserving_proto_field_name=True)
    except (json_format.SerializeToJsonError, ValueError, TypeError, KeyError):
        # What JSON cannot say (a Duration or Timestamp out of range, an Any of no known
        # type): any JSON instead.
        as_json = draw(json_values())
    if rule.body not in ("", "*") and isinstance(as_json, dict):
        as_json = as_json.get(rule.body, {})
    if kind == "nan":
        as_json = {"x": math.nan, "value": as_json, "limit": math.inf}
    return json.dumps(as_json, allow_nan=True).encode(), "application/json"


def query_strings() -> st.SearchStrategy[str]:
    keys = st.one_of(
        st.sampled_from(
            [
                "page_size",
                "page_token",
                "subject",
                "start_date",
                "end_date",
                "model",
                "view",
                "consumer_id",
                "group_id",
                "request_id",
                "owner",
                "message_limit",
                "x",
            ]
        ),
        st.text(max_size=8),
    )
    pairs = st.lists(st.tuples(keys, texts().map(lambda t: t[:500])), max_size=4)
    return pairs.map(urllib.parse.urlencode)
