"""Wiring of the session service: settings and configuration in, a ServiceDefinition out."""

from __future__ import annotations

import grpc

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.gateway_config import load_config
from services.common.idempotency.wiring import idempotency_store
from services.common.identity.wiring import build_gate
from services.common.redis_store import create_redis, redis_check
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings, SettingsError
from services.session.servicer import SessionServicer
from services.session.store import SessionStore
from services.session.sweeper import Sweeper

SERVICE_NAME: str = session_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name


async def build(settings: ServiceSettings) -> ServiceDefinition:
    """The session service; fails fast on a missing Redis URL or inconsistent limits."""
    if not settings.redis_url:
        raise SettingsError(
            "invalid session settings: LLMGW_REDIS_URL (--redis-url) is required; "
            "sessions are kept in Redis"
        )
    limits = load_config(settings.config_path).sessions
    client = create_redis(settings.redis_url)
    gate = build_gate(settings, client)
    store = SessionStore(client)
    servicer = SessionServicer(store, limits, idempotency_store(settings, client))
    sweeper = Sweeper(store)
    sweeper.start()

    def register(server: grpc.aio.Server) -> None:
        session_grpc.add_SessionServiceServicer_to_server(servicer, server)

    async def close() -> None:
        await sweeper.stop()
        await client.aclose()

    return ServiceDefinition(
        register=register,
        service_names=[SERVICE_NAME],
        checks=[redis_check(client)],
        on_stop=[close],
        gate=gate,
    )
