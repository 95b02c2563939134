"""Embeddings through Envoy: the official OpenAI SDK's `client.embeddings.create`
unchanged (its default base64 encoding and `float`), and the gRPC EmbeddingsService;
routing with fallback, the response cache, usage and cost, and the errors a caller
meets (401, 404, 400, 429 with retry-after)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import openai
import pytest

from llmgw.identity.v1 import identity_pb2
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from llmgw.router.v1 import embeddings_service_pb2_grpc as embeddings_grpc
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import Behaviour
from tests.support.gateway import Gateway
from tests.support.identity import create_identity

pytestmark = pytest.mark.integration

MODEL = "text-embedding-3-small"  # on the OpenAI fake, cache on, falls back to Ollama's
FALLBACK = "nomic-embed-text"
PRICE = 0.02  # per million input tokens


def _sdk(gw: Gateway, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.public_url + "/v1", api_key=key, max_retries=0)


def _fresh(text: str = "text") -> str:
    """A text no other test embeds (the model's answers are cached)."""
    return f"{text} {uuid.uuid4().hex}"


@pytest.fixture
async def channel(gw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as opened:
        yield opened


def _embedding_calls(gw: Gateway, fake: str) -> list[dict[str, object]]:
    with gw.fakes[fake].control() as control:
        return [r.json for r in control.completions() if "embed" in r.path]


@pytest.mark.parametrize("encoding", [None, "float"])
async def test_the_sdk_gets_one_vector_per_text_in_either_encoding(
    gw: Gateway, encoding: str | None
) -> None:
    texts = [_fresh("first"), _fresh("second")]
    async with _sdk(gw) as client:
        if encoding is None:
            # The SDK asks for base64 and decodes it to floats itself.
            response = await client.embeddings.create(model=MODEL, input=texts)
        else:
            response = await client.embeddings.create(
                model=MODEL, input=texts, encoding_format="float"
            )
    assert response.object == "list" and response.model == MODEL
    assert [item.index for item in response.data] == [0, 1]
    lengths = {len(item.embedding) for item in response.data}
    assert len(lengths) == 1 and lengths.pop() > 0
    assert all(isinstance(x, float) for x in response.data[0].embedding)
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens


async def test_dimensions_and_a_single_string_reach_the_upstream(gw: Gateway) -> None:
    text = _fresh()
    async with _sdk(gw) as client:
        response = await client.embeddings.create(model=MODEL, input=text, dimensions=8)
    assert len(response.data) == 1
    [sent] = _embedding_calls(gw, "openai")
    assert sent["dimensions"] == 8 and sent["model"] == MODEL
    assert sent["input"] in (text, [text])


async def test_a_failing_deployment_falls_back_to_the_fallback_model(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=503))
    async with _sdk(gw) as client:
        raw = await client.embeddings.with_raw_response.create(model=MODEL, input=_fresh())
    response = raw.parse()
    assert response.model == FALLBACK
    assert raw.headers["x-llmgw-route"] == "fallback_model"
    assert raw.headers["x-llmgw-provider"] == "ollama"
    assert _embedding_calls(gw, "ollama")


async def test_the_second_identical_request_is_answered_from_the_cache(gw: Gateway) -> None:
    text = _fresh()
    async with _sdk(gw) as client:
        first = await client.embeddings.with_raw_response.create(model=MODEL, input=[text])
        second = await client.embeddings.with_raw_response.create(model=MODEL, input=[text])
    assert first.headers["x-llmgw-cache"] == "miss"
    assert second.headers["x-llmgw-cache"] == "hit"
    assert second.parse().data[0].embedding == first.parse().data[0].embedding
    assert len(_embedding_calls(gw, "openai")) == 1


async def test_usage_is_recorded_with_its_cost(gw: Gateway, channel: grpc.aio.Channel) -> None:
    admin = admin_grpc.AdminServiceStub(channel)
    before = (await admin.GetUsage(admin_pb2.GetUsageRequest(model=MODEL), timeout=10)).totals
    async with _sdk(gw) as client:
        raw = await client.embeddings.with_raw_response.create(model=MODEL, input=[_fresh()])
    tokens = raw.parse().usage.prompt_tokens
    after = (await admin.GetUsage(admin_pb2.GetUsageRequest(model=MODEL), timeout=10)).totals
    assert after.requests - before.requests == 1
    assert after.input_tokens - before.input_tokens == tokens
    assert after.cost - before.cost == pytest.approx(tokens * PRICE / 1e6, abs=1e-9)
    assert float(raw.headers["x-llmgw-cost"]) == pytest.approx(tokens * PRICE / 1e6, abs=1e-9)


async def test_an_unknown_model_is_404_and_a_chat_model_is_400(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        listed = [model.id async for model in client.models.list()]
        assert {MODEL, FALLBACK} <= set(listed)
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="no-such-embedder", input="x")
        with pytest.raises(openai.BadRequestError) as chat_model:
            await client.embeddings.create(model="gpt-4o-mini", input="x")
        with pytest.raises(openai.BadRequestError) as tokens:
            await client.embeddings.create(model=MODEL, input=[[1, 2, 3]])
        with pytest.raises(openai.BadRequestError) as embedder_for_chat:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
    assert "chat model" in str(chat_model.value)
    assert "token arrays are not supported" in str(tokens.value)
    assert "is an embedding model; use /v1/embeddings" in str(embedder_for_chat.value)


async def test_the_grpc_service_answers_the_same(gw: Gateway, channel: grpc.aio.Channel) -> None:
    stub = embeddings_grpc.EmbeddingsServiceStub(channel)
    call = stub.CreateEmbeddings(
        embeddings_pb2.CreateEmbeddingsRequest(model=MODEL, input=[_fresh(), _fresh()]),
        timeout=10,
    )
    response = await call
    assert [d.index for d in response.data] == [0, 1]
    assert response.model == MODEL and response.usage.prompt_tokens > 0
    assert dict(await call.initial_metadata())["x-llmgw-cache"] == "miss"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateEmbeddings(
            embeddings_pb2.CreateEmbeddingsRequest(model=MODEL, input=["a", ""]), timeout=10
        )
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "input[1]" in (raised.value.details() or "")


async def test_the_secured_gateway_wants_a_key_and_counts_tokens(sgw: Gateway) -> None:
    async with _sdk(sgw, "not-a-key") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.embeddings.create(model=MODEL, input="x")
    limit = identity_pb2.RateLimit(
        unit=identity_pb2.RateLimit.UNIT_TOKENS,
        window=identity_pb2.RateLimit.WINDOW_MINUTE,
        limit=20,
    )
    who = await create_identity(
        sgw.grpc_target, SECURED_ADMIN_KEY, consumer=identity_pb2.Consumer(limits=[limit])
    )
    async with _sdk(sgw, who.key) as client:
        with pytest.raises(openai.RateLimitError) as refused:
            # About 250 tokens: more than the minute's 20.
            await client.embeddings.create(model=MODEL, input="word " * 200)
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert _embedding_calls(sgw, "openai") == []
