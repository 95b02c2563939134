"""Reloading the catalogue without restart: the admin RPC (gRPC and REST) and SIGHUP.

The RPC reaches one router replica through Envoy; both replicas must serve the new
catalogue soon after, so each replica is asked directly.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    router_service_pb2,
    router_service_pb2_grpc,
)
from tests.fakes import Behaviour, ToolCallSpec
from tests.fakes.downstream_fake import DownstreamBehaviour, DownstreamControl
from tests.support.gateway import Gateway, gateway_config, running_gateway
from tests.support.trust import with_metadata

pytestmark = pytest.mark.integration

# How soon every router replica must serve a catalogue reloaded through one of them.
PROPAGATION_SECONDS = 2.0


@pytest.fixture(scope="module")
def reload_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of its own: this module rewrites its configuration file."""
    with running_gateway(
        Path(tmp_path_factory.mktemp("reload")), replicas={"router": 2, "provider": 1}
    ) as running:
        yield running


@pytest.fixture
def gw(reload_gateway: Gateway) -> Iterator[Gateway]:
    """The module's gateway; its original file is back in place after each test."""
    reload_gateway.reset_fakes()
    assert reload_gateway.config_path is not None
    original = reload_gateway.config_path.read_text()
    yield reload_gateway
    reload_gateway.config_path.write_text(original)


@pytest.fixture
async def admin(gw: Gateway) -> AsyncIterator[admin_service_pb2_grpc.AdminServiceStub]:
    async with with_metadata(gw.grpc_target, gw.admin_metadata) as channel:
        yield admin_service_pb2_grpc.AdminServiceStub(channel)


def _document(gw: Gateway, *extra_models: str) -> dict[str, Any]:
    document = gateway_config(gw.fakes)
    for name in extra_models:
        document["models"].append(
            {"name": name, "deployments": [{"provider": "openai", "model": f"{name}-upstream"}]}
        )
    return document


def _write(gw: Gateway, document: dict[str, Any]) -> None:
    assert gw.config_path is not None
    gw.config_path.write_text(yaml.safe_dump(document, sort_keys=False))


def _hello(model: str) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi"))],
    )


async def _served_by(gw: Gateway, target: str, model: str) -> bool:
    """Whether the router replica at `target`, asked directly (with the edge token Envoy
    would add), knows `model`."""
    async with with_metadata(target, gw.edge_metadata()) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        try:
            await stub.GetModel(router_service_pb2.GetModelRequest(model=model), timeout=5)
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.NOT_FOUND, error.details()
            return False
    return True


