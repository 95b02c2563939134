"""Times, durations, range steps and downsampling of the prometheus toolset."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.tool.toolsets.prometheus_time import (
    MAX_POINTS,
    downsample,
    format_number,
    parse_duration,
    parse_time,
    range_window,
    step_for,
)

NOW = 1_714_557_600.0  # 2024-05-01T10:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("2d", 172_800),
        ("1w", 604_800),
        ("90", 90),
        ("0.5", 0.5),
        (15, 15),
        (2.5, 2.5),
    ],
)
def test_durations_in_prometheus_syntax_or_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text, "step") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "-5m", "0", "0s", "1e400", "11y"])
def test_bad_durations_name_the_argument(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration(text, "step")
    assert caught.value.violations[0].field == "step"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-15m", NOW - 900),
        ("now-1h30m", NOW - 5400),
        ("now - 2h", NOW - 7200),
        ("-90", NOW - 90),
        ("1714550000", 1_714_550_000),
        ("1714550000.25", 1_714_550_000.25),
        (1_714_550_000, 1_714_550_000),
        ("2024-05-01T10:00:00Z", NOW),
        ("2024-05-01T12:00:00+02:00", NOW),
        ("2024-05-01T09:59:59.5Z", NOW - 0.5),
    ],
)
def test_times_rfc3339_unix_or_relative(text: str | float, expected: float) -> None:
    assert parse_time(text, "time", NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2024-05-01T10:00:00", "no time zone"),
        ("2024-05-01", "no time zone"),
        ("yesterday", "is not a time"),
        ("1714557600000", "between 1970 and 2286"),
        (-5.0, "between 1970 and 2286"),
        (True, "must be a time"),
    ],
)
def test_bad_times_are_refused_with_what_to_write(text: str | float, says: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_time(text, "start", NOW)
    violation = caught.value.violations[0]
    assert violation.field == "start"
    assert says in violation.description


def points_of(window_span: float, step: float) -> int:
    """How many points Prometheus returns for a span and step."""
    return int(window_span // step) + 1


def test_default_window_is_the_last_hour_with_at_most_100_points() -> None:
    window = range_window(None, None, None, NOW)
    # The finest whole-second step that keeps to the bound.
    assert window.step == 37
    # The hour, and the part of a step before it that puts a point at the end.
    assert (window.start, window.end) == (NOW - 98 * 37, NOW)
    assert points_of(window.end - window.start, window.step) == 99 <= MAX_POINTS


@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        (None, None, None),
        ("-1h", "now", "1s"),
        ("-1h", "now", "7m"),
        ("-90s", "now", None),
        ("-86399s", NOW - 0.4567, None),
        (NOW - 1000.123, NOW + 0.789, "0.25"),
        (NOW - 3600, NOW, "60"),
    ],
)
def test_the_last_point_is_the_end_and_the_asked_range_is_covered(
    start: str | float | None, end: str | float | None, step: str | None
) -> None:
    """Prometheus evaluates at start + k * step up to end: the span must be a whole
    number of (millisecond) steps, or the newest part of the range (where an alert that
    just fired has its only values) is left out."""
    asked_end = NOW if end is None else parse_time(end, "end", NOW)
    asked_start = asked_end - 3600 if start is None else parse_time(start, "start", NOW)
    window = range_window(start, end, step, NOW)
    start_ms, end_ms, step_ms = (round(v * 1000) for v in (window.start, window.end, window.step))
    assert end_ms == round(asked_end * 1000)
    assert (end_ms - start_ms) % step_ms == 0
    assert asked_start - window.step < window.start <= asked_start + 0.001
    assert points_of(window.end - window.start, window.step) <= MAX_POINTS
    # As written on the wire, the points still end at the end.
    sent = [float(format_number(v)) for v in (window.start, window.end, window.step)]
    assert round((sent[1] - sent[0]) * 1000) % round(sent[2] * 1000) == 0


def test_a_fine_caller_step_is_widened_a_coarse_one_kept() -> None:
    fine = range_window("-1h", "now", "1s", NOW)
    assert points_of(3600, fine.step) <= MAX_POINTS
    assert fine.step == step_for(3600, None)
    coarse = range_window("-1h", "now", "5m", NOW)
    assert coarse.step == 300


@pytest.mark.parametrize("span", [0.0, 1.0, 98.0, 99.0, 100.0, 3599.0, 86_400.0, 31_536_000.0])
def test_steps_never_give_more_than_100_points(span: float) -> None:
    step = step_for(span, None)
    assert step >= 1
    assert points_of(span, step) <= MAX_POINTS


def test_start_after_end_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="start: must not be after end"):
        range_window("now", "-1h", None, NOW)


def test_downsample_keeps_first_and_last_and_the_bound() -> None:
    points = list(range(1000))
    kept = downsample(points, 100)
    assert len(kept) == 100
    assert kept[0] == 0
    assert kept[-1] == 999
    assert kept == sorted(kept)
    assert downsample(points[:50], 100) == points[:50]
    assert downsample(points, 1) == [999]


def test_numbers_for_urls_have_no_float_noise() -> None:
    assert format_number(1_714_557_600.0) == "1714557600"
    assert format_number(0.1 + 0.2) == "0.3"
    assert format_number(37.0) == "37"
