"""Readiness: grpc.health.v1 status follows the service's required dependencies.

A background task probes each dependency every `interval` seconds (each probe bounded
by a timeout) and sets SERVING or NOT_SERVING for the overall server ("") and for each
hosted service, so Envoy's active health checks stop routing to a replica whose Redis
is gone and resume by themselves when it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from services.common.metrics import DEPENDENCY_UP, READY
from services.common.tasks import cancel_and_wait

log = logging.getLogger("llmgw.readiness")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class DependencyCheck:
    """A named probe; it raises (or times out) when the dependency is down."""

    name: str
    probe: Callable[[], Awaitable[object]]
    timeout: float = 1.0


class Readiness:
    """Owns the health statuses of one server."""

    def __init__(
        self,
        health: HealthServicer,
        service: str,
        service_names: Sequence[str],
        checks: Sequence[DependencyCheck],
        interval: float,
    ) -> None:
        self._health = health
        self._service = service
        self._names = ["", *service_names]
        self._checks = list(checks)
        self._interval = interval
        self._ready: bool | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return bool(self._ready)

    async def _probe(self, check: DependencyCheck) -> bool:
        try:
            await asyncio.wait_for(check.probe(), check.timeout)
        except Exception as error:
            DEPENDENCY_UP.labels(self._service, check.name).set(0)
            log.debug("dependency %s is down: %s", check.name, error)
            return False
        DEPENDENCY_UP.labels(self._service, check.name).set(1)
        return True

    async def refresh(self) -> bool:
        """Probe every dependency once and publish the result."""
        results = await asyncio.gather(*(self._probe(c) for c in self._checks))
        ready = all(results)
        if ready != self._ready:
            down = [c.name for c, ok in zip(self._checks, results, strict=True) if not ok]
            if ready:
                log.info("ready: every dependency answers")
            else:
                log.warning("not ready: %s unavailable", ", ".join(down))
            self._ready = ready
            READY.labels(self._service).set(1 if ready else 0)
            for name in self._names:
                await self._health.set(name, SERVING if ready else NOT_SERVING)
        return ready

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def start(self) -> None:
        await self.refresh()
        if self._checks:
            self._task = asyncio.create_task(self._loop(), name=f"{self._service}-readiness")

    async def stop(self) -> None:
        """Report NOT_SERVING from now on (graceful shutdown) and stop probing."""
        if self._task is not None:
            await cancel_and_wait(self._task)
        await self._health.enter_graceful_shutdown()
