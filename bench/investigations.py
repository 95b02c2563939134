"""Fifty investigations started at once: what they cost the gateway and what bounds them.

Each run is a gateway of its own (`tests.support.gateway.running_gateway`) whose Tool
service reads the fake Kubernetes API (the `crashloop` scenario: a crash-looping pod)
and whose investigations use a scripted fake model: one tool call, then a JSON conclusion
citing evidence, each answer held `MODEL_DELAY_S` to look like a model. A run starts
`BATCH` investigations together (REST `POST /v1/investigations`, all sent at once),
follows each over its SSE event stream (`GET /v1/{name}:streamEvents`) to its final
state, then reads it back (`GET /v1/{name}`). The runs vary the investigation replicas
and their `investigations.workers`: replicas x workers investigations run at once.

The context cache (`investigations.context_cache_seconds`) is off, so every
investigation makes its own context calls, as investigations of different alerts would.

    python -m bench.investigations [--runs 1x8,2x8,1x50,2x50] [--batch 50]
    python -m bench.run --scenario investigations       # also writes RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import inv_stats
from bench.cpu import CpuMeter, RssPeak, stack_pids
from bench.inv_report import section
from bench.inv_stats import RunResult
from services.launcher.stack import REPO_ROOT
from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import Gateway, running_gateway
from tests.support.kube import write_kubeconfig

MODEL = "investigator"
UPSTREAM_MODEL = "inv-bench-model"
MODEL_DELAY_S = 0.5
BATCH = 50
WARMUP = 4
# (investigation replicas, workers per replica); 8 is the default of `workers`.
RUNS = ((1, 8), (2, 8), (1, 50), (2, 50))
NS = "shop"
POD = "payments-5c8d7f9b6-x2x7q"
KUBE_TOKEN = "bench-kube-token-0123456789"
# An investigation that has not ended after this long counts as failed (it takes seconds).
FOLLOW_TIMEOUT_S = 300.0
RSS_INTERVAL_S = 0.1
SECTION = "## Concurrent investigations"


@contextmanager
def running_kube(run_dir: Path) -> Iterator[tuple[Path, int]]:
    """The fake Kubernetes API (crashloop scenario): a kubeconfig for it and its pid."""
    port_file = run_dir / "kube.port"
    argv = [sys.executable, "-m", "tests.fakes.kubernetes_fake", "--scenario", "crashloop"]
    argv += ["--token", KUBE_TOKEN, "--port-file", str(port_file)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the fake Kubernetes API did not start")
            time.sleep(0.05)
        server = f"http://127.0.0.1:{int(port_file.read_text())}"
        yield write_kubeconfig(run_dir / "kubeconfig", server, token=KUBE_TOKEN), process.pid
    finally:
        process.terminate()
        process.wait(10)


def configure(workers: int) -> Callable[[dict[str, Any]], None]:
    """The catalogue's scripted model and the investigations section of one run."""

    def apply(document: dict[str, Any]) -> None:
        document["models"].append(
            {"name": MODEL, "deployments": [{"provider": "openai", "model": UPSTREAM_MODEL}]}
        )
        document["investigations"] = {
            "default_model": MODEL,
            "workers": workers,
            "context_cache_seconds": 0,
        }

    return apply


def conclusion() -> str:
    """The model's final answer: a root cause and a finding, each citing a tool output."""
    cite = "required key PAYMENT_API_KEY is not set"
    return json.dumps(
        {
            "summary": "The payments api exits at start: its configuration lacks a key.",
            "root_cause": "PAYMENT_API_KEY is not set, so the api exits at start.",
            "root_cause_evidence": [{"tool_call_id": f"{{{{cite:{cite}}}}}", "excerpt": cite}],
            "findings": [
                {
                    "title": "deployment payments has no available replica",
                    "detail": "its only pod crash-loops",
                    "evidence": [
                        {
                            "tool_call_id": "{{cite:MinimumReplicasUnavailable}}",
                            "excerpt": "MinimumReplicasUnavailable",
                        }
                    ],
                }
            ],
            "recommendations": ["Set PAYMENT_API_KEY in the payments configuration."],
            "confidence": 0.9,
        }
    )


def script(gateway: Gateway) -> None:
    """The model lists the deployments, then concludes; each answer after MODEL_DELAY_S."""
    call = ToolCallSpec("kubernetes_list_deployments", json.dumps({"namespace": NS}))
    with gateway.fakes["openai"].control() as control:
        control.set_conversation(
            UPSTREAM_MODEL,
            [
                Behaviour(tool_calls=[call], delay=MODEL_DELAY_S),
                Behaviour(text=conclusion(), delay=MODEL_DELAY_S),
            ],
        )


def alert_body() -> dict[str, Any]:
    return {
        "alert": {
            "alert_name": "KubePodCrashLooping",
            "namespace": NS,
            "labels": {"pod": POD, "container": "api", "severity": "critical"},
            "annotations": {"summary": "payments api is crash looping"},
        }
    }


