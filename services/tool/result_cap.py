"""A toolset result cut to its size cap, list by list, so what remains is still valid,
readable JSON rather than a string cut mid-value.

While the result (as compact JSON) is over the cap, the list holding the most bytes is
shortened as little as needed (a binary search on how many items to keep). Lists read
newest-last (`lines` of a log, `events`) lose their oldest items, from the front: the
newest lines and events are what explains a failure. Every other list loses its
trailing items. The cut result says so: `"truncated": true` and a `"note"` telling the
caller how to ask for less (the tool's narrowing hint). A result that still does not
fit once every list is empty (huge strings) becomes `{"truncated", "note", "preview"}`
with the start of its JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from services.tool.body import utf8_prefix

# Lists whose newest items are last.
NEWEST_LAST = frozenset({"lines", "events"})
# Room kept for the preview's own keys and escaping.
PREVIEW_SLACK = 256


def size(value: Any) -> int:
    return len(orjson.dumps(value))


def _lists(value: Any, key: str = "") -> Iterator[tuple[str, list[Any]]]:
    """Every non-empty list in `value`, with the key it is under ("" in a list)."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _lists(item, name)
    elif isinstance(value, list):
        if value:
            yield key, value
        for item in value:
            yield from _lists(item)


def _keep(items: list[Any], count: int, from_front: bool) -> None:
    """Shortens `items` in place to `count` items."""
    if from_front:
        del items[: len(items) - count]
    else:
        del items[count:]


def _shorten(result: Any, key: str, items: list[Any], cap: int) -> None:
    """Keeps as many items of `items` as let `result` fit, at least none."""
    from_front = key in NEWEST_LAST
    original = list(items)
    low, high = 0, len(original) - 1
    while low < high:
        middle = (low + high + 1) // 2
        items[:] = original
        _keep(items, middle, from_front)
        if size(result) <= cap:
            low = middle
        else:
            high = middle - 1
    items[:] = original
    _keep(items, low, from_front)


def cap_result(value: Any, cap: int, hint: str) -> tuple[Any, bool]:
    """`value` fitting `cap` bytes as compact JSON, and whether it was cut."""
    if size(value) <= cap:
        return value, False
    note = f"result cut to fit {cap} bytes; {hint}"
    # A copy: the caller's value is left alone.
    result: Any = orjson.loads(orjson.dumps(value))
    if isinstance(result, dict):
        result["truncated"] = True
        result["note"] = note
        while size(result) > cap:
            candidates = sorted(_lists(result), key=lambda found: size(found[1]), reverse=True)
            if not candidates:
                break
            key, items = candidates[0]
            _shorten(result, key, items, cap)
        if size(result) <= cap:
            return result, True
    room = max(cap - size({"truncated": True, "note": note, "preview": ""}) - PREVIEW_SLACK, 0)
    preview = utf8_prefix(orjson.dumps(value)[:room])
    while size({"truncated": True, "note": note, "preview": preview}) > cap and preview:
        preview = preview[: len(preview) * 3 // 4]
    return {"truncated": True, "note": note, "preview": preview}, True
