"""An investigation's limits: checked against the ceilings, whatever the caller sends."""

from __future__ import annotations

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.investigation_config import InvestigationConfig
from services.investigation.limits import check_limits, effective_limits


def test_a_huge_or_negative_time_limit_is_a_violation_not_a_crash() -> None:
    config = InvestigationConfig()
    for seconds in (-86_400_000_000_000, 315_576_000_000, -1):
        limits = inv_pb2.InvestigationLimits()
        limits.time_limit.seconds = seconds
        violations = check_limits(limits, config, "investigation.limits")
        assert [v.field for v in violations] == ["investigation.limits.time_limit"]


def test_unset_limits_take_the_defaults_and_set_ones_stay() -> None:
    config = InvestigationConfig()
    assert effective_limits(inv_pb2.InvestigationLimits(), config).max_steps == 8
    limits = inv_pb2.InvestigationLimits(max_steps=3, max_tokens=100, max_cost=0.5)
    limits.time_limit.seconds = 60
    got = effective_limits(limits, config)
    assert (got.max_steps, got.time_limit_s, got.max_tokens, got.max_cost) == (3, 60, 100, 0.5)
    assert check_limits(limits, config, "l") == []
