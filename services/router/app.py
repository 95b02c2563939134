"""Wiring of the router process: RouterService, AdminService and the routing layer.

The provider, session and tool services are all reached through Envoy's internal
listener, on one shared channel.

The catalogue lives in a CatalogStore: SIGHUP reloads this replica from its file, the
ReloadCatalog RPC reloads it and announces the reload (through Redis) to every replica.
Each reload reaches the routing layer (new settings, state kept) and the servicer.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import redis.asyncio as aioredis

from llmgw.identity.v1 import identity_service_pb2_grpc
from llmgw.router.v1 import (
    admin_service_pb2_grpc,
    compat_service_pb2_grpc,
    embeddings_service_pb2_grpc,
    router_service_pb2_grpc,
)
from services.common.channels import InternalChannel
from services.common.idempotency.wiring import idempotency_store
from services.common.identity.store import IdentityStore
from services.common.identity.wiring import build_gate, internal_keys
from services.common.limits_config import RateLimitsConfig
from services.common.redis_store import create_redis
from services.common.server import ServiceDefinition
from services.common.session_client import SessionClient
from services.common.settings import ServiceSettings
from services.common.tasks import cancel_and_wait
from services.common.tool_client import ToolClient
from services.router import identity_service
from services.router.admin import AdminServicer
from services.router.budget_gauges import BudgetGauges
from services.router.cache.store import ResponseCache
from services.router.catalog_store import CatalogStore
from services.router.compat.servicer import CompatServicer
from services.router.embeddings.embedder import Embedder
from services.router.embeddings.servicer import EmbeddingsServicer
from services.router.identity_admin import IdentityAdmin
from services.router.limits.limiter import RateLimiter
from services.router.provider_client import ProviderClient
from services.router.routing.breaker import BreakerRegistry
from services.router.routing.layer import RoutingLayer
from services.router.servicer import RouterServicer
from services.router.tokenizer import PromptCounter
from services.router.usage.recorder import UsageRecorder

log = logging.getLogger("llmgw.router")

ROUTER_SERVICE = "llmgw.router.v1.RouterService"
ADMIN_SERVICE = "llmgw.router.v1.AdminService"
COMPAT_SERVICE = "llmgw.router.v1.CompatService"
EMBEDDINGS_SERVICE = "llmgw.router.v1.EmbeddingsService"
IDENTITY_SERVICE = identity_service.SERVICE_NAME
# How long a rotated API key keeps working when RotateApiKey names no overlap.
DEFAULT_KEY_OVERLAP_SECONDS = 3600.0
# The router describes the whole public API through reflection, so `grpcurl` pointed at
# Envoy's public listener (which routes reflection here) can list and call every service.
PUBLIC_SERVICES = (
    ROUTER_SERVICE,
    COMPAT_SERVICE,
    EMBEDDINGS_SERVICE,
    ADMIN_SERVICE,
    IDENTITY_SERVICE,
    "llmgw.session.v1.SessionService",
    "llmgw.tool.v1.ToolService",
    "llmgw.investigation.v1.InvestigationService",
)


def _load_public_descriptors() -> None:
    """Import every public service's stubs so reflection can describe them."""
    from llmgw.investigation.v1 import investigation_service_pb2  # noqa: F401, PLC0415
    from llmgw.session.v1 import session_service_pb2  # noqa: F401, PLC0415
    from llmgw.tool.v1 import tool_service_pb2  # noqa: F401, PLC0415


def _limiter(redis: aioredis.Redis | None, config: RateLimitsConfig) -> RateLimiter | None:
    """The shared limiter (rate limits and budgets); None without Redis, where nothing
    can be counted across replicas."""
    if redis is None:
        if config.consumers or config.groups:
            log.warning("rate_limits are configured but there is no Redis: not enforced")
        return None
    return RateLimiter(redis, fail_open=config.fail_open)


async def build(settings: ServiceSettings) -> ServiceDefinition:
    redis = create_redis(settings.redis_url) if settings.redis_url else None
    keys = internal_keys(settings)
    gate = build_gate(settings, redis, keys)
    store = CatalogStore(settings.config_path, redis)
    internal = InternalChannel(settings.internal_target, keys)
    provider = ProviderClient(internal)
    catalog = store.current
    breakers = BreakerRegistry(redis, catalog.config.routing.breaker)
    routing = RoutingLayer(catalog, provider, breakers)
    cache = ResponseCache(redis, catalog.config.cache)
    usage = UsageRecorder(redis)
    limiter = _limiter(redis, catalog.config.rate_limits)
    prompt_counter = PromptCounter()
    # Loading the encoding takes about half a second: not on a request's time.
    await asyncio.to_thread(prompt_counter.warm)
    # Request ids of the mutating RPCs (chat, identity creates and key issues).
    once = idempotency_store(settings, redis) if redis is not None else None
    servicer = RouterServicer(
        catalog,
        provider,
        routing,
        sessions=SessionClient(internal),
        tools=ToolClient(internal),
        cache=cache,
        usage=usage,
        limiter=limiter,
        prompt_counter=prompt_counter,
        once=once,
    )
    # Routing settings first: a request that sees the new catalogue plans with them.
    store.subscribe(routing.configure)
    store.subscribe(lambda fresh: cache.configure(fresh.config.cache))
    store.subscribe(lambda fresh: setattr(servicer, "catalog", fresh))
    store.subscribe(
        lambda fresh: setattr(servicer, "limiter", _limiter(redis, fresh.config.rate_limits))
    )
    identity = (
        IdentityAdmin(IdentityStore(redis), default_overlap_seconds=DEFAULT_KEY_OVERLAP_SECONDS)
        if redis is not None
        else None
    )
    admin = AdminServicer(store, routing.state, usage)
    _load_public_descriptors()
    await routing.start()
    store.start()
    # Every budget's remaining amount as gauges (needs the identity records in Redis).
    budgets = (
        asyncio.create_task(
            BudgetGauges(IdentityStore(redis), redis).run(
                lambda: store.current.config.rate_limits.budget_gauge_interval_seconds
            )
        )
        if redis is not None
        else None
    )

    def register(server: grpc.aio.Server) -> None:
        router_service_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
        compat_service_pb2_grpc.add_CompatServiceServicer_to_server(
            CompatServicer(servicer), server
        )
        embeddings_service_pb2_grpc.add_EmbeddingsServiceServicer_to_server(
            EmbeddingsServicer(Embedder(servicer)), server
        )
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
            identity_service.IdentityServicer(identity, once), server
        )

    async def close() -> None:
        if budgets is not None:
            await cancel_and_wait(budgets)
        await store.close()
        await routing.close()
        await internal.close()
        await usage.aclose()
        if redis is not None:
            await redis.aclose()

    async def reload() -> None:
        await store.reload(broadcast=False)

    return ServiceDefinition(
        register=register,
        service_names=[
            ROUTER_SERVICE,
            COMPAT_SERVICE,
            EMBEDDINGS_SERVICE,
            ADMIN_SERVICE,
            IDENTITY_SERVICE,
        ],
        extra_reflection_names=PUBLIC_SERVICES,
        on_stop=[close],
        on_reload=[reload],
        gate=gate,
    )
