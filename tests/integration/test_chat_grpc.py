"""The gRPC API through Envoy's public listener: stubs, streams, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


def _request(model: str, *messages: tuple[str, str]) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[
            chat_pb2.ChatMessage(role=role, content=struct_pb2.Value(string_value=text))
            for role, text in messages or (("user", "Hello"),)
        ],
    )


@pytest.fixture
async def router(gw: Gateway) -> AsyncIterator[router_service_pb2_grpc.RouterServiceStub]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        yield router_service_pb2_grpc.RouterServiceStub(channel)


@pytest.mark.parametrize(
    ("model", "kind", "upstream_model"),
    [
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("claude-sonnet", "anthropic", "claude-sonnet-4-6"),
        ("ollama/llama3.2", "ollama", "llama3.2"),
        ("gpt-4.1-nano", "openai", "gpt-4.1-nano"),
    ],
)
async def test_unary_reaches_each_provider(
    gw: Gateway,
    router: router_service_pb2_grpc.RouterServiceStub,
    model: str,
    kind: str,
    upstream_model: str,
) -> None:
    reply = await router.CreateChatCompletion(
        _request(model, ("system", "Be brief."), ("user", "Hello")), timeout=10
    )
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert reply.model == model
    assert reply.usage.total_tokens > 0
    with gw.fakes[kind].control() as control:
        sent = control.completions()[-1].json
    assert sent["model"] == upstream_model
    if kind == "anthropic":
        assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])


async def test_stream_arrives_chunk_by_chunk(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["anthropic"].control() as control:
        control.script(Behaviour(chunks=["a", "b", "c", "d"], chunk_delay=0.15))
    started = time.perf_counter()
    arrivals, text, finish = [], "", ""
    async for chunk in router.StreamChatCompletion(_request("claude-sonnet"), timeout=10):
        for choice in chunk.choices:
            if choice.delta.HasField("content"):
                arrivals.append(time.perf_counter() - started)
                text += choice.delta.content
            if choice.HasField("finish_reason"):
                finish = choice.finish_reason
    assert text == "abcd"
    assert finish == "stop"
    assert arrivals[-1] - arrivals[0] > 0.4


async def test_streamed_parallel_tool_calls_assemble_exactly(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                tool_calls=[
                    ToolCallSpec(name="lookup", arguments='{"q": "alpha beta"}', id="c1"),
                    ToolCallSpec(name="fetch", arguments='{"id": 42, "deep": true}', id="c2"),
                ]
            )
        )
    request = _request("gpt-4o-mini")
    request.tools.add(type="function", function=chat_pb2.ChatFunctionDefinition(name="lookup"))
    request.tools.add(type="function", function=chat_pb2.ChatFunctionDefinition(name="fetch"))
    calls: dict[int, dict[str, str]] = {}
    async for chunk in router.StreamChatCompletion(request, timeout=10):
        for choice in chunk.choices:
            for piece in choice.delta.tool_calls:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.id
                call["name"] += piece.function.name
                call["arguments"] += piece.function.arguments
    assert calls == {
        0: {"id": "c1", "name": "lookup", "arguments": '{"q": "alpha beta"}'},
        1: {"id": "c2", "name": "fetch", "arguments": '{"id": 42, "deep": true}'},
    }


async def test_validation_error_details_reach_grpc_clients(
    router: router_service_pb2_grpc.RouterServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "messages" in (caught.value.details() or "")


async def test_deadline_reaches_the_upstream(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(delay=5))
    started = time.perf_counter()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.CreateChatCompletion(_request("gpt-4o-mini"), timeout=0.5)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.perf_counter() - started < 1.5
    with gw.fakes["openai"].control() as control:
        for _ in range(50):
            stats = control.stats()
            if stats.cancelled >= 1 and stats.in_flight == 0:
                break
            await asyncio.sleep(0.05)
        assert stats.cancelled >= 1 and stats.in_flight == 0  # upstream was abandoned


async def test_client_going_away_cancels_the_upstream_stream(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["ollama"].control() as control:
        control.script(Behaviour(chunks=[f"w{i} " for i in range(50)], chunk_delay=0.1))
    call = router.StreamChatCompletion(_request("llama"), timeout=30)
    received = 0
    async for _chunk in call:
        received += 1
        if received == 3:
            break
    cancelled_at = time.time()
    call.cancel()
    with gw.fakes["ollama"].control() as control:
        stats = control.stats()
        while stats.last_cancelled_at is None and time.time() - cancelled_at < 3:
            await asyncio.sleep(0.02)
            stats = control.stats()
    assert stats.cancelled == 1 and stats.last_cancelled_at is not None
    # Through Envoy, router, Envoy and provider, the upstream connection is closed
    # within 100 ms of the client cancelling (the fake notes when it saw the close).
    assert stats.last_cancelled_at - cancelled_at < 0.1


async def test_provider_is_not_reachable_from_the_public_listener(gw: Gateway) -> None:
    request = provider_pb2.CompleteRequest(
        provider="openai",
        model="gpt-4o-mini",
        messages=[
            common_pb2.Message(
                role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")]
            )
        ],
    )
    async with grpc.aio.insecure_channel(gw.grpc_target) as public:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await provider_grpc.ProviderServiceStub(public).Complete(request, timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    async with grpc.aio.insecure_channel(gw.internal_target) as internal:
        provider = provider_grpc.ProviderServiceStub(internal)
        # Reachable there, it answers only calls a gateway service vouched for.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await provider.Complete(request, metadata=gw.edge_metadata(), timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        reply = await provider.Complete(request, metadata=gw.vouched_metadata(), timeout=5)
    assert reply.message.content[0].text == DEFAULT_TEXT


def test_grpcurl_lists_and_calls_the_public_api(gw: Gateway, repo_root: Path) -> None:
    grpcurl = str(repo_root / ".venv" / "bin" / "grpcurl")
    listed = subprocess.run(
        [grpcurl, "-plaintext", gw.grpc_target, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "llmgw.router.v1.RouterService" in listed
    assert "llmgw.session.v1.SessionService" in listed
    assert "llmgw.provider.v1.ProviderService" not in listed
    reply = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-d",
            '{"model": "fast", "messages": [{"role": "user", "content": "Hi"}]}',
            gw.grpc_target,
            "llmgw.router.v1.RouterService/CreateChatCompletion",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    body = json_format.Parse(reply, chat_pb2.CreateChatCompletionResponse())
    assert body.choices[0].message.content == DEFAULT_TEXT
