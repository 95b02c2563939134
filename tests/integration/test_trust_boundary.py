"""The trust boundary through real Envoy and service processes: the public listener is the
only way in, a service believes a client address or a principal only when the gateway
vouched for it, the Provider answers only the gateway's own calls, the admin RPCs need
the admin key in every mode, and the router never serves one caller's view of a tool to
another.

Calls straight to a service's port or to Envoy's internal listener stand for an attacker
who reached the deployment's network; `Gateway.edge_metadata()` and `vouched_metadata()`
stand for one who also holds the internal secret (the tests hold it to show what the
proofs admit).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format, struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.identity.gate import ADMIN_KEY_NEEDED, NOT_THROUGH_THE_GATEWAY
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import DEFAULT_TEXT
from tests.support.gateway import Gateway
from tests.support.identity import Identity, bearer, create_identity
from tests.support.trust import edge_metadata, vouched_metadata

pytestmark = pytest.mark.integration

ADMIN = bearer(SECURED_ADMIN_KEY)
FORGED_SECRET = "not-the-gateways-internal-secret-0123456789"
FORGED_EDGE = (("x-llmgw-edge-token", "0" * 64),)
SPOOFED_ADDRESS = (("x-llmgw-client-address", "10.9.9.9"),)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}


def _group(*services: str, tools: tuple[str, ...] = ("*",)) -> identity_pb2.Group:
    return identity_pb2.Group(
        allowed_models=["*"], allowed_tools=list(tools), allowed_services=list(services)
    )


async def _identity(sgw: Gateway, **kwargs: Any) -> Identity:
    return await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY, prefix="trust", **kwargs)


async def _code(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def _chat(text: str = "Hello", *tools: str) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))],
        gateway=chat_pb2.GatewayOptions(tools=list(tools)),
    )


def _complete() -> provider_pb2.CompleteRequest:
    return provider_pb2.CompleteRequest(
        provider="openai",
        model="gpt-4o-mini",
        messages=[
            common_pb2.Message(
                role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")]
            )
        ],
    )


def _completions(gw: Gateway) -> int:
    with gw.fakes["openai"].control() as control:
        return control.stats().hits


@pytest.fixture
async def internal(sgw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to Envoy's internal listener."""
    async with grpc.aio.insecure_channel(sgw.internal_target) as channel:
        yield channel


def _replica(gw: Gateway, service: str) -> str:
    return gw.stack.replicas[service][0].target


# -- 1. straight to a service, or through the internal listener -------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param((), id="key-only"),
        pytest.param(SPOOFED_ADDRESS, id="forged-address"),
        pytest.param(FORGED_EDGE, id="forged-edge-token"),
    ],
)
async def test_a_valid_key_straight_to_any_public_service_is_unauthenticated(
    sgw: Gateway, extra: tuple[tuple[str, str], ...]
) -> None:
    who = await _identity(sgw, group=_group("router", "session", "tool"))
    metadata = (*who.metadata, *extra)
    calls = {
        "router": lambda ch: router_service_pb2_grpc.RouterServiceStub(ch).ListModels(
            router_service_pb2.ListModelsRequest(), metadata=metadata, timeout=10
        ),
        "session": lambda ch: session_grpc.SessionServiceStub(ch).CreateSession(
            session_pb2.CreateSessionRequest(), metadata=metadata, timeout=10
        ),
        "tool": lambda ch: tool_grpc.ToolServiceStub(ch).ListTools(
            tool_pb2.ListToolsRequest(), metadata=metadata, timeout=10
        ),
    }
    for service, call in calls.items():
        for target in (_replica(sgw, service), sgw.internal_target):
            async with grpc.aio.insecure_channel(target) as channel:
                code, details = await _code(call(channel))
            assert (code, details) == (
                grpc.StatusCode.UNAUTHENTICATED,
                NOT_THROUGH_THE_GATEWAY,
            ), (service, target)


async def test_the_internal_listener_drops_a_stolen_edge_token_and_address(
    sgw: Gateway, internal: grpc.aio.Channel
) -> None:
    """Even the real edge token does not get a call through the internal listener: it
    is removed there, as is the client address, so only an assertion can vouch."""
    who = await _identity(sgw, group=_group("router", "session"))
    stolen = (*who.metadata, *sgw.edge_metadata(), *SPOOFED_ADDRESS)
    code, details = await _code(
        session_grpc.SessionServiceStub(internal).CreateSession(
            session_pb2.CreateSessionRequest(), metadata=stolen, timeout=10
        )
    )
    assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, NOT_THROUGH_THE_GATEWAY)
    # Straight to the replica the same token works: it is what Envoy's public listener adds.
    async with grpc.aio.insecure_channel(_replica(sgw, "session")) as channel:
        created = await session_grpc.SessionServiceStub(channel).CreateSession(
            session_pb2.CreateSessionRequest(),
            metadata=(*who.metadata, *sgw.edge_metadata()),
            timeout=10,
        )
    assert created.session.owner == who.consumer


