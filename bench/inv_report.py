"""The RESULTS.md section of the concurrent-investigations scenario (bench/investigations.py).

Besides the figures it states the two bounds of a batch's throughput, computed from the
same runs: the worker slots (replicas x workers investigations at once, each holding its
slot for an investigation's run time) and the CPU (the cores over the CPU one
investigation costs every process of the run together).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from bench.inv_stats import GATEWAY_PROCESSES, RunResult

FAKES = ("fake model", "fake Kubernetes API")


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:,.0f}"


def _s(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _values(values: tuple[int, ...]) -> str:
    return " or ".join(str(v) for v in values) or "-"


def waves_s(run: RunResult) -> float:
    """The batch's wall time if only the slots bounded it: waves of run-time p50 each."""
    return math.ceil(run.figures.count / run.slots) * run.figures.run.p50


def slot_bound(run: RunResult) -> float:
    """Investigations per second the slots allow at this run time (p50)."""
    return run.slots / run.figures.run.p50 if run.figures.run.p50 > 0 else float("nan")


def cpu_bound(run: RunResult, cores: int) -> float:
    """Investigations per second the cores allow at the CPU every process of the run
    (gateway, fakes, load client) spent per investigation."""
    spent = sum(run.cpu_s.values()) + run.client_cpu_s
    return cores * run.figures.count / spent if spent > 0 else float("nan")


def _label(run: RunResult) -> str:
    return f"{run.replicas} x {run.workers}"


def _run_rows(runs: Sequence[RunResult]) -> list[str]:
    rows = []
    for run in runs:
        f = run.figures
        rows.append(
            f"| {_label(run)} ({run.slots}) | {f.succeeded} / {f.count} ({f.concluded}) |"
            f" {run.wall_s:.2f} |"
            f" {_s(f.duration.p50)} / {_s(f.duration.p95)} / {_s(f.duration.max)} |"
            f" {_s(f.queue.p50)} / {_s(f.queue.p95)} | {_s(f.run.p50)} |"
            f" {_ms(f.step_added.p50)} / {_ms(f.step_added.p95)} |"
            f" {run.rss_before_mib:.0f} / {run.rss_peak_mib:.0f} / {run.rss_after_mib:.0f} |"
        )
    return rows


def _bound_rows(runs: Sequence[RunResult], cores: int) -> list[str]:
    return [
        f"| {_label(run)} | {run.figures.count / run.wall_s:.1f} |"
        f" {slot_bound(run):.1f} ({_s(waves_s(run))} s) | {cpu_bound(run, cores):.1f} |"
        for run in runs
    ]


def _cpu_rows(runs: Sequence[RunResult]) -> list[str]:
    def row(name: str, values: Sequence[float], bold: bool = False) -> str:
        cells = " | ".join(f"**{v:,.0f}**" if bold else f"{v:,.0f}" for v in values)
        return f"| {f'**{name}**' if bold else name} | {cells} |"

    per = [run.figures.count for run in runs]
    rows = [
        row(name, [run.cpu_s[name] / n * 1000 for run, n in zip(runs, per, strict=True)])
        for name in GATEWAY_PROCESSES
    ]
    rows.append(
        row(
            "gateway total",
            [run.gateway_cpu_s / n * 1000 for run, n in zip(runs, per, strict=True)],
            bold=True,
        )
    )
    rows += [
        row(name, [run.cpu_s[name] / n * 1000 for run, n in zip(runs, per, strict=True)])
        for name in FAKES
    ]
    rows.append(
        row("load client", [run.client_cpu_s / n * 1000 for run, n in zip(runs, per, strict=True)])
    )
    return rows


def other_cores(run: RunResult) -> float:
    """Cores the rest of the machine used on average during the batch."""
    return run.other_cpu_s / run.wall_s if run.wall_s > 0 else 0.0


# Above this many cores of other work on average, the section says the machine was shared.
SHARED_CORES = 0.1


def _shape(runs: Sequence[RunResult]) -> str:
    """Model steps and tool calls per investigation, once when every run agrees."""

    def of(run: RunResult) -> str:
        f = run.figures
        return (
            f"{_values(f.steps)} model steps, {_values(f.context_calls)} context tool calls"
            f" and {_values(f.model_calls)} the model asked for"
        )

    shapes = [of(run) for run in runs]
    if len(set(shapes)) == 1:
        return f"every run: {shapes[0]}"
    return "; ".join(f"{_label(run)}: {shape}" for run, shape in zip(runs, shapes, strict=True))


