"""`llmgw up --observability` end to end: the launcher's real Prometheus and Alertmanager
beside a real stack that requires API keys.

Prometheus scrapes what the launcher told it (every replica, Envoy's ops listener) and
evaluates the shipped rules, their `for:` capped at 0s (the launcher's test-only
`max_for`), every second. Every deployment of a model failing makes the provider
error-rate alert fire; Alertmanager, its route's waits shortened, delivers it to the
gateway's webhook through Envoy with the key the launcher issued to the `alertmanager`
consumer, and the investigation opened for it reads that same Prometheus. After traffic
of every kind (unary, streamed, cached, refused by a limit, failed), every panel query of
the shipped dashboards evaluates, and the overview's panels all have data. The key a
restart issues revokes the last one.

Panels of the other dashboards left without data here, legitimately: soft budget
thresholds crossed (no budget nears its limit), breaker transitions and deployments
skipped (breakers are kept closed so that every failure reaches the provider).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from services.launcher.observability import (
    WEBHOOK_CONSUMER,
    WEBHOOK_PATH,
    Observability,
    ObservabilityOptions,
    issue_webhook_key,
)
from services.launcher.stack import REPO_ROOT
from tests.fakes import Behaviour
from tests.fakes.control import AsyncFakeControl
from tests.support.gateway import DEFAULT_ADMIN_KEY, Gateway, running_gateway
from tests.support.identity import Identity, create_identity
from tests.support.prometheus import available, binary, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not available() or binary("prometheus-alertmanager", "alertmanager") is None,
        reason="Debian packages prometheus and prometheus-alertmanager are not installed",
    ),
]

ALERT = "LLMGWProviderErrorRateHigh"
JOBS = {"router", "provider", "session", "tool", "investigation", "envoy"}
FLAKY, FLAKY_UPSTREAMS = "flaky", ("flaky-a", "flaky-b")
INVESTIGATOR, INVESTIGATOR_UPSTREAM = "investigator", "claude-investigator"
DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
# What Grafana would put for the dashboards' variables: a rate window a few scrapes wide,
# and "All" for every template variable.
VARIABLES = {"__rate_interval": "1m", "model": ".*", "provider": ".*", "group": ".*"}
TIMEOUT = 45.0


@dataclass
class Scenario:
    gateway: Gateway
    observability: Observability
    # A consumer whose group has a daily budget (router, session, tool).
    caller: Identity
    # A consumer whose group allows one request a minute.
    limited: Identity

    @property
    def prometheus_url(self) -> str:
        return self.observability.prometheus_url


def _configure(document: dict[str, Any]) -> None:
    document["models"] += [
        {
            "name": FLAKY,
            "deployments": [{"provider": "openai", "model": m} for m in FLAKY_UPSTREAMS],
        },
        {
            "name": INVESTIGATOR,
            "deployments": [{"provider": "anthropic", "model": INVESTIGATOR_UPSTREAM}],
        },
    ]
    document["investigations"] = {"default_model": INVESTIGATOR, "context_cache_seconds": 0}
    # Every failing call reaches the provider (no breaker opens), so the error rate is
    # the provider's; budgets are read into their gauges every second.
    document["routing"] = {"breaker": {"consecutive_failures": 1000, "min_requests": 1000}}
    document["rate_limits"] = {"budget_gauge_interval_seconds": 1}


def _conclusion() -> str:
    return json.dumps(
        {
            "summary": "Provider openai fails most completions.",
            "root_cause": "The upstream answers 503 for every deployment of the flaky model.",
            "root_cause_evidence": [],
            "findings": [],
            "recommendations": ["Move the flaky model to another provider."],
            "confidence": 0.5,
        }
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    started = time.monotonic()
    observability = Observability(
        ObservabilityOptions(
            interval="1s",
            max_for="0s",
            route_timing={"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
        )
    )
    gateway_cm = running_gateway(
        tmp_path_factory.mktemp("observed"),
        configure=_configure,
        env=lambda fakes: {"LLMGW_AUTH": "required"},
        companions=[observability],
    )
    async with contextlib.AsyncExitStack() as stack:
        gateway = await asyncio.to_thread(gateway_cm.__enter__)
        stack.push_async_callback(asyncio.to_thread, gateway_cm.__exit__, None, None, None)
        async with AsyncFakeControl(gateway.fakes["anthropic"].root_url) as control:
            await control.set_conversation(INVESTIGATOR_UPSTREAM, [Behaviour(text=_conclusion())])
        budget = identity_pb2.Group(
            allowed_models=["*"],
            allowed_services=["router", "session", "tool"],
            budget=identity_pb2.Budget(daily_limit=5.0),
        )
        caller = await create_identity(gateway.grpc_target, DEFAULT_ADMIN_KEY, group=budget)
        one_a_minute = identity_pb2.Group(
            allowed_models=["*"],
            allowed_services=["router"],
            limits=[
                identity_pb2.RateLimit(
                    unit=identity_pb2.RateLimit.UNIT_REQUESTS,
                    window=identity_pb2.RateLimit.WINDOW_MINUTE,
                    limit=1,
                )
            ],
        )
        limited = await create_identity(
            gateway.grpc_target, DEFAULT_ADMIN_KEY, group=one_a_minute, prefix="lim"
        )
        print(f"stack, Prometheus and Alertmanager up in {time.monotonic() - started:.1f}s")
        yield Scenario(gateway, observability, caller, limited)


async def _query(prometheus: str, expr: str) -> dict[str, Any]:
    """Prometheus' whole answer to an instant query (status success or error)."""
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:
        answer = await client.get("/api/v1/query", params={"query": expr})
    body: dict[str, Any] = answer.json()
    return body


