"""The fakes' embedding endpoints speak the real wire shapes: FakeOpenAI's `/v1/embeddings`
is read by the official openai SDK (base64 by default, floats on request), FakeOllama's
`/api/embed` answers as Ollama does."""

from __future__ import annotations

import base64
import struct

import httpx
import openai
import pytest

from tests.fakes import Behaviour, FakeAnthropic, FakeOllama, FakeOpenAI
from tests.fakes.embeddings import DEFAULT_DIMENSIONS, vector_for
from tests.unit.fakes.conftest import OPENAI_KEY

MODEL = "text-embedding-3-small"
TEXTS = ["the first text", "a second one"]


def test_vectors_are_deterministic_unit_float32() -> None:
    first = vector_for("hello")
    assert first == vector_for("hello")
    assert first != vector_for("hello!")
    assert len(first) == DEFAULT_DIMENSIONS
    assert sum(value * value for value in first) == pytest.approx(1.0, abs=1e-5)
    packed = struct.pack(f"<{len(first)}f", *first)
    assert list(struct.unpack(f"<{len(first)}f", packed)) == first
    assert len(vector_for("hello", 20)) == 20


async def test_sdk_default_base64_decodes_to_the_text_vectors(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    answer = await openai_client.embeddings.create(model=MODEL, input=TEXTS)
    assert answer.object == "list"
    assert answer.model == MODEL
    assert [item.index for item in answer.data] == [0, 1]
    assert [item.embedding for item in answer.data] == [vector_for(text) for text in TEXTS]
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (6, 6)
    recorded = openai_fake.requests[0]
    assert recorded.path == "/v1/embeddings"
    assert recorded.json["encoding_format"] == "base64"
    assert recorded.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert openai_fake.hits == 1


async def test_sdk_float_format_and_dimensions(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    answer = await openai_client.embeddings.create(
        model=MODEL, input="one", encoding_format="float", dimensions=3, user="u-1"
    )
    assert answer.data[0].embedding == vector_for("one", 3)
    assert openai_fake.requests[0].json["user"] == "u-1"


async def test_explicit_base64_is_little_endian_float32(
    openai_client: openai.AsyncOpenAI,
) -> None:
    answer = await openai_client.embeddings.create(
        model=MODEL, input="one", encoding_format="base64"
    )
    raw = answer.data[0].embedding
    assert isinstance(raw, str)
    data = base64.b64decode(raw)
    assert list(struct.unpack(f"<{len(data) // 4}f", data)) == vector_for("one")


async def test_scripted_rate_limit_and_usage(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(
        Behaviour(status=429, headers={"retry-after": "7"}), Behaviour(usage=(42, 0))
    )
    with pytest.raises(openai.RateLimitError) as caught:
        await openai_client.embeddings.create(model=MODEL, input="x")
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    answer = await openai_client.embeddings.create(model=MODEL, input="x")
    assert answer.usage.prompt_tokens == 42


async def test_wrong_key_is_401(openai_fake: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=openai_fake.url, api_key="sk-wrong-key", max_retries=0)
    async with client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.embeddings.create(model=MODEL, input="x")
    assert caught.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": []}, "input"),
        ({"model": MODEL, "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": MODEL, "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
async def test_openai_rejects_bad_requests(openai_fake: FakeOpenAI, body: dict, param: str) -> None:
    async with httpx.AsyncClient(base_url=openai_fake.url) as client:
        response = await client.post(
            "/embeddings", json=body, headers={"Authorization": f"Bearer {OPENAI_KEY}"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_ollama_embed(ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama) -> None:
    response = await ollama_http.post(
        "/api/embed", json={"model": "all-minilm", "input": TEXTS, "truncate": True}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "all-minilm"
    assert body["embeddings"] == [vector_for(text) for text in TEXTS]
    assert body["prompt_eval_count"] == 6
    assert ollama_fake.requests[0].json["truncate"] is True
    single = await ollama_http.post(
        "/api/embed", json={"model": "all-minilm", "input": "one", "dimensions": 4}
    )
    assert single.json()["embeddings"] == [vector_for("one", 4)]


async def test_ollama_embed_model_not_found(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(status=404))
    response = await ollama_http.post("/api/embed", json={"model": "nomic", "input": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": 'model "nomic" not found, try pulling it first'}
    bad = await ollama_http.post("/api/embed", json={"model": "nomic", "input": 3})
    assert bad.status_code == 400


async def test_anthropic_has_no_embeddings() -> None:
    async with FakeAnthropic() as fake, httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post("/v1/embeddings", json={"model": "m", "input": "x"})
    assert response.status_code == 404