async def test_a_forged_assertion_is_unauthenticated_everywhere(
    sgw: Gateway, internal: grpc.aio.Channel
) -> None:
    who = await _identity(sgw, group=_group("router", "session"))
    forged = vouched_metadata(FORGED_SECRET, consumer=who.consumer, key_name=who.key_name)
    admin = vouched_metadata(
        FORGED_SECRET, consumer="consumers/_admin", key_name="consumers/_admin/keys/_bootstrap"
    )
    for metadata in (forged, admin, (*forged, *who.metadata)):
        code, _ = await _code(
            session_grpc.SessionServiceStub(internal).CreateSession(
                session_pb2.CreateSessionRequest(), metadata=metadata, timeout=10
            )
        )
        assert code is grpc.StatusCode.UNAUTHENTICATED
        code, _ = await _code(
            provider_grpc.ProviderServiceStub(internal).Complete(
                _complete(), metadata=metadata, timeout=10
            )
        )
        assert code is grpc.StatusCode.UNAUTHENTICATED
    assert _completions(sgw) == 0


async def test_the_provider_answers_only_calls_the_gateway_vouched_for(
    sgw: Gateway, internal: grpc.aio.Channel
) -> None:
    who = await _identity(sgw)
    refused = [
        (),
        who.metadata,
        ADMIN,
        (*ADMIN, *sgw.edge_metadata()),
        (*who.metadata, *sgw.edge_metadata(), *SPOOFED_ADDRESS),
    ]
    for metadata in refused:
        for target in (_replica(sgw, "provider"), sgw.internal_target):
            async with grpc.aio.insecure_channel(target) as channel:
                code, _ = await _code(
                    provider_grpc.ProviderServiceStub(channel).Complete(
                        _complete(), metadata=metadata, timeout=10
                    )
                )
            assert code is grpc.StatusCode.UNAUTHENTICATED, (metadata, target)
    assert _completions(sgw) == 0
    # What the router sends: an assertion made with the stack's secret.
    reply = await provider_grpc.ProviderServiceStub(internal).Complete(
        _complete(), metadata=sgw.vouched_metadata(), timeout=10
    )
    assert reply.message.content[0].text == DEFAULT_TEXT


