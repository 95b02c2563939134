"""A fake stops generating, and counts a cancellation, soon after its client goes away."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import Behaviour, FakeAnthropic, FakeOllama, FakeOpenAI, FakeServer

MESSAGES: list = [{"role": "user", "content": "hi"}]
SLOW_STREAM = Behaviour(chunks=["x"] * 200, chunk_delay=0.02)

# protocol fake -> (completion path relative to its url, headers, streaming body)
REQUESTS: dict[type[FakeServer], tuple[str, dict[str, str], dict[str, Any]]] = {
    FakeOpenAI: ("/chat/completions", {}, {"model": "m", "messages": MESSAGES, "stream": True}),
    FakeAnthropic: (
        "/v1/messages",
        {"anthropic-version": "2023-06-01"},
        {"model": "m", "max_tokens": 8, "messages": MESSAGES, "stream": True},
    ),
    FakeOllama: ("/api/chat", {}, {"model": "m", "messages": MESSAGES}),
}


async def _seconds_until_cancelled(fake: FakeServer, limit: float = 2.0) -> float:
    started = time.monotonic()
    while fake.cancelled == 0 or fake.in_flight:
        if time.monotonic() - started > limit:
            break
        await asyncio.sleep(0.002)
    return time.monotonic() - started


@pytest.mark.parametrize("fake_type", list(REQUESTS))
async def test_stream_stops_when_the_client_disconnects(fake_type: type[FakeServer]) -> None:
    path, headers, body = REQUESTS[fake_type]
    async with fake_type() as fake, httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
        fake.set_default(SLOW_STREAM)
        async with http.stream("POST", path.lstrip("/"), json=body) as response:
            received = 0
            async for _ in response.aiter_bytes():
                received += 1
                if received == 3:
                    break
            assert (fake.in_flight, fake.cancelled) == (1, 0)
        elapsed = await _seconds_until_cancelled(fake)
        assert (fake.cancelled, fake.in_flight) == (1, 0)
        assert elapsed < 0.1


async def test_openai_sdk_closing_a_stream_cancels_it() -> None:
    async with FakeOpenAI() as fake:
        fake.set_default(SLOW_STREAM)
        async with openai.AsyncOpenAI(base_url=fake.url, api_key="k", max_retries=0) as client:
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            await stream.close()
            assert await _seconds_until_cancelled(fake) < 0.1
        assert fake.cancelled == 1


async def test_waiting_out_a_delay_is_cancelled_too() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url, timeout=0.05) as http:
        fake.script(Behaviour(delay=5.0))
        with pytest.raises(httpx.ReadTimeout):
            await http.post("chat/completions", json={"model": "m", "messages": MESSAGES})
        assert await _seconds_until_cancelled(fake) < 0.1
        assert fake.cancelled == 1


async def _last_cancelled_at(fake: FakeServer, limit: float = 0.5) -> float | None:
    """Polls for the cancellation time; `limit` is well under the tests' pauses, so a fake
    that noticed only on its next write would miss it."""
    deadline = time.monotonic() + limit
    while fake.last_cancelled_at is None:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.002)
    return fake.last_cancelled_at


@pytest.mark.parametrize("fake_type", list(REQUESTS))
async def test_a_close_between_slow_chunks_is_noticed_and_timed(
    fake_type: type[FakeServer],
) -> None:
    path, headers, body = REQUESTS[fake_type]
    async with fake_type() as fake, httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
        fake.set_default(Behaviour(chunks=["first", " second"], chunk_delay=1.0))
        async with http.stream("POST", path.lstrip("/"), json=body) as response:
            async for line in response.aiter_lines():
                if "first" in line:
                    break
            assert fake.last_cancelled_at is None
            closing = time.time()
        closed = time.time()
        noticed = await _last_cancelled_at(fake)
        assert noticed is not None
        assert closing <= noticed <= closed + 0.05
        assert (fake.cancelled, fake.in_flight) == (1, 0)
        stats = fake.stats()
        assert stats.last_cancelled_at == noticed
        fake.reset()
        assert fake.last_cancelled_at is None


async def test_a_close_during_a_streams_delay_is_noticed_and_timed() -> None:
    path, _, body = REQUESTS[FakeOpenAI]
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url, timeout=0.05) as http:
        fake.script(Behaviour(delay=5.0))
        sent = time.time()
        with pytest.raises(httpx.ReadTimeout):
            async with http.stream("POST", path.lstrip("/"), json=body):
                pass
        closed = time.time()
        noticed = await _last_cancelled_at(fake)
        assert noticed is not None
        assert sent <= noticed <= closed + 0.05
        assert (fake.cancelled, fake.in_flight) == (1, 0)
