"""The per-request cache decision: enablement (global, per model), the request's cache
mode, tool requests, TTLs, unknown modes."""

from __future__ import annotations

import pytest

from services.common.cache_config import CacheConfig
from services.common.errors import InvalidArgument
from services.common.gateway_config import ModelEntry
from services.router.cache.policy import CacheDecision, CachePolicy, check_mode
from services.router.cache.status import CacheStatus

ON = CacheConfig(enabled=True, ttl_seconds=600)
OFF = CacheConfig(enabled=False, ttl_seconds=600)


def _model(cache: bool | None = None, ttl: int | None = None) -> ModelEntry:
    return ModelEntry(
        name="m",
        deployments=[{"provider": "p", "model": "x"}],  # type: ignore[list-item]
        cache=cache,
        cache_ttl_seconds=ttl,
    )


def _decide(
    config: CacheConfig,
    entry: ModelEntry | None = None,
    mode: str = "",
    *,
    tools: bool = False,
    cacheable: bool = True,
) -> CacheDecision:
    return CachePolicy(config).decide(entry, mode, runs_gateway_tools=tools, cacheable=cacheable)


def _shape(decision: CacheDecision) -> tuple[bool, bool, str]:
    return decision.read, decision.write, decision.status_if_not_read


@pytest.mark.parametrize(
    ("config", "entry", "call", "expected"),
    [
        # enabled globally, by the model, or the model opting out of a global cache
        (ON, None, ("", False, True), (True, True, "miss")),
        (ON, _model(), ("default", False, True), (True, True, "miss")),
        (OFF, None, ("", False, True), (False, False, "off")),
        (OFF, _model(), ("", False, True), (False, False, "off")),
        (OFF, _model(cache=True), ("", False, True), (True, True, "miss")),
        (ON, _model(cache=False), ("", False, True), (False, False, "off")),
        # the request's mode
        (ON, None, ("bypass", False, True), (False, False, "bypass")),
        (ON, None, ("refresh", False, True), (False, True, "refresh")),
        (OFF, _model(cache=True), ("refresh", False, True), (False, True, "refresh")),
        # a mode does not turn a disabled cache on
        (OFF, None, ("bypass", False, True), (False, False, "off")),
        (OFF, None, ("refresh", False, True), (False, False, "off")),
        # tool requests are never cached, whatever the mode
        (ON, None, ("", False, False), (False, False, "off")),
        (ON, None, ("refresh", False, False), (False, False, "off")),
        (ON, None, ("", True, True), (False, False, "off")),
        (ON, None, ("refresh", True, True), (False, False, "off")),
        (ON, None, ("bypass", True, True), (False, False, "off")),
    ],
)
def test_decision_table(
    config: CacheConfig,
    entry: ModelEntry | None,
    call: tuple[str, bool, bool],
    expected: tuple[bool, bool, str],
) -> None:
    """`call` is (mode, runs gateway tools, cacheable)."""
    mode, tools, cacheable = call
    assert _shape(_decide(config, entry, mode, tools=tools, cacheable=cacheable)) == expected


def test_statuses_are_the_reported_strings() -> None:
    assert _decide(ON).status_if_not_read == CacheStatus.MISS == "miss"
    assert {s.value for s in CacheStatus} == {"hit", "miss", "bypass", "refresh", "off"}


@pytest.mark.parametrize(
    ("entry", "ttl"),
    [(None, 600), (_model(), 600), (_model(cache=True), 600), (_model(ttl=30), 30)],
)
def test_ttl_is_the_models_else_the_configured(entry: ModelEntry | None, ttl: int) -> None:
    assert _decide(ON, entry).ttl == ttl


def test_configure_applies_to_the_next_decision() -> None:
    policy = CachePolicy(OFF)
    assert not policy.decide(None, "", runs_gateway_tools=False, cacheable=True).read
    policy.configure(ON.model_copy(update={"ttl_seconds": 5}))
    decision = policy.decide(None, "", runs_gateway_tools=False, cacheable=True)
    assert (decision.read, decision.ttl) == (True, 5)


@pytest.mark.parametrize("config", [ON, OFF])
def test_an_unknown_mode_is_an_invalid_argument(config: CacheConfig) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _decide(config, None, "Bypass")
    assert [v.field for v in caught.value.violations] == ["gateway.cache"]
    assert "unknown cache mode 'Bypass'" in str(caught.value)


def test_check_mode() -> None:
    assert [check_mode(m) for m in ("", "default", "bypass", "refresh")] == [None] * 4
    problem = check_mode("skip")
    assert problem is not None and "skip" in problem


def test_the_decision_is_frozen() -> None:
    decision = _decide(ON)
    with pytest.raises(AttributeError):
        decision.read = False  # type: ignore[misc]
