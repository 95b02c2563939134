"""A circuit breaker per downstream `host:port`, in this replica's memory.

Each runs the shared `BreakerMachine` (services/common/breaker_machine.py). Replicas do
not share breaker state: each learns of a failing downstream from its own calls, which
for the tool service (a few replicas, downstreams it calls often) opens the breaker
after a handful of calls anyway, with no Redis round trip per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.common.breaker_machine import Admission, BreakerMachine, BreakerState, Outcome
from services.common.tool_config import ToolBreakerConfig
from services.tool.metrics import observe_breaker

_ALWAYS = Admission(True, False, BreakerState.CLOSED, 0.0)


class DownstreamBreakers:
    def __init__(
        self, config: ToolBreakerConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._machines: dict[str, BreakerMachine] = {}
        self._enabled = config.enabled
        self._config = config

    def now(self) -> float:
        return self._clock()

    def admit(self, downstream: str) -> Admission:
        if not self._enabled:
            return _ALWAYS
        machine = self._machines.setdefault(downstream, BreakerMachine())
        admission = machine.admit(self._clock(), self._config)
        observe_breaker(downstream, machine.state)
        return admission

    def record(self, downstream: str, outcome: Outcome, *, probe: bool) -> None:
        machine = self._machines.get(downstream)
        if machine is None or not self._enabled:
            return
        machine.record(outcome, self._clock(), self._config, probe=probe)
        observe_breaker(downstream, machine.state)

    def state(self, downstream: str) -> BreakerState:
        machine = self._machines.get(downstream)
        return BreakerState.CLOSED if machine is None else machine.state
