"""What one router replica knows about each deployment: calls in flight, smoothed latency
and time to first token, and lifetime outcome counts.

Keys are upstreams (`provider/model`, see `upstream_key`): two public models served by
the same upstream share its statistics, as they share its capacity. Everything here is
mutated from the event loop only, so a check-and-increment needs no lock.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Gauge, Histogram

from services.common.gateway_config import PREFIX_ROUTE, Deployment

IN_FLIGHT = Gauge(
    "llmgw_deployment_in_flight",
    "Upstream calls (streams until they end) in progress, by deployment.",
    ["deployment"],
)
LATENCY = Histogram(
    "llmgw_deployment_latency_seconds",
    "Whole-call latency of successful upstream calls, by deployment.",
    ["deployment"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160),
)


def upstream_key(deployment: Deployment) -> str:
    """The statistics key of a deployment: its provider instance and upstream model
    (not `Deployment.key`, whose `id` names one catalogue entry's use of the upstream).
    Every name a prefix rule routes shares the rule's one key: the caller chooses those
    names, and each would otherwise be a key of its own."""
    if deployment.id.startswith(PREFIX_ROUTE):
        return deployment.id
    return f"{deployment.provider}/{deployment.model}"


@dataclass(slots=True)
class DeploymentStats:
    in_flight: int = 0
    # Exponentially weighted moving averages in seconds; None until the first sample.
    latency: float | None = None
    ttft: float | None = None
    # Monotonic time of the newest latency or ttft sample; 0 = never sampled.
    last_sample_at: float = 0.0
    successes: int = 0
    failures: int = 0


@dataclass(slots=True)
class _Metrics:
    in_flight: Gauge
    latency: Histogram


class StatsTable:
    def __init__(self, smoothing: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._smoothing = _checked(smoothing)
        self._clock = clock
        self._stats: dict[str, DeploymentStats] = {}
        self._metrics: dict[str, _Metrics] = {}

    def configure(self, smoothing: float) -> None:
        """A new weight for the newest sample; the averages so far are kept."""
        self._smoothing = _checked(smoothing)

    def get(self, key: str) -> DeploymentStats:
        """The live record (created empty on first use); callers only read it."""
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = DeploymentStats()
        return stats

    def begin(self, key: str) -> None:
        self.get(key).in_flight += 1
        self._metrics_for(key).in_flight.inc()

    def try_begin(self, key: str, max_concurrency: int) -> bool:
        """`begin` unless a cap is set (> 0) and already reached; says which happened."""
        stats = self.get(key)
        if max_concurrency > 0 and stats.in_flight >= max_concurrency:
            return False
        stats.in_flight += 1
        self._metrics_for(key).in_flight.inc()
        return True

    def cancel(self, key: str) -> None:
        """Closes a `begin` whose call never started (nothing to learn from it)."""
        stats = self.get(key)
        if stats.in_flight > 0:
            stats.in_flight -= 1
            self._metrics_for(key).in_flight.dec()

    def end(
        self,
        key: str,
        *,
        success: bool,
        latency: float | None = None,
        ttft: float | None = None,
    ) -> None:
        """Closes one `begin`. Samples count only on success: a failure's duration says
        nothing about how fast the deployment answers."""
        stats = self.get(key)
        metrics = self._metrics_for(key)
        # An unmatched end (a caller bug) must not leave a negative count that would
        # make the deployment look idle to least_busy and uncap it for try_begin.
        if stats.in_flight > 0:
            stats.in_flight -= 1
            metrics.in_flight.dec()
        if not success:
            stats.failures += 1
            return
        stats.successes += 1
        alpha = self._smoothing
        if latency is not None:
            old = stats.latency
            stats.latency = latency if old is None else alpha * latency + (1 - alpha) * old
            metrics.latency.observe(latency)
        if ttft is not None:
            old = stats.ttft
            stats.ttft = ttft if old is None else alpha * ttft + (1 - alpha) * old
        if latency is not None or ttft is not None:
            stats.last_sample_at = self._clock()

    def snapshot(self) -> dict[str, DeploymentStats]:
        """Copies of every record, safe to hold across awaits."""
        return {key: dataclasses.replace(stats) for key, stats in self._stats.items()}

    def _metrics_for(self, key: str) -> _Metrics:
        # Label children are cached: `labels()` costs a lock and a dict lookup per call.
        metrics = self._metrics.get(key)
        if metrics is None:
            metrics = self._metrics[key] = _Metrics(IN_FLIGHT.labels(key), LATENCY.labels(key))
        return metrics


def _checked(smoothing: float) -> float:
    if not 0 < smoothing <= 1:
        raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    return smoothing
