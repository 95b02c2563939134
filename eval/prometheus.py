"""The Prometheus side of the error-rate scenario: an hour of billing's invoice-api
request counters (5xx at 0.5% of traffic, then 30% for the last few minutes), an
alerting rule over their ratio, and an exporter that keeps the counters growing at the
same rates so the alert stays firing however long a run takes.

The history is backfilled (queryable the moment Prometheus is ready); without the live
exporter the rate would go stale five minutes after the last backfilled sample and the
alert would resolve mid-run. Both write the same series (the exporter's `job` and
`instance` are in the history's labels), from one function of the clock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.scenarios import ERROR_RATE_ALERT, ERROR_RATE_EXPR
from tests.support.prometheus import Exporter, Prometheus, Series, running_prometheus

JOB = "invoice-api"
LABELS = {"namespace": "billing", "deployment": "invoice-api"}
REQUESTS_PER_SECOND = 20.0
ERRORS_BEFORE = 0.1  # per second: 0.5% of requests
ERRORS_DURING = 6.0  # per second: 30% of requests
# How long before the start of a run the errors jumped (kept short: the spike must stay
# a minority of the last hour's points for as long as a run lasts).
SPIKE_AGE_SECONDS = 240
HISTORY_SECONDS = 3600
HISTORY_STEP = 15
ALERT = ERROR_RATE_ALERT

RULE_GROUPS: list[dict[str, Any]] = [
    {
        "name": "billing-slo",
        "interval": "1s",
        "rules": [
            {
                "alert": ALERT,
                "expr": ERROR_RATE_EXPR,
                "for": "0s",
                "labels": {"severity": "page"},
                "annotations": {
                    "summary": "{{ $labels.deployment }} answers more than 5% of requests "
                    "with 5xx ({{ $value | humanizePercentage }})",
                },
            }
        ],
    }
]


@dataclass(frozen=True)
class Traffic:
    """The counters as functions of time: `origin` is where they start at 0, `spike`
    when the error rate jumps."""

    origin: float
    spike: float

    def errors(self, at: float) -> float:
        before = min(at, self.spike) - self.origin
        return ERRORS_BEFORE * max(before, 0.0) + ERRORS_DURING * max(at - self.spike, 0.0)

    def successes(self, at: float) -> float:
        return REQUESTS_PER_SECOND * max(at - self.origin, 0.0) - self.errors(at)


class TrafficExporter(Exporter):
    """invoice-api's counters, computed at each scrape from the clock."""

    def __init__(self, traffic: Traffic) -> None:
        super().__init__()
        self.traffic = traffic

    def exposition(self) -> str:
        now = time.time()
        self.set("http_requests_total", {**LABELS, "code": "500"}, self.traffic.errors(now))
        self.set("http_requests_total", {**LABELS, "code": "200"}, self.traffic.successes(now))
        return super().exposition()


def history(traffic: Traffic, end: float, instance: str) -> list[Series]:
    """The last hour before `end`, as the exporter would have been scraped."""
    times = [
        end - HISTORY_SECONDS + i * HISTORY_STEP for i in range(HISTORY_SECONDS // HISTORY_STEP)
    ]
    labels = {**LABELS, "job": JOB, "instance": instance}
    return [
        Series(
            "http_requests_total",
            {**labels, "code": "500"},
            [(t, traffic.errors(t)) for t in times],
        ),
        Series(
            "http_requests_total",
            {**labels, "code": "200"},
            [(t, traffic.successes(t)) for t in times],
        ),
    ]


@asynccontextmanager
async def running_error_rate_prometheus(workdir: Path) -> AsyncIterator[Prometheus]:
    """Prometheus with invoice-api's history, its live exporter and the alert rule,
    returned once the alert fires."""
    now = time.time()
    traffic = Traffic(origin=now - HISTORY_SECONDS - 60, spike=now - SPIKE_AGE_SECONDS)
    exporter = TrafficExporter(traffic)
    await exporter.start()
    try:
        async with running_prometheus(
            workdir,
            scrape_configs=[exporter.scrape_config(JOB)],
            rule_groups=RULE_GROUPS,
            history=history(traffic, now, exporter.target),
        ) as prometheus:
            await prometheus.wait_for_alert(ALERT, timeout=30)
            yield prometheus
    finally:
        await exporter.stop()
