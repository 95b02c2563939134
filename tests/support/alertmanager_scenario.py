"""The Alertmanager pipeline of tests/integration/test_alertmanager.py: its alert (rule,
queue, thresholds), the scripted model's conclusion, Alertmanager's routing to the
gateway's webhook, the processes started in order, and the waits on what they report.

Ports are chosen so that nothing waits on anything circular: Alertmanager's port is
picked before Prometheus starts (Prometheus names it), the gateway starts once
Prometheus' URL is known, and Alertmanager last, once the gateway has issued its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
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
    running_alertmanager,
    running_exporter,
    running_prometheus,
    wait_until,
)

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


def configure_gateway(document: dict[str, Any]) -> None:
    document["models"].append(
        {"name": MODEL, "deployments": [{"provider": "openai", "model": UPSTREAM_MODEL}]}
    )
    document["investigations"] = {"default_model": MODEL, "context_cache_seconds": 0}


def scripted_conclusion() -> str:
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


def webhook_receiver(url: str, key: str) -> dict[str, Any]:
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
            {"name": "llmgw", "webhook_configs": [webhook_receiver(url, key)]},
            {"name": "llmgw-wrong-key", "webhook_configs": [webhook_receiver(url, WRONG_KEY)]},
        ],
    }


async def consumer_identity(gateway: Gateway, services: list[str], tools: list[str]) -> Identity:
    group = identity_pb2.Group(allowed_models=["*"], allowed_services=services, allowed_tools=tools)
    return await create_identity(gateway.grpc_target, DEFAULT_ADMIN_KEY, group=group, prefix="am")


@contextlib.asynccontextmanager
async def running_scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    """The exporter, Prometheus, the gateway and Alertmanager, started in that order
    (see the module docstring), stopped in reverse."""
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
            configure=configure_gateway,
            env=lambda fakes: {"LLMGW_AUTH": "required", "PROMETHEUS_URL": prometheus.url},
        )
        gateway = await asyncio.to_thread(gateway_cm.__enter__)
        stack.push_async_callback(asyncio.to_thread, gateway_cm.__exit__, None, None, None)
        gateway.fakes["openai"].control().set_conversation(
            UPSTREAM_MODEL, [Behaviour(text=scripted_conclusion())]
        )
        hook = await consumer_identity(gateway, ["investigation", "router"], [])
        reader = await consumer_identity(gateway, ["tool"], ["prometheus_query"])
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


async def alertmanager_alert(alertmanager: Alertmanager, state: str) -> dict[str, Any]:
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


async def failed_webhook_notifications(alertmanager: Alertmanager) -> float | None:
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


async def list_investigations(
    rest: httpx.AsyncClient, who: Identity, fingerprint: str
) -> list[dict[str, Any]]:
    listed = await rest.get(
        "/v1/investigations", params={"fingerprint": fingerprint}, headers=who.headers
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json().get("investigations", []))


async def wait_for_investigation(
    rest: httpx.AsyncClient,
    who: Identity,
    fingerprint: str,
    ready: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """The fingerprint's investigation (in full) once `ready(it)` holds."""

    async def probe() -> dict[str, Any] | None:
        found = await list_investigations(rest, who, fingerprint)
        if not found:
            return None
        got = await rest.get(f"/v1/{found[0]['name']}", headers=who.headers)
        investigation: dict[str, Any] = got.json()["investigation"]
        return investigation if ready(investigation) else None

    return await wait_until(probe, TIMEOUT, f"investigation of {fingerprint} not as expected")


def quoted(excerpt: str, call: dict[str, Any]) -> bool:
    """The evidence rule: the excerpt occurs in the call's output or a string leaf of
    its result (the output is the result as JSON), whitespace runs normalised."""
    wanted = normalise(excerpt)
    output = call.get("output", "")
    texts = [output, *string_leaves(json.loads(output))]
    return any(wanted in normalise(text) for text in texts)
