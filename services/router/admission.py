"""What the caller of one chat request may reach and spend, decided before any call.

- Models: the requested name (or the model it resolves to) must be allowed to one of
  the caller's groups; deployments on providers no group pairs with that model are
  dropped from the plan, fallback models included (see `acl.allows_model`). Nothing
  left: PERMISSION_DENIED, and no provider is called.
- Limits: the consumer's and each of its groups' limits from the configuration file
  (`rate_limits:`, by id) and from their resources (`limits`), plus their budgets
  (`budget`: cost per day and per calendar month) — all counted by the limiter in one
  step. While authentication is off every caller is the consumer `anonymous`, so file
  limits under that id apply to the whole open gateway.
- Tools: every gateway tool a request names must be allowed to the caller.
- Usage is recorded for the consumer and each of its groups; answers are cached in the
  namespace of the consumer's first group (or the shared one, see `cache_namespace`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

from llmgw.identity.v1 import identity_pb2
from services.common.caller import INVESTIGATION_HEADER, current_caller
from services.common.errors import PermissionDenied
from services.common.identity import acl
from services.common.identity.principal import Principal
from services.common.limits_config import RateLimitsConfig
from services.common.rate_limits import NANOS_PER_UNIT, Limit, Scope, Unit, Window
from services.router.cache.store import ResponseCache
from services.router.catalog import ResolvedModel
from services.router.routing.plan import Plan
from services.router.usage.recorder import ANONYMOUS

ANONYMOUS_ID = ANONYMOUS.split("/", 1)[1]

_UNITS: dict[int, Unit] = {
    identity_pb2.RateLimit.UNIT_REQUESTS: "requests",
    identity_pb2.RateLimit.UNIT_TOKENS: "tokens",
}
_WINDOWS: dict[int, Window] = {
    identity_pb2.RateLimit.WINDOW_MINUTE: "minute",
    identity_pb2.RateLimit.WINDOW_HOUR: "hour",
    identity_pb2.RateLimit.WINDOW_DAY: "day",
}


def usage_subjects(principal: Principal | None) -> list[str]:
    """Whom a request's usage is recorded for: the consumer and each of its groups."""
    if principal is None:
        return [ANONYMOUS]
    return [principal.name, *(group.name for group in principal.groups)]


# A model call the Investigation service makes names its investigation
# (INVESTIGATION_HEADER): the call's usage is also recorded under it (GetUsage subject
# `investigations/{id}`, admins only; owners read it on the investigation itself).
_INVESTIGATION = re.compile(r"investigations/[a-z0-9][a-z0-9-]{0,62}")


def investigation_subjects(metadata: Iterable[tuple[str, str | bytes]]) -> list[str]:
    """`[investigations/{id}]` for a call the Investigation service vouched for that names
    one; nothing for any other caller, whatever headers it sends."""
    if not current_caller().for_investigation:
        return []
    for key, value in metadata:
        if key == INVESTIGATION_HEADER and isinstance(value, str):
            return [value] if _INVESTIGATION.fullmatch(value) else []
    return []


def cache_namespace(principal: Principal | None, cache: ResponseCache) -> str:
    """The consumer's first group's namespace (shared when that group or the cache says
    so, or while authentication is off)."""
    if principal is None or not principal.groups:
        return cache.namespace_for("")
    first = principal.groups[0]
    return cache.namespace_for(first.name, group_shared=first.shared_cache)


def check_model(principal: Principal | None, requested: str, resolved: ResolvedModel) -> None:
    """PERMISSION_DENIED unless the requested name or the model it resolves to is
    allowed (by any provider; `permitted` then drops the providers that are not)."""
    if principal is None:
        return
    names = {requested or resolved.name, resolved.name}
    if not any(acl.allows_model(principal, name) for name in names):
        raise PermissionDenied(
            f"model {requested or resolved.name!r} is not allowed for {principal.name}"
        )


def check_tools(principal: Principal | None, tool_ids: Sequence[str]) -> None:
    """PERMISSION_DENIED for the first gateway tool the caller may not run, before any
    tool is loaded (the tool service checks again when it runs one)."""
    if principal is not None:
        for tool_id in tool_ids:
            acl.require_tool(principal, tool_id)


def permitted(principal: Principal | None, requested: str, plan: Plan) -> Plan:
    """`plan` without the deployments the caller may not reach."""
    if principal is None:
        return plan
    kept = tuple(
        candidate
        for candidate in plan.candidates
        if any(
            acl.allows_model(principal, name, candidate.deployment.provider)
            for name in _names(candidate.model, plan.model, requested)
        )
    )
    if not kept:
        raise PermissionDenied(
            f"model {requested or plan.model!r} is not allowed for {principal.name} "
            "on any provider that serves it"
        )
    if len(kept) == len(plan.candidates):
        return plan
    return Plan(plan.model, plan.strategy, kept, plan.model_label)


def _names(model: str, primary: str, requested: str) -> tuple[str, ...]:
    """Names under which a candidate's model may be allowed: a fallback only by its own
    name, the requested model also by the name (alias) it was asked for."""
    return (model, requested) if model == primary and requested else (model,)


def request_limits(principal: Principal | None, config: RateLimitsConfig) -> list[Limit]:
    """Every limit and budget the request counts against (see the module docstring)."""
    if principal is None:
        return config.limits_for(ANONYMOUS_ID, None)
    consumer_id = principal.name.split("/", 1)[1]
    found = config.limits_for(consumer_id, None)
    found += _own_limits("consumer", principal.name, principal.consumer.limits)
    found += budget_limits("consumer", principal.name, principal.consumer.budget)
    for group in principal.groups:
        found += config.limits_for(None, group.name.split("/", 1)[1])
        found += _own_limits("group", group.name, group.limits)
        found += budget_limits("group", group.name, group.budget)
    return found


def _own_limits(
    scope: Scope, subject: str, limits: Sequence[identity_pb2.RateLimit]
) -> list[Limit]:
    return [
        Limit(scope, subject, _UNITS[limit.unit], _WINDOWS[limit.window], int(limit.limit))
        for limit in limits
        if limit.unit in _UNITS and limit.window in _WINDOWS and limit.limit > 0
    ]


def budget_limits(scope: Scope, subject: str, budget: identity_pb2.Budget) -> list[Limit]:
    """`budget` as limits of unit `cost` (nano-units) on `subject`, one per window it
    sets: what admission counts against, and what the budget gauges read."""
    found = []
    for window, amount in (("day", budget.daily_limit), ("month", budget.monthly_limit)):
        if amount <= 0:
            continue
        nanos = int(Decimal(repr(amount)) * NANOS_PER_UNIT)
        if nanos <= 0:
            continue
        soft = int(nanos * budget.soft_threshold) if 0 < budget.soft_threshold < 1 else None
        found.append(Limit(scope, subject, "cost", window, nanos, soft=soft))  # type: ignore[arg-type]
    return found
