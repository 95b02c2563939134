"""Embed through each family's adapter against the fakes (the real SDK and HTTP client),
and the answer parsing on its own: base64 and float vectors, order, usage, errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from llmgw.common.v1 import error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import (
    FailedPrecondition,
    GatewayError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from services.common.gateway_config import ProviderConfig
from services.provider.adapters.embeddings import decode_vector, ollama_answer, openai_answer
from services.provider.adapters.openai import build_azure, build_openai
from tests.fakes import Behaviour
from tests.fakes.embeddings import vector_for
from tests.unit.provider.conftest import Upstream, upstream_for

TEXTS = ["alpha beta", "gamma", "delta epsilon zeta"]
R = error_reason_pb2


def _ask(model: str, *texts: str, dimensions: int = 0, user: str = "") -> provider_pb2.EmbedRequest:
    return provider_pb2.EmbedRequest(
        provider="p", model=model, input=list(texts or TEXTS), dimensions=dimensions, user=user
    )


def _vectors(response: provider_pb2.EmbedResponse) -> list[list[float]]:
    return [list(vector.values) for vector in response.embeddings]


def _sent(up: Upstream, path: str) -> Any:
    recorded = up.fake.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", path)
    return recorded.json


async def test_openai_asks_for_base64_and_decodes_it(openai_up: Upstream) -> None:
    response = await openai_up.adapter.embed(_ask("text-embedding-3-small"), 5)
    assert _vectors(response) == [vector_for(text) for text in TEXTS]
    assert response.model == "text-embedding-3-small"
    assert (response.usage.input_tokens, response.usage.total_tokens) == (6, 6)
    assert _sent(openai_up, "/v1/embeddings") == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "base64",
    }


async def test_openai_dimensions_user_and_usage(openai_up: Upstream) -> None:
    openai_up.fake.script(Behaviour(usage=(17, 0)))
    response = await openai_up.adapter.embed(_ask("m", "one", dimensions=3, user="u-7"), 5)
    assert _vectors(response) == [vector_for("one", 3)]
    assert response.usage.input_tokens == 17
    sent = _sent(openai_up, "/v1/embeddings")
    assert (sent["dimensions"], sent["user"]) == (3, "u-7")


async def test_openai_rate_limit_keeps_retry_after(openai_up: Upstream) -> None:
    openai_up.fake.script(Behaviour(status=429, headers={"retry-after": "9"}))
    with pytest.raises(ResourceExhausted) as caught:
        await openai_up.adapter.embed(_ask("m"), 5)
    assert caught.value.reason == R.ERROR_REASON_UPSTREAM_RATE_LIMITED
    assert caught.value.retry_after == 9.0
    assert caught.value.metadata["upstream_status"] == "429"


async def test_openai_wrong_key_is_an_upstream_auth_failure() -> None:
    async with upstream_for("openai") as up:
        up.fake.api_key = "sk-another-key-entirely"
        with pytest.raises(GatewayError) as caught:
            await up.adapter.embed(_ask("m"), 5)
    assert caught.value.reason == R.ERROR_REASON_UPSTREAM_AUTH_FAILED
    assert "sk-test-provider-key" not in caught.value.message


async def test_openai_unknown_model(openai_up: Upstream) -> None:
    openai_up.fake.script(Behaviour(status=404))
    with pytest.raises(NotFound) as caught:
        await openai_up.adapter.embed(_ask("nope"), 5)
    assert caught.value.reason == R.ERROR_REASON_UPSTREAM_MODEL_NOT_FOUND


async def test_ollama_embed(ollama_up: Upstream) -> None:
    response = await ollama_up.adapter.embed(_ask("all-minilm", dimensions=4), 5)
    assert _vectors(response) == [vector_for(text, 4) for text in TEXTS]
    assert (response.usage.input_tokens, response.usage.total_tokens) == (6, 6)
    assert _sent(ollama_up, "/api/embed") == {
        "model": "all-minilm",
        "input": TEXTS,
        "truncate": True,
        "dimensions": 4,
    }


async def test_ollama_errors(ollama_up: Upstream) -> None:
    ollama_up.fake.script(
        Behaviour(status=404), Behaviour(status=429, headers={"retry-after": "3"})
    )
    with pytest.raises(NotFound) as missing:
        await ollama_up.adapter.embed(_ask("nomic-embed-text"), 5)
    assert missing.value.reason == R.ERROR_REASON_UPSTREAM_MODEL_NOT_FOUND
    assert "nomic-embed-text" in missing.value.message
    with pytest.raises(ResourceExhausted) as limited:
        await ollama_up.adapter.embed(_ask("nomic-embed-text"), 5)
    assert limited.value.retry_after == 3.0


async def test_anthropic_has_no_embeddings_api(anthropic_up: Upstream) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await anthropic_up.adapter.embed(_ask("claude-sonnet-4-6"), 5)
    assert caught.value.message == "provider type anthropic has no embeddings API"
    assert anthropic_up.fake.hits == 0


async def test_unconfigured_provider_names_the_variable() -> None:
    adapter = build_openai("openai", ProviderConfig(type="openai"), {})
    with pytest.raises(Unavailable) as caught:
        await adapter.embed(_ask("m"), 5)
    assert "OPENAI_API_KEY" in caught.value.message


async def test_azure_embeds_through_the_deployment_path() -> None:
    async with upstream_for("openai") as up:
        config = ProviderConfig(
            type="azure_openai",
            base_url=up.fake.root_url,
            api_key_env="AZ_KEY",
            api_version="2024-10-21",
        )
        adapter = build_azure("az", config, {"AZ_KEY": "k"})
        try:
            with pytest.raises(NotFound) as caught:
                await adapter.embed(_ask("dep-1"), 5)
        finally:
            await adapter.close()
    # The fake serves OpenAI's paths only; its 404 quotes the deployment path asked for.
    assert "POST /openai/deployments/dep-1/embeddings" in caught.value.message


def _floats(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_float_lists_are_read_when_the_server_ignores_base64() -> None:
    body = {
        "data": [
            {"index": 1, "embedding": [0.5, -0.25]},
            {"index": 0, "embedding": _floats([1.0, 2.0])},
        ],
        "model": "served-name",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    response = openai_answer(body, _ask("m", "a", "b"), "p")
    assert _vectors(response) == [[1.0, 2.0], [0.5, -0.25]]
    assert response.model == "served-name"


def test_no_usage_leaves_usage_unset() -> None:
    response = openai_answer({"data": [{"index": 0, "embedding": [1]}]}, _ask("m", "a"), "p")
    assert not response.HasField("usage")
    assert response.model == "m"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"data": [{"index": 0, "embedding": [1.0]}]}, "1 embeddings answered for 2 texts"),
        ({"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}, "indexes"),
        ({"data": [{"index": 0, "embedding": "@@"}, {"index": 1, "embedding": [2]}]}, "base64"),
        ({"data": [{"index": 0, "embedding": "AAA="}, {"index": 1, "embedding": [2]}]}, "float32"),
        ({"data": [{"index": 0, "embedding": ["x"]}, {"index": 1, "embedding": [2]}]}, "number"),
        ({"object": "list"}, "no data list"),
    ],
)
def test_malformed_openai_answers(body: dict[str, Any], detail: str) -> None:
    with pytest.raises(Unavailable) as caught:
        openai_answer(body, _ask("m", "a", "b"), "p")
    assert detail in caught.value.message
    assert caught.value.reason == R.ERROR_REASON_UPSTREAM_UNAVAILABLE


def test_malformed_ollama_answers() -> None:
    with pytest.raises(Unavailable, match="2 embeddings answered for 1 texts"):
        ollama_answer({"embeddings": [[1.0], [2.0]]}, _ask("m", "a"), "p")
    with pytest.raises(Unavailable, match="no embeddings list"):
        ollama_answer({"error": "x"}, _ask("m", "a"), "p")


def test_decode_vector_is_little_endian() -> None:
    assert list(decode_vector(_floats([1.5, -2.0, 0.0]), "p")) == [1.5, -2.0, 0.0]
    assert list(decode_vector(base64.b64encode(b"\x00\x00\x80\x3f").decode(), "p")) == [1.0]
