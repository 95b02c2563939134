"""Fixtures: one running fake per protocol, and official SDK clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI

OPENAI_KEY = "sk-test-key"
ANTHROPIC_KEY = "sk-ant-test-key"


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        yield fake


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
async def ollama_fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as fake:
        yield fake


@pytest.fixture
async def openai_client(openai_fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=openai_fake.url, api_key=OPENAI_KEY, max_retries=0)
    async with client:
        yield client


@pytest.fixture
async def anthropic_client(
    anthropic_fake: FakeAnthropic,
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        base_url=anthropic_fake.url, api_key=ANTHROPIC_KEY, max_retries=0
    )
    async with client:
        yield client


@pytest.fixture
async def ollama_http(ollama_fake: FakeOllama) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ollama_fake.url, timeout=5.0) as client:
        yield client
