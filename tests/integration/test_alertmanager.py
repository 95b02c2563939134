"""Real Prometheus and Alertmanager in front of the gateway's webhook, end to end.

An in-test exporter's queue depth makes a Prometheus alerting rule fire; Prometheus
sends the alert to a real Alertmanager, which notifies the gateway's webhook through
Envoy every second or so while it fires (short group and repeat intervals), presenting
a consumer's API key as a bearer token, and once more, `resolved`, when the exporter
clears the condition. The gateway requires keys; its tool service reads that same
Prometheus (PROMETHEUS_URL), and the investigation's model (the fake OpenAI, scripted)
concludes quoting what the real Prometheus answered, one claim quoting nothing it said.

The alert only fires once everything runs (the exporter is changed in the test):
Prometheus re-sends an alert it failed to deliver only after a minute. The pipeline
itself (its processes, configuration and waits) is tests/support/alertmanager_scenario.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
import pytest_asyncio

from tests.support.alertmanager_scenario import (
    ALERT,
    EXPR,
    FIRING_DEPTH,
    INVENTED,
    MODEL,
    NS,
    QUEUE,
    SUMMARY_PREFIX,
    TIMEOUT,
    WEBHOOK_PATH,
    WRONG_KEY,
    Scenario,
    alertmanager_alert,
    failed_webhook_notifications,
    list_investigations,
    quoted,
    running_scenario,
    wait_for_investigation,
)
from tests.support.prometheus import available, binary, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not available() or binary("prometheus-alertmanager", "alertmanager") is None,
        reason="Debian packages prometheus and prometheus-alertmanager are not installed",
    ),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    async with running_scenario(tmp_path_factory) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def rest(scenario: Scenario) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=scenario.gateway.public_url, timeout=30) as client:
        yield client


async def test_notifications_open_one_investigation_that_reads_prometheus_and_resolves(
    scenario: Scenario, rest: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    scenario.exporter.set("shop_queue_depth", QUEUE, FIRING_DEPTH)
    firing = await alertmanager_alert(scenario.alertmanager, "active")
    fingerprint = firing["fingerprint"]

    # Several notifications arrive; one investigation, the rest counted as duplicates.
    done = await wait_for_investigation(
        rest,
        scenario.hook,
        fingerprint,
        lambda inv: (
            inv.get("duplicate_alerts", 0) >= 2 and inv["state"] == "INVESTIGATION_STATE_SUCCEEDED"
        ),
    )
    assert len(await list_investigations(rest, scenario.hook, fingerprint)) == 1
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
        assert quoted(item["excerpt"], by_id[item["tool_call_id"]]), item

    # The receiver with a key the gateway never issued was refused.
    await wait_until(
        lambda: failed_webhook_notifications(scenario.alertmanager),
        TIMEOUT,
        "Alertmanager counted no failed webhook notification",
    )

    # Cleared: Prometheus resolves the alert, Alertmanager says so, the gateway records it.
    cleared = time.time()
    scenario.exporter.set("shop_queue_depth", QUEUE, 3)
    resolved = await wait_for_investigation(
        rest, scenario.hook, fingerprint, lambda inv: bool(inv["alert"].get("resolved_at"))
    )
    # The resolution Alertmanager reports (its endsAt), after the exporter cleared it.
    resolved_at = datetime.fromisoformat(resolved["alert"]["resolved_at"]).timestamp()
    assert cleared - 1 < resolved_at < time.time()
    assert resolved_at > datetime.fromisoformat(alert["starts_at"]).timestamp()
    assert resolved["state"] == "INVESTIGATION_STATE_SUCCEEDED"
    assert len(await list_investigations(rest, scenario.hook, fingerprint)) == 1
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
    assert await list_investigations(rest, scenario.hook, "0123456789abcdef") == []


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
