"""The name rules every collection shares (sessions and tools use them)."""

from __future__ import annotations

from collections.abc import Callable

from services.common.resource_names import ResourceNames
from services.common.validation import Violations

THINGS = ResourceNames("things", "thing", "^[a-z]{1,4}$")


def _problems(check: Callable[[Violations], object]) -> list[tuple[str, str]]:
    violations = Violations()
    check(violations)
    return [(v.field, v.description) for v in violations.items]


def test_names_round_trip() -> None:
    violations = Violations()
    assert THINGS.parse(violations, "name", THINGS.name("abc")) == "abc"
    assert not violations.items


def test_a_bad_name_is_one_violation_naming_the_shape() -> None:
    expected = "must be things/{thing} with the id matching ^[a-z]{1,4}$"
    for bad in ("abc", "others/abc", "things/ABC", "things/abcde", "things/"):
        assert _problems(lambda v, bad=bad: THINGS.parse(v, "name", bad)) == [("name", expected)]
    assert _problems(lambda v: THINGS.parse(v, "name", "")) == [("name", "is required")]


def test_ids_are_checked_against_the_pattern() -> None:
    assert _problems(lambda v: THINGS.check_id(v, "thing_id", "ok")) == []
    assert _problems(lambda v: THINGS.check_id(v, "thing_id", "NO")) == [
        ("thing_id", "must match ^[a-z]{1,4}$")
    ]
    assert _problems(lambda v: THINGS.check_id(v, "thing_id", "")) == [("thing_id", "is required")]
