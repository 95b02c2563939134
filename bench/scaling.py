"""Scaling out: the same unary load on one router and one provider, then on several.

Each layout is a stack of its own (`tests.support.gateway.running_gateway` with
`replicas`), Envoy balancing each service's replicas round robin; wrk at concurrency 16
and 64 against REST `POST /v1/chat/completions` (`gpt-4o-mini` on the fake OpenAI
upstream), with the request path's CPU (Envoy, every router and provider replica) per
request over each run.

The section reports each layout's throughput against one of each; on a machine with
few cores it shows what a second replica of each brings there, on one with more how far
the gateway scales out.

    python -m bench.run --scenario scaling [--duration S]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import gateway_meter
from tests.support.gateway import running_gateway

SECTION = "## Scaling out"
LAYOUTS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2))
CONCURRENCIES = (16, 64)
WARM_UP_S = 2.0
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}


@dataclass(frozen=True)
class ScalingRun:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float


def run_scenario(
    work: Path,
    duration: float,
    wrk: Callable[..., Any],
    layouts: Sequence[tuple[int, int]] = LAYOUTS,
) -> dict[tuple[int, int, int], ScalingRun]:
    """wrk runs per (routers, providers, concurrency)."""
    body_file = work / "scaling.json"
    body_file.write_text(json.dumps(BODY))
    runs: dict[tuple[int, int, int], ScalingRun] = {}
    for routers, providers in layouts:
        layout_dir = work / f"r{routers}p{providers}"
        layout_dir.mkdir()
        replicas = {"router": routers, "provider": providers}
        with running_gateway(layout_dir, replicas=replicas, record=False) as gw:
            meter = gateway_meter(gw.stack)
            url = gw.public_url + "/v1/chat/completions"
            for concurrency in CONCURRENCIES:
                wrk(url, concurrency, WARM_UP_S, body_file, "unused")
                meter.start()
                result = wrk(url, concurrency, duration, body_file, "unused")
                meter.stop()
                run = ScalingRun(
                    rps=result.rps,
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                    errors=result.errors,
                    cpu_us=meter.spent["gateway"] / max(result.requests, 1) * 1e6,
                )
                runs[(routers, providers, concurrency)] = run
                print(f"routers={routers} providers={providers} c={concurrency}: {run}")
    return runs


def section(
    runs: dict[tuple[int, int, int], ScalingRun], cores: int, measured: str, command: str
) -> list[str]:
    """The RESULTS.md section: one row per layout and concurrency."""
    base = {c: runs[(r, p, c)] for (r, p, c) in runs if (r, p) == LAYOUTS[0]}
    rows = [
        f"| {r} router{'s' * (r > 1)}, {p} provider{'s' * (p > 1)} | {c} | {run.rps:,.0f}"
        f" ({run.rps / base[c].rps:.2f}x) | {run.p50_ms:.2f} / {run.p99_ms:.2f} |"
        f" {run.cpu_us:,.0f} | {run.errors} |"
        for (r, p, c), run in runs.items()
    ]
    return [
        SECTION,
        "",
        f"Measured {measured}.",
        f"Command: {command}.",
        "Each layout is a stack of its own; wrk against REST `POST /v1/chat/completions`"
        " (`gpt-4o-mini` on the fake OpenAI upstream); CPU per request: Envoy and every"
        " router and provider replica, from /proc.",
        "",
        "| layout | concurrency | req/s (vs one of each) | p50 / p99 ms | gateway CPU us/request"
        " | errors |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"This machine has {cores} cores, which every process of the path shares with the"
        " fake upstream and wrk, so a layout's throughput here follows its CPU per request"
        " (the column beside it) more than its number of replicas. The same command on a"
        " machine with more cores measures how far the gateway scales out.",
        "",
    ]
