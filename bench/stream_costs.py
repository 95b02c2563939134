"""Where an open stream's memory and a relayed chunk's CPU go, process by process.

The concurrent-streams table (bench/streams.py) gives the suite's CPU per relayed chunk
with each stream's setup folded in, and the suite's memory per open stream. This
scenario separates them, for Envoy, the router and the provider each:

- CPU per relayed chunk, setup excluded: `STREAMS` concurrent streams run twice with the
  same 5 s length, once carrying `FEW_CHUNKS` chunks (one every 0.5 s) and once
  `MANY_CHUNKS` (one every 0.1 s), each twice, alternating. The same streams with the
  same setup differ only in the chunks relayed, so the difference of CPU over the
  difference of chunks is the CPU of one chunk; what remains of the `FEW_CHUNKS` runs,
  over the streams, is the CPU of one stream's setup (request, routing, the provider
  call, the usage record, the end).
- Memory per open stream: each process's resident memory at its peak during the first
  run less before it, over the streams (later runs reuse what the first one grew the
  processes to); for Envoy also its allocator's bytes in use (the admin `/memory`
  `allocated`, every `FEW_CHUNKS` run), which counts what Envoy holds for the streams
  without the allocator's caches.

    python -m bench.stream_costs [--streams N]
    make bench                   # also writes the section to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import (
    CpuMeter,
    PeakSampler,
    RssPeak,
    bare_grpc_stream_message_cpu,
    stack_pids,
)
from bench.streams import SETTLE_S, StreamsResult, pace, run_streams
from tests.support.gateway import Gateway, running_gateway

SECTION = "## Where a stream's CPU and memory go"
STREAMS = 1000
FEW_CHUNKS, FEW_INTERVAL_S = 10, 0.5
MANY_CHUNKS, MANY_INTERVAL_S = 50, 0.1
ROUNDS = 2
# The rows of the table, in order: the request path, then the services a chat stream
# does not use (they should cost nothing).
PATH = ("envoy", "router", "provider")


class EnvoyHeapPeak(PeakSampler):
    """Envoy's allocator bytes in use (admin /memory) at their peak."""

    def __init__(self, admin_url: str, interval: float = 0.2) -> None:
        super().__init__(interval)
        self._url = admin_url + "/memory"

    def now(self) -> float:
        with urllib.request.urlopen(self._url, timeout=5) as answer:
            return float(json.load(answer)["allocated"])


@dataclass
class Run:
    """One run of `streams` streams: what each group of processes spent and held."""

    chunks: int
    result: StreamsResult
    cpu_s: dict[str, float]
    rss_kib_per_stream: dict[str, float]
    envoy_heap_kib_per_stream: float


@dataclass
class Costs:
    streams: int
    few: list[Run] = field(default_factory=list)
    many: list[Run] = field(default_factory=list)
    # One bare grpc.aio server-streamed message, written and read in one process.
    grpc_message_us: float = 0.0

    def _mean(self, runs: list[Run], name: str) -> tuple[float, float]:
        """(CPU seconds, chunks) of group `name`, averaged over `runs`."""
        return (
            sum(r.cpu_s[name] for r in runs) / len(runs),
            sum(r.chunks for r in runs) / len(runs),
        )

    def chunk_us(self, name: str) -> float:
        few_cpu, few_chunks = self._mean(self.few, name)
        many_cpu, many_chunks = self._mean(self.many, name)
        return (many_cpu - few_cpu) / (many_chunks - few_chunks) * 1e6

    def piece_us(self, name: str) -> float:
        """CPU per piece the upstream sent (coalesced pieces share a chunk's cost)."""
        few_cpu, _ = self._mean(self.few, name)
        many_cpu, _ = self._mean(self.many, name)
        return (many_cpu - few_cpu) / (self.streams * (MANY_CHUNKS - FEW_CHUNKS)) * 1e6

    def delivered_share(self) -> float:
        """Chunks the clients received in the MANY_CHUNKS runs over the pieces sent."""
        _, many_chunks = self._mean(self.many, PATH[0])
        return many_chunks / (self.streams * MANY_CHUNKS)

    def setup_us(self, name: str) -> float:
        few_cpu, few_chunks = self._mean(self.few, name)
        return (few_cpu - self.chunk_us(name) / 1e6 * few_chunks) / self.streams * 1e6

    def rss_kib(self, name: str) -> float:
        # The first run only: a process keeps the memory it grew to (Python's and the C
        # allocators' free lists), so later runs reuse it and their growth understates.
        return self.few[0].rss_kib_per_stream[name]

    def envoy_heap_kib(self) -> float:
        return sum(r.envoy_heap_kib_per_stream for r in self.few) / len(self.few)

    def failures(self) -> int:
        return sum(r.result.streams - r.result.completed for r in self.few + self.many)


def _groups(gateway: Gateway) -> dict[str, list[int]]:
    pids = stack_pids(gateway.stack)
    groups = {name: pids[name] for name in PATH}
    groups["other services"] = [p for name, ps in pids.items() if name not in PATH for p in ps]
    return groups


