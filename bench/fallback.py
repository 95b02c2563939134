"""The fallback scenario: a model whose primary deployment fails every other request.

`flaky` has a primary deployment on the fake OpenAI upstream, which answers HTTP 500 to
every other request for it, and a second one on the fake Anthropic upstream, which always
answers. A request the primary fails goes on to the second deployment at once (the retry
of the primary is queued behind it with a backoff), so it costs one failed and one
successful upstream call and is answered with route `fallback`.

The circuit breaker stays enabled, so its bookkeeping is part of the figures, but its
thresholds are out of reach: with the defaults a 50% failure rate opens it within 20
calls and the runs would measure the short-circuit, not the retry/fallback path.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.ttft import percentile, sequential
from tests.fakes import Behaviour
from tests.support.gateway import Gateway

MODEL = "flaky"
PRIMARY = "flaky-primary"
BACKUP = "flaky-backup"
# Breaker thresholds no benchmark run reaches.
UNREACHABLE = 1_000_000_000


def configure(document: dict[str, Any]) -> None:
    """Adds the flaky model, and breaker thresholds it never reaches, to a gateway config."""
    document.setdefault("routing", {})["breaker"] = {
        "consecutive_failures": UNREACHABLE,
        "min_requests": UNREACHABLE,
    }
    document["models"].append(
        {
            "name": MODEL,
            "deployments": [
                {"provider": "openai", "model": PRIMARY},
                {"provider": "anthropic", "model": BACKUP},
            ],
        }
    )


def inject_faults(gateway: Gateway) -> None:
    """From now on the primary fails every other request for it (500, ok, 500, ...)."""
    with gateway.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=500), Behaviour(text="ok"), model=PRIMARY)


def fallback_answers(gateway: Gateway) -> float:
    """Requests for `flaky` the routers answered through the fallback route, all replicas."""
    return sum(
        gateway.router_metric(
            "llmgw_routing_decisions_total", requested_model=MODEL, route="fallback"
        )
    )


@dataclass(frozen=True)
class RouteLatency:
    samples: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class RouteTimes:
    """Unary latency of sequential requests, grouped by their `x-llmgw-route` header."""

    by_route: dict[str, RouteLatency] = field(default_factory=dict)
    errors: int = 0


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[str, float]:
    """One request on a keep-alive connection: its route and the time to the whole body."""
    started = time.perf_counter()
    writer.write(request)
    await writer.drain()
    status = await reader.readline()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise RuntimeError("expected a Content-Length answer")
    await reader.readexactly(int(headers["content-length"]))
    elapsed = time.perf_counter() - started
    if b" 200 " not in status:
        raise RuntimeError(status.decode(errors="replace").strip())
    return headers.get("x-llmgw-route", "none"), elapsed


async def latency_by_route(
    url: str, body: bytes, samples: int, api_key: str, warmup: int = 50
) -> RouteTimes:
    """`samples` requests one after another (after `warmup`), timed and split by route."""
    answers, errors = await sequential(url, body, samples, api_key, warmup=warmup, exchange=_one)
    times: dict[str, list[float]] = defaultdict(list)
    for route, value in answers:
        times[route].append(value)
    return RouteTimes(
        by_route={
            route: RouteLatency(
                samples=len(values),
                p50_ms=statistics.median(values) * 1000,
                p99_ms=percentile(values, 0.99) * 1000,
            )
            for route, values in times.items()
        },
        errors=errors,
    )
