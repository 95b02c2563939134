"""Field checks of consumers and groups, and the fields an update may change.

Checks run on the resource as it would be stored (after an update mask is applied), so
create and update share them. Whether named groups exist is the store's check: it needs
Redis.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence

from llmgw.identity.v1 import identity_pb2
from services.common.enum_checks import check_enum
from services.common.identity.names import group_id_of
from services.common.text_checks import MAX_MODEL_NAME_CHARS, check_count, check_text, shown
from services.common.validation import Violations

SERVICES = frozenset({"router", "session", "tool", "investigation", "admin"})
MAX_DISPLAY_NAME = 256
MAX_LIST_ENTRIES = 1000
MAX_GROUPS = 64
MAX_LIMITS = 32
# The longest IPv6 network in text (`ffff:...:ffff/128`) is 43 characters.
MAX_IP_ENTRY_CHARS = 64
# Longest lifetime of an API key, and longest overlap of a rotation: ten years.
MAX_KEY_DURATION_SECONDS = 10 * 366 * 86_400
_CURRENCY = re.compile(r"^[A-Z]{3}$")

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
    check_count(violations, f"{field}.groups", consumer.groups, MAX_GROUPS)
    seen: set[str] = set()
    for i, name in enumerate(consumer.groups[:MAX_GROUPS]):
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
        if not _check_length(violations, values, f"{field}.{list_field}"):
            continue
        for i, value in enumerate(values):
            at = f"{field}.{list_field}[{i}]"
            if not value.strip():
                violations.add(at, "must not be empty")
            elif check_text(violations, at, value, MAX_MODEL_NAME_CHARS, single_line=True) and (
                "*" in value[:-1]
            ):
                violations.add(at, "may hold `*` only as its last character")
    _check_length(violations, group.allowed_services, f"{field}.allowed_services")
    for i, service in enumerate(group.allowed_services[:MAX_LIST_ENTRIES]):
        if service != "*" and service not in SERVICES:
            violations.add(
                f"{field}.allowed_services[{i}]",
                f"must be `*` or one of {', '.join(sorted(SERVICES))}",
            )
    check_ip_allowlist(violations, group.ip_allowlist, f"{field}.ip_allowlist")
    _check_limits(violations, group.limits, f"{field}.limits")
    _check_budget(violations, group.budget, f"{field}.budget")


def check_ip_allowlist(violations: Violations, entries: Sequence[str], field: str) -> None:
    if not _check_length(violations, entries, field):
        return
    for i, entry in enumerate(entries):
        if len(entry) > MAX_IP_ENTRY_CHARS:
            violations.add(f"{field}[{i}]", "is not an IP address or CIDR (too long)")
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            violations.add(f"{field}[{i}]", f"{shown(entry)} is not an IP address or CIDR")


def _check_display_name(violations: Violations, value: str, field: str) -> None:
    check_text(violations, field, value, MAX_DISPLAY_NAME, single_line=True)


def _check_length(violations: Violations, values: Sequence[object], field: str) -> bool:
    if len(values) > MAX_LIST_ENTRIES:
        violations.add(field, f"must have at most {MAX_LIST_ENTRIES} entries")
        return False
    return True


def _check_limits(
    violations: Violations, limits: Sequence[identity_pb2.RateLimit], field: str
) -> None:
    """Unit and window must be values the limiter knows: an unknown number would be
    stored and match no counter, a limit silently not enforced."""
    if not check_count(violations, field, limits, MAX_LIMITS):
        return
    for i, limit in enumerate(limits):
        at = f"{field}[{i}]"
        check_enum(violations, f"{at}.unit", limit.unit, identity_pb2.RateLimit.Unit, required=True)
        check_enum(
            violations, f"{at}.window", limit.window, identity_pb2.RateLimit.Window, required=True
        )
        violations.require(limit.limit > 0, f"{at}.limit", "must be positive")


def _check_budget(violations: Violations, budget: identity_pb2.Budget, field: str) -> None:
    for name in ("daily_limit", "monthly_limit"):
        amount = getattr(budget, name)
        if not math.isfinite(amount):
            violations.add(f"{field}.{name}", "must be a finite number")
        elif amount < 0:
            violations.add(f"{field}.{name}", "must not be negative")
    violations.require(
        0 <= budget.soft_threshold <= 1, f"{field}.soft_threshold", "must be between 0 and 1"
    )
    violations.require(
        not budget.currency or _CURRENCY.fullmatch(budget.currency) is not None,
        f"{field}.currency",
        "must be a three-letter ISO 4217 code (USD)",
    )
