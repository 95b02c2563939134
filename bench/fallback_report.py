"""The fallback scenario's wrk runs and its section of RESULTS.md (the scenario's model,
faults and per-route client: bench/fallback.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import fallback
from bench.fallback import RouteTimes, latency_by_route
from bench.wrk import WrkResult, wrk
from tests.support.gateway import Gateway

_ROUTES = {
    "primary": "primary: one upstream call (OpenAI)",
    "fallback": "fallback: a failed call, then the second deployment (Anthropic)",
}


def _route_order(route: str) -> tuple[int, str]:
    order = list(_ROUTES)
    return (order.index(route) if route in order else len(order), route)


def section(
    runs: dict[tuple[str, int], WrkResult],
    answered: dict[int, float],
    routes: RouteTimes,
    healthy_model: str,
) -> list[str]:
    """The fallback scenario beside the healthy gateway runs, and its cost per route."""

    def row(name: str, run: WrkResult, share: str, added: str) -> str:
        return (
            f"| {name} | {run.requests:,} | {run.errors} |"
            f" {run.p50_ms:.3f} / {run.p90_ms:.3f} / {run.p99_ms:.3f} | {run.rps:,.0f} |"
            f" {share} | {added} |"
        )

    rows = []
    for concurrency in (1, 16):
        healthy, flaky = runs[("gateway", concurrency)], runs[("fallback", concurrency)]
        share = (
            f"{answered[concurrency] / flaky.requests:.1%} / {flaky.fallbacks / flaky.requests:.1%}"
            if flaky.requests
            else "-"
        )
        rows += [
            row(f"healthy `{healthy_model}`, concurrency {concurrency}", healthy, "-", "-"),
            row(
                f"`{fallback.MODEL}`, concurrency {concurrency}",
                flaky,
                share,
                f"**{flaky.p50_ms - healthy.p50_ms:+.3f}**",
            ),
        ]
    by_route = routes.by_route
    samples = sum(r.samples for r in by_route.values())
    added = (
        f"**{by_route['fallback'].p50_ms - by_route['primary'].p50_ms:+.3f}**"
        if {"primary", "fallback"} <= by_route.keys()
        else "-"
    )
    return [
        "## Fallback: half the primary's calls fail",
        "",
        f"Model `{fallback.MODEL}` (bench/fallback.py): priority routing over a primary"
        f" deployment on the fake OpenAI upstream, which answers HTTP 500 to every other"
        f" request, and a second deployment on the fake Anthropic upstream, which always"
        f" answers. A request the primary fails goes on to the second deployment at once"
        f" (the retry of the primary waits behind it with a backoff), so every request is"
        f" answered: with one upstream call on route `primary`, with two on route"
        f" `fallback`. The circuit breaker is enabled but its `consecutive_failures` and"
        f" `min_requests` are set to {fallback.UNREACHABLE:,} for this benchmark, so it"
        f" never opens: with the defaults a 50% failure rate opens it within 20 calls and"
        f" the runs would measure the short-circuit instead of the fallback path.",
        "",
        "Fallback share: the increase of the routers'"
        f' `llmgw_routing_decisions_total{{requested_model="{fallback.MODEL}",'
        'route="fallback"}` over the run (all replicas) divided by the requests wrk'
        " completed, and the share of answers wrk saw with `x-llmgw-route: fallback`."
        " Errors are socket errors plus non-2xx answers.",
        "",
        "| run | requests | errors | p50 / p90 / p99 ms | req/s |"
        " fallback share (metric / headers) | p50 vs healthy ms |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"The cost of each route, from one sequential client ({samples} requests of"
        f" `{fallback.MODEL}` after a warm-up, split by their `x-llmgw-route` header;"
        f" {routes.errors} errors):",
        "",
        "| route | p50 ms | p99 ms | samples |",
        "|---|---|---|---|",
        *(
            f"| {_ROUTES.get(route, route)} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.samples} |"
            for route, r in sorted(by_route.items(), key=lambda item: _route_order(item[0]))
        ),
        f"| **added by the fallback path** | {added} | | |",
        "",
        "The fallback path adds one whole failed upstream call (router -> provider, the"
        " openai SDK raising on the 500, the error status back to the router) and the"
        " breaker's record of that failure, which runs its Redis script before the next"
        " deployment is tried; its successful call then goes through the Anthropic adapter"
        " instead of the OpenAI one. On route `primary` the success right after a failure"
        " also runs the Redis script (it resets the failure streak), which a healthy"
        " deployment's batched successes never do.",
        "",
    ]


def run_fallback(
    gw: Gateway, body: Path, duration: float, samples: int
) -> tuple[dict[tuple[str, int], WrkResult], dict[int, float], RouteTimes]:
    """The fallback scenario's wrk runs, the fallback answers counted by the routers
    during each, and the sequential per-route latencies."""
    fallback.inject_faults(gw)
    url = gw.public_url + "/v1/chat/completions"
    runs: dict[tuple[str, int], WrkResult] = {}
    answered: dict[int, float] = {}
    for concurrency in (1, 16):
        wrk(url, concurrency, 2, body, "unused")  # warm-up: the second provider's pool too
        before = fallback.fallback_answers(gw)
        runs[("fallback", concurrency)] = wrk(url, concurrency, duration, body, "unused")
        answered[concurrency] = fallback.fallback_answers(gw) - before
        print(
            f"fallback c={concurrency}: {runs[('fallback', concurrency)]},"
            f" metric fallbacks={answered[concurrency]:.0f}",
            flush=True,
        )
    routes = asyncio.run(latency_by_route(url, body.read_bytes(), samples, "unused"))
    print(routes, flush=True)
    return runs, answered, routes
