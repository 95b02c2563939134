"""Real Prometheus and Alertmanager in front of the gateway's webhook, end to end.

An in-test exporter's queue depth makes a Prometheus alerting rule fire; Prometheus
sends the alert to a real Alertmanager, which notifies the gateway's webhook through
Envoy every second or so while it fires (short group and repeat intervals), presenting
a consumer's API key as a bearer token, and once more, `resolved`, when the exporter
clears the condition. The gateway requires keys; its tool service reads that same
Prometheus (PROMETHEUS_URL), and the investigation's model (the fake OpenAI, scripted)
concludes quoting what the real Prometheus answered, one claim quoting nothing it said.

Ports are chosen so that nothing waits on anything circular: Alertmanager's port is
picked before Prometheus starts (Prometheus names it), the gateway starts once
Prometheus' URL is known, and Alertmanager last, once the gateway has issued its key.
The alert only fires after that (the exporter is changed in the test): Prometheus
re-sends an alert it failed to deliver only after a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from llmgw.identity.v1 import identity_pb2
from services.investigation.evidence import normalise, string_leaves
from services.launcher.processes import free_port
from tests.fakes import Behaviour
from tests.support.gateway import DEFAULT_ADMIN_KEY, Gateway, running_gateway
from tests.support.identity import Identity, create_identity
from tests.support.prometheus import (
    Alertmanager,
    Exporter,
    Prometheus,
    available,
    binary,
    running_alertmanager,
    running_exporter,
    running_prometheus,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not available() or binary("prometheus-alertmanager", "alertmanager") is None,
        reason="Debian packages prometheus and prometheus-alertmanager are not installed",
    ),
]

ALERT = "ShopQueueBacklog"
NS = "shop"
QUEUE = {"namespace": NS, "queue": "orders"}
WORKERS = {"namespace": NS, "pool": "checkout"}
EXPR = "shop_queue_depth > 100"
FIRING_DEPTH = 150.0
SUMMARY_PREFIX = "queue orders holds"
WEBHOOK_PATH = "/v1/alertmanager/webhook"
WRONG_KEY = "not-a-key-this-gateway-issued-0123456789"
MODEL, UPSTREAM_MODEL = "investigator", "am-investigator"
INVENTED = "the orders consumers crash at start"
TIMEOUT = 30.0

RULE_GROUPS: list[dict[str, Any]] = [
    {
        "name": "shop",
        "interval": "1s",
        "rules": [
            {
                "alert": ALERT,
                "expr": EXPR,
                "for": "0s",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "queue {{ $labels.queue }} holds {{ $value }} messages",
                },
            }
        ],
    }
]


@dataclass
class Scenario:
    exporter: Exporter
    prometheus: Prometheus
    alertmanager: Alertmanager
    gateway: Gateway
    # The consumer Alertmanager's key belongs to (investigation and router services).
    hook: Identity
    # A consumer that may run prometheus_query (tool service).
    reader: Identity


def _configure(document: dict[str, Any]) -> None:
    document["models"].append(
        {"name": MODEL, "deployments": [{"provider": "openai", "model": UPSTREAM_MODEL}]}
    )
    document["investigations"] = {"default_model": MODEL, "context_cache_seconds": 0}


def _conclusion() -> str:
    """What the scripted model concludes: two claims quoting the Prometheus calls' output
    (their ids found by content), one quoting text no call returned."""
    summary = f"{SUMMARY_PREFIX} 150 messages"
    return json.dumps(
        {
            "summary": "The orders queue is backed up past the alert's threshold.",
            "root_cause": "The orders queue holds 150 messages, more than its consumers drain.",
            "root_cause_evidence": [
                {"tool_call_id": f"{{{{cite:{summary}}}}}", "excerpt": summary}
            ],
            "findings": [
                {
                    "title": "the alert's expression holds at the end of the hour",
                    "detail": "shop_queue_depth > 100 returns the orders queue",
                    "evidence": [{"tool_call_id": f"{{{{cite:{EXPR}}}}}", "excerpt": EXPR}],
                },
                {
                    "title": INVENTED,
                    "detail": "an invented claim",
                    "evidence": [
                        {"tool_call_id": "{{cite:orders}}", "excerpt": "CrashLoopBackOff"}
                    ],
                },
            ],
            "recommendations": ["Add consumers to the orders queue."],
            "confidence": 0.8,
        }
    )


def _webhook(url: str, key: str) -> dict[str, Any]:
    return {
        "url": url,
        "send_resolved": True,
        "http_config": {"authorization": {"type": "Bearer", "credentials": key}},
    }


def alertmanager_config(url: str, key: str) -> dict[str, Any]:
    """Notify `url` with `key` about every alert about every second while it fires; the
    same notifications also go, with a key the gateway never issued, to a second
    receiver (whose failures Alertmanager counts)."""
    return {
        "route": {
            "receiver": "llmgw",
            "group_by": ["alertname", "namespace"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1s",
            "routes": [
                {"receiver": "llmgw-wrong-key", "continue": True},
                {"receiver": "llmgw"},
            ],
        },
        "receivers": [
            {"name": "llmgw", "webhook_configs": [_webhook(url, key)]},
            {"name": "llmgw-wrong-key", "webhook_configs": [_webhook(url, WRONG_KEY)]},
        ],
    }


async def _identity(gateway: Gateway, services: list[str], tools: list[str]) -> Identity:
    group = identity_pb2.Group(allowed_models=["*"], allowed_services=services, allowed_tools=tools)
    return await create_identity(gateway.grpc_target, DEFAULT_ADMIN_KEY, group=group, prefix="am")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        exporter = await stack.enter_async_context(running_exporter())
        exporter.set("shop_queue_depth", QUEUE, 3)
        exporter.set("shop_workers", WORKERS, 4)
        am_port = free_port()
        prometheus = await stack.enter_async_context(
            running_prometheus(
                tmp_path_factory.mktemp("prometheus"),
                scrape_configs=[exporter.scrape_config("shop-exporter")],
                rule_groups=RULE_GROUPS,
                alertmanagers=[f"127.0.0.1:{am_port}"],
            )
        )
        # The gateway starts on its own loop thread; this loop keeps serving the
        # exporter's scrapes meanwhile.
        gateway_cm = running_gateway(
            tmp_path_factory.mktemp("gateway"),
            configure=_configure,
            env=lambda fakes: {"LLMGW_AUTH": "required", "PROMETHEUS_URL": prometheus.url},
        )
        gateway = await asyncio.to_thread(gateway_cm.__enter__)
        stack.push_async_callback(asyncio.to_thread, gateway_cm.__exit__, None, None, None)
        gateway.fakes["openai"].control().set_conversation(
            UPSTREAM_MODEL, [Behaviour(text=_conclusion())]
        )
        hook = await _identity(gateway, ["investigation", "router"], [])
        reader = await _identity(gateway, ["tool"], ["prometheus_query"])
        alertmanager = await stack.enter_async_context(
            running_alertmanager(
                tmp_path_factory.mktemp("alertmanager"),
                alertmanager_config(gateway.public_url + WEBHOOK_PATH, hook.key),
                port=am_port,
            )
        )
        print(
            f"prometheus ready in {prometheus.start_seconds:.2f}s, alertmanager in "
            f"{alertmanager.start_seconds:.2f}s, all in {time.monotonic() - started:.1f}s"
        )
        yield Scenario(exporter, prometheus, alertmanager, gateway, hook, reader)


@pytest_asyncio.fixture(loop_scope="module")
async def rest(scenario: Scenario) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=scenario.gateway.public_url, timeout=30) as client:
        yield client


async def _alertmanager_alert(alertmanager: Alertmanager, state: str) -> dict[str, Any]:
    """Alertmanager's copy of the rule's alert once it is in `state` (it holds the
    fingerprint the webhook carries)."""

    async def probe() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=alertmanager.url, timeout=5) as client:
            alerts = (await client.get("/api/v2/alerts")).json()
        for alert in alerts:
            if alert["labels"].get("alertname") == ALERT and alert["status"]["state"] == state:
                return dict(alert)
        return None

    return await wait_until(probe, TIMEOUT, f"Alertmanager holds no {state} {ALERT}")


async def _failed_webhook_notifications(alertmanager: Alertmanager) -> float | None:
    """How many webhook notifications Alertmanager counts as failed; None for none."""
    async with httpx.AsyncClient(base_url=alertmanager.url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    failed = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "alertmanager_notifications_failed_total"
        and sample.labels.get("integration") == "webhook"
    )
    return failed or None


async def _investigations(
    rest: httpx.AsyncClient, who: Identity, fingerprint: str
) -> list[dict[str, Any]]:
    listed = await rest.get(
        "/v1/investigations", params={"fingerprint": fingerprint}, headers=who.headers
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json().get("investigations", []))


async def _investigation(
    rest: httpx.AsyncClient,
    who: Identity,
    fingerprint: str,
    ready: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """The fingerprint's investigation (in full) once `ready(it)` holds."""

    async def probe() -> dict[str, Any] | None:
        found = await _investigations(rest, who, fingerprint)
        if not found:
            return None
        got = await rest.get(f"/v1/{found[0]['name']}", headers=who.headers)
        investigation: dict[str, Any] = got.json()["investigation"]
        return investigation if ready(investigation) else None

    return await wait_until(probe, TIMEOUT, f"investigation of {fingerprint} not as expected")


