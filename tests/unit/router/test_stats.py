"""Per-deployment statistics: in-flight counts and caps, moving averages, metrics."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from services.common.gateway_config import Deployment
from services.router.routing.stats import StatsTable, upstream_key


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sample(name: str, key: str) -> float:
    value = REGISTRY.get_sample_value(name, {"deployment": key})
    return 0.0 if value is None else value


def test_the_first_sample_sets_the_average_and_later_ones_are_weighted() -> None:
    table = StatsTable(0.3)
    table.begin("p/a")
    table.end("p/a", success=True, latency=2.0)
    assert table.get("p/a").latency == 2.0
    table.begin("p/a")
    table.end("p/a", success=True, latency=1.0)
    assert table.get("p/a").latency == pytest.approx(0.3 * 1.0 + 0.7 * 2.0)
    table.begin("p/a")
    table.end("p/a", success=True, latency=4.0)
    assert table.get("p/a").latency == pytest.approx(0.3 * 4.0 + 0.7 * 1.7)


def test_ttft_has_its_own_average_and_is_optional() -> None:
    table = StatsTable(0.5)
    table.begin("p/a")
    table.end("p/a", success=True, latency=3.0, ttft=0.2)
    table.begin("p/a")
    table.end("p/a", success=True, latency=5.0)  # a unary call: no ttft
    table.begin("p/a")
    table.end("p/a", success=True, latency=3.0, ttft=0.4)
    stats = table.get("p/a")
    assert stats.ttft == pytest.approx(0.3)
    assert stats.latency == pytest.approx(0.5 * 3.0 + 0.5 * 4.0)


def test_failures_count_but_leave_the_averages_and_sample_time_alone() -> None:
    clock = Clock(50.0)
    table = StatsTable(0.3, clock=clock)
    table.begin("p/a")
    table.end("p/a", success=True, latency=1.0, ttft=0.1)
    clock.now = 90.0
    table.begin("p/a")
    table.end("p/a", success=False, latency=30.0, ttft=9.0)
    stats = table.get("p/a")
    assert (stats.latency, stats.ttft, stats.last_sample_at) == (1.0, 0.1, 50.0)
    assert (stats.successes, stats.failures, stats.in_flight) == (1, 1, 0)


def test_a_sample_records_when_it_was_taken() -> None:
    clock = Clock(7.5)
    table = StatsTable(0.3, clock=clock)
    assert table.get("p/a").last_sample_at == 0.0
    table.begin("p/a")
    table.end("p/a", success=True, ttft=0.2)
    assert table.get("p/a").last_sample_at == 7.5
    assert table.get("p/a").latency is None


def test_configure_changes_the_weight_of_later_samples_only() -> None:
    table = StatsTable(0.3)
    table.begin("p/a")
    table.end("p/a", success=True, latency=1.0)
    table.configure(1.0)
    assert table.get("p/a").latency == 1.0
    table.begin("p/a")
    table.end("p/a", success=True, latency=3.0)
    assert table.get("p/a").latency == 3.0


@pytest.mark.parametrize("smoothing", [0.0, -0.1, 1.5])
def test_smoothing_outside_zero_to_one_is_refused(smoothing: float) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        StatsTable(smoothing)
    with pytest.raises(ValueError, match="smoothing"):
        StatsTable(0.3).configure(smoothing)


def test_try_begin_stops_at_the_cap_until_a_call_ends() -> None:
    table = StatsTable(0.3)
    assert table.try_begin("p/a", 2)
    assert table.try_begin("p/a", 2)
    assert not table.try_begin("p/a", 2)
    assert table.get("p/a").in_flight == 2  # the refusal did not count
    table.end("p/a", success=True, latency=0.1)
    assert table.try_begin("p/a", 2)
    assert table.get("p/a").in_flight == 2


def test_try_begin_without_a_cap_always_admits() -> None:
    table = StatsTable(0.3)
    assert all(table.try_begin("p/a", 0) for _ in range(100))
    assert table.get("p/a").in_flight == 100


def test_caps_are_per_deployment() -> None:
    table = StatsTable(0.3)
    assert table.try_begin("p/a", 1)
    assert not table.try_begin("p/a", 1)
    assert table.try_begin("p/b", 1)


def test_an_unmatched_end_does_not_go_below_zero() -> None:
    table = StatsTable(0.3)
    table.end("p/a", success=False)
    assert table.get("p/a").in_flight == 0
    assert table.try_begin("p/a", 1)
    assert not table.try_begin("p/a", 1)


def test_snapshot_holds_copies() -> None:
    table = StatsTable(0.3)
    table.begin("p/a")
    snapshot = table.snapshot()
    table.end("p/a", success=True, latency=1.0)
    assert snapshot["p/a"].in_flight == 1 and snapshot["p/a"].latency is None
    snapshot["p/a"].in_flight = 40
    assert table.get("p/a").in_flight == 0
    assert set(table.snapshot()) == {"p/a"}


def test_metrics_follow_begin_and_end() -> None:
    key = "metrics-test/model"
    table = StatsTable(0.3)
    gauge = "llmgw_deployment_in_flight"
    count = "llmgw_deployment_latency_seconds_count"
    total = "llmgw_deployment_latency_seconds_sum"
    assert table.try_begin(key, 0)
    table.begin(key)
    assert _sample(gauge, key) == 2
    assert not table.try_begin(key, 2)
    assert _sample(gauge, key) == 2
    table.end(key, success=True, latency=0.75)
    table.end(key, success=False)
    table.end(key, success=False)  # unmatched: the gauge stays at zero too
    assert _sample(gauge, key) == 0
    assert _sample(count, key) == 1
    assert _sample(total, key) == pytest.approx(0.75)


def test_statistics_are_keyed_by_upstream_not_by_deployment_id() -> None:
    named = Deployment(provider="openai", model="gpt-4o", id="east")
    assert upstream_key(named) == "openai/gpt-4o"
    assert upstream_key(Deployment(provider="openai", model="gpt-4o")) == "openai/gpt-4o"
