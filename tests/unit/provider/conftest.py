"""Fake providers and adapters built against them, through the real SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from services.common.gateway_config import ProviderConfig
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.registry import build_adapter
from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI, FakeServer

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
