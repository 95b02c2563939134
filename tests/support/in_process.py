"""One service built by its own `app.build` and served in the test's process.

The channel's calls carry the edge token, as calls through Envoy's public listener do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from services.common.server import RunningServer, ServiceDefinition, create_server
from services.common.settings import ServiceSettings
from tests.support.trust import TEST_INTERNAL_SECRET, edge_channel

Build = Callable[[ServiceSettings], Awaitable[ServiceDefinition]]


async def serve_in_process(
    service: str,
    build: Build,
    *,
    config_path: Path,
    redis_url: str,
    readiness_interval: float,
) -> tuple[RunningServer, grpc.aio.Channel]:
    """The started server (free port, no access log) and a channel to it."""
    settings = ServiceSettings(
        service=service,
        port=0,
        metrics_port=0,
        redis_url=redis_url,
        config_path=config_path,
        readiness_interval=readiness_interval,
        access_log=False,
        internal_secret=TEST_INTERNAL_SECRET,
    )
    running = await create_server(settings, await build(settings))
    return running, edge_channel(f"127.0.0.1:{running.port}")
