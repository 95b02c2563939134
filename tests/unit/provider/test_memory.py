"""A refused call leaves nothing behind: the provider's memory returns after load.

A chat the upstream refuses (413 for a huge prompt) fails through the adapter, the
servicer and the interceptors; nothing of it may outlive the call. Before the fix every
failed call stayed in memory until a full garbage collection (which a quiet process
almost never runs): the decoded request and the JSON body built for it, 39 MB per
100,000-message chat, 3.3 GB after 80 of them. The test runs with the cycle collector
off, so only what is really released counts.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.app import build
from tests.fakes import Behaviour, FakeOpenAI
from tests.support.in_process import serve_in_process
from tests.support.trust import vouched_metadata

CALLS = 8
MESSAGES = 20_000
METHOD = "/llmgw.provider.v1.ProviderService/Complete"


@pytest.fixture
async def provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[grpc.aio.Channel]:
    monkeypatch.setenv("MEMORY_TEST_KEY", "sk-memory-test")
    async with FakeOpenAI(record=False) as fake:
        fake.set_default(Behaviour(status=413, error_message="request too large"))
        config = tmp_path / "gateway.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "providers": {
                        "up": {
                            "type": "openai",
                            "base_url": fake.url,
                            "api_key_env": "MEMORY_TEST_KEY",
                        }
                    }
                }
            )
        )
        running, channel = await serve_in_process(
            "provider", build, config_path=config, redis_url="", readiness_interval=1.0
        )
        try:
            yield channel
        finally:
            await channel.close()
            await running.stop(0)


def _live_requests() -> int:
    return sum(isinstance(o, provider_pb2.CompleteRequest) for o in gc.get_objects())


async def test_refused_calls_release_their_request_and_body(provider: grpc.aio.Channel) -> None:
    # Sent as bytes: the only CompleteRequests in the process are the server's.
    payload = provider_pb2.CompleteRequest(
        provider="up",
        model="gpt-4o-mini",
        messages=[
            chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.ContentPart(text="word")])
            for _ in range(MESSAGES)
        ],
    ).SerializeToString()
    call = provider.unary_unary(METHOD)

    async def refused() -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            # The provider answers only calls a gateway service vouched for.
            await call(payload, timeout=30, metadata=vouched_metadata())
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    await refused()  # warm: connections, caches, lazily built handlers
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before_requests = _live_requests()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(CALLS):
            await refused()
        after, _ = tracemalloc.get_traced_memory()
        after_requests = _live_requests()
    finally:
        tracemalloc.stop()
        gc.enable()
    # One call's body is ~8 MB of Python objects; retained, 8 calls would be ~60 MB.
    assert after - before < 4_000_000, f"grew by {(after - before) / 1e6:.1f} MB"
    assert after_requests == before_requests
