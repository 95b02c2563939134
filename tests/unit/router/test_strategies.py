"""Routing strategies: each orders every deployment of a model, best first."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from services.common.gateway_config import Deployment
from services.router.routing.stats import StatsTable, upstream_key
from services.router.routing.strategies import STRATEGIES, DeploymentOrderer, OrderingInput

UNARY = OrderingInput(prompt_tokens=1000, output_tokens=256, streaming=False)
STREAM = OrderingInput(prompt_tokens=1000, output_tokens=256, streaming=True)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _dep(name: str, **fields: object) -> Deployment:
    return Deployment(provider="p", model=name, **fields)  # type: ignore[arg-type]


def _names(deployments: list[Deployment]) -> list[str]:
    return [d.model for d in deployments]


def _orderer(
    stats: StatsTable | None = None, clock: Clock | None = None, seed: int = 0
) -> DeploymentOrderer:
    return DeploymentOrderer(
        stats or StatsTable(0.3),
        stale_seconds=30.0,
        # The tests' own StatsTable samples on the real monotonic clock: the orderer must
        # read the same clock (a fixed fake one makes every sample look stale, or fresh,
        # depending on the machine's uptime).
        clock=clock or time.monotonic,
        rng=random.Random(seed),
    )


def _measure(
    stats: StatsTable, deployment: Deployment, latency: float, ttft: float | None = None
) -> None:
    key = upstream_key(deployment)
    stats.begin(key)
    stats.end(key, success=True, latency=latency, ttft=ttft)


def _firsts(
    orderer: DeploymentOrderer, deployments: list[Deployment], n: int, model: str = "m"
) -> list[str]:
    return [orderer.order("weighted", model, deployments, UNARY)[0].model for _ in range(n)]


def test_the_five_strategies_are_named() -> None:
    assert {"priority", "weighted", "least_latency", "lowest_cost", "least_busy"} == STRATEGIES


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_returns_every_deployment_once(strategy: str) -> None:
    deployments = [_dep("a", weight=2), _dep("b", weight=0), _dep("c"), _dep("d", weight=5)]
    orderer = _orderer()
    for _ in range(10):
        ordered = orderer.order(strategy, "m", deployments, UNARY)
        assert sorted(_names(ordered)) == ["a", "b", "c", "d"]


def test_an_unknown_strategy_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="fastest"):
        _orderer().order("fastest", "m", [_dep("a"), _dep("b")], UNARY)


def test_priority_keeps_the_configured_order() -> None:
    stats = StatsTable(0.3)
    deployments = [_dep("slow"), _dep("fast")]
    _measure(stats, deployments[0], 9.0)
    _measure(stats, deployments[1], 0.1)
    assert _names(_orderer(stats).order("priority", "m", deployments, UNARY)) == ["slow", "fast"]


# weighted


def test_weighted_three_to_one_is_exact_over_4000_requests() -> None:
    deployments = [_dep("a", weight=3), _dep("b", weight=1)]
    firsts = _firsts(_orderer(), deployments, 4000)
    assert Counter(firsts) == {"a": 3000, "b": 1000}
    # Smooth: b never waits more than three picks, unlike a-a-a-b blocks would allow.
    assert firsts[:4] == ["a", "a", "b", "a"]


def test_weighted_five_three_two_follows_the_smooth_sequence() -> None:
    deployments = [_dep("a", weight=5), _dep("b", weight=3), _dep("c", weight=2)]
    firsts = _firsts(_orderer(), deployments, 1000)
    assert Counter(firsts) == {"a": 500, "b": 300, "c": 200}
    # Hand-traced nginx algorithm (ties go to the earlier deployment); repeats every 10.
    cycle = ["a", "b", "c", "a", "a", "b", "a", "c", "b", "a"]
    assert firsts == cycle * 100


def test_weighted_rest_follows_by_descending_weight_and_weight_zero_is_last() -> None:
    deployments = [_dep("spare", weight=0), _dep("small", weight=1), _dep("big", weight=4)]
    orderer = _orderer()
    orders = [_names(orderer.order("weighted", "m", deployments, UNARY)) for _ in range(50)]
    assert all(order[-1] == "spare" for order in orders)
    assert Counter(order[0] for order in orders) == {"big": 40, "small": 10}
    assert all(order[1] == "small" for order in orders if order[0] == "big")
    assert all(order[1] == "big" for order in orders if order[0] == "small")


def test_weighted_keeps_state_per_model() -> None:
    one = [_dep("a", weight=1), _dep("b", weight=1)]
    two = [_dep("x", weight=1), _dep("y", weight=1)]
    orderer = _orderer()
    assert _firsts(orderer, one, 1, "one") == ["a"]
    assert _firsts(orderer, two, 1, "two") == ["x"]
    assert _firsts(orderer, one, 1, "one") == ["b"]
    assert _firsts(orderer, two, 1, "two") == ["y"]


def test_weighted_state_survives_a_reload_with_the_same_deployments() -> None:
    orderer = _orderer()
    before = [_dep("a", weight=3), _dep("b", weight=1)]
    # A reload builds new (equal) deployment objects: the rotation continues.
    after = [_dep("a", weight=3), _dep("b", weight=1)]
    firsts = _firsts(orderer, before, 2) + _firsts(orderer, after, 2)
    assert firsts == ["a", "a", "b", "a"]


def test_weighted_state_resets_when_the_deployments_change() -> None:
    orderer = _orderer()
    assert _firsts(orderer, [_dep("a", weight=3), _dep("b", weight=1)], 2) == ["a", "a"]
    # Without a reset b (carrying a raised current weight) would come next.
    assert _firsts(orderer, [_dep("a", weight=3), _dep("b", weight=2)], 3) == ["a", "b", "a"]
    assert _firsts(orderer, [_dep("a", weight=3), _dep("c", weight=1)], 1) == ["a"]


def test_weighted_override_with_no_weights_keeps_the_configured_order() -> None:
    deployments = [_dep("a", weight=0), _dep("b", weight=0)]
    assert _firsts(_orderer(), deployments, 3) == ["a", "a", "a"]


# least_latency


def test_least_latency_measures_unknown_deployments_first() -> None:
    stats = StatsTable(0.3)
    deployments = [_dep("known"), _dep("new1"), _dep("new2")]
    _measure(stats, deployments[0], 0.1)
    ordered = _orderer(stats).order("least_latency", "m", deployments, UNARY)
    assert _names(ordered) == ["new1", "new2", "known"]


def test_least_latency_prefers_the_faster_deployment_once_measured() -> None:
    stats = StatsTable(0.3)
    deployments = [_dep("slow"), _dep("fast"), _dep("middle")]
    for deployment, latency in zip(deployments, (2.0, 0.5, 1.0), strict=True):
        _measure(stats, deployment, latency)
    ordered = _orderer(stats).order("least_latency", "m", deployments, UNARY)
    assert _names(ordered) == ["fast", "middle", "slow"]


def test_least_latency_remeasures_a_stale_deployment() -> None:
    clock = Clock(100.0)
    stats = StatsTable(0.3, clock=clock)
    orderer = _orderer(stats, clock)
    slow, fast = _dep("slow"), _dep("fast")
    _measure(stats, slow, 2.0)
    clock.now = 110.0
    _measure(stats, fast, 0.5)
    clock.now = 129.0
    assert _names(orderer.order("least_latency", "m", [fast, slow], UNARY)) == ["fast", "slow"]
    clock.now = 131.0  # slow's sample is now 31 s old, fast's 21 s
    assert _names(orderer.order("least_latency", "m", [fast, slow], UNARY)) == ["slow", "fast"]
    orderer.configure(stale_seconds=60.0)
    assert _names(orderer.order("least_latency", "m", [fast, slow], UNARY)) == ["fast", "slow"]


def test_least_latency_uses_time_to_first_token_for_streams() -> None:
    stats = StatsTable(0.3)
    quick_start = _dep("quick_start")  # starts at once, but writes long answers
    quick_end = _dep("quick_end")
    _measure(stats, quick_start, latency=5.0, ttft=0.1)
    _measure(stats, quick_end, latency=2.0, ttft=0.9)
    orderer = _orderer(stats)
    pair = [quick_end, quick_start]
    assert _names(orderer.order("least_latency", "m", pair, STREAM)) == ["quick_start", "quick_end"]
    assert _names(orderer.order("least_latency", "m", pair, UNARY)) == ["quick_end", "quick_start"]


def test_least_latency_streams_fall_back_to_latency_without_ttft() -> None:
    stats = StatsTable(0.3)
    streamed, unary_only = _dep("streamed"), _dep("unary_only")
    _measure(stats, streamed, latency=5.0, ttft=0.8)
    _measure(stats, unary_only, latency=0.5)
    ordered = _orderer(stats).order("least_latency", "m", [streamed, unary_only], STREAM)
    assert _names(ordered) == ["unary_only", "streamed"]


def test_least_latency_ties_keep_the_configured_order() -> None:
    stats = StatsTable(0.3)
    deployments = [_dep("b"), _dep("a"), _dep("c")]
    for deployment in deployments:
        _measure(stats, deployment, 1.0)
    ordered = _orderer(stats).order("least_latency", "m", deployments, UNARY)
    assert _names(ordered) == ["b", "a", "c"]


def test_least_latency_reads_the_statistics_the_attempt_loop_keeps() -> None:
    # The attempt loop records per upstream (provider/model), whatever the deployment id.
    stats = StatsTable(0.3)
    east = Deployment(provider="east", model="m", id="primary")
    west = Deployment(provider="west", model="m", id="secondary")
    for key, latency in (("east/m", 3.0), ("west/m", 1.0)):
        stats.begin(key)
        stats.end(key, success=True, latency=latency)
    ordered = _orderer(stats).order("least_latency", "m", [east, west], UNARY)
    assert [d.key for d in ordered] == ["secondary", "primary"]


# lowest_cost


def test_lowest_cost_picks_the_cheapest() -> None:
    deployments = [
        _dep("dear", input_price=3.0, output_price=15.0),
        _dep("cheap", input_price=0.15, output_price=0.6),
        _dep("mid", input_price=1.0, output_price=5.0),
    ]
    ordered = _orderer().order("lowest_cost", "m", deployments, UNARY)
    assert _names(ordered) == ["cheap", "mid", "dear"]


def test_lowest_cost_weighs_the_token_estimate() -> None:
    # Cheap to read, dear to write: wins a long prompt, loses a long answer.
    reader = _dep("reader", input_price=0.5, output_price=20.0)
    writer = _dep("writer", input_price=3.0, output_price=4.0)
    orderer = _orderer()
    long_prompt = OrderingInput(prompt_tokens=50_000, output_tokens=100, streaming=False)
    long_answer = OrderingInput(prompt_tokens=200, output_tokens=4000, streaming=False)
    pair = [writer, reader]
    assert _names(orderer.order("lowest_cost", "m", pair, long_prompt)) == ["reader", "writer"]
    assert _names(orderer.order("lowest_cost", "m", pair, long_answer)) == ["writer", "reader"]


def test_lowest_cost_ties_keep_the_configured_order() -> None:
    deployments = [_dep("b", input_price=1.0), _dep("a", input_price=1.0), _dep("free")]
    ordered = _orderer().order("lowest_cost", "m", deployments, UNARY)
    assert _names(ordered) == ["free", "b", "a"]


# least_busy


def test_least_busy_prefers_fewer_calls_in_flight() -> None:
    stats = StatsTable(0.3)
    deployments = [_dep("busy"), _dep("idle"), _dep("some")]
    for key, n in (("p/busy", 5), ("p/some", 2)):
        for _ in range(n):
            stats.begin(key)
    ordered = _orderer(stats).order("least_busy", "m", deployments, UNARY)
    assert _names(ordered) == ["idle", "some", "busy"]


def test_least_busy_compares_capped_deployments_by_their_share_of_the_cap() -> None:
    stats = StatsTable(0.3)
    big = _dep("big", max_concurrency=100)  # 10 of 100 in flight: 0.1
    small = _dep("small", max_concurrency=4)  # 2 of 4: 0.5
    uncapped = _dep("uncapped")  # 1 in flight: 1
    for deployment, n in ((big, 10), (small, 2), (uncapped, 1)):
        for _ in range(n):
            assert stats.try_begin(upstream_key(deployment), deployment.max_concurrency)
    ordered = _orderer(stats).order("least_busy", "m", [uncapped, small, big], UNARY)
    assert _names(ordered) == ["big", "small", "uncapped"]


def test_least_busy_shares_ties_between_equal_deployments() -> None:
    deployments = [_dep("a"), _dep("b"), _dep("c")]
    orderer = _orderer(seed=7)
    firsts = Counter(
        orderer.order("least_busy", "m", deployments, UNARY)[0].model for _ in range(3000)
    )
    assert set(firsts) == {"a", "b", "c"}
    assert all(800 < n < 1200 for n in firsts.values())


def test_least_busy_tie_breaks_are_reproducible_with_a_seeded_rng() -> None:
    deployments = [_dep("a"), _dep("b"), _dep("c")]

    def run(seed: int) -> list[list[str]]:
        orderer = _orderer(seed=seed)
        return [_names(orderer.order("least_busy", "m", deployments, UNARY)) for _ in range(20)]

    assert run(3) == run(3)
    assert len({tuple(order) for order in run(3)}) > 1


# cost
