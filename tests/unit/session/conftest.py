"""A real session server (port 0) on the real Redis fixture, built by `app.build`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
import yaml
from grpc_health.v1 import health_pb2_grpc

from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.server import RunningServer
from services.session.app import build
from services.session.store import SessionStore
from tests.conftest import RedisServer
from tests.support.in_process import serve_in_process

LIMITS = {
    "default_ttl_seconds": 60,
    "max_ttl_seconds": 3600,
    "max_messages": 1000,
    "max_message_bytes": 4096,
    "max_settings_bytes": 4096,
}


@dataclass
class SessionServer:
    running: RunningServer
    channel: grpc.aio.Channel
    stub: session_grpc.SessionServiceStub
    health: health_pb2_grpc.HealthStub

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0)


StartServer = Callable[..., Awaitable[SessionServer]]


@pytest.fixture
async def start_server(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[StartServer]:
    """Starts session servers (limits overridable); every one is stopped after the test."""
    started: list[SessionServer] = []

    async def start(readiness_interval: float = 0.2, **limits: Any) -> SessionServer:
        config = tmp_path / f"gateway-{len(started)}.yaml"
        config.write_text(yaml.safe_dump({"sessions": {**LIMITS, **limits}}))
        running, channel = await serve_in_process(
            "session",
            build,
            config_path=config,
            redis_url=redis_server.url,
            readiness_interval=readiness_interval,
        )
        server = SessionServer(
            running,
            channel,
            session_grpc.SessionServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def server(start_server: StartServer) -> SessionServer:
    return await start_server()


@pytest.fixture
def store(redis_client: aioredis.Redis) -> SessionStore:
    return SessionStore(redis_client)


@pytest.fixture
def stub(server: SessionServer) -> session_grpc.SessionServiceStub:
    return server.stub