def _quoted(excerpt: str, call: dict[str, Any]) -> bool:
    """The evidence rule: the excerpt occurs in the call's output or a string leaf of
    its result (the output is the result as JSON), whitespace runs normalised."""
    wanted = normalise(excerpt)
    output = call.get("output", "")
    texts = [output, *string_leaves(json.loads(output))]
    return any(wanted in normalise(text) for text in texts)


async def test_notifications_open_one_investigation_that_reads_prometheus_and_resolves(
    scenario: Scenario, rest: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    scenario.exporter.set("shop_queue_depth", QUEUE, FIRING_DEPTH)
    firing = await _alertmanager_alert(scenario.alertmanager, "active")
    fingerprint = firing["fingerprint"]

    # Several notifications arrive; one investigation, the rest counted as duplicates.
    done = await _investigation(
        rest,
        scenario.hook,
        fingerprint,
        lambda inv: (
            inv.get("duplicate_alerts", 0) >= 2 and inv["state"] == "INVESTIGATION_STATE_SUCCEEDED"
        ),
    )
    assert len(await _investigations(rest, scenario.hook, fingerprint)) == 1
    alert = done["alert"]
    assert alert["source"] == "alertmanager" and alert["fingerprint"] == fingerprint
    assert alert["alert_name"] == ALERT and alert["namespace"] == NS
    assert alert["priority"] == "PRIORITY_MEDIUM"
    assert "g0.expr=" in alert["generator_url"]
    assert done["owner"] == scenario.hook.consumer

    # The context plan asked the real Prometheus: the alerts firing, and the alert's
    # expression (from its graph link) over the last hour.
    calls = {c["tool"]: c for c in done["result"]["tool_calls"]}
    assert {"prometheus_alerts", "prometheus_query_range"} <= set(calls)
    assert not any(c.get("truncated") for c in calls.values())
    alerts = json.loads(calls["prometheus_alerts"]["output"])["alerts"]
    ours = next(a for a in alerts if a["name"] == ALERT)
    assert ours["state"] == "firing" and ours["labels"]["queue"] == "orders"
    assert ours["annotations"]["summary"] == f"{SUMMARY_PREFIX} 150 messages"
    ranged = calls["prometheus_query_range"]
    assert ranged["arguments"]["query"] == EXPR
    (series,) = json.loads(ranged["output"])["series"]
    assert series["metric"]["queue"] == "orders" and series["last"] == "150"

    # What the model concluded stands on what Prometheus said; the claim quoting
    # nothing Prometheus said is rejected.
    result = done["result"]
    assert result["model"] == MODEL
    assert result["root_cause"].startswith("The orders queue holds 150 messages")
    by_id = {c["id"]: c for c in result["tool_calls"]}
    (cause,) = result["root_cause_evidence"]
    assert by_id[cause["tool_call_id"]]["tool"] == "prometheus_alerts"
    assert [f["title"] for f in result["findings"] if f["origin"] == "model"] == [
        "the alert's expression holds at the end of the hour"
    ]
    assert [r["title"] for r in result["rejected_claims"]] == [INVENTED]
    items = [e for f in result["findings"] for e in f["evidence"]] + [cause]
    assert {by_id[e["tool_call_id"]]["tool"] for e in items} == {
        "prometheus_alerts",
        "prometheus_query_range",
    }
    for item in items:
        assert _quoted(item["excerpt"], by_id[item["tool_call_id"]]), item

    # The receiver with a key the gateway never issued was refused.
    await wait_until(
        lambda: _failed_webhook_notifications(scenario.alertmanager),
        TIMEOUT,
        "Alertmanager counted no failed webhook notification",
    )

    # Cleared: Prometheus resolves the alert, Alertmanager says so, the gateway records it.
    cleared = time.time()
    scenario.exporter.set("shop_queue_depth", QUEUE, 3)
    resolved = await _investigation(
        rest, scenario.hook, fingerprint, lambda inv: bool(inv["alert"].get("resolved_at"))
    )
    # The resolution Alertmanager reports (its endsAt), after the exporter cleared it.
    resolved_at = datetime.fromisoformat(resolved["alert"]["resolved_at"]).timestamp()
    assert cleared - 1 < resolved_at < time.time()
    assert resolved_at > datetime.fromisoformat(alert["starts_at"]).timestamp()
    assert resolved["state"] == "INVESTIGATION_STATE_SUCCEEDED"
    assert len(await _investigations(rest, scenario.hook, fingerprint)) == 1
    print(f"fired, investigated, deduplicated and resolved in {time.monotonic() - started:.1f}s")


async def test_the_webhook_refuses_a_wrong_key(scenario: Scenario, rest: httpx.AsyncClient) -> None:
    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "llmgw",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": ALERT, "namespace": NS},
                "fingerprint": "0123456789abcdef",
            }
        ],
    }
    refused = await rest.post(
        WEBHOOK_PATH, json=payload, headers={"authorization": f"Bearer {WRONG_KEY}"}
    )
    assert refused.status_code == 401, refused.text
    assert WRONG_KEY not in refused.text
    anonymous = await rest.post(WEBHOOK_PATH, json=payload)
    assert anonymous.status_code == 401, anonymous.text
    # A consumer without the investigation service is refused too.
    forbidden = await rest.post(WEBHOOK_PATH, json=payload, headers=scenario.reader.headers)
    assert forbidden.status_code == 403, forbidden.text
    assert await _investigations(rest, scenario.hook, "0123456789abcdef") == []


