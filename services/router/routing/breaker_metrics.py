"""Circuit breaker metrics, per deployment key.

The state gauge is what this replica last saw (its snapshot of the shared state), so
every replica reports it. A transition is counted only by the replica whose call made it
(or, while Redis is unreachable, whose local breaker made it), so summing the counter
over replicas counts each transition once.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

from services.common.breaker_machine import BreakerState

STATE = Gauge(
    "llmgw_breaker_state",
    "Circuit breaker state as this replica last saw it: 0 closed, 1 open, 2 half-open.",
    ["deployment"],
)
TRANSITIONS = Counter(
    "llmgw_breaker_transitions_total",
    "Breaker state changes made by this replica's calls, by the state entered "
    "(closed, open, half_open).",
    ["deployment", "state"],
)
SHORT_CIRCUITS = Counter(
    "llmgw_breaker_short_circuits_total",
    "Calls rejected without an upstream call because the breaker was open or half-open.",
    ["deployment"],
)

_GAUGE_VALUE = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}
_LABEL = {
    BreakerState.CLOSED: "closed",
    BreakerState.OPEN: "open",
    BreakerState.HALF_OPEN: "half_open",
}


def observe_state(deployment: str, state: BreakerState) -> None:
    STATE.labels(deployment).set(_GAUGE_VALUE[state])


def forget(deployment: str) -> None:
    """The replica stopped tracking this deployment: its gauge goes away."""
    with contextlib.suppress(KeyError):
        STATE.remove(deployment)


def transition(deployment: str, state: BreakerState) -> None:
    TRANSITIONS.labels(deployment, _LABEL[state]).inc()


def short_circuit(deployment: str) -> None:
    SHORT_CIRCUITS.labels(deployment).inc()
