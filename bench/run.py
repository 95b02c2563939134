"""`make bench`: what the gateway adds to a fixed-answer upstream, written to RESULTS.md.

The same requests go to the fake OpenAI upstream directly and through the whole gateway
(REST -> Envoy -> Router -> Envoy -> Provider -> upstream), with wrk at concurrency 1
and 16, and streamed time to first token from one sequential client. Then the fallback
scenario (bench/fallback.py): a model whose primary deployment fails every other request,
through the gateway at the same concurrencies, and per route from one sequential client.
Then thousands of concurrent paced streams through the default stack (bench/streams.py),
fifty investigations started at once (bench/investigations.py), and last what tracing
every request costs (bench/tracing_cost.py), and what each drop-in surface (Anthropic
Messages, OpenAI Responses, embeddings) costs beside chat completions (bench/surfaces.py).
Run with `python -m bench.run [--duration S] [--replicas router=N,provider=N]`;
`--scenario streams` (or `investigations`, `tracing`, `surfaces`) runs only that scenario and
replaces its section of RESULTS.md.

This module runs the scenarios and writes the file; the main table's text is
bench/report.py's, wrk's invocation bench/wrk.py's, each scenario's in its own module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from bench import (
    fallback,
    inv_report,
    investigations,
    scaling,
    stream_costs,
    streams,
    surfaces,
    tracing_cost,
)
from bench.cpu import CpuMeter, bare_grpc_call_cpu, stack_pids
from bench.fallback_report import run_fallback
from bench.features import run_features
from bench.machine import measured
from bench.report import BODY, GATEWAY_REPEATS, UPSTREAM, report
from bench.ttft import measure
from bench.wrk import WrkResult, wrk
from tests.support.gateway import FAKE_KEYS, running_gateway

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _median_gateway_run(
    meter: CpuMeter, url: str, concurrency: int, duration: float, body: Path
) -> tuple[WrkResult, dict[str, float]]:
    """GATEWAY_REPEATS wrk runs against the gateway: the median one and its CPU."""
    measured: list[tuple[WrkResult, dict[str, float]]] = []
    for _ in range(GATEWAY_REPEATS):
        meter.start()
        result = wrk(url, concurrency, duration, body, "unused")
        meter.stop()
        measured.append((result, dict(meter.spent)))
        print(f"gateway c={concurrency} (one of {GATEWAY_REPEATS}): {result}", flush=True)
    measured.sort(key=lambda item: item[0].rps)
    return measured[len(measured) // 2]


def _tracing_section(args: argparse.Namespace) -> list[str]:
    """The tracing-cost scenario: a stack with tracing off, then one tracing everything."""
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-tracing-") as tmp:
        runs, spans = tracing_cost.run_scenario(Path(tmp), BODY, args.duration, wrk)
    return tracing_cost.section(
        runs,
        spans,
        measured(f"{args.duration:g} s per run"),
        "`make bench` (this section alone: `python -m bench.run --scenario tracing`)",
    )


def _streams_section(args: argparse.Namespace) -> list[str]:
    """The concurrent-streams scenario on a gateway of its own."""
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-streams-") as tmp:
        results = streams.run_scenario(Path(tmp))
    counts = ",".join(str(c) for c in streams.STREAM_COUNTS)
    return streams.section(
        results,
        measured(),
        "`make bench` (this section alone: `python -m bench.run --scenario streams`; the"
        f" same runs, printed: `python -m bench.streams --streams {counts}`)",
    )


def _investigations_section(args: argparse.Namespace) -> list[str]:
    """The concurrent-investigations scenario, each run on a gateway of its own."""
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-investigations-") as tmp:
        results = investigations.run_scenario(Path(tmp))
    runs = ",".join(f"{r}x{w}" for r, w in investigations.RUNS)
    return inv_report.section(
        results,
        measured(),
        "`make bench` (this section alone: `python -m bench.run --scenario investigations`;"
        f" the same runs, printed: `python -m bench.investigations --runs {runs}`)",
        investigations.MODEL_DELAY_S,
    )


def _surfaces_section(args: argparse.Namespace) -> list[str]:
    """The drop-in surfaces scenario on a gateway of its own."""
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-surfaces-") as tmp:
        runs, ttft = surfaces.run_scenario(Path(tmp), args.duration, args.samples, wrk)
    return surfaces.section(
        runs,
        ttft,
        measured(f"{args.duration:g} s per run, TTFT over {args.samples} streams"),
        "`make bench` (this section alone: `python -m bench.run --scenario surfaces`)",
    )


def _stream_costs_section(args: argparse.Namespace) -> list[str]:
    """Where a stream's CPU and memory go, process by process, on a gateway of its own."""
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-stream-costs-") as tmp:
        costs = stream_costs.run_scenario(Path(tmp))
    return stream_costs.section(
        costs,
        measured(),
        "`make bench` (this section alone: `python -m bench.run --scenario stream-costs`;"
        f" printed: `python -m bench.stream_costs --streams {stream_costs.STREAMS}`)",
    )


