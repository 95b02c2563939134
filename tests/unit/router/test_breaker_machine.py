"""The breaker state machine, table-driven; `test_breaker.py` replays the same table
against the registry over Redis (and without it) to prove the Lua scripts match."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmgw.router.v1 import admin_service_pb2
from services.common.breaker_machine import (
    Admission,
    BreakerMachine,
    BreakerState,
    BreakerView,
    Outcome,
    window_index,
)
from services.common.gateway_config import BreakerConfig

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
OK, FAIL, NEUTRAL = Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEUTRAL

CONFIG = BreakerConfig(
    consecutive_failures=3,
    failure_rate=0.5,
    min_requests=6,
    window_seconds=10,
    open_seconds=30,
    probe_timeout=5,
)
# A window boundary (a multiple of window_seconds); offsets are binary fractions, so
# T0 + offset is exact and expectations can be written as offsets.
T0 = 1_700_000_000.0


@dataclass(frozen=True)
class Step:
    """At T0 + `at`: an admission (expect an Admission) or an outcome (expect the view)."""

    at: float
    outcome: Outcome | None
    expect: Admission | BreakerView
    probe: bool = False


def admit(at: float, allowed: bool, state: BreakerState, reopen: float = 0.0) -> Step:
    """`reopen` is an offset from T0 (0: none); an allowed non-CLOSED admission is the probe."""
    probe = allowed and state is not CLOSED
    return Step(at, None, Admission(allowed, probe, state, T0 + reopen if reopen else 0.0))


def rec(
    at: float,
    outcome: Outcome,
    state: BreakerState,
    consecutive: int,
    reopen: float = 0.0,
    *,
    probe: bool = False,
) -> Step:
    view = BreakerView(state, T0 + reopen if reopen else 0.0, consecutive)
    return Step(at, outcome, view, probe)


# Opens at T0 + 1 with reopen_at T0 + 31 (three failures in a row).
_OPEN_AT_1 = [rec(0, FAIL, CLOSED, 1), rec(0.5, FAIL, CLOSED, 2), rec(1, FAIL, OPEN, 3, 31)]

SCENARIOS: dict[str, list[Step]] = {
    "consecutive failures open it; a success resets the count": [
        rec(0, FAIL, CLOSED, 1),
        rec(1, OK, CLOSED, 0),
        rec(2, FAIL, CLOSED, 1),
        rec(3, FAIL, CLOSED, 2),
        admit(3.5, True, CLOSED),
        rec(4, FAIL, OPEN, 3, 34),
        admit(4.5, False, OPEN, 34),
    ],
    "open rejects until reopen_at, then exactly one probe; others wait for its lease": [
        *_OPEN_AT_1,
        admit(30.75, False, OPEN, 31),
        admit(31, True, HALF_OPEN),
        admit(31.5, False, HALF_OPEN, 36),
        # Calls admitted before it opened finish now: only the probe decides.
        rec(32, OK, HALF_OPEN, 3, 36),
        rec(32.5, FAIL, HALF_OPEN, 3, 36),
        admit(35.75, False, HALF_OPEN, 36),
    ],
    "outcomes of earlier calls while open change nothing": [
        *_OPEN_AT_1,
        rec(20, FAIL, OPEN, 3, 31),
        rec(21, OK, OPEN, 3, 31),
        rec(22, NEUTRAL, OPEN, 3, 31, probe=True),
        admit(30.5, False, OPEN, 31),
    ],
    "a probe success closes it and resets every count": [
        *_OPEN_AT_1,
        admit(31, True, HALF_OPEN),
        rec(32, OK, CLOSED, 0, probe=True),
        admit(32.5, True, CLOSED),
        rec(33, FAIL, CLOSED, 1),
        rec(34, FAIL, CLOSED, 2),
        rec(35, FAIL, OPEN, 3, 65),
    ],
    "a probe failure opens it again for open_seconds": [
        *_OPEN_AT_1,
        admit(31, True, HALF_OPEN),
        rec(33, FAIL, OPEN, 4, 63, probe=True),
        admit(33.5, False, OPEN, 63),
        admit(62.75, False, OPEN, 63),
        admit(63, True, HALF_OPEN),
    ],
    "a neutral probe releases its lease without a transition": [
        *_OPEN_AT_1,
        admit(31, True, HALF_OPEN),
        admit(32, False, HALF_OPEN, 36),
        rec(33, NEUTRAL, HALF_OPEN, 3, 33, probe=True),
        admit(33.5, True, HALF_OPEN),
        admit(34, False, HALF_OPEN, 38.5),
    ],
    "an expired lease lets the next caller probe; a late probe's outcome still counts": [
        *_OPEN_AT_1,
        admit(31, True, HALF_OPEN),
        admit(35.75, False, HALF_OPEN, 36),
        admit(36, True, HALF_OPEN),
        admit(36.5, False, HALF_OPEN, 41),
        rec(37, OK, CLOSED, 0, probe=True),
        # The first prober answers last: the breaker is closed, so it is an ordinary failure.
        rec(38, FAIL, CLOSED, 1, probe=True),
    ],
    "the failure rate opens it once min_requests calls are in the window": [
        rec(0, OK, CLOSED, 0),
        rec(1, FAIL, CLOSED, 1),
        rec(2, OK, CLOSED, 0),
        rec(3, FAIL, CLOSED, 1),  # 2 of 4 failed: the rate is met, min_requests is not
        rec(4, OK, CLOSED, 0),
        rec(5, FAIL, OPEN, 1, 35),  # 3 of 6
    ],
    "a window that ends takes its counts; only a failure is judged": [
        rec(1, OK, CLOSED, 0),
        rec(2, FAIL, CLOSED, 1),
        rec(3, OK, CLOSED, 0),
        rec(4, FAIL, CLOSED, 1),
        rec(5, OK, CLOSED, 0),
        # Window T0+10: had the 5 calls above stayed, 3 of 6 failed would open it here.
        rec(10, FAIL, CLOSED, 1),
        rec(11, OK, CLOSED, 0),
        rec(12, FAIL, CLOSED, 1),
        rec(13, OK, CLOSED, 0),
        rec(14, FAIL, CLOSED, 1),
        rec(15, OK, CLOSED, 0),  # 3 of 6 failed, but a success never opens it
        rec(16, FAIL, OPEN, 1, 46),  # 4 of 7
    ],
    "neutral outcomes count nowhere": [
        rec(0, FAIL, CLOSED, 1),
        rec(1, FAIL, CLOSED, 2),
        rec(2, NEUTRAL, CLOSED, 2),
        rec(2.5, NEUTRAL, CLOSED, 2, probe=True),
        rec(3, FAIL, OPEN, 3, 33),
    ],
}


def replay(steps: list[Step], machine: BreakerMachine, config: BreakerConfig = CONFIG) -> None:
    for i, step in enumerate(steps):
        now = T0 + step.at
        if step.outcome is None:
            got: Admission | BreakerView = machine.admit(now, config)
        else:
            machine.record(step.outcome, now, config, probe=step.probe)
            got = machine.view()
        assert got == step.expect, f"step {i} at +{step.at}"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_machine_follows_the_table(name: str) -> None:
    replay(SCENARIOS[name], BreakerMachine())


def test_states_are_the_proto_enum_values() -> None:
    assert CLOSED == admin_service_pb2.BREAKER_STATE_CLOSED
    assert OPEN == admin_service_pb2.BREAKER_STATE_OPEN
    assert HALF_OPEN == admin_service_pb2.BREAKER_STATE_HALF_OPEN


def test_window_index_is_aligned_to_the_epoch() -> None:
    assert window_index(T0, CONFIG) == window_index(T0 + 9.75, CONFIG)
    assert window_index(T0 + 10, CONFIG) == window_index(T0, CONFIG) + 1


def test_batched_successes_count_in_their_window_only() -> None:
    machine = BreakerMachine()
    machine.record(FAIL, T0 + 1, CONFIG)
    current = window_index(T0 + 1, CONFIG)
    machine.add_successes(4, current, T0 + 2, T0 + 3, CONFIG)
    assert (machine.total, machine.failures) == (5, 1)
    machine.add_successes(7, current - 1, T0 - 1, T0 + 3, CONFIG)
    assert machine.total == 5  # from a window that has ended


def test_batched_successes_reset_only_failures_older_than_the_newest_success() -> None:
    machine = BreakerMachine()
    machine.record(FAIL, T0 + 2, CONFIG)
    window = window_index(T0, CONFIG)
    machine.add_successes(3, window, T0 + 1, T0 + 3, CONFIG)
    assert machine.consecutive == 1  # every batched success came before the failure
    machine.add_successes(1, window, T0 + 2.5, T0 + 3, CONFIG)
    assert machine.consecutive == 0


def test_batched_successes_are_ignored_unless_closed() -> None:
    machine = BreakerMachine()
    for at in (0, 0.5, 1):
        machine.record(FAIL, T0 + at, CONFIG)
    before = (machine.total, machine.consecutive)
    machine.add_successes(10, window_index(T0, CONFIG), T0 + 2, T0 + 2, CONFIG)
    assert machine.state is OPEN
    assert (machine.total, machine.consecutive) == before


def test_thresholds_are_read_on_each_call() -> None:
    machine = BreakerMachine()
    stricter = CONFIG.model_copy(update={"consecutive_failures": 1, "open_seconds": 7})
    machine.record(FAIL, T0, stricter)
    assert machine.view() == BreakerView(OPEN, T0 + 7, 1)