async def _vector(prometheus: str, expr: str) -> list[dict[str, Any]]:
    body = await _query(prometheus, expr)
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


async def _chat(
    client: httpx.AsyncClient, who: Identity, model: str, text: str, stream: bool = False
) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    if not stream:
        answer = await client.post("/v1/chat/completions", json=body, headers=who.headers)
        return answer.status_code
    async with client.stream(
        "POST", "/v1/chat/completions", json=body, headers=who.headers
    ) as answer:
        await answer.aread()
        return answer.status_code


async def test_prometheus_scrapes_every_replica_and_envoy(scenario: Scenario) -> None:
    async def all_up() -> list[dict[str, Any]] | None:
        result = await _vector(scenario.prometheus_url, "up")
        jobs = {r["metric"]["job"] for r in result if r["value"][1] == "1"}
        return result if jobs >= JOBS and all(r["value"][1] == "1" for r in result) else None

    result = await wait_until(all_up, TIMEOUT, "not every job up")
    targets = {(r["metric"]["job"], r["metric"]["instance"]) for r in result}
    stack = scenario.gateway.stack
    expected = {
        (service, f"127.0.0.1:{replica.metrics_port}")
        for service, replicas in stack.replicas.items()
        for replica in replicas
    }
    expected.add(("envoy", stack.ops_url.removeprefix("http://")))
    assert targets == expected


async def test_failing_provider_alert_reaches_the_webhook_and_is_investigated(
    scenario: Scenario,
) -> None:
    started = time.monotonic()
    gateway = scenario.gateway
    async with AsyncFakeControl(gateway.fakes["openai"].root_url) as control:
        for upstream in FLAKY_UPSTREAMS:
            await control.set_default(Behaviour(status=503), model=upstream)
    chats = httpx.AsyncClient(base_url=gateway.public_url, timeout=60)
    sent = 0

    async def firing() -> dict[str, Any] | None:
        """Failures go on until the alert fires: a rate needs two scrapes of a counter
        to rise between, which one burst of failures may not straddle."""
        nonlocal sent
        codes = await asyncio.gather(
            *(_chat(chats, scenario.caller, FLAKY, f"fail {sent + i}") for i in range(4))
        )
        sent += len(codes)
        assert set(codes) == {503}, codes
        async with httpx.AsyncClient(base_url=scenario.prometheus_url, timeout=10) as client:
            alerts = (await client.get("/api/v1/alerts")).json()["data"]["alerts"]
        return next(
            (a for a in alerts if a["labels"]["alertname"] == ALERT and a["state"] == "firing"),
            None,
        )

    async with chats:
        alert = await wait_until(firing, TIMEOUT, f"{ALERT} not firing in Prometheus")
    assert alert["labels"]["provider"] == "openai"
    fired = time.monotonic() - started

    rest = httpx.AsyncClient(base_url=gateway.public_url, timeout=30)
    headers = gateway.admin_headers

    async def investigated() -> dict[str, Any] | None:
        listed = await rest.get("/v1/investigations", headers=headers)
        assert listed.status_code == 200, listed.text
        for item in listed.json().get("investigations", []):
            if item["alert"]["alert_name"] != ALERT:
                continue
            got = (await rest.get(f"/v1/{item['name']}", headers=headers)).json()
            investigation: dict[str, Any] = got["investigation"]
            if investigation.get("result", {}).get("tool_calls"):
                return investigation
        return None

    async with rest:
        done = await wait_until(investigated, TIMEOUT, f"no investigation of {ALERT}")
    # Delivered by Alertmanager with the key the launcher issued to its consumer.
    assert done["owner"] == f"consumers/{WEBHOOK_CONSUMER}"
    assert done["alert"]["source"] == "alertmanager"
    assert done["alert"]["labels"]["provider"] == "openai"
    # Its Prometheus toolset asked the Prometheus that raised the alert.
    calls = {c["tool"]: c for c in done["result"]["tool_calls"]}
    alerts = json.loads(calls["prometheus_alerts"]["output"])["alerts"]
    ours = next(a for a in alerts if a["name"] == ALERT)
    assert ours["state"] == "firing" and ours["labels"]["provider"] == "openai"
    ranged = calls["prometheus_query_range"]
    assert "llmgw_provider:error_ratio:rate5m" in ranged["arguments"]["query"]
    assert json.loads(ranged["output"])["series"], ranged["output"]
    print(
        f"{ALERT} fired {fired:.1f}s after the failures began ({sent} chats failed), "
        f"investigated after {time.monotonic() - started:.1f}s"
    )


