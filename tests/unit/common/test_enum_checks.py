"""Unknown enum numbers are refused, naming the field and the accepted names."""

from __future__ import annotations

from llmgw.identity.v1 import identity_pb2
from services.common.enum_checks import check_enum
from services.common.validation import Violations

Unit = identity_pb2.RateLimit.Unit


def test_known_values_pass_and_unspecified_only_when_optional() -> None:
    violations = Violations()
    assert check_enum(violations, "unit", identity_pb2.RateLimit.UNIT_TOKENS, Unit)
    assert check_enum(violations, "unit", 0, Unit)
    assert not violations
    assert not check_enum(violations, "unit", 0, Unit, required=True)
    assert [(v.field, v.description) for v in violations.items] == [("unit", "is required")]


def test_an_unknown_number_is_refused() -> None:
    violations = Violations()
    assert not check_enum(violations, "limits[0].unit", 99, Unit.DESCRIPTOR)
    assert [(v.field, v.description) for v in violations.items] == [
        ("limits[0].unit", "99 is not a Unit (one of UNIT_REQUESTS, UNIT_TOKENS)")
    ]
