"""Everything routing keeps per router replica, wired together: statistics, strategies,
shared breakers, provider health and the attempt loop; reconfigured on catalogue reload."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from llmgw.router.v1 import admin_service_pb2
from services.common.gateway_config import RoutingConfig
from services.router.catalog import Catalog, ResolvedModel
from services.router.provider_client import ProviderClient
from services.router.routing.breaker import BreakerRegistry, BreakerState
from services.router.routing.engine import RoutingEngine
from services.router.routing.health import HealthMonitor
from services.router.routing.plan import Candidate, Plan, build_plan
from services.router.routing.stats import StatsTable
from services.router.routing.strategies import DeploymentOrderer, OrderingInput


class RoutingLayer:
    def __init__(
        self,
        catalog: Catalog,
        provider: ProviderClient,
        breakers: BreakerRegistry,
    ) -> None:
        config = catalog.config.routing
        self.catalog = catalog
        self.stats = StatsTable(config.latency_smoothing)
        self.orderer = DeploymentOrderer(self.stats, stale_seconds=config.latency_stale_seconds)
        self.breakers = breakers
        self.engine = RoutingEngine(breakers, self.stats, config)
        self.health = HealthMonitor(provider, self._providers, config.health)

    def _providers(self) -> list[str]:
        names = {d.provider for entry in self.catalog.entries for d in entry.deployments}
        return sorted(names)

    def configure(self, catalog: Catalog) -> None:
        """A reloaded catalogue: new settings, state kept for deployments that remain."""
        self.catalog = catalog
        config: RoutingConfig = catalog.config.routing
        self.stats.configure(config.latency_smoothing)
        self.orderer.configure(config.latency_stale_seconds)
        self.breakers.configure(config.breaker)
        self.engine.configure(config)
        self.health.configure(config.health)

    def plan(
        self,
        resolved: ResolvedModel,
        request: OrderingInput,
        *,
        strategy: str,
        fallbacks: bool,
        catalog: Catalog | None = None,
    ) -> Plan:
        """The request's plan, its fallbacks resolved in `catalog` (the request's snapshot;
        default: the current catalogue)."""
        plan = build_plan(
            catalog or self.catalog,
            resolved,
            self.orderer,
            request,
            strategy=strategy,
            fallbacks=fallbacks,
        )
        if all(self.health.healthy(c.deployment.provider) for c in plan.candidates):
            return plan
        # Deployments on providers that failed their last check go last, in order.
        healthy = [c for c in plan.candidates if self.health.healthy(c.deployment.provider)]
        sick = [c for c in plan.candidates if not self.health.healthy(c.deployment.provider)]
        return Plan(plan.model, plan.strategy, tuple(healthy + sick), plan.model_label)

    async def start(self) -> None:
        await self.breakers.start()
        self.health.start()

    async def close(self) -> None:
        await self.health.close()
        await self.breakers.close()

    async def state(self, model: str) -> list[admin_service_pb2.DeploymentState]:
        """Every deployment's routing state (one model's when `model` is set)."""
        entries = (
            [self.catalog.resolve(model)]
            if model
            else [self.catalog.resolve(e.name) for e in self.catalog.entries]
        )
        candidates = [
            Candidate(resolved.name, deployment, False, resolved.label)
            for resolved in entries
            for deployment in resolved.deployments
        ]
        views = await self.breakers.refresh({c.key for c in candidates})
        out = []
        for c in candidates:
            d = c.deployment
            stats = self.stats.get(c.key)
            view = views.get(c.key) or self.breakers.view(c.key)
            state = admin_service_pb2.DeploymentState(
                model=c.model,
                deployment=c.label,
                provider=d.provider,
                upstream_model=d.model,
                weight=d.weight,
                max_concurrency=d.max_concurrency,
                in_flight=stats.in_flight,
                breaker_state=admin_service_pb2.BreakerState.Name(view.state),
                latency_ms=(stats.latency or 0.0) * 1000,
                ttft_ms=(stats.ttft or 0.0) * 1000,
                healthy=self.health.healthy(d.provider),
            )
            if view.state is not BreakerState.CLOSED and view.reopen_at:
                state.reopen_time.CopyFrom(_timestamp(view.reopen_at))
            out.append(state)
        return out


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
