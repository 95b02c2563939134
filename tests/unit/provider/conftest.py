"""Fake providers and adapters built against them, through the real SDKs; a Provider
service over a real grpc.aio server in front of one fake per family (`stub`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.gateway_config import ProviderConfig
from services.common.server import RunningServer, create_server
from services.common.settings import ServiceSettings
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.registry import build_adapter
from services.provider.app import build
from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI, FakeServer
from tests.support.trust import TEST_INTERNAL_SECRET, vouched_channel

KEY = "sk-test-provider-key-0001"
KEY_VARIABLE = "TEST_PROVIDER_KEY"

FAMILIES: dict[str, type[FakeServer]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "ollama": FakeOllama,
}


@dataclass
class Upstream:
    family: str
    fake: FakeServer
    adapter: ProviderAdapter
    model: str


def provider_config(family: str, url: str, **fields: object) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {"type": family, "base_url": url, "api_key_env": KEY_VARIABLE, **fields}
    )


@asynccontextmanager
async def upstream_for(family: str, **fields: object) -> AsyncIterator[Upstream]:
    async with FAMILIES[family](api_key=KEY) as fake:
        config = provider_config(family, fake.url, **fields)
        adapter = build_adapter(family, config, {KEY_VARIABLE: KEY})
        try:
            yield Upstream(family, fake, adapter, fake.models[0])
        finally:
            await adapter.close()


@pytest.fixture(params=sorted(FAMILIES))
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    async with upstream_for(request.param) as up:
        yield up


@pytest.fixture
async def openai_up() -> AsyncIterator[Upstream]:
    async with upstream_for("openai") as up:
        yield up


@pytest.fixture
async def anthropic_up() -> AsyncIterator[Upstream]:
    async with upstream_for("anthropic") as up:
        yield up


@pytest.fixture
async def ollama_up() -> AsyncIterator[Upstream]:
    async with upstream_for("ollama") as up:
        yield up


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    ollama: FakeOllama


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with (
        FakeOpenAI(api_key=KEY) as openai,
        FakeAnthropic(api_key=KEY) as anthropic,
        FakeOllama(api_key=KEY) as ollama,
    ):
        yield Fakes(openai, anthropic, ollama)


@pytest.fixture
async def stub(
    fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[provider_grpc.ProviderServiceStub]:
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    providers = {
        name: {"type": name, "base_url": fake.url, "api_key_env": KEY_VARIABLE}
        for name, fake in vars(fakes).items()
    }
    providers["keyless"] = {"type": "anthropic"}
    config = tmp_path / "gateway.yaml"
    # One catalogue model: its upstream model is a metric label, every other is `other`.
    models = [{"name": "mini", "deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}]
    config.write_text(yaml.safe_dump({"providers": providers, "models": models}))
    settings = ServiceSettings(
        service="provider",
        port=0,
        metrics_port=0,
        config_path=config,
        access_log=False,
        internal_secret=TEST_INTERNAL_SECRET,
    )
    running: RunningServer = await create_server(settings, await build(settings))
    try:
        # The provider answers only calls another gateway service vouched for.
        async with vouched_channel(f"127.0.0.1:{running.port}") as channel:
            yield provider_grpc.ProviderServiceStub(channel)
    finally:
        await running.stop(0)