def _sharing(runs: Sequence[RunResult]) -> str:
    cores = ", ".join(f"{other_cores(run):.2f}" for run in runs)
    loads = ", ".join(f"{run.load_before:.1f}" for run in runs)
    shared = max(other_cores(run) for run in runs) > SHARED_CORES
    verdict = (
        "**This measurement shared the machine with other work**, which took CPU from the"
        " runs and stretched their times: compare runs with that in mind."
        if shared
        else "The machine had no other notable work during the runs."
    )
    return (
        f"Other work on the machine during each batch (every process but the run's, from"
        f" /proc/stat), in cores on average: {cores}; load average before each run:"
        f" {loads}. {verdict}"
    )


def section(
    runs: Sequence[RunResult], measured: str, command: str, model_delay_s: float
) -> list[str]:
    """The section: `measured` says when and where, `command` (Markdown) how."""
    cores = os.cpu_count() or 1
    first = runs[0].figures
    return [
        "## Concurrent investigations",
        "",
        f"Measured {measured}.",
        f"Command: {command}.",
        f"Each run: a gateway of its own (bench/investigations.py) whose Tool service reads the"
        f" fake Kubernetes API (`crashloop` scenario), and a scripted fake model that answers"
        f" every call after a fixed **{model_delay_s:g} s**: first one tool call"
        f" (`kubernetes_list_deployments`), then a JSON conclusion citing evidence."
        f" {first.count} investigations of the same alert are created at once (REST"
        f" `POST /v1/investigations`, all sent together after a warm-up of a few), each"
        f" followed over its SSE event stream (`GET /v1/{{name}}:streamEvents`) until it"
        f" ends, then read back (`GET /v1/{{name}}`). The context cache is off"
        f" (`context_cache_seconds: 0`), so each investigation makes its own context calls as"
        f" investigations of different alerts would. Runs: investigation replicas x"
        f" `investigations.workers` (8 is the default), in brackets the investigations that"
        f" run at once.",
        "",
        "| replicas x workers (slots) | succeeded (concluded) | batch wall s |"
        " duration p50 / p95 / max s |"
        " queue wait p50 / p95 s | run time p50 s | gateway per model step p50 / p95 ms |"
        " investigation RSS before / peak / after MiB |",
        "|---|---|---|---|---|---|---|---|",
        *_run_rows(runs),
        "",
        f"Per investigation, {_shape(runs)}. Concluded: a complete"
        " result whose root cause kept its evidence (the scripted conclusion held)."
        " Batch wall: from sending the"
        " creates until the last event stream ended (load client's clock). Every other time"
        " is the investigation service's own: duration = create to end time, queue wait ="
        " create to start time, run time = start to end time (a worker slot held). Gateway"
        " per model step: from a step's `model_step` progress event to the next stage's,"
        " less the tool call the model asked for in it, less the fake's"
        f" {model_delay_s:g} s: the router, the provider and Envoy on the model call, and the"
        " investigation service's events and record updates in Redis around it. RSS: the"
        " investigation replicas summed, before the batch, its peak (sampled every 0.1 s) and"
        " right after.",
        "",
        "CPU per investigation, ms, by process (from /proc over the batch; replicas summed):",
        "",
        "| process | " + " | ".join(_label(run) for run in runs) + " |",
        "|---|" + "---|" * len(runs),
        *_cpu_rows(runs),
        "",
        "The fakes and the load client share the machine's cores with the gateway but are not"
        " part of it. " + _sharing(runs),
        "",
        "What bounds throughput:",
        "",
        f"| replicas x workers | investigations/s measured | slot bound: slots / run time"
        f" p50 (waves x run time) | CPU bound: {cores} cores / CPU per investigation |",
        "|---|---|---|---|",
        *_bound_rows(runs, cores),
        "",
        "An investigation holds a worker slot for its whole run, most of it waiting: on its"
        f" context calls, then on two model answers of {model_delay_s:g} s each. With fewer"
        " slots than investigations, the batch runs in waves (ceil(investigations / slots))"
        " of one run time each, and throughput is slots / run time: the model's delay, not"
        " the CPU, bounds it, and more workers or replicas raise it. With a slot for every"
        " investigation the slots stop bounding it, and two other limits show. A replica's"
        " worker claims one job at a time (a queue read, a claim script and the record, on"
        " the event loop the running investigations share), so the last investigations of"
        " the batch still wait in the queue while the first already run (the queue wait of"
        " those rows), and a second replica claims in parallel. And every process"
        " runs at once on these cores, which stretches each investigation's run time and the"
        " gateway's time per model step: the CPU bound (every process of the run, the fakes"
        " and the load client included, over these cores) is then the nearer one, and a"
        f" second replica adds processes that share the same {cores} cores rather than"
        " capacity. A real"
        " model answers in seconds, not half a second: the same slots then give"
        " proportionally fewer investigations per second while the CPU per investigation"
        " stays the same, so on a real model the slots (replicas x workers) are what bounds"
        " throughput long before the CPU.",
        "",
    ]
