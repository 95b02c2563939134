"""One deployment's circuit breaker as a pure state machine, time passed in by the caller.

This is the reference semantics: `lua/common.lua` implements the same transitions over
the shared Redis hash, and the registry (`breaker.py`) runs this machine on its own when
Redis cannot be reached. The tests replay one table of steps against both.

- CLOSED: calls flow. Each outcome counts in a tumbling window of `window_seconds`
  aligned to the epoch (window `floor(now / window_seconds)`), so every replica and the
  scripts agree on which window a call belongs to. A failure also counts in the
  consecutive-failure count, which a success resets. The breaker opens when consecutive
  failures reach `consecutive_failures`, or when the window holds at least
  `min_requests` calls and `failures / total >= failure_rate` (judged on failures only).
- OPEN: calls are rejected until `reopen_at = opened + open_seconds`. The first
  admission at or after `reopen_at` moves it to HALF_OPEN and is the probe, holding a
  lease until `now + probe_timeout`.
- HALF_OPEN: `reopen_at` is the end of the probe lease; calls before it are rejected,
  the first after it (the prober died, or released its lease) is the next probe. A probe
  success closes the breaker (counts reset), a probe failure opens it again, a NEUTRAL
  probe releases the lease without a transition.

Outcomes of calls that are not the probe while the breaker is OPEN or HALF_OPEN (calls
admitted before it opened) change nothing: only the probe decides. A probe outcome that
arrives when the breaker is no longer HALF_OPEN (its lease expired and another probe
finished first) counts like any other outcome in the current state. Probes carry no
token, so a late prober's outcome is taken even if another caller holds the lease now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, IntEnum

from llmgw.router.v1 import admin_service_pb2
from services.common.breaker_config import BreakerSettings


class BreakerState(IntEnum):
    """Values equal `llmgw.router.v1.BreakerState`, so `int(state)` goes into the proto."""

    CLOSED = admin_service_pb2.BREAKER_STATE_CLOSED
    OPEN = admin_service_pb2.BREAKER_STATE_OPEN
    HALF_OPEN = admin_service_pb2.BREAKER_STATE_HALF_OPEN


class Outcome(Enum):
    """How a call ended, from the deployment's point of view.

    NEUTRAL: not the deployment's doing (the caller's own error, a cancellation); it
    counts nowhere, and for a probe it only releases the lease. The values are the
    outcome codes the Lua scripts take.
    """

    SUCCESS = 1
    FAILURE = 2
    NEUTRAL = 3


@dataclass(frozen=True)
class Admission:
    allowed: bool
    # This call is the half-open probe; its outcome must be recorded with probe=True.
    probe: bool
    # The state seen when deciding (HALF_OPEN for the probe itself).
    state: BreakerState
    # Unix seconds when a rejected caller could next get through; 0.0 when allowed.
    reopen_at: float


@dataclass(frozen=True)
class BreakerView:
    state: BreakerState
    # 0.0 unless OPEN (end of the open period) or HALF_OPEN (end of the probe lease).
    reopen_at: float
    consecutive_failures: int


def window_index(now: float, config: BreakerSettings) -> int:
    return math.floor(now / config.window_seconds)


@dataclass
class BreakerMachine:
    """The full state of one breaker; the same fields as the Redis hash."""

    state: BreakerState = BreakerState.CLOSED
    reopen_at: float = 0.0
    consecutive: int = 0
    window: int = 0
    total: int = 0
    failures: int = 0
    # When the last failure was counted: batched successes older than it keep the
    # consecutive count it set.
    last_failure: float = 0.0

    def view(self) -> BreakerView:
        return BreakerView(self.state, self.reopen_at, self.consecutive)

    def admit(self, now: float, config: BreakerSettings) -> Admission:
        if self.state is BreakerState.CLOSED:
            return Admission(True, False, BreakerState.CLOSED, 0.0)
        if now < self.reopen_at:
            return Admission(False, False, self.state, self.reopen_at)
        self.state = BreakerState.HALF_OPEN
        self.reopen_at = now + config.probe_timeout
        return Admission(True, True, BreakerState.HALF_OPEN, 0.0)

    def record(
        self, outcome: Outcome, now: float, config: BreakerSettings, *, probe: bool = False
    ) -> None:
        if probe and self.state is BreakerState.HALF_OPEN:
            if outcome is Outcome.SUCCESS:
                self._close(now, config)
            elif outcome is Outcome.FAILURE:
                self.consecutive += 1
                self.last_failure = now
                self._open(now, config)
            else:
                self.reopen_at = min(self.reopen_at, now)
            return
        if self.state is not BreakerState.CLOSED or outcome is Outcome.NEUTRAL:
            return
        self._roll(now, config)
        self.total += 1
        if outcome is Outcome.SUCCESS:
            self.consecutive = 0
            return
        self.failures += 1
        self.consecutive += 1
        self.last_failure = now
        if self.consecutive >= config.consecutive_failures or (
            self.total >= config.min_requests and self.failures / self.total >= config.failure_rate
        ):
            self._open(now, config)

    def add_successes(
        self, count: int, window: int, last_at: float, now: float, config: BreakerSettings
    ) -> None:
        """Successes counted elsewhere (a replica's batch): `count` of them in `window`,
        the newest at `last_at`. Counts from a window that has ended are dropped."""
        if count <= 0 or self.state is not BreakerState.CLOSED:
            return
        self._roll(now, config)
        if window == self.window:
            self.total += count
        if last_at > self.last_failure:
            self.consecutive = 0

    def _roll(self, now: float, config: BreakerSettings) -> None:
        # Only forwards: a replica whose clock lags counts into the current window.
        index = window_index(now, config)
        if index > self.window:
            self.window = index
            self.total = 0
            self.failures = 0

    def _open(self, now: float, config: BreakerSettings) -> None:
        self.state = BreakerState.OPEN
        self.reopen_at = now + config.open_seconds

    def _close(self, now: float, config: BreakerSettings) -> None:
        self.state = BreakerState.CLOSED
        self.reopen_at = 0.0
        self.consecutive = 0
        self.window = window_index(now, config)
        self.total = 0
        self.failures = 0
