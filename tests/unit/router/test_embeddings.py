"""The embedder, called directly against a scripted provider client: validation, kinds,
routing with fallback, usage and cost, the response cache, the gen_ai metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from services.common import tracing
from services.common.errors import GatewayError, InvalidArgument, NotFound, Unavailable
from services.common.gateway_config import ConfigError, default_config, parse_config
from services.common.tracing_config import tracing_settings
from services.common.upstream_timing import UpstreamTiming
from services.router.cache.store import ResponseCache
from services.router.catalog import Catalog
from services.router.embeddings.cached import (
    CachedEmbeddings,
    decode,
    embeddings_key,
    encode,
)
from services.router.embeddings.embedder import Embedder
from services.router.embeddings.validation import MAX_INPUTS, check
from services.router.limits.limiter import Adjustments
from services.router.routing.breaker import BreakerRegistry
from services.router.routing.layer import RoutingLayer
from services.router.servicer import RouterServicer
from services.router.usage.recorder import UsageRecord
from tests.support.servicer_context import FakeContext
from tests.unit.router.test_gen_ai_metrics import Samples

CONFIG: dict[str, Any] = {
    "providers": {"oa": {"type": "openai"}, "ol": {"type": "ollama"}},
    "models": [
        {"name": "chat", "deployments": [{"provider": "oa", "model": "gpt-4o-mini"}]},
        {
            "name": "embed",
            "aliases": ["e"],
            "kind": "embedding",
            "fallbacks": ["nomic"],
            "deployments": [
                {"provider": "oa", "model": "text-embedding-3-small", "input_price": 0.02}
            ],
        },
        {
            "name": "nomic",
            "kind": "embedding",
            "deployments": [{"provider": "ol", "model": "nomic-embed-text", "input_price": 1.0}],
        },
    ],
    "routing": {"retries": {"attempts_per_deployment": 1}},
    "cache": {"enabled": True},
}


class ScriptedEmbeddings:
    """ProviderClient.embed: two numbers per text, or the error queued for a model."""

    def __init__(self, tokens: int = 7) -> None:
        self.tokens = tokens
        self.failures: dict[str, list[GatewayError]] = {}
        self.calls: list[provider_pb2.EmbedRequest] = []
        # Answer one vector short; or wait forever once called (`called` set).
        self.drop_last = False
        self.hang = False
        self.called = asyncio.Event()

    async def embed(
        self,
        request: provider_pb2.EmbedRequest,
        timeout: float | None,
        timing: UpstreamTiming | None = None,
    ) -> provider_pb2.EmbedResponse:
        self.calls.append(request)
        self.called.set()
        if self.hang:
            await asyncio.Event().wait()
        queued = self.failures.get(request.model)
        if queued:
            raise queued.pop(0)
        count = len(request.input) - int(self.drop_last)
        return provider_pb2.EmbedResponse(
            embeddings=[provider_pb2.EmbeddingVector(values=[float(i), 0.5]) for i in range(count)],
            model=request.model,
            usage=common_pb2.Usage(input_tokens=self.tokens, total_tokens=self.tokens),
            provider=request.provider,
        )


class MemoryRedis:
    """The two commands the response cache sends."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ex: int) -> None:
        self.values[key] = value


class Usage:
    """UsageRecorder.record, recorded."""

    def __init__(self) -> None:
        self.records: list[tuple[list[str], UsageRecord]] = []

    async def record(
        self, subjects: Sequence[str], record: UsageRecord, adjustments: Adjustments
    ) -> bool:
        self.records.append((list(subjects), record))
        return True


def _router(
    provider: ScriptedEmbeddings, config: dict[str, Any] = CONFIG
) -> tuple[RouterServicer, Usage]:
    catalog = Catalog(parse_config(config))
    client = cast(Any, provider)
    usage = Usage()
    router = RouterServicer(
        catalog,
        client,
        RoutingLayer(catalog, client, BreakerRegistry(None, catalog.config.routing.breaker)),
        sessions=cast(Any, None),
        tools=cast(Any, None),
        cache=ResponseCache(cast(Any, MemoryRedis()), catalog.config.cache),
        usage=cast(Any, usage),
    )
    return router, usage


def _request(
    *texts: str, model: str = "embed", dimensions: int = 0
) -> embeddings_pb2.CreateEmbeddingsRequest:
    return embeddings_pb2.CreateEmbeddingsRequest(model=model, input=texts, dimensions=dimensions)


