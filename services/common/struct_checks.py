"""The one check of caller JSON carried as `google.protobuf.Struct` / `Value`.

JSON has no NaN or Infinity: a Struct holding one is accepted by the binary protobuf
codec but cannot be written back as JSON, so once stored it breaks every REST read of
it (the transcoder fails on it, 502) and every `json_format` conversion (500). Deep
nesting has a like cost: the protobuf decoder refuses messages nested past 100 levels,
three of which each JSON level takes inside a Struct. So every Struct or Value a request
carries is checked before it is used or stored: numbers finite, at most `MAX_JSON_DEPTH`
levels of objects and arrays, and at most `max_bytes` serialized when the field has a
size limit. Violations name the field and the path to the problem
(`session.context.a.b`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from google.protobuf import struct_pb2

from services.common.status_bounds import clip_chars
from services.common.validation import Violations

# Levels of objects and arrays: `{"a": {"b": 1}}` is 2 deep. JSON Schemas of real tools
# and context objects stay far below it; the protobuf decoder's own limit allows ~31.
MAX_JSON_DEPTH = 20
# Characters of one object key shown in a violation's path.
_KEY_CHARS = 32
# Keys of the path shown; deeper problems are named by their first keys and `…`.
_PATH_KEYS = 6


def _path(field: str, keys: tuple[str, ...]) -> str:
    shown = [clip_chars(k, _KEY_CHARS) if not k.startswith("[") else k for k in keys]
    if len(shown) > _PATH_KEYS:
        shown = [*shown[:_PATH_KEYS], "…"]
    out = field
    for key in shown:
        out += key if key.startswith("[") else f".{key}"
    return out


def _children(
    value: struct_pb2.Value, path: tuple[str, ...]
) -> list[tuple[struct_pb2.Value, tuple[str, ...]]]:
    if value.WhichOneof("kind") == "struct_value":
        return [(item, (*path, key)) for key, item in value.struct_value.fields.items()]
    return [(item, (*path, f"[{i}]")) for i, item in enumerate(value.list_value.values)]


def _problems(
    root: struct_pb2.Value | struct_pb2.Struct, max_depth: int
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, problem) for each problem, depth first; a too-deep branch is one problem
    and is not descended into. Iterative: the depth is the caller's to choose."""
    stack: list[tuple[struct_pb2.Value, tuple[str, ...], int]]
    if isinstance(root, struct_pb2.Struct):
        if max_depth < 1:
            yield (), f"nests deeper than {max_depth} levels of objects and arrays"
            return
        stack = [(item, (key,), 1) for key, item in reversed(list(root.fields.items()))]
    else:
        stack = [(root, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            if not math.isfinite(value.number_value):
                yield path, "numbers must be finite (JSON has no NaN or Infinity)"
        elif kind in ("struct_value", "list_value"):
            if depth + 1 > max_depth:
                yield path, f"nests deeper than {max_depth} levels of objects and arrays"
                continue
            children = _children(value, path)
            stack.extend((item, where, depth + 1) for item, where in reversed(children))


def check_json(
    violations: Violations,
    field: str,
    value: struct_pb2.Value | struct_pb2.Struct,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int | None = None,
) -> bool:
    """Adds one violation for the first problem of `value` (its size, else a number that
    is not finite, else nesting past `max_depth`); True when there is none."""
    if max_bytes is not None:
        size = value.ByteSize()
        if size > max_bytes:
            violations.add(field, f"is {size} bytes serialized; at most {max_bytes} allowed")
            return False
    for path, problem in _problems(value, max_depth):
        violations.add(_path(field, path), problem)
        return False
    return True
