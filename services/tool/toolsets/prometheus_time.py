"""Times, durations and range steps of the prometheus toolset's arguments.

Callers (a model, an analyzer) write times the way people do: RFC 3339
(`2024-05-01T10:00:00Z`), unix seconds (`1714557600`), or relative to now (`now`,
`-15m`, `now-1h30m`). Everything is turned into unix seconds here, so Prometheus only
ever sees numbers and a caller's mistake is refused with a message naming the argument
before any request is made.

A range query's step is chosen so that each series has at most `MAX_POINTS` points:
what the caller reads is a shape (when it rose, how high), and a hundred points show it
while keeping the result small.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from services.common.errors import InvalidArgument
from services.common.text_checks import shown

# Points per series a range query returns at most.
MAX_POINTS = 100
# The range a range query covers when the caller gives no start.
DEFAULT_RANGE_SECONDS = 3600.0
# Unix seconds accepted: 1970 to 2286 (past that it is a millisecond timestamp by mistake).
MAX_UNIX_SECONDS = 9_999_999_999.0
# Longest duration accepted (a relative time, a step): ten years.
MAX_DURATION_SECONDS = 10 * 366 * 86_400.0

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86_400.0,
    "w": 7 * 86_400.0,
    "y": 365 * 86_400.0,
}
# Prometheus' duration syntax: `1h30m`, `90s`, `500ms` (units in any order here).
_DURATION = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")
_DURATION_PART = re.compile(r"(\d+)(ms|[smhdwy])")
_NUMBER = re.compile(r"\+?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_RELATIVE = re.compile(r"(?:now)?\s*-\s*(.+)")

_T = TypeVar("_T")


def parse_duration(value: str | float, field: str) -> float:
    """Seconds of `5m`, `1h30m`, `90` or `0.5`; INVALID_ARGUMENT naming `field` otherwise."""
    if isinstance(value, bool):
        raise InvalidArgument.for_field(field, "must be a duration such as '30s' or '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(
                int(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(text)
            )
        else:
            raise InvalidArgument.for_field(
                field, f"{shown(text)} is not a duration such as '30s', '5m' or '1h30m'"
            )
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidArgument.for_field(field, "must be a positive duration")
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidArgument.for_field(field, "must be at most ten years")
    return seconds


def parse_time(value: str | float, field: str, now: float) -> float:
    """Unix seconds of an RFC 3339 time, unix seconds, `now`, `-15m` or `now-15m`."""
    if isinstance(value, bool):
        raise InvalidArgument.for_field(field, "must be a time")
    if isinstance(value, int | float):
        return _unix(float(value), field)
    text = value.strip()
    if text == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - parse_duration(relative.group(1).strip(), field)
    if _NUMBER.fullmatch(text):
        return _unix(float(text), field)
    return _unix(_rfc3339(text, field), field)


def _rfc3339(text: str, field: str) -> float:
    expected = "RFC 3339 ('2024-05-01T10:00:00Z'), unix seconds, 'now' or '-15m'"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument.for_field(
            field, f"{shown(text)} is not a time: use {expected}"
        ) from None
    if moment.tzinfo is None:
        raise InvalidArgument.for_field(
            field, f"{shown(text)} has no time zone (Z or +hh:mm): use {expected}"
        )
    return moment.timestamp()


def _unix(seconds: float, field: str) -> float:
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_UNIX_SECONDS:
        raise InvalidArgument.for_field(field, "must be unix seconds between 1970 and 2286")
    return seconds


@dataclass(frozen=True)
class Window:
    """A range query's start, end and step, in seconds."""

    start: float
    end: float
    step: float


def range_window(
    start: str | float | None,
    end: str | float | None,
    step: str | float | None,
    now: float,
) -> Window:
    """The window a range query asks Prometheus for: the last hour by default, and a step
    at least wide enough that no series gets more than `MAX_POINTS` points (a caller's
    finer step is widened, never refused).

    Prometheus evaluates at start, start + step, ... up to end, so unless the span is a
    whole number of steps the last point falls short of `end` by up to a step (11 s of
    the default hour): a condition that began since, the very one an alert that just
    fired is about, would be missing. The start is therefore moved back by less than one
    step so that `end` is a point; the point count stays within `MAX_POINTS`, because
    `step_for` keeps the span within `MAX_POINTS - 1` steps.
    """
    end_s = now if end is None else parse_time(end, "end", now)
    start_s = end_s - DEFAULT_RANGE_SECONDS if start is None else parse_time(start, "start", now)
    if start_s > end_s:
        raise InvalidArgument.for_field("start", "must not be after end")
    asked = None if step is None else parse_duration(step, "step")
    step_s = step_for(end_s - start_s, asked)
    # In whole milliseconds, as Prometheus evaluates (and `format_number` writes) them,
    # so no rounding puts the last point a millisecond past `end`.
    end_ms, step_ms = round(end_s * 1000), max(1, round(step_s * 1000))
    steps = math.ceil((end_ms - round(start_s * 1000)) / step_ms)
    start_ms = max(0, end_ms - steps * step_ms)
    return Window(start_ms / 1000, end_ms / 1000, step_ms / 1000)


def step_for(span: float, asked: float | None) -> float:
    """The step for `span` seconds: `asked` if that keeps to `MAX_POINTS`, else the
    smallest whole number of seconds that does (Prometheus returns
    floor(span / step) + 1 points)."""
    needed = span / (MAX_POINTS - 1)
    if asked is not None and asked >= needed:
        return asked
    return float(max(1, math.ceil(needed)))


def downsample(points: Sequence[_T], limit: int = MAX_POINTS) -> list[_T]:
    """At most `limit` of `points`, evenly spread, first and last kept: a defence against a
    backend that returned more points than the step allows."""
    count = len(points)
    if count <= limit:
        return list(points)
    if limit <= 1:
        return list(points[-limit:]) if limit == 1 else []
    picked = sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picked]


def format_number(seconds: float) -> str:
    """Seconds as Prometheus reads them in a URL parameter, without float noise."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