async def test_a_vouched_consumer_is_loaded_and_checked_on_every_hop(
    sgw: Gateway, internal: grpc.aio.Channel
) -> None:
    allowed = await _identity(sgw, group=_group("router", "session"))
    stub = session_grpc.SessionServiceStub(internal)
    created = await stub.CreateSession(
        session_pb2.CreateSessionRequest(),
        metadata=sgw.vouched_metadata(allowed.consumer, allowed.key_name),
        timeout=10,
    )
    assert created.session.owner == allowed.consumer
    # The receiving service applies the consumer's own ACL, whoever vouched.
    no_sessions = await _identity(sgw, group=_group("router"))
    code, details = await _code(
        stub.CreateSession(
            session_pb2.CreateSessionRequest(),
            metadata=sgw.vouched_metadata(no_sessions.consumer, no_sessions.key_name),
            timeout=10,
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED and "session" in details
    # A key that is gone is gone on every hop (the identity cache, not the key, decides).
    await _revoke(sgw, allowed.key_name)
    code, _ = await _code(
        stub.CreateSession(
            session_pb2.CreateSessionRequest(),
            metadata=sgw.vouched_metadata(allowed.consumer, allowed.key_name),
            timeout=10,
        )
    )
    assert code is grpc.StatusCode.UNAUTHENTICATED


async def _revoke(sgw: Gateway, key_name: str) -> None:
    """Revokes a key, then waits out the identity caches' version interval."""
    async with grpc.aio.insecure_channel(sgw.grpc_target) as channel:
        await identity_grpc.IdentityServiceStub(channel).RevokeApiKey(
            identity_service_pb2.RevokeApiKeyRequest(name=key_name), metadata=ADMIN, timeout=10
        )
    await asyncio.sleep(0.5)


# -- 2. what the public listener does to a caller's headers ----------------------------


async def test_a_callers_own_proofs_never_get_past_the_public_listener(sgw: Gateway) -> None:
    who = await _identity(sgw)
    stolen_assertion = sgw.vouched_metadata(who.consumer, who.key_name)
    async with httpx.AsyncClient(base_url=sgw.public_url, timeout=10) as client:
        # A valid assertion (stolen from the internal network) is removed: no key, 401.
        response = await client.post("/v1/chat/completions", json=CHAT, headers=stolen_assertion)
        assert response.status_code == 401, response.text
        # A forged edge token is replaced by Envoy's: a valid key still works.
        response = await client.post(
            "/v1/chat/completions", json=CHAT, headers={**who.headers, **dict(FORGED_EDGE)}
        )
        assert response.status_code == 200, response.text
    async with grpc.aio.insecure_channel(sgw.grpc_target) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        code, _ = await _code(
            router.ListModels(
                router_service_pb2.ListModelsRequest(), metadata=stolen_assertion, timeout=10
            )
        )
        assert code is grpc.StatusCode.UNAUTHENTICATED


# -- 3. the admin RPCs with authentication off ------------------------------------------


async def test_admin_rpcs_need_the_admin_key_with_authentication_off(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        for method, path in (
            ("GET", "/v1/admin/consumers"),
            ("GET", "/v1/admin/routing"),
            ("POST", "/v1/admin/catalog:reload"),
        ):
            response = await client.request(method, path, json={} if method == "POST" else None)
            assert response.status_code == 401, (path, response.text)
            assert response.json()["message"] == ADMIN_KEY_NEEDED
            # Any other key (the OpenAI SDK always sends one) is not the admin key.
            response = await client.request(
                method,
                path,
                json={} if method == "POST" else None,
                headers={"authorization": "Bearer sk-some-openai-placeholder"},
            )
            assert response.status_code == 401, (path, response.text)
        listed = await client.get("/v1/admin/consumers", headers=gw.admin_headers)
        assert listed.status_code == 200, listed.text
        # Chat stays open to anyone on loopback.
        chat = await client.post("/v1/chat/completions", json=CHAT)
        assert chat.status_code == 200, chat.text
        # Its own usage too, but nobody else's without the admin key.
        assert (await client.get("/v1/usage")).status_code == 200
        others = await client.get("/v1/usage", params={"subject": "consumers/someone"})
        assert others.status_code == 403, others.text
        assert "LLMGW_ADMIN_KEY" in others.json()["message"]
        admin_view = await client.get(
            "/v1/usage", params={"subject": "consumers/someone"}, headers=gw.admin_headers
        )
        assert admin_view.status_code == 200, admin_view.text


async def test_with_authentication_off_the_services_still_want_the_gateways_proof(
    gw: Gateway,
) -> None:
    async with grpc.aio.insecure_channel(_replica(gw, "router")) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        code, details = await _code(
            router.ListModels(router_service_pb2.ListModelsRequest(), timeout=10)
        )
        assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, NOT_THROUGH_THE_GATEWAY)
        await router.ListModels(
            router_service_pb2.ListModelsRequest(), metadata=gw.edge_metadata(), timeout=10
        )
        code, _ = await _code(
            router.ListModels(
                router_service_pb2.ListModelsRequest(), metadata=edge_metadata(FORGED_SECRET)
            )
        )
        assert code is grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(gw.internal_target) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        code, _ = await _code(
            admin.GetRoutingState(
                admin_pb2.GetRoutingStateRequest(), metadata=gw.admin_metadata, timeout=10
            )
        )
        assert code is grpc.StatusCode.UNAUTHENTICATED


# -- 4. the router's tool definitions, per caller ----------------------------------------


async def test_a_tool_definition_cached_for_one_caller_is_never_served_to_another(
    sgw: Gateway,
) -> None:
    """The tool's own `allowed_consumers` names only the first caller; the second one's
    groups allow every tool, so only the Tool service can refuse it. Both ask the same
    router replica within the definitions' cache time."""
    insider = await _identity(sgw, group=_group("router", "tool"))
    outsider = await _identity(sgw, group=_group("router", "tool"))
    tool_id = f"private_{uuid.uuid4().hex[:8]}"
    tool = tool_pb2.Tool(
        description="The insider's own tool.",
        http=tool_pb2.HttpExecutor(
            method="GET", url_template=sgw.fakes["downstream"].root_url + "/weather/{city}"
        ),
        allowed_consumers=[insider.consumer],
    )
    json_format.ParseDict(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        tool.parameters,
    )
    async with grpc.aio.insecure_channel(sgw.grpc_target) as channel:
        await tool_grpc.ToolServiceStub(channel).CreateTool(
            tool_pb2.CreateToolRequest(tool_id=tool_id, tool=tool), metadata=ADMIN, timeout=10
        )
    async with grpc.aio.insecure_channel(_replica(sgw, "router")) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        edge = sgw.edge_metadata()
        reply = await router.CreateChatCompletion(
            _chat("Hi", tool_id), metadata=(*insider.metadata, *edge), timeout=10
        )
        assert reply.choices[0].message.content == DEFAULT_TEXT
        calls = _completions(sgw)
        code, details = await _code(
            router.CreateChatCompletion(
                _chat("Hi", tool_id), metadata=(*outsider.metadata, *edge), timeout=10
            )
        )
    assert code is grpc.StatusCode.PERMISSION_DENIED, details
    assert outsider.consumer in details
    assert _completions(sgw) == calls  # the model never saw the tool
