"""Routing strategies: the order in which one request tries a model's deployments.

Every strategy returns all the deployments, best first; the attempt loop walks the list,
passing over open breakers and full caps and moving on after failures, so a strategy
only decides preference, never exclusion. This runs on every request: ordering a
handful of deployments costs a few microseconds and never logs.

- priority: the configured order.
- weighted: smooth weighted round robin (nginx's): over any run of picks each deployment
  comes first in proportion to its weight, exactly, and evenly spread. The others follow
  by descending weight; weight-0 deployments are fallbacks only and come last.
- least_latency: deployments never measured, or not for `stale_seconds`, first (in
  configured order) so they get measured and a recovered one is noticed; then ascending
  smoothed time to first token (streams, when known) or whole-call latency.
- lowest_cost: ascending estimated price of this request's prompt and output tokens.
- least_busy: ascending calls in flight (as a fraction of the cap when capped); equal
  loads in random order so equal deployments share the traffic.

Ties otherwise keep the configured order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.common.gateway_config import Deployment
from services.router.routing.stats import StatsTable, upstream_key

STRATEGIES: frozenset[str] = frozenset(
    {"priority", "weighted", "least_latency", "lowest_cost", "least_busy"}
)


@dataclass(frozen=True, slots=True)
class OrderingInput:
    """What the strategies know of the request."""

    prompt_tokens: int
    output_tokens: int
    # least_latency compares time to first token for streams, whole-call latency otherwise.
    streaming: bool


class _SmoothWeighted:
    """One model's round-robin state, valid for one list of (deployment, weight)."""

    __slots__ = ("current", "members", "ranked", "signature", "total", "weights")

    def __init__(self, deployments: Sequence[Deployment]) -> None:
        self.members = tuple(deployments)
        self.signature = _signature(deployments)
        self.weights = [d.weight for d in deployments]
        self.total = sum(self.weights)
        self.current = [0] * len(self.weights)
        # Positions by descending weight, ties in configured order (the sort is stable).
        self.ranked = sorted(range(len(self.weights)), key=lambda i: -self.weights[i])

    def matches(self, deployments: Sequence[Deployment]) -> bool:
        """Whether `deployments` are the ones this state was built for. The catalogue hands
        out the same objects until a reload, so identity settles it without building keys;
        a reload that kept every deployment and weight keeps the state."""
        members = self.members
        if len(members) == len(deployments) and all(
            a is b for a, b in zip(members, deployments, strict=True)
        ):
            return True
        if _signature(deployments) != self.signature:
            return False
        self.members = tuple(deployments)
        return True

    def pick(self) -> int:
        current = self.current
        best = -1
        best_value = 0
        for i, weight in enumerate(self.weights):
            if weight:
                value = current[i] + weight
                current[i] = value
                if best < 0 or value > best_value:
                    best, best_value = i, value
        current[best] -= self.total
        return best


def _signature(deployments: Sequence[Deployment]) -> tuple[tuple[str, int], ...]:
    return tuple((d.key, d.weight) for d in deployments)


class DeploymentOrderer:
    def __init__(
        self,
        stats: StatsTable,
        *,
        stale_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._stats = stats
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._rng = rng or random.Random()
        self._weighted: dict[str, _SmoothWeighted] = {}
        self._strategies: dict[
            str, Callable[[str, Sequence[Deployment], OrderingInput], list[Deployment]]
        ] = {
            "priority": self._priority,
            "weighted": self._weighted_order,
            "least_latency": self._least_latency,
            "lowest_cost": self._lowest_cost,
            "least_busy": self._least_busy,
        }
        assert self._strategies.keys() == STRATEGIES

    def configure(self, stale_seconds: float) -> None:
        self._stale_seconds = stale_seconds

    def order(
        self,
        strategy: str,
        model: str,
        deployments: Sequence[Deployment],
        request: OrderingInput,
    ) -> list[Deployment]:
        """All of `model`'s deployments, best first. Raises ValueError for a strategy not
        in STRATEGIES (callers validate names first)."""
        method = self._strategies.get(strategy)
        if method is None:
            raise ValueError(f"unknown routing strategy '{strategy}'")
        return method(model, deployments, request)

    @staticmethod
    def _priority(
        model: str, deployments: Sequence[Deployment], request: OrderingInput
    ) -> list[Deployment]:
        return list(deployments)

    def _weighted_order(
        self, model: str, deployments: Sequence[Deployment], request: OrderingInput
    ) -> list[Deployment]:
        state = self._weighted.get(model)
        if state is None or not state.matches(deployments):
            state = self._weighted[model] = _SmoothWeighted(deployments)
        if not state.total:
            # Only reachable through a per-request override of a model not configured
            # as weighted: nothing to rotate, so the configured order stands.
            return list(deployments)
        first = state.pick()
        ordered = [deployments[first]]
        ordered += [deployments[i] for i in state.ranked if i != first]
        return ordered

    def _least_latency(
        self, model: str, deployments: Sequence[Deployment], request: OrderingInput
    ) -> list[Deployment]:
        get = self._stats.get
        stale_before = self._clock() - self._stale_seconds
        streaming = request.streaming
        unmeasured: list[Deployment] = []
        measured: list[tuple[float, int, Deployment]] = []
        for i, deployment in enumerate(deployments):
            stats = get(upstream_key(deployment))
            value = stats.ttft if streaming and stats.ttft is not None else stats.latency
            if value is None or stats.last_sample_at < stale_before:
                unmeasured.append(deployment)
            else:
                measured.append((value, i, deployment))
        measured.sort()
        unmeasured += [deployment for _, _, deployment in measured]
        return unmeasured

    @staticmethod
    def _lowest_cost(
        model: str, deployments: Sequence[Deployment], request: OrderingInput
    ) -> list[Deployment]:
        prompt = request.prompt_tokens
        output = request.output_tokens
        costs = [
            (prompt * d.input_price + output * d.output_price, i, d)
            for i, d in enumerate(deployments)
        ]
        costs.sort()
        return [deployment for _, _, deployment in costs]

    def _least_busy(
        self, model: str, deployments: Sequence[Deployment], request: OrderingInput
    ) -> list[Deployment]:
        get = self._stats.get
        draw = self._rng.random
        loads: list[tuple[float, float, int, Deployment]] = []
        for i, deployment in enumerate(deployments):
            in_flight = get(upstream_key(deployment)).in_flight
            cap = deployment.max_concurrency
            loads.append((in_flight / cap if cap else in_flight, draw(), i, deployment))
        loads.sort()
        return [deployment for _, _, _, deployment in loads]
