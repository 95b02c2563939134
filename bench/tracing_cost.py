"""What tracing costs: the same unary chat through a gateway with tracing off and through
one tracing every request (sampler ratio 1.0) to an OTLP receiver on this machine.

Each configuration is a stack of its own (`tests.support.gateway.running_gateway`), the
traced one given OTEL_EXPORTER_OTLP_ENDPOINT etc. through the launcher's environment, as
`make up` passes them; the receiver is the tests' in-process one
(`tests.support.otlp`), so export costs what a local collector would. wrk runs at
concurrency 1 and 16; the gateway's CPU (Envoy, router, provider) is measured over each
run, and the spans received are counted (8 per chat: two Envoy hops, router server, chat
and client, provider server, chat and HTTP).

    python -m bench.run --scenario tracing [--duration S]    # this section of RESULTS.md
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import gateway_meter
from tests.support.gateway import Gateway, running_gateway
from tests.support.otlp import running_receiver

SECTION = "## Tracing cost"
CONCURRENCIES = (1, 16)
WARM_UP_S = 2.0


@dataclass(frozen=True)
class TracingRun:
    """One configuration at one concurrency."""

    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    cpu_s_per_1k: float


@contextmanager
def _gateway(work: Path, traced: bool) -> Iterator[tuple[Gateway, Callable[[], int]]]:
    """A stack, traced or not, and a count of the spans received so far."""
    name = "traced" if traced else "untraced"
    (work / name).mkdir()
    if not traced:
        with running_gateway(work / name, record=False) as gw:
            yield gw, lambda: 0
        return
    with running_receiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
        }
        with running_gateway(work / name, record=False, env=lambda fakes: env) as gw:
            yield gw, lambda: len(receiver.spans)


def run_scenario(
    work: Path, body: dict[str, Any], duration: float, wrk: Any
) -> tuple[dict[tuple[str, int], TracingRun], int]:
    """Runs per (configuration, concurrency), and the spans the traced one exported."""
    body_file = work / "tracing-body.json"
    body_file.write_text(json.dumps(body))
    runs: dict[tuple[str, int], TracingRun] = {}
    spans = 0
    for traced in (False, True):
        name = "traced" if traced else "untraced"
        with _gateway(work, traced) as (gw, received):
            url = gw.public_url + "/v1/chat/completions"
            meter = gateway_meter(gw.stack)
            for concurrency in CONCURRENCIES:
                wrk(url, concurrency, WARM_UP_S, body_file, "unused")
                meter.start()
                result = wrk(url, concurrency, duration, body_file, "unused")
                meter.stop()
                requests = max(result.requests, 1)
                runs[(name, concurrency)] = TracingRun(
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                    rps=result.rps,
                    errors=result.errors,
                    cpu_s_per_1k=meter.spent["gateway"] * 1000 / requests,
                )
                print(f"tracing {name} c={concurrency}: {runs[(name, concurrency)]}", flush=True)
            spans = received()
    return runs, spans


def section(
    runs: dict[tuple[str, int], TracingRun], spans: int, measured: str, command: str
) -> list[str]:
    """The RESULTS.md section: each concurrency off and on, and what tracing added."""
    rows = []
    for concurrency in CONCURRENCIES:
        off, on = runs[("untraced", concurrency)], runs[("traced", concurrency)]
        for name, run in (("off", off), ("on, ratio 1.0", on)):
            rows.append(
                f"| {concurrency} | {name} | {run.p50_ms:.2f} | {run.p99_ms:.2f} |"
                f" {run.rps:,.0f} | {run.errors} | {run.cpu_s_per_1k:.2f} |"
            )
        rows.append(
            f"| {concurrency} | **added** | {on.p50_ms - off.p50_ms:+.2f} |"
            f" {on.p99_ms - off.p99_ms:+.2f} | {on.rps / off.rps - 1 if off.rps else 0:+.0%} |"
            f" | {on.cpu_s_per_1k - off.cpu_s_per_1k:+.2f} |"
        )
    return [
        SECTION,
        "",
        f"Measured {measured}; {command}.",
        "",
        "A unary chat through the default stack, tracing off and tracing every request to",
        "an OTLP receiver on the same machine (gRPC, sampler ratio 1.0; Envoy's two hops",
        "and every service export). CPU: Envoy, router and provider together, per 1,000",
        "requests.",
        "",
        "| concurrency | tracing | p50 ms | p99 ms | req/s | errors | CPU s / 1k req |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Spans received from the traced stack: {spans:,}.",
    ]
