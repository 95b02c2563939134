"""The Provider service through a real grpc.aio server and channel, against the fakes."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from prometheus_client import REGISTRY

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.errors import RemoteError, find_detail
from tests.fakes import Behaviour
from tests.unit.provider.chat import check_stream_contract, message, streamed_text, user
from tests.unit.provider.conftest import KEY, Fakes


def _ask(provider: str, model: str, *messages: chat_pb2.Message) -> provider_pb2.CompleteRequest:
    return provider_pb2.CompleteRequest(
        provider=provider, model=model, messages=list(messages) or [user("Hi")]
    )


def _status(error: grpc.aio.AioRpcError) -> RemoteError:
    return RemoteError.from_rpc_error(error)


async def test_validation_reports_every_field(stub: provider_grpc.ProviderServiceStub) -> None:
    bad = provider_pb2.CompleteRequest(
        messages=[message(chat_pb2.ROLE_UNSPECIFIED, "x"), message(chat_pb2.ROLE_TOOL, "42")]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Complete(bad)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = find_detail(_status(caught.value).status, error_details_pb2.BadRequest)
    assert violations is not None
    assert [v.field for v in violations.field_violations] == [
        "provider",
        "model",
        "messages[0].role",
        "messages[1].tool_call_id",
    ]


async def test_empty_conversation_is_rejected(stub: provider_grpc.ProviderServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.StreamComplete(provider_pb2.CompleteRequest(provider="openai", model="m")).read()
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "messages" in (caught.value.details() or "")


async def test_unknown_provider(stub: provider_grpc.ProviderServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Complete(_ask("nope", "m"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    remote = _status(caught.value)
    assert remote.reason_text == "PROVIDER_NOT_FOUND"
    assert "anthropic, keyless, ollama, openai" in remote.message


async def test_complete(stub: provider_grpc.ProviderServiceStub, fakes: Fakes) -> None:
    fakes.openai.script(Behaviour(text="Hi back.", usage=(3, 2)))
    before = REGISTRY.get_sample_value(
        "llmgw_provider_tokens_total",
        {"provider": "openai", "model": "gpt-4o-mini", "kind": "output"},
    )
    response = await stub.Complete(_ask("openai", "gpt-4o-mini"), timeout=5)
    assert response.provider == "openai"
    assert response.message.content[0].text == "Hi back."
    after = REGISTRY.get_sample_value(
        "llmgw_provider_tokens_total",
        {"provider": "openai", "model": "gpt-4o-mini", "kind": "output"},
    )
    assert (after or 0) - (before or 0) == 2


async def test_a_model_outside_the_catalogue_is_counted_as_other(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    def other() -> float:
        value = REGISTRY.get_sample_value(
            "llmgw_provider_tokens_total",
            {"provider": "openai", "model": "other", "kind": "output"},
        )
        return value or 0.0

    before = other()
    for name in ("caller-chosen-1", "caller-chosen-2"):
        fakes.openai.script(Behaviour(text="ok", usage=(1, 1)))
        await stub.Complete(_ask("openai", name), timeout=5)
    assert other() - before == 2
    labelled = {
        sample.labels.get("model")
        for family in REGISTRY.collect()
        if family.name.startswith("llmgw_provider")
        for sample in family.samples
    }
    assert not labelled & {"caller-chosen-1", "caller-chosen-2"}


async def test_stream_complete(stub: provider_grpc.ProviderServiceStub, fakes: Fakes) -> None:
    model = fakes.anthropic.models[0]
    fakes.anthropic.script(Behaviour(chunks=["One ", "two ", "three."], usage=(5, 3)))
    events = [event async for event in stub.StreamComplete(_ask("anthropic", model), timeout=5)]
    check_stream_contract(events)
    assert streamed_text(events) == "One two three."
    assert events[-1].usage.output_tokens == 3


async def test_stream_failure_after_events_is_a_status(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.ollama.script(Behaviour(chunks=["a", "b", "c"], error_after=2))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for event in stub.StreamComplete(_ask("ollama", fakes.ollama.models[0]), timeout=5):
            received.append(event)
    assert streamed_text(received) == "ab"
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert _status(caught.value).metadata["provider"] == "ollama"


async def test_rate_limit_reaches_the_caller_with_retry_info(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.openai.script(Behaviour(status=429, headers={"retry-after": "4"}))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Complete(_ask("openai", "gpt-4o-mini"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    remote = _status(caught.value)
    assert (remote.reason_text, remote.retry_after) == ("UPSTREAM_RATE_LIMITED", 4.0)
    assert remote.metadata["upstream_status"] == "429"


async def test_deadline_ends_the_call_and_the_upstream_request(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.openai.script(Behaviour(delay=3.0))
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Complete(_ask("openai", "gpt-4o-mini"), timeout=0.3)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.0
    await _until(lambda: fakes.openai.cancelled == 1, within=0.5)


async def test_cancelled_stream_closes_upstream_within_100ms(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    fakes.openai.script(Behaviour(chunks=["x"] * 100, chunk_delay=0.05))
    call = stub.StreamComplete(_ask("openai", "gpt-4o-mini"), timeout=10)
    first = await call.read()
    assert isinstance(first, provider_pb2.StreamCompleteResponse) and first.text == "x"
    call.cancel()
    await _until(lambda: fakes.openai.cancelled == 1, within=0.1)


async def test_check_provider(stub: provider_grpc.ProviderServiceStub, fakes: Fakes) -> None:
    healthy = await stub.CheckProvider(provider_pb2.CheckProviderRequest(provider="ollama"))
    assert healthy.healthy and not healthy.error
    assert healthy.latency.ToTimedelta().total_seconds() < 1
    assert healthy.check_time.seconds > 0
    keyless = await stub.CheckProvider(provider_pb2.CheckProviderRequest(provider="keyless"))
    assert not keyless.healthy and "ANTHROPIC_API_KEY" in keyless.error
    await fakes.anthropic.stop()
    down = await stub.CheckProvider(provider_pb2.CheckProviderRequest(provider="anthropic"))
    assert not down.healthy and "cannot reach provider 'anthropic'" in down.error


async def test_list_providers_without_credentials(
    stub: provider_grpc.ProviderServiceStub, fakes: Fakes
) -> None:
    response = await stub.ListProviders(provider_pb2.ListProvidersRequest())
    by_name = {info.name: info for info in response.providers}
    assert sorted(by_name) == ["anthropic", "keyless", "ollama", "openai"]
    assert by_name["openai"].base_url == fakes.openai.url
    assert by_name["openai"].has_credentials and not by_name["keyless"].has_credentials
    assert by_name["keyless"].base_url == "https://api.anthropic.com"
    assert KEY not in str(response)


async def test_list_provider_models(stub: provider_grpc.ProviderServiceStub, fakes: Fakes) -> None:
    response = await stub.ListProviderModels(
        provider_pb2.ListProviderModelsRequest(provider="openai")
    )
    assert [model.id for model in response.models] == list(fakes.openai.models)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListProviderModels(provider_pb2.ListProviderModelsRequest())
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def _until(condition: object, within: float) -> None:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < within, f"not within {within * 1000:.0f} ms"
        await asyncio.sleep(0.002)


async def test_unknown_enums_long_strings_and_bad_json_are_refused(
    stub: provider_grpc.ProviderServiceStub,
) -> None:
    bad = _ask("openai", "m" * 10_000)
    bad.tool_choice.mode = 42
    bad.response_format.type = 9
    tool = bad.tools.add(name="f")
    tool.parameters.update({"maximum": float("nan")})
    bad.messages[0].name = "n" * 1000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Complete(bad)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = find_detail(_status(caught.value).status, error_details_pb2.BadRequest)
    assert violations is not None
    assert {v.field for v in violations.field_violations} == {
        "model",
        "messages[0].name",
        "tools[0].parameters.maximum",
        "tool_choice.mode",
        "response_format.type",
    }
