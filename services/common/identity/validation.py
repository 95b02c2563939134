"""Field checks of consumers and groups, and the fields an update may change.

Checks run on the resource as it would be stored (after an update mask is applied), so
create and update share them. Whether named groups exist is the store's check: it needs
Redis.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from llmgw.identity.v1 import identity_pb2
from services.common.identity.names import group_id_of
from services.common.validation import Violations

SERVICES = frozenset({"router", "session", "tool", "investigation", "admin"})
MAX_DISPLAY_NAME = 256
MAX_LIST_ENTRIES = 1000

CONSUMER_FIELDS = ("display_name", "groups", "ip_allowlist", "limits", "budget", "disabled")
GROUP_FIELDS = (
    "display_name",
    "allowed_models",
    "allowed_providers",
    "allowed_tools",
    "allowed_services",
    "ip_allowlist",
    "limits",
    "budget",
    "admin",
    "shared_cache",
)


def check_consumer(violations: Violations, consumer: identity_pb2.Consumer, field: str) -> None:
    _check_display_name(violations, consumer.display_name, f"{field}.display_name")
    seen: set[str] = set()
    for i, name in enumerate(consumer.groups):
        at = f"{field}.groups[{i}]"
        if group_id_of(name) is None:
            violations.add(at, "must be groups/{group}")
        elif name in seen:
            violations.add(at, f"names {name} twice")
        seen.add(name)
    check_ip_allowlist(violations, consumer.ip_allowlist, f"{field}.ip_allowlist")
    _check_limits(violations, consumer.limits, f"{field}.limits")
    _check_budget(violations, consumer.budget, f"{field}.budget")


def check_group(violations: Violations, group: identity_pb2.Group, field: str) -> None:
    _check_display_name(violations, group.display_name, f"{field}.display_name")
    for list_field in ("allowed_models", "allowed_providers", "allowed_tools"):
        values: Sequence[str] = getattr(group, list_field)
        _check_length(violations, values, f"{field}.{list_field}")
        for i, value in enumerate(values):
            if not value.strip():
                violations.add(f"{field}.{list_field}[{i}]", "must not be empty")
            elif "*" in value[:-1]:
                violations.add(
                    f"{field}.{list_field}[{i}]", "may hold `*` only as its last character"
                )
    for i, service in enumerate(group.allowed_services):
        if service != "*" and service not in SERVICES:
            violations.add(
                f"{field}.allowed_services[{i}]",
                f"must be `*` or one of {', '.join(sorted(SERVICES))}",
            )
    check_ip_allowlist(violations, group.ip_allowlist, f"{field}.ip_allowlist")
    _check_limits(violations, group.limits, f"{field}.limits")
    _check_budget(violations, group.budget, f"{field}.budget")


def check_ip_allowlist(violations: Violations, entries: Sequence[str], field: str) -> None:
    _check_length(violations, entries, field)
    for i, entry in enumerate(entries):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            violations.add(f"{field}[{i}]", f"{entry!r} is not an IP address or CIDR")


def _check_display_name(violations: Violations, value: str, field: str) -> None:
    violations.require(
        len(value) <= MAX_DISPLAY_NAME, field, f"must be at most {MAX_DISPLAY_NAME} characters"
    )


def _check_length(violations: Violations, values: Sequence[object], field: str) -> None:
    violations.require(
        len(values) <= MAX_LIST_ENTRIES, field, f"must have at most {MAX_LIST_ENTRIES} entries"
    )


def _check_limits(
    violations: Violations, limits: Sequence[identity_pb2.RateLimit], field: str
) -> None:
    for i, limit in enumerate(limits):
        at = f"{field}[{i}]"
        violations.require(
            limit.unit != identity_pb2.RateLimit.UNIT_UNSPECIFIED, f"{at}.unit", "is required"
        )
        violations.require(
            limit.window != identity_pb2.RateLimit.WINDOW_UNSPECIFIED, f"{at}.window", "is required"
        )
        violations.require(limit.limit > 0, f"{at}.limit", "must be positive")


def _check_budget(violations: Violations, budget: identity_pb2.Budget, field: str) -> None:
    violations.require(budget.daily_limit >= 0, f"{field}.daily_limit", "must not be negative")
    violations.require(budget.monthly_limit >= 0, f"{field}.monthly_limit", "must not be negative")
    violations.require(
        0 <= budget.soft_threshold <= 1, f"{field}.soft_threshold", "must be between 0 and 1"
    )
