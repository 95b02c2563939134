"""What each drop-in surface costs: the same answer asked for in OpenAI's chat shape,
Anthropic's Messages shape and OpenAI's Responses shape, and embeddings, each beside the
upstream asked directly.

One stack (`tests.support.gateway.running_gateway`), the fake OpenAI upstream behind every
row: `gpt-4o-mini` for the chat surfaces (an Anthropic-shaped request is translated to the
chat turn, then to OpenAI's wire format by the provider), `text-embedding-3-small` for
embeddings. wrk at concurrency 1 and 16 per row, the gateway's CPU (Envoy, router and
provider) per request over each run; then streamed time to first token, sequentially
from one client, for the OpenAI and the Anthropic stream shapes (first `"content"` /
first `text_delta` event).

    python -m bench.run --scenario surfaces [--duration S] [--samples N]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import gateway_meter
from bench.ttft import TtftResult, measure
from tests.support.gateway import FAKE_KEYS, Gateway, running_gateway

SECTION = "## Drop-in surfaces"
CONCURRENCIES = (1, 16)
WARM_UP_S = 2.0
PROMPT = "Hello"
EMBEDDING_INPUT = ["the first text to embed", "a second, somewhat longer text to embed"]


@dataclass(frozen=True)
class Surface:
    """One row: a path, a body, and whether it goes to the gateway or the upstream."""

    name: str
    path: str
    body: dict[str, Any]
    direct: bool = False


SURFACES = (
    Surface(
        "chat, upstream directly",
        "/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
        direct=True,
    ),
    Surface(
        "chat completions (OpenAI)",
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    ),
    Surface(
        "messages (Anthropic)",
        "/v1/messages",
        {
            "model": "gpt-4o-mini",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}],
        },
    ),
    Surface(
        "responses (OpenAI), unstored",
        "/v1/responses",
        {"model": "gpt-4o-mini", "input": PROMPT, "store": False},
    ),
    Surface(
        "embeddings, upstream directly",
        "/embeddings",
        {"model": "text-embedding-3-small", "input": EMBEDDING_INPUT},
        direct=True,
    ),
    Surface(
        "embeddings (OpenAI)",
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": EMBEDDING_INPUT},
    ),
)

# Streamed: the marker of the first event that carries text, per shape.
STREAMS = (
    ("OpenAI stream, upstream directly", SURFACES[0], b'"content"'),
    ("OpenAI stream (chat completions)", SURFACES[1], b'"content"'),
    ("Anthropic stream (messages)", SURFACES[2], b'"text_delta"'),
)


@dataclass(frozen=True)
class SurfaceRun:
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    # Gateway CPU (Envoy, router, provider) per request; none for the direct rows.
    cpu_us: float | None


def _url(gw: Gateway, surface: Surface) -> tuple[str, str]:
    """The URL and the API key a row uses."""
    if surface.direct:
        return gw.fakes["openai"].base_url + surface.path, FAKE_KEYS["openai"]
    return gw.public_url + surface.path, "unused"


def run_scenario(
    work: Path, duration: float, samples: int, wrk: Callable[..., Any]
) -> tuple[dict[tuple[str, int], SurfaceRun], dict[str, TtftResult]]:
    """wrk runs per (surface, concurrency) and the streamed TTFT per shape."""
    runs: dict[tuple[str, int], SurfaceRun] = {}
    ttft: dict[str, TtftResult] = {}
    with running_gateway(work, record=False) as gw:
        meter = gateway_meter(gw.stack)
        for index, surface in enumerate(SURFACES):
            body_file = work / f"surface-{index}.json"
            body_file.write_text(json.dumps(surface.body))
            url, key = _url(gw, surface)
            for concurrency in CONCURRENCIES:
                wrk(url, concurrency, WARM_UP_S, body_file, key)
                meter.start()
                result = wrk(url, concurrency, duration, body_file, key)
                meter.stop()
                cpu = meter.spent["gateway"] / max(result.requests, 1) * 1e6
                runs[(surface.name, concurrency)] = SurfaceRun(
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                    rps=result.rps,
                    errors=result.errors,
                    cpu_us=None if surface.direct else cpu,
                )
                print(f"{surface.name} c={concurrency}: {runs[(surface.name, concurrency)]}")
        for name, surface, marker in STREAMS:
            url, key = _url(gw, surface)
            body = json.dumps({**surface.body, "stream": True}).encode()
            ttft[name] = asyncio.run(measure(url, body, samples, key, marker=marker))
            print(f"{name}: {ttft[name]}", flush=True)
    return runs, ttft


def section(
    runs: dict[tuple[str, int], SurfaceRun],
    ttft: dict[str, TtftResult],
    measured: str,
    command: str,
) -> list[str]:
    """The RESULTS.md section: each surface at each concurrency, and the streamed TTFTs."""
    rows = []
    for surface in SURFACES:
        cells = []
        for concurrency in CONCURRENCIES:
            run = runs[(surface.name, concurrency)]
            cpu = "" if run.cpu_us is None else f"{run.cpu_us:,.0f}"
            cells.append(f"{run.p50_ms:.2f} / {run.p99_ms:.2f} | {run.rps:,.0f} | {cpu}")
        errors = sum(runs[(surface.name, c)].errors for c in CONCURRENCIES)
        rows.append(f"| {surface.name} | {' | '.join(cells)} | {errors} |")
    direct = ttft[STREAMS[0][0]].p50_ms
    stream_rows = [
        f"| {name} | {t.p50_ms:.3f} | {t.p99_ms:.3f} |"
        f" {'' if name == STREAMS[0][0] else f'{t.p50_ms - direct:+.3f}'} |"
        f" {t.samples} | {t.errors} |"
        for name, t in ttft.items()
    ]
    return [
        SECTION,
        "",
        f"Measured {measured}; {command}.",
        "",
        "The same question through each public surface of one default stack, the fake OpenAI",
        "upstream behind all of them (`gpt-4o-mini`; embeddings: `text-embedding-3-small`, two",
        "texts), and the upstream asked directly. CPU: Envoy, router and provider together,",
        "per request. An Anthropic-shaped request is parsed and answered by the router's",
        "Messages translator around the same chat turn; a Responses request likewise",
        "(`store: false`: a stored response also writes a session).",
        "",
        "| surface | c=1 p50 / p99 ms | c=1 req/s | c=1 CPU us/req |"
        " c=16 p50 / p99 ms | c=16 req/s | c=16 CPU us/req | errors |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| streamed time to first token | p50 ms | p99 ms | added p50 ms | samples | errors |",
        "|---|---|---|---|---|---|",
        *stream_rows,
    ]
