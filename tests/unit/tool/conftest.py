"""Fixtures: the downstream fake, executors over it, real tool servers on real Redis, and
fake Kubernetes clusters with the kubernetes toolset over each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2_grpc

from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.gateway_config import parse_config
from services.common.server import RunningServer
from services.common.tool_config import ToolsConfig
from services.tool.app import build
from services.tool.breakers import DownstreamBreakers
from services.tool.entries import ToolEntry
from services.tool.executor_http import HttpExecutor
from services.tool.registry import static_entries
from services.tool.toolsets import kubernetes
from services.tool.toolsets.kubernetes import KubernetesToolset
from tests.conftest import RedisServer
from tests.fakes import FakeDownstream
from tests.fakes.kubernetes_fake import FakeKubernetes
from tests.support.in_process import serve_in_process
from tests.support.kube import write_kubeconfig

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1}},
    "required": ["city"],
}


def tools_section(fake: FakeDownstream, **overrides: Any) -> dict[str, Any]:
    """A `tools:` section over the fake: built-ins, a weather tool, tiny backoffs."""
    section: dict[str, Any] = {
        "allowed_hosts": ["127.0.0.1"],
        "default_timeout_seconds": 5,
        "retry": {"max_attempts": 3, "initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.02},
        "downstream": {"search_url": fake.url, "agents_url": fake.url},
        "definitions": [
            {
                "name": "weather",
                "description": "Current weather in a city.",
                "parameters": WEATHER_SCHEMA,
                "http": {"method": "GET", "url_template": fake.url + "/weather/{city}"},
            }
        ],
    }
    section.update(overrides)
    return section


def tools_config(section: dict[str, Any]) -> ToolsConfig:
    return parse_config({"tools": section}).tools


@pytest.fixture
async def downstream() -> AsyncIterator[FakeDownstream]:
    async with FakeDownstream() as fake:
        yield fake


class Waits:
    """Records the backoffs an executor asked for instead of sleeping them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@dataclass
class Harness:
    """An executor over the fake with its own breakers and the section it was made from."""

    executor: HttpExecutor
    breakers: DownstreamBreakers
    config: ToolsConfig
    waits: Waits
    section: dict[str, Any]

    def entry(self, name: str) -> ToolEntry:
        """A built-in or file tool of this harness's section."""
        found = static_entries(self.config, {})[name]
        assert isinstance(found, ToolEntry)  # no toolsets given: no toolset entries
        return found

    def custom(self, **definition: Any) -> ToolEntry:
        """A tool compiled from one more definition (same defaults and allow-list)."""
        config = tools_config({**self.section, "definitions": [definition]})
        found = static_entries(config, {})[definition["name"]]
        assert isinstance(found, ToolEntry)
        return found


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(downstream: FakeDownstream) -> AsyncIterator[MakeHarness]:
    executors: list[HttpExecutor] = []

    async def make(
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        **section: Any,
    ) -> Harness:
        raw = tools_section(downstream, **section)
        config = tools_config(raw)
        breakers = (
            DownstreamBreakers(config.breaker, clock)
            if clock is not None
            else DownstreamBreakers(config.breaker)
        )
        waits = Waits()
        executor = HttpExecutor(
            breakers, lambda: config.allow_list, environ=environ or {}, sleep=waits
        )
        executors.append(executor)
        return Harness(executor, breakers, config, waits, raw)

    yield make
    for executor in executors:
        await executor.close()


@dataclass
class ToolServer:
    running: RunningServer
    channel: grpc.aio.Channel
    stub: tool_grpc.ToolServiceStub
    health: health_pb2_grpc.HealthStub
    config_path: Path

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0)


StartServer = Callable[..., Awaitable[ToolServer]]


@pytest.fixture
async def start_server(
    redis_server: RedisServer, downstream: FakeDownstream, tmp_path: Path
) -> AsyncIterator[StartServer]:
    """Tool servers built by `app.build` on the shared Redis; stopped after the test."""
    started: list[ToolServer] = []

    async def start(readiness_interval: float = 0.2, **section: Any) -> ToolServer:
        config = tmp_path / f"gateway-{len(started)}.yaml"
        config.write_text(yaml.safe_dump({"tools": tools_section(downstream, **section)}))
        running, channel = await serve_in_process(
            "tool",
            build,
            config_path=config,
            redis_url=redis_server.url,
            readiness_interval=readiness_interval,
        )
        server = ToolServer(
            running,
            channel,
            tool_grpc.ToolServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
            config,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def server(start_server: StartServer) -> ToolServer:
    return await start_server()


@pytest.fixture
def stub(server: ToolServer) -> tool_grpc.ToolServiceStub:
    return server.stub


KUBE_TOKEN = "fake-service-account-token"


class Kube:
    """A fake cluster and the toolset over it."""

    def __init__(self, fake: FakeKubernetes, toolset: KubernetesToolset) -> None:
        self.fake = fake
        self.toolset = toolset

    async def call(self, tool: str, **arguments: Any) -> Any:
        found = {t.name: t for t in self.toolset.tools()}[f"kubernetes_{tool}"]
        return await found.run(arguments)


StartKube = Callable[..., Awaitable[Kube]]


@pytest.fixture
async def start_kube(tmp_path: Path) -> AsyncIterator[StartKube]:
    """Fake clusters (a scenario, a bearer token) and the kubernetes toolset over each."""
    running: list[Kube] = []

    async def make(scenario: str = "crashloop", **options: Any) -> Kube:
        fake = FakeKubernetes(scenario, token=KUBE_TOKEN, **options)
        await fake.start()
        config = write_kubeconfig(tmp_path / f"kube-{len(running)}", fake.url, token=KUBE_TOKEN)
        toolset = kubernetes.from_env({"KUBECONFIG": str(config)})
        assert toolset is not None
        kube = Kube(fake, toolset)
        running.append(kube)
        return kube

    yield make
    for kube in running:
        await kube.toolset.close()
        await kube.fake.stop()