async def _every_router_serves(gw: Gateway, model: str, timeout: float) -> None:
    """Each router replica, asked directly, knows `model` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    for replica in gw.stack.replicas["router"]:
        while not await _served_by(gw, replica.target, model):
            assert time.monotonic() < deadline, f"{replica.name} does not serve {model}"
            await asyncio.sleep(0.05)


async def _no_router_serves(gw: Gateway, model: str) -> None:
    for replica in gw.stack.replicas["router"]:
        assert not await _served_by(gw, replica.target, model), replica.name


async def test_reload_rpc_reaches_every_router_replica(
    gw: Gateway, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    await _no_router_serves(gw, "house-blend")
    document = _document(gw, "house-blend")
    _write(gw, document)
    models = len(document["models"])  # one deployment each

    reply = await admin.ReloadCatalog(admin_service_pb2.ReloadCatalogRequest(), timeout=10)

    assert (reply.model_count, reply.deployment_count) == (models, models)
    assert len(reply.version) >= 8
    await _every_router_serves(gw, "house-blend", PROPAGATION_SECONDS)
    # Served, not only listed: a completion goes to the new deployment.
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        completion = await router.CreateChatCompletion(_hello("house-blend"), timeout=10)
    assert completion.choices[0].message.content
    with gw.fakes["openai"].control() as control:
        assert control.completions()[-1].json["model"] == "house-blend-upstream"
    # Both replicas loaded the same content: reloading again reports the same version.
    again = await admin.ReloadCatalog(admin_service_pb2.ReloadCatalogRequest(), timeout=10)
    assert again.version == reply.version

    state = await admin.GetRoutingState(
        admin_service_pb2.GetRoutingStateRequest(model="house-blend"), timeout=5
    )
    assert [(d.model, d.provider, d.upstream_model) for d in state.deployments] == [
        ("house-blend", "openai", "house-blend-upstream")
    ]
    everything = await admin.GetRoutingState(admin_service_pb2.GetRoutingStateRequest(), timeout=5)
    assert len(everything.deployments) == models
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await admin.GetRoutingState(
            admin_service_pb2.GetRoutingStateRequest(model="no-such-model"), timeout=5
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in (missing.value.details() or "")


async def test_reload_over_rest(gw: Gateway) -> None:
    await _no_router_serves(gw, "rest-blend")
    document = _document(gw, "rest-blend", "rest-blend-2")
    _write(gw, document)
    models = len(document["models"])

    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        response = await client.post("/v1/admin/catalog:reload", json={}, headers=gw.admin_headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_count"], body["deployment_count"]) == (models, models)
    assert body["version"]
    await _every_router_serves(gw, "rest-blend-2", PROPAGATION_SECONDS)


def _broken(gw: Gateway) -> dict[str, Any]:
    document = _document(gw, "never-served")
    document["models"][3]["deployments"].append({"provider": "nowhere", "model": "x"})
    document["default_model"] = "missing-model"
    return document


async def test_an_invalid_file_is_refused_and_the_old_catalogue_serves(
    gw: Gateway, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    before = await admin.ReloadCatalog(admin_service_pb2.ReloadCatalogRequest(), timeout=10)
    _write(gw, _broken(gw))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.ReloadCatalog(admin_service_pb2.ReloadCatalogRequest(), timeout=10)

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "previous catalogue stays in service" in (caught.value.details() or "")
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = next(d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
    violations = error_details_pb2.BadRequest()
    bad.Unpack(violations)
    fields = {v.field: v.description for v in violations.field_violations}
    assert set(fields) == {"models.3.deployments.1.provider", "default_model"}
    assert "nowhere" in fields["models.3.deployments.1.provider"]

    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        response = await client.post("/v1/admin/catalog:reload", json={}, headers=gw.admin_headers)
    assert response.status_code == 400, response.text
    assert "models.3.deployments.1.provider" in response.text
    assert str(gw.config_path) not in response.text

    # The file as a whole unreadable: one violation on `config`, no directory shown.
    assert gw.config_path is not None
    gw.config_path.write_text("models: [unclosed\n")
    with pytest.raises(grpc.aio.AioRpcError) as unreadable:
        await admin.ReloadCatalog(admin_service_pb2.ReloadCatalogRequest(), timeout=10)
    assert unreadable.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert str(gw.config_path.parent) not in (unreadable.value.details() or "")
    assert "config: gateway.yaml" in (unreadable.value.details() or "")

    # Every replica still serves the catalogue it had.
    await _no_router_serves(gw, "never-served")
    for replica in gw.stack.replicas["router"]:
        assert await _served_by(gw, replica.target, "claude-sonnet")
    _write(gw, _document(gw))
    after = await admin.ReloadCatalog(admin_service_pb2.ReloadCatalogRequest(), timeout=10)
    assert after.version == before.version


def _content(chunk: object) -> list[str]:
    assert isinstance(chunk, chat_pb2.StreamChatCompletionResponse), chunk
    return [c.delta.content for c in chunk.choices if c.delta.content]


def _log_count(gw: Gateway, replica_name: str, text: str) -> int:
    return (gw.stack.logs / f"{replica_name}.log").read_text().count(text)


async def test_sighup_reloads_each_router_process(gw: Gateway) -> None:
    await _no_router_serves(gw, "hup-blend")
    _write(gw, _document(gw, "hup-blend"))

    for replica in gw.stack.replicas["router"]:
        assert replica.process.pid is not None
        os.kill(replica.process.pid, signal.SIGHUP)

    await _every_router_serves(gw, "hup-blend", PROPAGATION_SECONDS)
    for replica in gw.stack.replicas["router"]:
        assert replica.process.returncode is None


async def test_sighup_swaps_provider_instances_without_breaking_a_stream(gw: Gateway) -> None:
    """A second OpenAI instance appears; a stream running on the old one finishes."""
    (provider,) = gw.stack.replicas["provider"]
    assert provider.process.pid is not None
    with gw.fakes["openai"].control() as control:
        control.set_default(
            Behaviour(text="one two three four five", chunk_delay=0.3), model="gpt-4o-mini"
        )
    document = _document(gw)
    document["providers"]["openai-b"] = {
        **copy.deepcopy(document["providers"]["openai"]),
        "headers": {"x-instance": "b"},
    }
    document["models"].append(
        {"name": "via-b", "deployments": [{"provider": "openai-b", "model": "gpt-4o-mini"}]}
    )
    reloads_before = _log_count(gw, provider.name, '"msg":"reloaded"')

    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        stream = router.StreamChatCompletion(_hello("gpt-4o-mini"), timeout=30)
        pieces: list[str] = []
        while not pieces:
            pieces += _content(await stream.read())
        _write(gw, document)
        os.kill(provider.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while _log_count(gw, provider.name, '"msg":"reloaded"') == reloads_before:
            assert time.monotonic() < deadline, "the provider did not reload"
            await asyncio.sleep(0.02)
        assert len(pieces) < 5, "the stream must still be running during the swap"
        while (chunk := await stream.read()) is not grpc.aio.EOF:
            pieces += _content(chunk)
        assert await stream.code() is grpc.StatusCode.OK
    assert "".join(pieces) == "one two three four five"

    async with grpc.aio.insecure_channel(provider.target) as channel:
        listed = await provider_grpc.ProviderServiceStub(channel).ListProviders(
            provider_pb2.ListProvidersRequest(), metadata=gw.vouched_metadata(), timeout=5
        )
    assert {p.name for p in listed.providers} == {"openai", "openai-b", "anthropic", "ollama"}
    assert provider.process.returncode is None
    # The routers learn of the new model; the new instance serves it.
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        await admin.ReloadCatalog(
            admin_service_pb2.ReloadCatalogRequest(), metadata=gw.admin_metadata, timeout=10
        )
        await _every_router_serves(gw, "via-b", PROPAGATION_SECONDS)
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        await router.CreateChatCompletion(_hello("via-b"), timeout=10)
    with gw.fakes["openai"].control() as control:
        assert control.completions()[-1].headers.get("x-instance") == "b"


async def test_a_reload_mid_request_changes_nothing_the_request_planned(gw: Gateway) -> None:
    """A tool loop planned on provider instance `openai-x` (with deployment limits, so
    every model call reserves against that instance's configuration). While its tool
    runs, the routers reload a catalogue without `openai-x`: the loop's second model call
    still uses the snapshot it started with and the request succeeds."""
    (provider,) = gw.stack.replicas["provider"]
    assert provider.process.pid is not None
    document = _document(gw)
    document["providers"]["openai-x"] = copy.deepcopy(document["providers"]["openai"])
    document["models"].append(
        {
            "name": "snap",
            "deployments": [
                {
                    "provider": "openai-x",
                    "model": "gpt-4o-mini",
                    "rate_limits": {"requests_per_minute": 1000},
                }
            ],
        }
    )
    _write(gw, document)
    reloads_before = _log_count(gw, provider.name, '"msg":"reloaded"')
    os.kill(provider.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while _log_count(gw, provider.name, '"msg":"reloaded"') == reloads_before:
        assert time.monotonic() < deadline, "the provider did not reload"
        await asyncio.sleep(0.02)
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        await admin.ReloadCatalog(
            admin_service_pb2.ReloadCatalogRequest(), metadata=gw.admin_metadata, timeout=10
        )
        await _every_router_serves(gw, "snap", PROPAGATION_SECONDS)
        with gw.fakes["openai"].control() as control:
            control.script(
                Behaviour(tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Oslo"}')]),
                Behaviour(text="Cold."),
            )
        DownstreamControl(gw.fakes["downstream"].root_url).script(
            DownstreamBehaviour(path="/weather/Oslo", delay=1.0)
        )
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        request = _hello("snap")
        request.gateway.tools.append("weather")
        running = asyncio.ensure_future(router.CreateChatCompletion(request, timeout=30))
        await asyncio.sleep(0.5)  # the tool runs now
        # Only the routers reload: the provider service keeps serving `openai-x`.
        _write(gw, _document(gw))
        await admin.ReloadCatalog(
            admin_service_pb2.ReloadCatalogRequest(), metadata=gw.admin_metadata, timeout=10
        )
        deadline = time.monotonic() + PROPAGATION_SECONDS
        for replica in gw.stack.replicas["router"]:
            while await _served_by(gw, replica.target, "snap"):
                assert time.monotonic() < deadline, f"{replica.name} still serves snap"
                await asyncio.sleep(0.05)
        assert not running.done(), "the reload must land while the tool runs"
        reply = await running
    assert reply.choices[0].message.content == "Cold."
    assert reply.choices[0].finish_reason == "stop"