async def test_prometheus_query_through_envoy(scenario: Scenario, rest: httpx.AsyncClient) -> None:
    await scenario.prometheus.wait_for("shop_workers", timeout=TIMEOUT)
    answer = await rest.post(
        "/v1/tools/prometheus_query:execute",
        json={"arguments": {"query": "sum by (pool) (shop_workers)"}},
        headers=scenario.reader.headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "tools/prometheus_query"
    assert body["result"] == {
        "query": "sum by (pool) (shop_workers)",
        "result_type": "vector",
        "series": [{"metric": {"pool": "checkout"}, "value": "4"}],
        "truncated": False,
    }


async def test_bad_promql_is_a_400_quoting_prometheus(
    scenario: Scenario, rest: httpx.AsyncClient
) -> None:
    answer = await rest.post(
        "/v1/tools/prometheus_query:execute",
        json={"arguments": {"query": "sum(rate(shop_workers[5m])"}},
        headers=scenario.reader.headers,
    )
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert message.startswith("Prometheus refused the query: invalid parameter"), message
    assert "parse error" in message
    # Not a tool the consumer's groups allow: refused before Prometheus is asked.
    other = await rest.post(
        "/v1/tools/prometheus_alerts:execute",
        json={"arguments": {}},
        headers=scenario.reader.headers,
    )
    assert other.status_code == 403, other.text
    assert json.loads(other.text)["message"].startswith("tool 'prometheus_alerts' is not allowed")