def _scaling_section(args: argparse.Namespace) -> list[str]:
    """One router and one provider against two of each, each layout a stack of its own."""
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-scaling-") as tmp:
        runs = scaling.run_scenario(Path(tmp), args.duration, wrk)
    return scaling.section(
        runs,
        os.cpu_count() or 1,
        measured(f"{args.duration:g} s per run"),
        "`make bench` (this section alone: `python -m bench.run --scenario scaling`)",
    )


SCENARIOS = {
    surfaces.SECTION: ("surfaces", _surfaces_section),
    stream_costs.SECTION: ("stream-costs", _stream_costs_section),
    scaling.SECTION: ("scaling", _scaling_section),
    streams.SECTION: ("streams", _streams_section),
    investigations.SECTION: ("investigations", _investigations_section),
    tracing_cost.SECTION: ("tracing", _tracing_section),
}


def replace_section(text: str, heading: str, lines: list[str]) -> str:
    """`text` with the section under `heading` (up to the next `## `) replaced by
    `lines`, or with `lines` appended when it has no such section."""
    kept = text.rstrip("\n").split("\n")
    if heading in kept:
        start = kept.index(heading)
        end = next((i for i in range(start + 1, len(kept)) if kept[i].startswith("## ")), len(kept))
        kept[start:end] = lines
    else:
        kept += ["", *lines]
    return "\n".join(kept).rstrip("\n") + "\n"


def _replicas(text: str) -> dict[str, int]:
    pairs = (item.split("=") for item in text.split(",") if item)
    return {name: int(count) for name, count in pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--replicas", dest="replicas_text", default="router=1,provider=1")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--scenario", choices=["all", *(name for name, _ in SCENARIOS.values())], default="all"
    )
    args = parser.parse_args()
    for heading, (name, produce) in SCENARIOS.items():
        if args.scenario == name:
            current = args.output.read_text() if args.output.exists() else "# Benchmark results\n"
            args.output.write_text(replace_section(current, heading, produce(args)))
            print(args.output.read_text())
            return 0
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-") as tmp:
        work = Path(tmp)
        unary, streamed = work / "unary.json", work / "stream.json"
        flaky = work / "flaky.json"
        unary.write_text(json.dumps(BODY))
        streamed.write_text(json.dumps({**BODY, "stream": True}))
        flaky.write_text(json.dumps({**BODY, "model": fallback.MODEL}))
        with running_gateway(
            work,
            replicas=_replicas(args.replicas_text),
            configure=fallback.configure,
            record=False,
        ) as gw:
            urls = {
                "direct": gw.fakes["openai"].base_url + "/chat/completions",
                "gateway": gw.public_url + "/v1/chat/completions",
            }
            # The fake checks its key like OpenAI does; the gateway needs none locally.
            keys = {"direct": FAKE_KEYS["openai"], "gateway": "unused"}
            stack = gw.stack
            meter = CpuMeter(
                {
                    **stack_pids(stack, ("router", "provider")),
                    UPSTREAM: [gw.fakes["openai"].process.pid or 0],
                }
            )
            runs: dict[tuple[str, int], WrkResult] = {}
            cpu: dict[int, dict[str, float]] = {}
            for concurrency in (1, 16):
                for name, url in urls.items():
                    key = keys[name]
                    wrk(url, concurrency, 2, unary, key)  # warm-up: connections, pools, caches
                    if name == "direct":
                        runs[(name, concurrency)] = wrk(url, concurrency, args.duration, unary, key)
                    else:
                        runs[(name, concurrency)], cpu[concurrency] = _median_gateway_run(
                            meter, url, concurrency, args.duration, unary
                        )
                    print(f"{name} c={concurrency}: {runs[(name, concurrency)]}", flush=True)
            ttft = {
                name: asyncio.run(measure(url, streamed.read_bytes(), args.samples, keys[name]))
                for name, url in urls.items()
            }
            print(ttft, flush=True)
            # Last: nothing runs before the healthy figures that did not before this scenario.
            flaky_runs, answered, routes = run_fallback(gw, flaky, args.duration, args.samples)
            runs.update(flaky_runs)
        features = run_features(work, BODY, args.duration, _replicas(args.replicas_text), wrk)
    streams_section = _streams_section(args)
    investigations_section = _investigations_section(args)
    tracing_section = _tracing_section(args)
    surfaces_section = _surfaces_section(args)
    stream_costs_section = _stream_costs_section(args)
    scaling_section = _scaling_section(args)
    grpc_call_us = asyncio.run(bare_grpc_call_cpu())
    text = report(
        args,
        runs,
        ttft,
        cpu,
        grpc_call_us,
        answered=answered,
        routes=routes,
        features=features,
        streams_section=streams_section,
        investigations_section=investigations_section,
    )
    text = replace_section(text, tracing_cost.SECTION, tracing_section)
    text = replace_section(text, surfaces.SECTION, surfaces_section)
    text = replace_section(text, stream_costs.SECTION, stream_costs_section)
    text = replace_section(text, scaling.SECTION, scaling_section)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
