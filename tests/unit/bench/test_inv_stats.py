"""The investigations benchmark's arithmetic (bench/inv_stats.py, bench/inv_report.py):
figures from the JSON the REST API returns, model-step wall times from the events, the
batch's spreads, and the throughput bounds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import inv_report, inv_stats
from bench.inv_stats import GATEWAY_PROCESSES, RunResult
from bench.investigations import parse_runs

T0 = "2026-01-01T10:00:00Z"


def _at(seconds: float) -> str:
    """A protobuf JSON timestamp `seconds` after T0, with nanoseconds as the API writes them."""
    whole = int(seconds)
    return f"2026-01-01T10:00:{whole:02d}.{round((seconds - whole) * 1e9):09d}Z"


def _progress(seconds: float, stage: str) -> dict[str, Any]:
    return {"time": _at(seconds), "progress": {"stage": stage, "percent": 10}}


def _tool(seconds: float, by: str, step: int, took: str) -> dict[str, Any]:
    call: dict[str, Any] = {"id": "c1", "requested_by": by, "duration": took}
    if step:
        call["step"] = step
    return {"time": _at(seconds), "tool_call": call}


EVENTS = [
    _progress(0.1, "gathering_context"),
    _tool(0.3, "context", 0, "0.150s"),
    _progress(0.4, "analyzing"),
    _progress(0.5, "model_step"),
    # Step 1: the model's answer, then two of its tool calls run at once (0.2 s the longest).
    _tool(1.3, "model", 1, "0.200s"),
    _tool(1.3, "model", 1, "0.120s"),
    _progress(1.35, "model_step"),
    # Step 2: the conclusion; then verification, after which no progress counts.
    _progress(1.95, "verifying"),
    {"time": _at(2.0), "state": "INVESTIGATION_STATE_SUCCEEDED"},
]


def test_step_walls_run_from_each_step_to_the_next_stage_less_the_step_s_longest_tool_call() -> (
    None
):
    walls = inv_stats.step_walls(EVENTS)
    assert walls == pytest.approx([1.35 - 0.5 - 0.2, 1.95 - 1.35])


def test_step_walls_ignore_progress_after_the_steps_and_need_a_model_step() -> None:
    assert inv_stats.step_walls([_progress(0.1, "analyzing"), _progress(0.2, "verifying")]) == []
    late = [*EVENTS, _progress(3.0, "verifying")]
    assert len(inv_stats.step_walls(late)) == 2


def test_figures_of_one_investigation() -> None:
    resource = {
        "state": "INVESTIGATION_STATE_SUCCEEDED",
        "create_time": T0,
        "start_time": _at(0.25),
        "end_time": _at(2.0),
        "result": {
            "completeness": "COMPLETENESS_COMPLETE",
            "root_cause": "PAYMENT_API_KEY is not set",
            "root_cause_evidence": [{"tool_call_id": "c3", "excerpt": "PAYMENT_API_KEY"}],
            "steps": 2,
            "tool_calls": [
                {"requested_by": "context", "duration": "0.100s"},
                {"requested_by": "context", "duration": "0.300s"},
                {"requested_by": "model", "step": 1, "duration": "0.200s"},
            ],
        },
    }
    got = inv_stats.figures(resource, EVENTS)
    assert got.succeeded and got.concluded
    assert got.duration_s == pytest.approx(2.0)
    assert got.queue_s == pytest.approx(0.25)
    assert got.run_s == pytest.approx(1.75)
    assert (got.steps, got.context_calls, got.model_calls) == (2, 2, 1)
    assert got.tool_call_s == pytest.approx((0.1, 0.3, 0.2))
    assert len(got.step_s) == 2


def test_a_failed_investigation_without_a_result_counts_as_not_succeeded() -> None:
    resource = {"state": "INVESTIGATION_STATE_FAILED", "create_time": T0, "end_time": _at(1.0)}
    got = inv_stats.figures(resource, [])
    assert not got.succeeded and not got.concluded
    assert (got.queue_s, got.steps, got.model_calls, got.step_s) == (0.0, 0, 0, ())


def test_duration_needs_the_protobuf_seconds_suffix() -> None:
    assert inv_stats.duration("1.5s") == 1.5
    with pytest.raises(ValueError, match="not a protobuf duration"):
        inv_stats.duration("1.5")


def _figures(queue: float, step: float, steps: int = 2) -> inv_stats.InvestigationFigures:
    return inv_stats.InvestigationFigures(
        succeeded=True,
        concluded=True,
        duration_s=queue + 2.0,
        queue_s=queue,
        run_s=2.0,
        steps=steps,
        context_calls=5,
        model_calls=1,
        step_s=(step, step),
        tool_call_s=(0.1,),
    )


def test_batch_spreads_and_the_step_time_less_the_model_delay() -> None:
    items = [_figures(queue=float(i), step=0.5 + i / 100) for i in range(20)]
    items.append(_figures(queue=0.0, step=0.5, steps=3))
    got = inv_stats.batch(items, model_delay_s=0.5)
    assert (got.count, got.succeeded, got.concluded) == (21, 21, 21)
    assert got.queue.max == 19.0 and got.queue.p50 == 9.0
    assert got.queue.p95 == 18.0
    assert got.step_added.p50 == pytest.approx(0.09)
    assert got.steps == (2, 3) and got.context_calls == (5,)


def test_an_empty_spread_is_nan() -> None:
    assert math.isnan(inv_stats.Spread.of([]).p50)


def _run(slots: tuple[int, int], wall: float, other_cpu: float = 0.0) -> RunResult:
    items = [_figures(queue=0.0, step=0.6) for _ in range(50)]
    cpu = dict.fromkeys(GATEWAY_PROCESSES, 1.0) | {"fake model": 0.5, "fake Kubernetes API": 0.5}
    return RunResult(
        replicas=slots[0],
        workers=slots[1],
        figures=inv_stats.batch(items, 0.5),
        wall_s=wall,
        cpu_s=cpu,
        client_cpu_s=1.0,
        other_cpu_s=other_cpu,
        rss_before_mib=80,
        rss_peak_mib=90,
        rss_after_mib=85,
        load_before=0.5,
    )


def test_throughput_bounds_from_slots_and_cpu() -> None:
    run = _run((2, 8), wall=9.0)
    assert run.slots == 16 and run.gateway_cpu_s == 6.0
    # 50 investigations in ceil(50 / 16) = 4 waves of a 2 s run time.
    assert inv_report.waves_s(run) == 8.0
    assert inv_report.slot_bound(run) == 8.0
    # 8 CPU seconds for 50 investigations: 2 cores run 12.5 a second.
    assert inv_report.cpu_bound(run, cores=2) == 12.5


def test_the_section_has_a_row_per_run_and_a_cpu_column_per_run() -> None:
    lines = inv_report.section(
        [_run((1, 8), 14.0), _run((1, 50), 3.0)], "today", "`cmd`", model_delay_s=0.5
    )
    assert lines[0] == "## Concurrent investigations"
    assert any(line.startswith("| 1 x 8 (8) | 50 / 50 (50) | 14.00 |") for line in lines)
    assert any(line.startswith("| 1 x 50 (50) | 50 / 50 (50) | 3.00 |") for line in lines)
    assert "| **gateway total** | **120** | **120** |" in lines


def test_runs_are_replicas_x_workers() -> None:
    assert parse_runs("1x8,2x50,") == [(1, 8), (2, 50)]
    for bad in ("2", "x8", "0x8", "2x-1", "ax8"):
        with pytest.raises(ValueError, match=r"like 2x8|at least 1"):
            parse_runs(bad)


def test_the_section_says_when_other_work_shared_the_machine() -> None:
    quiet = inv_report.section([_run((1, 8), 10.0, other_cpu=0.5)], "today", "`cmd`", 0.5)
    busy = inv_report.section([_run((1, 8), 10.0, other_cpu=5.0)], "today", "`cmd`", 0.5)
    assert any("in cores on average: 0.05;" in line for line in quiet)
    assert not any("shared the machine" in line for line in quiet)
    assert any("in cores on average: 0.50;" in line for line in busy)
    assert any("**This measurement shared the machine with other work**" in line for line in busy)
    assert any("every run: 2 model steps, 5 context tool calls" in line for line in busy)
