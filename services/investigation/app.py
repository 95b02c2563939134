"""Wiring of the investigation service: the job store in Redis, this replica's worker,
and the clients of the Tool service, the Router and the Session service (all through
Envoy's internal listener, vouching for each investigation's owner).

Redis is required: investigations are jobs and event logs there, so that any replica
can serve any investigation and take over one whose worker died. SIGHUP re-reads the
`investigations:` section (limits and defaults apply to investigations started after).
"""

from __future__ import annotations

import asyncio
import logging
import os

import grpc
from redis.exceptions import RedisError

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.investigation.v1 import investigation_service_pb2_grpc as inv_grpc
from services.common.channels import InternalChannel
from services.common.gateway_config import GatewayConfig, load_config
from services.common.idempotency.wiring import idempotency_store
from services.common.identity.wiring import build_gate, internal_keys
from services.common.investigation_config import InvestigationConfig
from services.common.redis_store import create_redis, redis_check
from services.common.server import ServiceDefinition
from services.common.session_client import SessionClient
from services.common.settings import ServiceSettings, SettingsError
from services.common.tasks import cancel_and_wait
from services.common.tool_client import ToolClient
from services.investigation import metrics
from services.investigation.chat_client import ChatClient
from services.investigation.followup import FollowUp
from services.investigation.jobs import JobStore, Worker
from services.investigation.runner import Runner
from services.investigation.servicer import InvestigationServicer

log = logging.getLogger("llmgw.investigation")
# How often the queue gauges are refreshed.
QUEUE_SAMPLE_SECONDS = 5.0

SERVICE_NAME: str = inv_pb2.DESCRIPTOR.services_by_name["InvestigationService"].full_name


class _Current:
    """The configuration in force (replaced on reload)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config

    def investigations(self) -> InvestigationConfig:
        return self.config.investigations

    def default_model(self) -> str | None:
        return self.config.investigations.default_model or self.config.default_model

    def context_window(self, model: str) -> int | None:
        """The smallest context window of the catalogue model's deployments (None when
        none states one, or the name is not in the catalogue)."""
        for entry in self.config.models:
            if model == entry.name or model in entry.aliases:
                windows = [d.context_window for d in entry.deployments if d.context_window]
                return min(windows) if windows else None
        return None


async def _sample_queue(store: JobStore) -> None:
    """Keeps the queue gauges current (one XLEN, XINFO and XRANGE every few seconds)."""
    while True:
        try:
            metrics.observe_queue(*await store.queue_stats())
        except (RedisError, OSError) as error:
            log.debug("queue sample failed: %s", error)
        await asyncio.sleep(QUEUE_SAMPLE_SECONDS)


async def build(settings: ServiceSettings) -> ServiceDefinition:
    if not settings.redis_url:
        raise SettingsError(
            "invalid investigation settings: LLMGW_REDIS_URL is required (investigations "
            "are jobs and event logs in Redis)"
        )
    current = _Current(load_config(settings.config_path))
    config = current.investigations()
    redis = create_redis(settings.redis_url)
    keys = internal_keys(settings)
    gate = build_gate(settings, redis, keys)
    internal = InternalChannel(settings.internal_target, keys)
    chat = ChatClient(internal)
    store = JobStore(
        redis,
        retention_s=config.retention_seconds,
        dedup_window_s=config.dedup_window_seconds,
        claim_idle_s=config.claim_idle_seconds,
    )
    runner = Runner(
        store,
        ToolClient(internal),
        chat,
        current.investigations,
        current.default_model,
        context_window=current.context_window,
        redis=redis,
    )
    worker = Worker(
        store,
        runner.run,
        name=f"{settings.replica or settings.service}-{os.getpid()}",
        concurrency=config.workers,
        heartbeat_s=config.heartbeat_seconds,
    )
    servicer = InvestigationServicer(
        store,
        config,
        FollowUp(SessionClient(internal), chat, current.default_model),
        once_store=idempotency_store(settings, redis),
    )
    await worker.start()
    sampler = asyncio.create_task(_sample_queue(store), name="investigation queue sampler")

    def register(server: grpc.aio.Server) -> None:
        inv_grpc.add_InvestigationServiceServicer_to_server(servicer, server)

    async def close() -> None:
        await cancel_and_wait(sampler)
        await worker.stop()
        await internal.close()
        await redis.aclose()

    async def reload() -> None:
        current.config = load_config(settings.config_path)
        servicer.config = current.investigations()
        log.info("investigations configuration reloaded")

    return ServiceDefinition(
        register=register,
        service_names=[SERVICE_NAME],
        checks=[redis_check(redis)],
        on_stop=[close],
        on_reload=[reload],
        gate=gate,
    )