def _one_run(gateway: Gateway, groups: Mapping[str, list[int]], streams: int, many: bool) -> Run:
    chunks, interval = (MANY_CHUNKS, MANY_INTERVAL_S) if many else (FEW_CHUNKS, FEW_INTERVAL_S)
    pace(gateway, chunks, interval)
    time.sleep(SETTLE_S)
    url = gateway.public_url + "/v1/chat/completions"
    cpu = CpuMeter(groups)
    with contextlib.ExitStack() as sampling:
        heap = sampling.enter_context(EnvoyHeapPeak(gateway.admin_url))
        peaks = {name: sampling.enter_context(RssPeak(pids)) for name, pids in groups.items()}
        cpu.start()
        result = run_streams(url, streams, chunks)
        cpu.stop()
    return Run(
        chunks=result.chunks,
        result=result,
        cpu_s=dict(cpu.spent),
        rss_kib_per_stream={n: (p.peak - p.start) * 1024 / streams for n, p in peaks.items()},
        envoy_heap_kib_per_stream=(heap.peak - heap.start) / 1024 / streams,
    )


def run_scenario(work: Path, streams: int = STREAMS) -> Costs:
    """The default stack, then ROUNDS pairs of runs (few chunks, many chunks)."""
    costs = Costs(streams=streams)
    with running_gateway(work, record=False) as gateway:
        pace(gateway)
        run_streams(gateway.public_url + "/v1/chat/completions", 20)  # warm-up
        groups = _groups(gateway)
        for _ in range(ROUNDS):
            costs.few.append(_one_run(gateway, groups, streams, many=False))
            costs.many.append(_one_run(gateway, groups, streams, many=True))
            print(f"stream costs: {costs.few[-1]}\n{costs.many[-1]}", flush=True)
    costs.grpc_message_us = asyncio.run(bare_grpc_stream_message_cpu())
    return costs


def section(costs: Costs, measured: str, command: str) -> list[str]:
    """The RESULTS.md section; `command` is Markdown."""
    names = [*PATH, "other services"]
    rows = [
        f"| {name} | {costs.setup_us(name):,.0f} | {costs.chunk_us(name):,.0f} |"
        f" {costs.piece_us(name):,.0f} | {costs.rss_kib(name):,.0f} |"
        + (f" {costs.envoy_heap_kib():,.0f} |" if name == "envoy" else " - |")
        for name in names
    ]
    total = (
        f"| **suite** | **{sum(costs.setup_us(n) for n in names):,.0f}** |"
        f" **{sum(costs.chunk_us(n) for n in names):,.0f}** |"
        f" **{sum(costs.piece_us(n) for n in names):,.0f}** |"
        f" **{sum(costs.rss_kib(n) for n in names):,.0f}** | - |"
    )
    return [
        SECTION,
        "",
        f"Measured {measured}.",
        f"Command: {command}.",
        f"{costs.streams:,} concurrent streams through the default stack (as in the table"
        f" above), {ROUNDS} runs each of {FEW_CHUNKS} chunks (one every {FEW_INTERVAL_S:g} s)"
        f" and of {MANY_CHUNKS} chunks (one every {MANY_INTERVAL_S:g} s), alternating; streams"
        f" that did not complete over all runs: {costs.failures():,}.",
        "",
        "| process | CPU per stream's setup, us | CPU per relayed chunk, us |"
        " CPU per upstream piece, us | RSS per open stream, KiB |"
        " Envoy's heap in use per open stream, KiB |",
        "|---|---|---|---|---|---|",
        *rows,
        total,
        "",
        "CPU per relayed chunk: the difference of each process's CPU between the runs with"
        f" {MANY_CHUNKS} and with {FEW_CHUNKS} chunks over the difference of chunks the"
        " clients received (same streams, same length: only the chunks differ; pieces the"
        " provider received together arrive as one chunk), so no setup is in it. In the"
        f" {MANY_CHUNKS}-piece runs the clients received {costs.delivered_share():.0%} of the"
        " pieces as chunks of their own, the rest coalesced under the load; CPU per upstream"
        " piece divides the same difference by the pieces sent instead, so coalesced pieces"
        " share one chunk's cost. CPU per stream's setup: the rest of the"
        f" {FEW_CHUNKS}-chunk runs' CPU over the streams (the request, routing, the provider"
        " call, the usage record and the end of the stream). RSS: each process's resident"
        " memory at its peak during the first run (sampled every 0.2 s) less before it, over"
        " the streams; the first, because a process keeps the memory it grew to and later"
        " runs reuse it. Envoy's heap: its allocator's bytes in use (admin"
        " `/memory` `allocated`) at the peak less before, without the allocator's caches."
        " Other services: session, tool and investigation, which a chat stream does not"
        " call.",
        "",
        "For scale: one bare grpc.aio server-streamed message, written by a server and read"
        f" by a client in one process, costs {costs.grpc_message_us:,.0f} us of CPU on this"
        " machine (streams of 50 messages, setup included). The router reads one such"
        " message from the provider and writes one to Envoy per chunk, and the provider"
        " writes one per chunk after reading the upstream's event: most of each one's"
        " per-chunk figure is this gRPC cost, not the gateway's own code.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=STREAMS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llmgw-stream-costs-") as tmp:
        costs = run_scenario(Path(tmp), args.streams)
    command = f"`python -m bench.stream_costs --streams {args.streams}`"
    print("\n".join(section(costs, time.strftime("%Y-%m-%d"), command)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
