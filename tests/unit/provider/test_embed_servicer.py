"""ProviderService.Embed through a real grpc.aio server: validation, routing to the
adapter, metrics and error statuses."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from prometheus_client import REGISTRY

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.errors import InvalidArgument, RemoteError, find_detail
from services.provider.request_validation import (
    MAX_EMBED_INPUT_CHARS,
    MAX_EMBED_INPUTS,
    validate_embed,
)
from tests.fakes import Behaviour
from tests.fakes.embeddings import vector_for
from tests.unit.provider.conftest import Fakes


def _fields(error: InvalidArgument) -> list[str]:
    return [violation.field for violation in error.violations]


def _refused(request: provider_pb2.EmbedRequest) -> list[str]:
    with pytest.raises(InvalidArgument) as caught:
        validate_embed(request)
    return _fields(caught.value)


def test_validation_names_every_field() -> None:
    bad = provider_pb2.EmbedRequest(user="a\nb", dimensions=-1)
    assert _refused(bad) == ["provider", "model", "user", "input", "dimensions"]


def test_texts_are_bounded() -> None:
    base = {"provider": "p", "model": "m"}
    too_many = provider_pb2.EmbedRequest(**base, input=["x"] * (MAX_EMBED_INPUTS + 1))
    assert _refused(too_many) == ["input"]
    validate_embed(provider_pb2.EmbedRequest(**base, input=["x"] * MAX_EMBED_INPUTS))
    long = "y" * (MAX_EMBED_INPUT_CHARS + 1)
    assert _refused(provider_pb2.EmbedRequest(**base, input=["ok", "", long])) == [
        "input[1]",
        "input[2]",
    ]
    # Many bad texts: a few named, the rest counted, so the status stays small.
    assert _refused(provider_pb2.EmbedRequest(**base, input=[""] * 50)) == [
        *(f"input[{i}]" for i in range(8)),
        "input",
    ]


async def test_embed(stub: provider_grpc.ProviderServiceStub, fakes: Fakes) -> None:
    labels = {"provider": "openai", "model": "other", "method": "Embed", "outcome": "ok"}
    before = REGISTRY.get_sample_value("llmgw_provider_requests_total", labels) or 0
    response = await stub.Embed(
        provider_pb2.EmbedRequest(provider="openai", model="text-embedding-3-small", input=["a b"]),
        timeout=5,
    )
    assert response.provider == "openai"
    assert response.model == "text-embedding-3-small"
    assert list(response.embeddings[0].values) == vector_for("a b")
    assert response.usage.input_tokens == 2
    after = REGISTRY.get_sample_value("llmgw_provider_requests_total", labels)
    assert after == before + 1
    ollama = await stub.Embed(
        provider_pb2.EmbedRequest(provider="ollama", model="all-minilm", input=["x", "y"]),
        timeout=5,
    )
    assert [list(v.values) for v in ollama.embeddings] == [vector_for("x"), vector_for("y")]


async def test_embed_errors(stub: provider_grpc.ProviderServiceStub, fakes: Fakes) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.Embed(provider_pb2.EmbedRequest(provider="openai", model="m"), timeout=5)
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    remote = RemoteError.from_rpc_error(invalid.value)
    bad_request = find_detail(remote.status, error_details_pb2.BadRequest)
    assert bad_request is not None
    assert [v.field for v in bad_request.field_violations] == ["input"]

    with pytest.raises(grpc.aio.AioRpcError) as anthropic:
        await stub.Embed(
            provider_pb2.EmbedRequest(provider="anthropic", model="m", input=["x"]), timeout=5
        )
    assert anthropic.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert anthropic.value.details() == "provider type anthropic has no embeddings API"

    labels = {
        "provider": "openai",
        "model": "other",
        "method": "Embed",
        "outcome": "UPSTREAM_RATE_LIMITED",
    }
    before = REGISTRY.get_sample_value("llmgw_provider_requests_total", labels) or 0
    fakes.openai.script(Behaviour(status=429, headers={"retry-after": "5"}))
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await stub.Embed(
            provider_pb2.EmbedRequest(provider="openai", model="m", input=["x"]), timeout=5
        )
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert RemoteError.from_rpc_error(limited.value).retry_after == 5.0
    assert REGISTRY.get_sample_value("llmgw_provider_requests_total", labels) == before + 1
