"""Every metric family of every service uses only label names from the allow-list, and
the families dashboards and alert rules are built on have the agreed labels.

A label name is allowed only when its values are bounded by code or configuration
(catalogue names, provider instances, deployments, status codes, consumer groups):
never keys, request ids, consumer ids or free text. The registry is read after importing
every module of `services`, so a family defined anywhere is checked.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

import services

ALLOWED = frozenset(
    {
        "service", "method", "code", "dependency", "model", "provider", "deployment",
        "group", "scope", "unit", "window", "state", "completeness", "outcome", "result",
        "reason", "tool", "operation", "kind", "stream", "direction", "error_type",
        "token_type", "gen_ai_operation_name", "gen_ai_provider_name",
        "gen_ai_request_model", "gen_ai_response_model", "gen_ai_token_type", "le",
        "quantile",
        # Bounded by code: the cache status (hit, miss, bypass, refresh, off).
        "status",
        # The requested model's catalogue label (a catalogue name, else `other`).
        "requested_model",
        # primary, retry, fallback, fallback_model.
        "route",
        # The investigation's closed set of partial reasons.
        "partial_reason",
        # kubernetes, prometheus or other; context or model.
        "toolset", "requested_by",
        # host:port of a tool an admin registered (configuration, never a caller's).
        "downstream",
    }
)  # fmt: skip

# The families of the metric contract, with exactly these labels.
CONTRACT = {
    "gen_ai_client_token_usage": (
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
        "gen_ai_token_type",
    ),
    "gen_ai_client_operation_duration_seconds": (
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type",
    ),
    "gen_ai_server_time_to_first_token_seconds": ("gen_ai_operation_name", "gen_ai_request_model"),
    "gen_ai_server_time_per_output_token_seconds": (
        "gen_ai_operation_name", "gen_ai_request_model",
    ),
    "llmgw_gateway_overhead_seconds": ("operation",),
    "llmgw_budget_remaining": ("scope", "group", "window"),
    "llmgw_budget_limit": ("scope", "group", "window"),
    "llmgw_redis_command_duration_seconds": ("service", "operation"),
    "llmgw_redis_errors_total": ("service", "operation"),
    "llmgw_rpc_requests_total": ("service", "method", "code"),
    "llmgw_rpc_duration_seconds": ("service", "method"),
    "llmgw_rpc_in_flight": ("service", "method"),
    "llmgw_rate_limit_rejections_total": ("scope", "unit", "window"),
}  # fmt: skip


def _import_every_service_module() -> None:
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def _families() -> Iterator[tuple[str, tuple[str, ...]]]:
    """(name, label names) of every registered family, children or not; prometheus_client
    has no public accessor for a family's label names before a child exists."""
    for collector, names in list(REGISTRY._collector_to_names.items()):
        labels = tuple(getattr(collector, "_labelnames", ()))
        name = getattr(collector, "_name", None) or names[0]
        yield name, labels


@pytest.fixture(scope="module")
def families() -> dict[str, tuple[str, ...]]:
    _import_every_service_module()
    return dict(_families())


def test_every_gateway_family_uses_allowed_label_names(
    families: dict[str, tuple[str, ...]],
) -> None:
    ours = {n: labels for n, labels in families.items() if n.startswith(("llmgw_", "gen_ai_"))}
    assert len(ours) > 50, sorted(ours)
    unknown = {n: sorted(set(labels) - ALLOWED) for n, labels in ours.items()}
    assert {n: bad for n, bad in unknown.items() if bad} == {}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_contract_family_has_its_labels(families: dict[str, tuple[str, ...]], name: str) -> None:
    # prometheus_client keeps a counter's name without `_total`.
    stored = families.get(name, families.get(name.removesuffix("_total")))
    assert stored == CONTRACT[name]
