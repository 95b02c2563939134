"""Periodic provider health checks (ProviderService.CheckProvider), per router replica.

Results feed the `llmgw_provider_healthy` gauge, the routing state RPC, and routing
itself: deployments on a provider whose last check failed are tried after the others
(never skipped: a failed check is a hint, the breaker is the judge).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Gauge, Histogram

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError
from services.common.gateway_config import HealthConfig
from services.common.tasks import cancel_and_wait
from services.router.provider_client import ProviderClient

log = logging.getLogger("llmgw.router.health")

# Seconds after start before the first round of checks.
FIRST_CHECK_DELAY = 3.0

PROVIDER_HEALTHY = Gauge(
    "llmgw_provider_healthy",
    "1 when the provider's last health check (CheckProvider) succeeded, else 0.",
    ["provider"],
)
CHECK_LATENCY = Histogram(
    "llmgw_provider_check_seconds",
    "Duration of provider health checks.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@dataclass(frozen=True)
class ProviderHealth:
    healthy: bool
    error: str
    checked_at: float


class HealthMonitor:
    def __init__(
        self,
        provider: ProviderClient,
        providers: Callable[[], list[str]],
        config: HealthConfig,
    ) -> None:
        self._provider = provider
        self._providers = providers
        self.config = config
        self._results: dict[str, ProviderHealth] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def configure(self, config: HealthConfig) -> None:
        self.config = config
        self._wake.set()

    def healthy(self, provider: str) -> bool:
        """Unchecked providers count as healthy."""
        result = self._results.get(provider)
        return result is None or result.healthy

    def result(self, provider: str) -> ProviderHealth | None:
        return self._results.get(provider)

    async def check_all(self) -> None:
        names = self._providers()
        await asyncio.gather(*(self._check(name) for name in names))
        for gone in set(self._results) - set(names):
            del self._results[gone]
            with contextlib.suppress(KeyError):
                PROVIDER_HEALTHY.remove(gone)

    async def _check(self, name: str) -> None:
        started = time.perf_counter()
        try:
            reply = await self._provider.check(name, self.config.timeout_seconds)
        except GatewayError as error:
            if error.reason == error_reason_pb2.ERROR_REASON_DEPENDENCY_UNAVAILABLE:
                return  # our path to the provider service failed, not the provider
            healthy, problem = False, error.message
        else:
            healthy, problem = reply.healthy, reply.error
        CHECK_LATENCY.labels(name).observe(time.perf_counter() - started)
        previous = self._results.get(name)
        self._results[name] = ProviderHealth(healthy, problem, time.time())
        PROVIDER_HEALTHY.labels(name).set(1 if healthy else 0)
        if previous is None or previous.healthy != healthy:
            if healthy:
                log.info("provider healthy", extra={"provider": name})
            else:
                log.warning("provider unhealthy", extra={"provider": name, "error": problem})

    async def _run(self) -> None:
        # The router starts before Envoy (which needs its port): check once it is up.
        await asyncio.sleep(min(self.config.interval_seconds, FIRST_CHECK_DELAY) or 0)
        while True:
            interval = self.config.interval_seconds
            if interval > 0:
                try:
                    await self.check_all()
                except Exception:  # the loop must outlive one bad round; say why
                    log.exception("provider health round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval if interval > 0 else None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="provider-health")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
