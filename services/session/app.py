"""Wiring of the session service: settings and configuration in, a ServiceDefinition out."""

from __future__ import annotations

import grpc
from redis import exceptions as redis_exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.gateway_config import ConfigError, load_config
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
    if limits.default_ttl_seconds > limits.max_ttl_seconds:
        raise ConfigError(
            f"sessions.default_ttl_seconds ({limits.default_ttl_seconds}) must not exceed "
            f"sessions.max_ttl_seconds ({limits.max_ttl_seconds})"
        )
    client = create_redis(settings.redis_url)
    # One immediate retry on a connection error, none on a timeout. After a Redis restart
    # the pool still holds connections the old process closed (redis-py does not check
    # pooled RESP3 connections before use); a command sent on one never reached Redis,
    # so resending it is safe. A timed-out command may have run (an append, a create),
    # so it is never resent: the caller gets UNAVAILABLE and decides.
    client.set_retry(Retry(NoBackoff(), 1, supported_errors=(redis_exceptions.ConnectionError,)))
    store = SessionStore(client)
    servicer = SessionServicer(store, limits)
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
    )
