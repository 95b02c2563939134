"""An investigation's limits: the request's, within the configured ceilings, with the
configured defaults for what it leaves unset."""

from __future__ import annotations

import math
from dataclasses import dataclass

from google.protobuf import duration_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import FieldViolation, InvalidArgument
from services.common.investigation_config import InvestigationConfig


@dataclass(frozen=True)
class Limits:
    max_steps: int
    time_limit_s: float
    max_tokens: int
    # 0: no cost limit.
    max_cost: float

    def to_proto(self) -> inv_pb2.InvestigationLimits:
        out = inv_pb2.InvestigationLimits(
            max_steps=self.max_steps, max_tokens=self.max_tokens, max_cost=self.max_cost
        )
        out.time_limit.FromNanoseconds(int(self.time_limit_s * 1e9))
        return out


def _seconds(duration: duration_pb2.Duration) -> float:
    """A Duration in seconds, whatever its size (ToTimedelta overflows past 999,999,999
    days, which a caller can send)."""
    return duration.seconds + duration.nanos / 1e9


def check_limits(
    limits: inv_pb2.InvestigationLimits, config: InvestigationConfig, prefix: str
) -> list[FieldViolation]:
    """Violations of the ceilings (and of sense) in a request's limits."""
    out: list[FieldViolation] = []
    c = config.ceilings
    if limits.max_steps < 0 or limits.max_steps > c.max_steps:
        out.append(FieldViolation(f"{prefix}.max_steps", f"must be 0..{c.max_steps}"))
    seconds = _seconds(limits.time_limit)
    if seconds < 0 or seconds > c.time_limit_seconds:
        out.append(
            FieldViolation(f"{prefix}.time_limit", f"must be at most {c.time_limit_seconds:g}s")
        )
    if limits.max_tokens < 0 or limits.max_tokens > c.max_tokens:
        out.append(FieldViolation(f"{prefix}.max_tokens", f"must be 0..{c.max_tokens}"))
    cost = limits.max_cost
    if not math.isfinite(cost) or cost < 0 or (c.max_cost and cost > c.max_cost):
        ceiling = f"at most {c.max_cost:g}" if c.max_cost else "finite"
        out.append(FieldViolation(f"{prefix}.max_cost", f"must be non-negative and {ceiling}"))
    return out


def effective_limits(limits: inv_pb2.InvestigationLimits, config: InvestigationConfig) -> Limits:
    """The limits an investigation runs with (request values checked by check_limits)."""
    d = config.defaults
    seconds = _seconds(limits.time_limit)
    return Limits(
        max_steps=limits.max_steps or d.max_steps,
        time_limit_s=seconds or d.time_limit_seconds,
        max_tokens=limits.max_tokens or d.max_tokens,
        max_cost=limits.max_cost or d.max_cost,
    )


def require_valid(
    limits: inv_pb2.InvestigationLimits, config: InvestigationConfig, prefix: str
) -> None:
    violations = check_limits(limits, config, prefix)
    if violations:
        raise InvalidArgument.from_violations(violations)
