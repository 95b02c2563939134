"""The shared check of caller JSON in Struct and Value fields."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from services.common.struct_checks import MAX_JSON_DEPTH, check_json
from services.common.validation import Violations


def _nested(levels: int) -> dict[str, Any]:
    """An object `levels` deep: {"a": {"a": ... {"type": "string"}}}."""
    value: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _struct(document: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(document)
    return struct


def _problems(value: struct_pb2.Struct | struct_pb2.Value, **kwargs: Any) -> list[tuple[str, str]]:
    violations = Violations()
    check_json(violations, "f", value, **kwargs)
    return [(v.field, v.description) for v in violations.items]


def test_ordinary_json_passes() -> None:
    document = {"type": "object", "properties": {"n": {"type": "number", "maximum": 1e300}}}
    assert _problems(_struct(document)) == []
    assert _problems(_struct(_nested(MAX_JSON_DEPTH))) == []


def test_nan_and_infinity_are_refused_with_their_path() -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert _problems(_struct({"a": [1, {"b": bad}]})) == [
            ("f.a[1].b", "numbers must be finite (JSON has no NaN or Infinity)")
        ]
    assert _problems(struct_pb2.Value(number_value=float("nan"))) == [
        ("f", "numbers must be finite (JSON has no NaN or Infinity)")
    ]


def test_nesting_past_the_bound_is_refused_once() -> None:
    problems = _problems(_struct(_nested(MAX_JSON_DEPTH + 1)))
    assert len(problems) == 1
    field, description = problems[0]
    assert field.startswith("f.a.a")
    assert description == f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays"
    value = struct_pb2.Value()
    value.list_value.values.add().list_value.values.add().list_value.SetInParent()
    assert _problems(value, max_depth=2) == [
        ("f[0][0]", "nests deeper than 2 levels of objects and arrays")
    ]


def test_size_is_checked_when_the_field_has_a_limit() -> None:
    struct = _struct({"text": "x" * 1000})
    assert _problems(struct, max_bytes=2000) == []
    assert _problems(struct, max_bytes=100) == [
        ("f", f"is {struct.ByteSize()} bytes serialized; at most 100 allowed")
    ]


def test_paths_quoting_huge_keys_stay_short() -> None:
    problems = _problems(_struct({"k" * 100_000: float("nan")}))
    assert len(problems[0][0]) < 64