def _fields(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (embeddings_pb2.CreateEmbeddingsRequest(input=["a"]), "model"),
        (embeddings_pb2.CreateEmbeddingsRequest(model="m"), "input"),
        (embeddings_pb2.CreateEmbeddingsRequest(model="m", input=["a", ""]), "input[1]"),
        (
            embeddings_pb2.CreateEmbeddingsRequest(model="m", input=["a"], dimensions=-1),
            "dimensions",
        ),
        (
            embeddings_pb2.CreateEmbeddingsRequest(model="m", input=["a"] * (MAX_INPUTS + 1)),
            "input",
        ),
    ],
)
def test_validation_names_the_field(
    request_: embeddings_pb2.CreateEmbeddingsRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check(request_)
    assert _fields(raised.value) == [field]


def test_a_valid_request_passes_with_the_largest_batch() -> None:
    check(embeddings_pb2.CreateEmbeddingsRequest(model="m", input=["a"] * MAX_INPUTS, dimensions=0))


def test_the_cache_key_changes_with_model_texts_order_and_dimensions_only() -> None:
    base = embeddings_key("embed", ["a", "b"], 0)
    assert base == embeddings_key("embed", ["a", "b"], 0)
    others = {
        embeddings_key("nomic", ["a", "b"], 0),
        embeddings_key("embed", ["b", "a"], 0),
        embeddings_key("embed", ["ab"], 0),
        embeddings_key("embed", ["a", "b"], 256),
        embeddings_key("embed", ["a", "b", ""], 0),
    }
    assert base not in others and len(others) == 5


def test_a_cached_entry_round_trips_and_garbage_decodes_to_none() -> None:
    response = embeddings_pb2.CreateEmbeddingsResponse(
        object="list", model="embed", data=[embeddings_pb2.Embedding(index=0, embedding=[0.25])]
    )
    entry = CachedEmbeddings(response, "oa")
    assert decode(encode(entry)) == entry
    assert decode(b"LGWC\x01garbage") is None
    assert decode(encode(entry)[:7]) is None


async def test_an_answer_routes_records_usage_and_cost_and_says_where_it_came_from() -> None:
    provider = ScriptedEmbeddings(tokens=1000)
    router, usage = _router(provider)
    samples = Samples()
    embedded = await Embedder(router).embed(_request("hi", "there", dimensions=64), FakeContext())
    response = embedded.response
    assert [d.index for d in response.data] == [0, 1]
    assert list(response.data[1].embedding) == [1.0, 0.5]
    assert response.model == "embed" and response.usage.prompt_tokens == 1000
    assert provider.calls[0].dimensions == 64
    assert provider.calls[0].model == "text-embedding-3-small"
    [(subjects, record)] = usage.records
    assert subjects == ["consumers/anonymous"]
    # 1000 tokens at 0.02 per million.
    assert record.cost_nanos == 20_000 and record.usage.input_tokens == 1000
    assert not record.cache_hit
    headers = dict(embedded.metadata)
    assert headers["x-llmgw-provider"] == "oa" and headers["x-llmgw-route"] == "primary"
    assert headers["x-llmgw-cost"] == "0.000020000"
    labels = {"gen_ai_operation_name": "embeddings", "gen_ai_provider_name": "openai"}
    assert (
        samples.delta(
            "gen_ai_client_operation_duration_seconds_count",
            **labels,
            gen_ai_request_model="embed",
            error_type="",
        )
        == 1
    )
    assert (
        samples.delta("llmgw_embeddings_requests_total", model="embed", provider="oa", code="OK")
        == 1
    )


async def test_a_failing_deployment_falls_back_to_the_fallback_model() -> None:
    provider = ScriptedEmbeddings()
    provider.failures["text-embedding-3-small"] = [Unavailable("down")]
    router, usage = _router(provider)
    embedded = await Embedder(router).embed(_request("x", model="e"), FakeContext())
    assert [c.model for c in provider.calls] == ["text-embedding-3-small", "nomic-embed-text"]
    assert embedded.response.model == "nomic"
    assert dict(embedded.metadata)["x-llmgw-route"] == "fallback_model"
    # Priced at the deployment that answered: 7 tokens at 1.0 per million.
    assert usage.records[0][1].cost_nanos == 7_000


async def test_a_second_identical_request_is_a_cache_hit_without_a_provider_call() -> None:
    provider = ScriptedEmbeddings()
    router, usage = _router(provider)
    embedder = Embedder(router)
    first = await embedder.embed(_request("same"), FakeContext())
    second = await embedder.embed(_request("same"), FakeContext())
    assert len(provider.calls) == 1
    assert second.response == first.response
    headers = dict(second.metadata)
    assert headers["x-llmgw-cache"] == "hit" and headers["x-llmgw-route"] == "cache"
    assert dict(first.metadata)["x-llmgw-cache"] == "miss"
    hit = usage.records[1][1]
    assert hit.cache_hit and hit.cost_nanos == 0
    # Other dimensions: another entry.
    await embedder.embed(_request("same", dimensions=8), FakeContext())
    assert len(provider.calls) == 2


async def test_chat_and_embedding_models_refuse_the_other_api() -> None:
    router, _ = _router(ScriptedEmbeddings())
    with pytest.raises(InvalidArgument) as raised:
        await Embedder(router).embed(_request("x", model="chat"), FakeContext())
    assert _fields(raised.value) == ["model"]
    assert "chat model" in raised.value.message
    chat = chat_pb2.CreateChatCompletionRequest(
        model="e", messages=[chat_pb2.ChatMessage(role="user")]
    )
    chat.messages[0].content.string_value = "hi"
    with pytest.raises(InvalidArgument) as refused:
        await router.CreateChatCompletion(chat, cast(Any, FakeContext()))
    assert "'embed' is an embedding model; use /v1/embeddings" in refused.value.message


async def test_an_unknown_model_is_not_found_and_calls_no_one() -> None:
    provider = ScriptedEmbeddings()
    router, usage = _router(provider)
    with pytest.raises(NotFound):
        await Embedder(router).embed(_request("x", model="nope"), FakeContext())
    assert provider.calls == [] and usage.records == []


async def test_a_provider_answering_the_wrong_number_of_vectors_is_unavailable() -> None:
    provider = ScriptedEmbeddings()
    provider.drop_last = True
    router, _ = _router(provider)
    with pytest.raises(Unavailable) as raised:
        await Embedder(router).embed(_request("a", "b"), FakeContext())
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE


def test_fallbacks_and_the_default_model_must_be_of_the_right_kind() -> None:
    mixed = {
        **CONFIG,
        "models": [{**CONFIG["models"][0], "fallbacks": ["embed"]}, *CONFIG["models"][1:]],
    }
    with pytest.raises(ConfigError, match="'embed' is of kind embedding, this model of kind chat"):
        parse_config(mixed)
    with pytest.raises(ConfigError, match="default_model: 'embed' is an embedding model"):
        parse_config({**CONFIG, "default_model": "embed"})


async def test_cancellation_propagates() -> None:
    provider = ScriptedEmbeddings()
    provider.hang = True
    router, usage = _router(provider)
    task = asyncio.create_task(Embedder(router).embed(_request("a"), FakeContext()))
    await provider.called.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert usage.records == []


def test_the_default_configuration_adds_embedding_models_after_the_chat_ones() -> None:
    openai = Catalog(default_config({"OPENAI_API_KEY": "k"}))
    assert openai.resolve("text-embedding-3-small").kind == "embedding"
    assert openai.config.default_model == "gpt-4o"
    local = Catalog(
        default_config(
            {"LLMGW_LOCAL_MODEL_URL": "http://a:1", "LLMGW_LOCAL_EMBEDDINGS_URL": "http://b:2/"}
        )
    )
    resolved = local.resolve("local-embeddings")
    assert (resolved.name, resolved.kind) == ("smollm2-135m-embeddings", "embedding")
    provider = local.config.providers[resolved.deployments[0].provider]
    assert (provider.type, provider.base_url) == ("openai", "http://b:2/v1")
    assert provider.api_key_env == "LLMGW_LOCAL_MODEL_KEY"
    assert local.config.default_model == "smollm2-135m-instruct"


async def test_the_request_is_an_embeddings_span_with_provider_model_and_tokens() -> None:
    settings = tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert settings is not None
    exporter = InMemorySpanExporter()
    tracing.configure(settings, "router", "router-1", exporter=exporter)
    try:
        router, _ = _router(ScriptedEmbeddings(tokens=9))
        with tracing.tracer().start_as_current_span("rpc"):
            await Embedder(router).embed(_request("a", model="e"), FakeContext())
    finally:
        tracing.shutdown()
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("embeddings")]
    assert span.name == "embeddings e"
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.request.model": "e",
        "gen_ai.provider.name": "openai",
        "llmgw.provider": "oa",
        "gen_ai.response.model": "embed",
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 0,
    }