async def _follow(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    """The investigation's events over SSE until the stream ends with its final state."""
    events: list[dict[str, Any]] = []
    async with client.stream("GET", f"/v1/{name}:streamEvents") as response:
        if response.status_code != 200:
            raise RuntimeError(f"{name}: events answered HTTP {response.status_code}")
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip():
                events.append(json.loads(line[5:])["event"])
    return events


async def _one(client: httpx.AsyncClient, start: asyncio.Event) -> inv_stats.InvestigationFigures:
    await start.wait()
    created = await client.post("/v1/investigations", json=alert_body())
    if created.status_code != 200:
        raise RuntimeError(f"create answered HTTP {created.status_code}: {created.text[:300]}")
    name = created.json()["investigation"]["name"]
    events = await _follow(client, name)
    got = await client.get(f"/v1/{name}")
    return inv_stats.figures(got.json()["investigation"], events)


async def run_batch(url: str, count: int) -> tuple[list[inv_stats.InvestigationFigures], float]:
    """`count` investigations started together: their figures and the batch's wall time
    (from sending the creates to the end of the last event stream)."""
    limits = httpx.Limits(max_connections=2 * count + 10, max_keepalive_connections=2 * count)
    async with httpx.AsyncClient(base_url=url, timeout=FOLLOW_TIMEOUT_S, limits=limits) as client:
        start = asyncio.Event()
        tasks = [asyncio.create_task(_one(client, start)) for _ in range(count)]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start.set()
        items = await asyncio.gather(*tasks)
        return list(items), time.perf_counter() - began


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine spent so far (every core, idle excluded)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _groups(gateway: Gateway, kube_pid: int) -> dict[str, list[int]]:
    stack = gateway.stack
    groups = stack_pids(stack, ("investigation", "tool", "router", "provider"))
    groups["envoy"] = groups.pop("envoy")  # after the services, as the report lists them
    groups["redis"] = [stack.redis.pid or 0] if stack.redis else []
    groups["fake model"] = [gateway.fakes["openai"].process.pid or 0]
    groups["fake Kubernetes API"] = [kube_pid]
    return groups


def measure(gateway: Gateway, kube_pid: int, replicas: int, workers: int, batch: int) -> RunResult:
    """A warm-up batch, then the measured one, on a started gateway."""
    script(gateway)
    asyncio.run(run_batch(gateway.public_url, WARMUP))
    groups = _groups(gateway, kube_pid)
    meter = CpuMeter(groups)
    load_before = float(Path("/proc/loadavg").read_text().split()[0])
    with RssPeak(groups["investigation"], RSS_INTERVAL_S) as rss:
        before = rss.peak
        busy, client = machine_busy_s(), time.process_time()
        meter.start()
        items, wall_s = asyncio.run(run_batch(gateway.public_url, batch))
        meter.stop()
        client_s, busy_s = time.process_time() - client, machine_busy_s() - busy
    after = rss.now()
    return RunResult(
        replicas=replicas,
        workers=workers,
        figures=inv_stats.batch(items, MODEL_DELAY_S),
        wall_s=wall_s,
        cpu_s=meter.spent,
        client_cpu_s=client_s,
        other_cpu_s=max(0.0, busy_s - sum(meter.spent.values()) - client_s),
        rss_before_mib=before,
        rss_peak_mib=rss.peak,
        rss_after_mib=after,
        load_before=load_before,
    )


def run_scenario(
    work: Path, runs: Sequence[tuple[int, int]] = RUNS, batch: int = BATCH
) -> list[RunResult]:
    """Each run on a fresh gateway over one fake Kubernetes API."""
    results: list[RunResult] = []
    with running_kube(work) as (kubeconfig, kube_pid):
        for replicas, workers in runs:
            run_dir = work / f"r{replicas}w{workers}"
            run_dir.mkdir()
            with running_gateway(
                run_dir,
                replicas={"investigation": replicas},
                configure=configure(workers),
                env=lambda fakes: {"KUBECONFIG": str(kubeconfig)},
                record=False,
            ) as gateway:
                result = measure(gateway, kube_pid, replicas, workers, batch)
            print(f"replicas={replicas} workers={workers}: {result}", flush=True)
            results.append(result)
    return results


def parse_runs(text: str) -> list[tuple[int, int]]:
    """`1x8,2x8` -> [(1, 8), (2, 8)]: investigation replicas x workers per run."""
    runs = []
    for item in text.split(","):
        if not item:
            continue
        replicas, sep, workers = item.partition("x")
        if not sep or not replicas.isdigit() or not workers.isdigit():
            raise ValueError(f"a run is REPLICASxWORKERS, like 2x8: {item!r}")
        if int(replicas) < 1 or int(workers) < 1:
            raise ValueError(f"replicas and workers must be at least 1: {item!r}")
        runs.append((int(replicas), int(workers)))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        default=",".join(f"{r}x{w}" for r, w in RUNS),
        help="comma-separated REPLICASxWORKERS, one gateway each",
    )
    parser.add_argument("--batch", type=int, default=BATCH)
    parsed = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llmgw-investigations-") as tmp:
        results = run_scenario(Path(tmp), parse_runs(parsed.runs), parsed.batch)
    command = f"`python -m bench.investigations --runs {parsed.runs} --batch {parsed.batch}`"
    print("\n".join(section(results, time.strftime("%Y-%m-%d"), command, MODEL_DELAY_S)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
