"""ProviderService.Embed in the running stack: through Envoy's internal listener, as the
router calls it, against the OpenAI and Ollama fake processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.errors import RemoteError
from tests.fakes import Behaviour
from tests.fakes.embeddings import vector_for
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

TEXTS = ["the quick brown fox", "jumps", "over the lazy dog"]


@pytest.fixture
async def provider(gw: Gateway) -> AsyncIterator[provider_grpc.ProviderServiceStub]:
    async with grpc.aio.insecure_channel(gw.internal_target) as channel:
        yield provider_grpc.ProviderServiceStub(channel)


def _vectors(response: provider_pb2.EmbedResponse) -> list[list[float]]:
    return [list(vector.values) for vector in response.embeddings]


async def test_openai_embeddings(gw: Gateway, provider: provider_grpc.ProviderServiceStub) -> None:
    request = provider_pb2.EmbedRequest(
        provider="openai", model="text-embedding-3-small", input=TEXTS, dimensions=5, user="u1"
    )
    response = await provider.Embed(request, metadata=gw.vouched_metadata(), timeout=10)
    assert response.provider == "openai"
    assert response.model == "text-embedding-3-small"
    assert _vectors(response) == [vector_for(text, 5) for text in TEXTS]
    assert (response.usage.input_tokens, response.usage.total_tokens) == (9, 9)
    sent = [r for r in gw.fakes["openai"].control().completions() if r.path == "/v1/embeddings"]
    assert len(sent) == 1
    assert sent[0].json["encoding_format"] == "base64"
    assert sent[0].headers["authorization"] == "Bearer sk-fake-openai-key"
    assert (sent[0].json["dimensions"], sent[0].json["user"]) == (5, "u1")


async def test_ollama_embeddings(gw: Gateway, provider: provider_grpc.ProviderServiceStub) -> None:
    request = provider_pb2.EmbedRequest(provider="ollama", model="all-minilm", input=TEXTS[:1])
    response = await provider.Embed(request, metadata=gw.vouched_metadata(), timeout=10)
    assert _vectors(response) == [vector_for(TEXTS[0])]
    assert response.usage.input_tokens == 4


async def test_upstream_errors_reach_the_caller(
    gw: Gateway, provider: provider_grpc.ProviderServiceStub
) -> None:
    gw.fakes["openai"].control().script(Behaviour(status=429, headers={"retry-after": "6"}))
    gw.fakes["ollama"].control().script(Behaviour(status=404))
    request = provider_pb2.EmbedRequest(provider="openai", model="m", input=["x"])
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await provider.Embed(request, metadata=gw.vouched_metadata(), timeout=10)
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    remote = RemoteError.from_rpc_error(limited.value)
    assert (remote.reason_text, remote.retry_after) == ("UPSTREAM_RATE_LIMITED", 6.0)

    request = provider_pb2.EmbedRequest(provider="ollama", model="nomic-embed-text", input=["x"])
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await provider.Embed(request, metadata=gw.vouched_metadata(), timeout=10)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert RemoteError.from_rpc_error(missing.value).reason_text == "UPSTREAM_MODEL_NOT_FOUND"

    request = provider_pb2.EmbedRequest(provider="anthropic", model="m", input=["x"])
    with pytest.raises(grpc.aio.AioRpcError) as none:
        await provider.Embed(request, metadata=gw.vouched_metadata(), timeout=10)
    assert none.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_only_vouched_calls_are_answered(
    gw: Gateway, provider: provider_grpc.ProviderServiceStub
) -> None:
    request = provider_pb2.EmbedRequest(provider="openai", model="m", input=["x"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await provider.Embed(request, metadata=gw.edge_metadata(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