def _panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, refId, expr) of every panel target, rows included."""
    found = []
    for path in sorted(glob.glob(str(DASHBOARDS / "*.json"))):
        board = json.loads(Path(path).read_text())
        panels = list(board["panels"])
        while panels:
            panel = panels.pop(0)
            panels += panel.get("panels", [])
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((Path(path).name, panel["title"], target["refId"], target["expr"]))
    assert found, f"no panel queries under {DASHBOARDS}"
    return found


def _substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in VARIABLES, f"unknown dashboard variable ${name} in {expr!r}"
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


async def _traffic(scenario: Scenario) -> None:
    """Unary, streamed, cached (a miss, then a hit), refused by a limit, and failed."""
    who = scenario.caller
    async with httpx.AsyncClient(base_url=scenario.gateway.public_url, timeout=60) as client:
        ok = [_chat(client, who, "gpt-4o-mini", f"hello {i}") for i in range(3)]
        ok += [_chat(client, who, "gpt-4o-mini", f"stream {i}", stream=True) for i in range(2)]
        assert set(await asyncio.gather(*ok)) == {200}
        assert await _chat(client, who, "cached-mini", "same question") == 200
        assert await _chat(client, who, "cached-mini", "same question") == 200
        assert await _chat(client, scenario.limited, "gpt-4o-mini", "first") == 200
        assert await _chat(client, scenario.limited, "gpt-4o-mini", "second") == 429
        async with AsyncFakeControl(scenario.gateway.fakes["openai"].root_url) as control:
            await control.set_default(Behaviour(status=503), model=FLAKY_UPSTREAMS[0])
            await control.set_default(Behaviour(status=503), model=FLAKY_UPSTREAMS[1])
        assert await _chat(client, who, FLAKY, "fails") == 503


async def test_every_dashboard_query_evaluates_and_the_overview_has_data(
    scenario: Scenario,
) -> None:
    await _traffic(scenario)
    queries = [(*q[:3], _substitute(q[3])) for q in _panel_queries()]
    overview = [q for q in queries if q[0] == "overview.json"]
    assert overview

    empty: list[tuple[str, str]] = []

    async def overview_data() -> bool | None:
        """Scrapes land every second: until each overview panel has a result."""
        empty[:] = [
            (title, ref)
            for _, title, ref, expr in overview
            if not await _vector(scenario.prometheus_url, expr)
        ]
        return True if not empty else None

    with contextlib.suppress(TimeoutError):
        await wait_until(overview_data, TIMEOUT, "overview panels without data")
    assert not empty, f"overview panels without data: {empty}"

    failed, no_data = [], []
    for board, title, ref, expr in queries:
        body = await _query(scenario.prometheus_url, expr)
        if body["status"] != "success":
            failed.append((board, title, ref, body.get("error")))
        elif not body["data"]["result"]:
            no_data.append(f"{board}: {title} ({ref})")
    assert not failed, failed
    print("panels without data in this test:", "; ".join(no_data) or "none")


async def test_a_new_webhook_key_revokes_the_last(scenario: Scenario) -> None:
    """What a restart does: the consumer gets a new key and the last stops working.
    (Runs last: Alertmanager's key file is left holding the revoked key.)"""
    key_file = scenario.observability.key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    old = key_file.read_text()
    gateway = scenario.gateway
    new = await issue_webhook_key(gateway.grpc_target, DEFAULT_ADMIN_KEY)
    assert new != old
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        listed = await identity_grpc.IdentityServiceStub(channel).ListApiKeys(
            identity_service_pb2.ListApiKeysRequest(parent=f"consumers/{WEBHOOK_CONSUMER}"),
            metadata=gateway.admin_metadata,
        )
    assert [k.active for k in listed.api_keys].count(True) == 1
    async with httpx.AsyncClient(base_url=gateway.public_url, timeout=30) as client:
        refused = await client.post(
            WEBHOOK_PATH,
            json={"version": "4", "status": "firing", "alerts": []},
            headers={"authorization": f"Bearer {old}"},
        )
    assert refused.status_code == 401, refused.text
