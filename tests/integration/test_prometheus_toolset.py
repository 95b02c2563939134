"""Every prometheus toolset tool against a real Prometheus.

One Prometheus serves the module: an hour of backfilled history with known values
(requests, a temperature climbing one degree per sample, pod info), a recording rule
over it, an alerting rule on the recording rule that fires (`for: 0s`), and an in-test
exporter scraped every second whose value the tests change.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.common.errors import (
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from services.launcher.processes import free_port
from services.tool.toolsets.base import RunTool
from services.tool.toolsets.prometheus import PrometheusToolset, from_env
from tests.support.prometheus import (
    Exporter,
    Prometheus,
    Series,
    available,
    running_alertmanager,
    running_exporter,
    running_prometheus,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not available(), reason="Debian package prometheus is not installed"),
]

STEP = 15
SAMPLES = 241  # an hour at 15 s, both ends included
REQUESTS_PER_SAMPLE = 10  # so rate(...) is 10/15 per second


@dataclass
class Scenario:
    prometheus: Prometheus
    exporter: Exporter
    toolset: PrometheusToolset
    # Timestamp of the last backfilled sample.
    end: int

    def temperature_at(self, ts: float) -> int:
        """The backfilled temperature's value at `ts` (the sample at or before it)."""
        return int((ts - (self.end - STEP * (SAMPLES - 1))) // STEP)


def history(end: int) -> list[Series]:
    times = [end - STEP * (SAMPLES - 1 - i) for i in range(SAMPLES)]
    return [
        Series(
            "http_requests_total",
            {"job": "shop", "code": "500"},
            [(t, REQUESTS_PER_SAMPLE * i) for i, t in enumerate(times)],
        ),
        Series("node_temperature_celsius", {"job": "shop"}, [(t, i) for i, t in enumerate(times)]),
        *(
            Series("kube_pod_info", {"namespace": "shop", "pod": pod}, [(t, 1) for t in times])
            for pod in ("web-1", "web-2")
        ),
    ]


RULE_GROUPS: list[dict[str, Any]] = [
    {
        "name": "shop-recording",
        "interval": "1s",
        "rules": [
            {
                "record": "job:http_errors:rate5m",
                "expr": 'sum by (job) (rate(http_requests_total{code="500"}[5m]))',
            }
        ],
    },
    {
        "name": "shop-alerts",
        "interval": "1s",
        "rules": [
            {
                "alert": "HighErrorRate",
                "expr": "job:http_errors:rate5m > 0.5",
                "for": "0s",
                "labels": {"severity": "page"},
                "annotations": {"summary": "{{ $labels.job }} answers 500 {{ $value }} times/s"},
            },
            {"alert": "NeverFires", "expr": "vector(0) > 1", "for": "0s"},
        ],
    },
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    end = int(time.time())
    async with running_exporter() as exporter:
        exporter.set("shop_queue_depth", {"queue": "orders"}, 42)
        async with running_prometheus(
            tmp_path_factory.mktemp("prometheus"),
            scrape_configs=[exporter.scrape_config("shop-exporter")],
            rule_groups=RULE_GROUPS,
            history=history(end),
        ) as prometheus:
            print(f"prometheus ready in {prometheus.start_seconds:.2f}s")
            toolset = from_env({"PROMETHEUS_URL": prometheus.url})
            assert toolset is not None
            try:
                yield Scenario(prometheus, exporter, toolset, end)
            finally:
                await toolset.close()


def tool(toolset: PrometheusToolset, name: str) -> RunTool:
    return next(t for t in toolset.tools() if t.name == name).run


async def test_instant_query_reads_backfilled_history(scenario: Scenario) -> None:
    query = tool(scenario.toolset, "prometheus_query")
    at_end = await query({"query": "node_temperature_celsius", "time": scenario.end})
    assert at_end == {
        "query": "node_temperature_celsius",
        "result_type": "vector",
        "series": [
            {
                "metric": {"__name__": "node_temperature_celsius", "job": "shop"},
                "value": str(SAMPLES - 1),
            }
        ],
        "truncated": False,
    }
    rate = await query({"query": 'rate(http_requests_total{code="500"}[5m])', "time": scenario.end})
    (series,) = rate["series"]
    assert series["metric"] == {"code": "500", "job": "shop"}
    assert float(series["value"]) == pytest.approx(REQUESTS_PER_SAMPLE / STEP)


async def test_range_query_has_at_most_100_true_points(scenario: Scenario) -> None:
    start = scenario.end - STEP * (SAMPLES - 1)
    result = await tool(scenario.toolset, "prometheus_query_range")(
        {"query": "node_temperature_celsius", "start": start, "end": scenario.end, "step": "15s"}
    )
    # 15 s would give 241 points: widened to the finest whole-second step giving ≤ 100.
    assert result["step_seconds"] == 37
    (series,) = result["series"]
    points = series["points"]
    assert 95 <= len(points) <= 100
    for ts, value in points:
        assert value == str(scenario.temperature_at(ts))
    assert series["min"] == "0"
    assert series["max"] == series["last"] == points[-1][1]


async def test_recording_rule_and_firing_alert(scenario: Scenario) -> None:
    await scenario.prometheus.wait_for_alert("HighErrorRate")
    alerts = await tool(scenario.toolset, "prometheus_alerts")({})
    (alert,) = alerts["alerts"]
    assert alert["name"] == "HighErrorRate"
    assert alert["state"] == "firing"
    assert alert["labels"] == {"alertname": "HighErrorRate", "job": "shop", "severity": "page"}
    assert alert["annotations"]["summary"].startswith("shop answers 500 0.66")
    assert float(alert["value"]) == pytest.approx(REQUESTS_PER_SAMPLE / STEP)
    assert alert["active_at"]

    rules = await tool(scenario.toolset, "prometheus_rules")({})
    by_name = {r["name"]: r for g in rules["groups"] for r in g["rules"]}
    assert sorted(g["name"] for g in rules["groups"]) == ["shop-alerts", "shop-recording"]
    assert by_name["job:http_errors:rate5m"]["type"] == "record"
    assert by_name["job:http_errors:rate5m"]["health"] == "ok"
    assert by_name["HighErrorRate"] | {"health": "-"} == {
        "name": "HighErrorRate",
        "type": "alert",
        "query": "job:http_errors:rate5m > 0.5",
        "state": "firing",
        "health": "-",
        "labels": {"severity": "page"},
        "annotations": {"summary": "{{ $labels.job }} answers 500 {{ $value }} times/s"},
    }
    assert by_name["NeverFires"]["state"] == "inactive"
    recorded = await tool(scenario.toolset, "prometheus_rules")({"type": "record"})
    assert [r["name"] for g in recorded["groups"] for r in g["rules"]] == ["job:http_errors:rate5m"]


async def test_series_and_label_values(scenario: Scenario) -> None:
    series = tool(scenario.toolset, "prometheus_series")
    pods = await series({"match": 'kube_pod_info{namespace="shop"}'})
    assert pods == {
        "series": [
            {"__name__": "kube_pod_info", "namespace": "shop", "pod": "web-1"},
            {"__name__": "kube_pod_info", "namespace": "shop", "pod": "web-2"},
        ],
        "truncated": False,
    }
    one = await series({"match": "kube_pod_info", "limit": 1})
    assert len(one["series"]) == 1
    assert one["truncated"] is True

    values = tool(scenario.toolset, "prometheus_label_values")
    assert await values({"label": "pod", "match": "kube_pod_info"}) == {
        "label": "pod",
        "values": ["web-1", "web-2"],
        "truncated": False,
    }
    names = await values({"label": "__name__", "limit": 2})
    assert names["truncated"] is True
    assert len(names["values"]) == 2


async def test_scraped_exporter_values_follow_the_test(scenario: Scenario) -> None:
    prometheus, exporter = scenario.prometheus, scenario.exporter
    query = tool(scenario.toolset, "prometheus_query")
    await prometheus.wait_for("shop_queue_depth == 42")
    result = await query({"query": "shop_queue_depth"})
    assert result["series"] == [
        {
            "metric": {
                "__name__": "shop_queue_depth",
                "instance": exporter.target,
                "job": "shop-exporter",
                "queue": "orders",
            },
            "value": "42",
        }
    ]
    exporter.set("shop_queue_depth", {"queue": "orders"}, 7.5)
    await prometheus.wait_for("shop_queue_depth == 7.5")
    result = await query({"query": "shop_queue_depth"})
    assert result["series"][0]["value"] == "7.5"
    jobs = await tool(scenario.toolset, "prometheus_label_values")({"label": "job"})
    assert jobs["values"] == ["shop", "shop-exporter"]


async def test_bad_promql_quotes_prometheus(scenario: Scenario) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await tool(scenario.toolset, "prometheus_query")({"query": "sum(rate(x[5m])"})
    assert caught.value.message.startswith("Prometheus refused the query: invalid parameter")
    assert "parse error" in caught.value.message
    with pytest.raises(InvalidArgument, match="parse error"):
        await tool(scenario.toolset, "prometheus_series")({"match": "up{"})


async def test_a_query_prometheus_cannot_execute_is_its_422(scenario: Scenario) -> None:
    # Two kube_pod_info series share the namespace: many-to-many matching, which
    # Prometheus refuses at execution (errorType "execution", HTTP 422).
    with pytest.raises(InvalidArgument) as caught:
        await tool(scenario.toolset, "prometheus_query")(
            {"query": "kube_pod_info * on(namespace) kube_pod_info", "time": scenario.end}
        )
    assert caught.value.message.startswith("Prometheus could not run the query:")
    assert "many-to-many matching not allowed" in caught.value.message


async def test_a_query_prometheus_times_out_is_its_503(tmp_path: Path) -> None:
    # Prometheus checks its query timeout between the steps of an evaluation: a range
    # query whose every step is a day-long subquery passes a 1 ms timeout at the second
    # step, and Prometheus answers errorType "timeout" with HTTP 503. The tool says the
    # query timed out, not that Prometheus is down.
    async with running_prometheus(tmp_path, flags=["--query.timeout=1ms"]) as prometheus:
        toolset = from_env({"PROMETHEUS_URL": prometheus.url})
        assert toolset is not None
        try:
            with pytest.raises(DeadlineExceeded) as caught:
                await tool(toolset, "prometheus_query_range")(
                    {"query": "count_over_time(vector(1)[1d:1s])"}
                )
        finally:
            await toolset.close()
    assert caught.value.message == (
        "Prometheus timed out running the query: query timed out in expression evaluation"
    )


async def test_a_prometheus_nobody_runs_is_unavailable() -> None:
    toolset = from_env({"PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}"})
    assert toolset is not None
    try:
        with pytest.raises(Unavailable, match=r"cannot reach Prometheus at 127\.0\.0\.1"):
            await tool(toolset, "prometheus_alerts")({})
    finally:
        await toolset.close()


async def test_a_bearer_token_prometheus_refuses_is_permission_denied(tmp_path: Path) -> None:
    """Prometheus' own web config checks basic auth only, so a bearer token can only be
    refused here; that the token is sent as `Authorization: Bearer` is checked in the
    unit tests (MockTransport)."""
    token = "bearer-token-under-test"
    async with running_prometheus(tmp_path, basic_auth=True) as prometheus:
        toolset = from_env({"PROMETHEUS_URL": prometheus.url, "PROMETHEUS_TOKEN": token})
        assert toolset is not None
        try:
            with pytest.raises(PermissionDenied) as caught:
                await tool(toolset, "prometheus_query")({"query": "up"})
        finally:
            await toolset.close()
    assert "refused the token (PROMETHEUS_TOKEN): HTTP 401" in caught.value.message
    assert token not in caught.value.message


async def test_alertmanager_starts_ready_and_stops(tmp_path: Path) -> None:
    config = {
        "route": {"receiver": "hook", "group_wait": "0s"},
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": f"http://127.0.0.1:{free_port()}/"}]}
        ],
    }
    async with running_alertmanager(tmp_path, config) as alertmanager:
        print(f"alertmanager ready in {alertmanager.start_seconds:.2f}s")
        async with httpx.AsyncClient(base_url=alertmanager.url, timeout=5) as client:
            status = (await client.get("/api/v2/status")).json()
        assert status["cluster"]["status"] == "disabled"
        assert "hook" in status["config"]["original"]
    assert alertmanager.process.returncode is not None
