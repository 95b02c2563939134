"""Authentication through Envoy on the secured gateway (LLMGW_AUTH=required): API keys,
the admin role, the service ACL, IP allow-lists, and key revocation, rotation and expiry.

The secured gateway's Redis lives for the whole test session: every test creates its own
consumers, groups and keys (fresh names through `tests.support.identity`).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, struct_pb2

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from llmgw.investigation.v1 import investigation_service_pb2 as investigation_pb2
from llmgw.investigation.v1 import investigation_service_pb2_grpc as investigation_grpc
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import DEFAULT_TEXT
from tests.support.gateway import Gateway
from tests.support.identity import Identity, bearer, create_identity

pytestmark = pytest.mark.integration

ADMIN = bearer(SECURED_ADMIN_KEY)
ADMIN_HEADERS = {"authorization": f"Bearer {SECURED_ADMIN_KEY}"}
MODEL = "gpt-4o-mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}
INVALID_KEY = "the API key is not valid"
# Where the test process connects from; Envoy reports this address to the services.
LOOPBACK = "127.0.0.1"
SPOOFED = "10.1.2.3"


class Api:
    """Stubs of every public service on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.router = router_service_pb2_grpc.RouterServiceStub(channel)
        self.admin = admin_grpc.AdminServiceStub(channel)
        self.identity = identity_grpc.IdentityServiceStub(channel)
        self.sessions = session_grpc.SessionServiceStub(channel)
        self.tools = tool_grpc.ToolServiceStub(channel)
        self.investigations = investigation_grpc.InvestigationServiceStub(channel)


@pytest.fixture
async def api(sgw: Gateway) -> AsyncIterator[Api]:
    async with grpc.aio.insecure_channel(sgw.grpc_target) as channel:
        yield Api(channel)


@pytest.fixture
async def rest(sgw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sgw.public_url, timeout=30) as client:
        yield client


async def _identity(
    sgw: Gateway,
    *,
    group: identity_pb2.Group | None = None,
    consumer: identity_pb2.Consumer | None = None,
) -> Identity:
    return await create_identity(
        sgw.grpc_target, SECURED_ADMIN_KEY, group=group, consumer=consumer, prefix="auth"
    )


def _group(
    *services: str, admin: bool = False, ip_allowlist: tuple[str, ...] = ()
) -> identity_pb2.Group:
    return identity_pb2.Group(
        allowed_models=["*"],
        allowed_tools=["*"],
        allowed_services=list(services),
        ip_allowlist=list(ip_allowlist),
        admin=admin,
    )


def _unknown_key() -> str:
    """A well-formed key (`llmgw_<key id>_<43 url-safe characters>`) no one was issued."""
    key_id = secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11)
    )
    return f"llmgw_{key_id}_{secrets.token_urlsafe(32)}"


def _chat_request(text: str = "Hello", session: str = "") -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=MODEL,
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))],
        gateway=chat_pb2.GatewayOptions(session=session),
    )


def _message(response: httpx.Response) -> str:
    """The error message of a REST answer: chat answers OpenAI's `{"error": {...}}`, every
    other route the `google.rpc.Status` JSON itself."""
    body = response.json()
    message: str = body.get("error", body)["message"]
    return message


async def _rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _list_models(
    router: router_service_pb2_grpc.RouterServiceStub, metadata: tuple[tuple[str, str], ...]
) -> router_service_pb2.ListModelsResponse:
    return await router.ListModels(
        router_service_pb2.ListModelsRequest(), metadata=metadata, timeout=10
    )


async def _refused_at(call: Callable[[], Awaitable[Any]], within: float) -> float:
    """Polls `call` until it answers UNAUTHENTICATED; the monotonic time of that answer.

    Fails after `within` seconds, or on any other error."""
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                return time.monotonic()
            raise
        if time.monotonic() > deadline:
            pytest.fail(f"still accepted {within} s later")
        await asyncio.sleep(0.02)


def _completions(sgw: Gateway) -> int:
    with sgw.fakes["openai"].control() as control:
        return control.stats().hits


# -- 1. presenting a key ---------------------------------------------------------------

REST_CALLS = [
    pytest.param("POST", "/v1/chat/completions", CHAT, id="chat"),
    pytest.param("POST", "/v1/sessions", {}, id="sessions"),
    pytest.param("GET", "/v1/tools", None, id="tools"),
    pytest.param("GET", "/v1/admin/consumers", None, id="admin"),
]


@pytest.mark.parametrize(("method", "path", "body"), REST_CALLS)
async def test_rest_without_a_key_is_401(
    sgw: Gateway, rest: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await rest.request(method, path, json=body)
    assert response.status_code == 401, response.text
    assert _message(response) == "an API key is required"
    assert _completions(sgw) == 0


GRPC_CALLS: list[tuple[str, Callable[[Api], Awaitable[Any]]]] = [
    ("chat", lambda api: api.router.CreateChatCompletion(_chat_request(), timeout=10)),
    (
        "sessions",
        lambda api: api.sessions.CreateSession(session_pb2.CreateSessionRequest(), timeout=10),
    ),
    ("tools", lambda api: api.tools.ListTools(tool_pb2.ListToolsRequest(), timeout=10)),
    (
        "admin",
        lambda api: api.identity.ListConsumers(
            identity_service_pb2.ListConsumersRequest(), timeout=10
        ),
    ),
]


@pytest.mark.parametrize("call", [c for _, c in GRPC_CALLS], ids=[n for n, _ in GRPC_CALLS])
async def test_grpc_without_a_key_is_unauthenticated(
    sgw: Gateway, api: Api, call: Callable[[Api], Awaitable[Any]]
) -> None:
    error = await _rpc_error(call(api))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert _completions(sgw) == 0


@pytest.mark.parametrize(
    "key",
    [pytest.param("not-a-key-at-all", id="garbage"), pytest.param(_unknown_key(), id="unknown")],
)
async def test_an_invalid_key_is_refused_without_echoing_it(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api, key: str
) -> None:
    response = await rest.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 401, response.text
    assert _message(response) == INVALID_KEY
    assert key not in response.text
    assert all(key not in value for value in response.headers.values())

    error = await _rpc_error(
        api.router.CreateChatCompletion(_chat_request(), metadata=bearer(key), timeout=10)
    )
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == INVALID_KEY
    assert _completions(sgw) == 0


async def test_basic_authorization_is_refused_even_with_a_valid_key(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw)
    for credentials in (who.key, base64.b64encode(f"user:{who.key}".encode()).decode()):
        response = await rest.post(
            "/v1/chat/completions", json=CHAT, headers={"authorization": f"Basic {credentials}"}
        )
        assert response.status_code == 401, response.text
        assert "Bearer" in _message(response)
        assert who.key not in response.text
        error = await _rpc_error(
            _list_models(api.router, (("authorization", f"Basic {credentials}"),))
        )
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert _completions(sgw) == 0


async def test_x_api_key_header_is_accepted(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw)
    response = await rest.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": who.key})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
    models = await _list_models(api.router, (("x-api-key", who.key),))
    assert MODEL in [m.id for m in models.data]


# -- 2. bootstrap ----------------------------------------------------------------------


async def test_the_bootstrap_admin_issues_a_key_that_chats(
    rest: httpx.AsyncClient, api: Api
) -> None:
    suffix = uuid.uuid4().hex[:10]
    group_id, consumer_id = f"boot-g-{suffix}", f"boot-{suffix}"
    group = await rest.post(
        "/v1/admin/groups",
        params={"group_id": group_id},
        json={"allowed_models": [MODEL], "allowed_services": ["router"]},
        headers=ADMIN_HEADERS,
    )
    assert group.status_code == 200, group.text
    consumer = await rest.post(
        "/v1/admin/consumers",
        params={"consumer_id": consumer_id},
        json={"groups": [f"groups/{group_id}"]},
        headers=ADMIN_HEADERS,
    )
    assert consumer.status_code == 200, consumer.text
    issued = await rest.post(
        f"/v1/admin/consumers/{consumer_id}/keys", json={}, headers=ADMIN_HEADERS
    )
    assert issued.status_code == 200, issued.text
    key = issued.json()["secret"]

    chat = await rest.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
    reply = await api.router.CreateChatCompletion(_chat_request(), metadata=bearer(key), timeout=10)
    assert reply.choices[0].message.content == DEFAULT_TEXT


# -- 3. the admin role -----------------------------------------------------------------


@dataclass(frozen=True)
class AdminCall:
    """One admin-only RPC over REST (method, path, body) and over gRPC."""

    name: str
    rest: Callable[[Identity, str], tuple[str, str, object]]
    grpc: Callable[[Api, Identity, str], Awaitable[Any]]


ADMIN_ONLY = [
    AdminCall(
        "ListConsumers",
        lambda who, fresh: ("GET", "/v1/admin/consumers", None),
        lambda api, who, fresh: api.identity.ListConsumers(
            identity_service_pb2.ListConsumersRequest(), metadata=who.metadata, timeout=10
        ),
    ),
    AdminCall(
        "CreateConsumer",
        lambda who, fresh: ("POST", f"/v1/admin/consumers?consumer_id={fresh}", {}),
        lambda api, who, fresh: api.identity.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(
                consumer=identity_pb2.Consumer(), consumer_id=fresh
            ),
            metadata=who.metadata,
            timeout=10,
        ),
    ),
    AdminCall(
        "ReloadCatalog",
        lambda who, fresh: ("POST", "/v1/admin/catalog:reload", {}),
        lambda api, who, fresh: api.admin.ReloadCatalog(
            admin_pb2.ReloadCatalogRequest(), metadata=who.metadata, timeout=10
        ),
    ),
    AdminCall(
        "GetRoutingState",
        lambda who, fresh: ("GET", "/v1/admin/routing", None),
        lambda api, who, fresh: api.admin.GetRoutingState(
            admin_pb2.GetRoutingStateRequest(), metadata=who.metadata, timeout=10
        ),
    ),
    AdminCall(
        "CreateApiKey",
        lambda who, fresh: ("POST", f"/v1/admin/{who.consumer}/keys", {}),
        lambda api, who, fresh: api.identity.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent=who.consumer),
            metadata=who.metadata,
            timeout=10,
        ),
    ),
]


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(None, id="without-admin-service"),
        # Listing the admin service admits the call; the RPC still needs the admin role.
        pytest.param(_group("router", "admin"), id="with-admin-service"),
    ],
)
async def test_admin_rpcs_are_refused_to_non_admins(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api, group: identity_pb2.Group | None
) -> None:
    who = await _identity(sgw, group=group)
    fresh = f"auth-made-{uuid.uuid4().hex[:10]}"
    for call in ADMIN_ONLY:
        method, path, body = call.rest(who, fresh)
        response = await rest.request(method, path, json=body, headers=who.headers)
        assert response.status_code == 403, (call.name, response.text)
        assert who.consumer in _message(response), call.name
        error = await _rpc_error(call.grpc(api, who, fresh))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, call.name

    # The refused writes wrote nothing.
    missing = await _rpc_error(
        api.identity.GetConsumer(
            identity_service_pb2.GetConsumerRequest(name=f"consumers/{fresh}"),
            metadata=ADMIN,
            timeout=10,
        )
    )
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    keys = await api.identity.ListApiKeys(
        identity_service_pb2.ListApiKeysRequest(parent=who.consumer), metadata=ADMIN, timeout=10
    )
    assert [k.name for k in keys.api_keys] == [who.key_name]


async def test_admin_rpcs_are_open_to_an_admin_group(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw, group=_group("router", admin=True))
    for call in ADMIN_ONLY:
        fresh = f"auth-made-{uuid.uuid4().hex[:10]}"
        method, path, body = call.rest(who, fresh)
        response = await rest.request(method, path, json=body, headers=who.headers)
        assert response.status_code == 200, (call.name, response.text)
        await call.grpc(api, who, f"{fresh}-g")  # raises on any refusal
    listed = await api.identity.ListConsumers(
        identity_service_pb2.ListConsumersRequest(page_size=1000), metadata=who.metadata, timeout=10
    )
    assert who.consumer in [c.name for c in listed.consumers]


async def test_usage_of_oneself_is_open_and_of_others_admin_only(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw)
    other = await _identity(sgw)
    admin = await _identity(sgw, group=_group("router", admin=True))

    for subject in ("", who.consumer, who.group):
        response = await rest.get("/v1/usage", params={"subject": subject}, headers=who.headers)
        assert response.status_code == 200, (subject, response.text)
        await api.admin.GetUsage(
            admin_pb2.GetUsageRequest(subject=subject), metadata=who.metadata, timeout=10
        )

    for subject in (other.consumer, other.group):
        response = await rest.get("/v1/usage", params={"subject": subject}, headers=who.headers)
        assert response.status_code == 403, (subject, response.text)
        error = await _rpc_error(
            api.admin.GetUsage(
                admin_pb2.GetUsageRequest(subject=subject), metadata=who.metadata, timeout=10
            )
        )
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED

        response = await rest.get("/v1/usage", params={"subject": subject}, headers=admin.headers)
        assert response.status_code == 200, (subject, response.text)
        await api.admin.GetUsage(
            admin_pb2.GetUsageRequest(subject=subject), metadata=admin.metadata, timeout=10
        )


# -- 4. the service ACL ----------------------------------------------------------------


async def test_services_not_listed_are_refused_naming_service_and_consumer(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw, group=_group("router"))
    created = await rest.post("/v1/sessions", json={}, headers=who.headers)
    assert created.status_code == 403, created.text
    assert "session" in _message(created) and who.consumer in _message(created)
    tools = await rest.get("/v1/tools", headers=who.headers)
    assert tools.status_code == 403, tools.text
    assert "tool" in _message(tools) and who.consumer in _message(tools)

    error = await _rpc_error(
        api.sessions.CreateSession(
            session_pb2.CreateSessionRequest(), metadata=who.metadata, timeout=10
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "session" in (error.details() or "") and who.consumer in (error.details() or "")
    error = await _rpc_error(
        api.tools.ListTools(tool_pb2.ListToolsRequest(), metadata=who.metadata, timeout=10)
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "tool" in (error.details() or "") and who.consumer in (error.details() or "")

    # The router stays open to every consumer.
    chat = await rest.post("/v1/chat/completions", json=CHAT, headers=who.headers)
    assert chat.status_code == 200, chat.text


async def test_listed_services_are_admitted(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw, group=_group("router", "session", "tool"))
    created = await rest.post("/v1/sessions", json={}, headers=who.headers)
    assert created.status_code == 200, created.text
    assert created.json()["session"]["name"].startswith("sessions/")
    tools = await rest.get("/v1/tools", headers=who.headers)
    assert tools.status_code == 200, tools.text
    await api.sessions.CreateSession(
        session_pb2.CreateSessionRequest(), metadata=who.metadata, timeout=10
    )
    await api.tools.ListTools(tool_pb2.ListToolsRequest(), metadata=who.metadata, timeout=10)


async def test_investigations_need_the_investigation_service(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    refused = await _identity(sgw, group=_group("router", "session"))
    response = await rest.get("/v1/investigations", headers=refused.headers)
    assert response.status_code == 403, response.text
    assert "investigation" in _message(response) and refused.consumer in _message(response)
    error = await _rpc_error(
        api.investigations.ListInvestigations(
            investigation_pb2.ListInvestigationsRequest(), metadata=refused.metadata, timeout=10
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED

    # Admitted, the call reaches the service: the consumer's own (empty) list.
    admitted = await _identity(sgw, group=_group("router", "investigation"))
    response = await rest.get("/v1/investigations", headers=admitted.headers)
    assert response.status_code == 200, response.text
    assert response.json().get("investigations", []) == []
    listed = await api.investigations.ListInvestigations(
        investigation_pb2.ListInvestigationsRequest(), metadata=admitted.metadata, timeout=10
    )
    assert list(listed.investigations) == []


# -- 5. IP allow-lists -----------------------------------------------------------------


async def _refused_from_loopback(rest: httpx.AsyncClient, api: Api, who: Identity) -> None:
    """`who` is refused over REST and gRPC, and the refusal names the loopback address."""
    response = await rest.post("/v1/chat/completions", json=CHAT, headers=who.headers)
    assert response.status_code == 403, response.text
    assert LOOPBACK in _message(response) and who.consumer in _message(response)
    error = await _rpc_error(_list_models(api.router, who.metadata))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert LOOPBACK in (error.details() or "")


async def test_a_consumer_allow_list_without_the_caller_refuses(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw, consumer=identity_pb2.Consumer(ip_allowlist=["10.0.0.0/8"]))
    await _refused_from_loopback(rest, api, who)
    assert _completions(sgw) == 0


async def test_a_consumer_allow_list_with_the_caller_admits(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw, consumer=identity_pb2.Consumer(ip_allowlist=[f"{LOOPBACK}/32"]))
    response = await rest.post("/v1/chat/completions", json=CHAT, headers=who.headers)
    assert response.status_code == 200, response.text
    await _list_models(api.router, who.metadata)


async def test_a_group_allow_list_restricts_even_when_the_consumer_admits(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(
        sgw,
        group=_group("router", ip_allowlist=("10.0.0.0/8",)),
        consumer=identity_pb2.Consumer(ip_allowlist=[f"{LOOPBACK}/32"]),
    )
    await _refused_from_loopback(rest, api, who)


async def test_a_callers_own_address_headers_are_not_trusted(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw, consumer=identity_pb2.Consumer(ip_allowlist=["10.0.0.0/8"]))
    spoofing = {"x-llmgw-client-address": SPOOFED, "x-forwarded-for": SPOOFED}
    response = await rest.post(
        "/v1/chat/completions", json=CHAT, headers={**who.headers, **spoofing}
    )
    assert response.status_code == 403, response.text
    assert LOOPBACK in _message(response) and SPOOFED not in _message(response)
    error = await _rpc_error(_list_models(api.router, (*who.metadata, *spoofing.items())))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert LOOPBACK in (error.details() or "") and SPOOFED not in (error.details() or "")
    assert _completions(sgw) == 0


# -- 6-8. revocation, rotation, expiry -------------------------------------------------


async def test_a_revoked_key_is_refused_by_every_router_replica_within_a_second(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw)
    replicas = sgw.stack.replicas["router"]
    assert len(replicas) == 3
    channels = [grpc.aio.insecure_channel(replica.target) for replica in replicas]
    # Straight to each replica, as Envoy's public listener would forward the call.
    direct = (*who.metadata, *sgw.edge_metadata())
    try:
        routers = [router_service_pb2_grpc.RouterServiceStub(c) for c in channels]
        # Each replica now holds the key in its own cache (entries live 30 s), so only
        # the shared revocation signal can make it refuse.
        for router in routers:
            await _list_models(router, direct)

        await api.identity.RevokeApiKey(
            identity_service_pb2.RevokeApiKeyRequest(name=who.key_name), metadata=ADMIN, timeout=10
        )
        revoked = time.monotonic()
        refused = await asyncio.gather(
            *(
                _refused_at(functools.partial(_list_models, router, direct), within=5)
                for router in routers
            )
        )
    finally:
        for channel in channels:
            await channel.close()
    lags = [round(at - revoked, 3) for at in refused]
    assert max(lags) <= 1.0, f"seconds from revoke to refusal per replica: {lags}"

    error = await _rpc_error(_list_models(api.router, who.metadata))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    response = await rest.post("/v1/chat/completions", json=CHAT, headers=who.headers)
    assert response.status_code == 401, response.text
    assert _message(response) == INVALID_KEY


async def test_a_rotated_key_works_until_the_overlap_ends(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw)
    rotated = await api.identity.RotateApiKey(
        identity_service_pb2.RotateApiKeyRequest(
            name=who.key_name, overlap=duration_pb2.Duration(seconds=2)
        ),
        metadata=ADMIN,
        timeout=10,
    )
    old, new = who.metadata, bearer(rotated.secret)
    assert rotated.secret != who.key
    assert rotated.previous_api_key.name == who.key_name
    await _list_models(api.router, old)
    await _list_models(api.router, new)

    ends = rotated.previous_api_key.expire_time.ToNanoseconds() / 1e9
    assert ends - rotated.api_key.create_time.ToNanoseconds() / 1e9 == pytest.approx(2, abs=0.01)
    await asyncio.sleep(max(0.0, ends - time.time()))
    await _refused_at(lambda: _list_models(api.router, old), within=3)

    response = await rest.post("/v1/chat/completions", json=CHAT, headers=who.headers)
    assert response.status_code == 401, response.text
    await _list_models(api.router, new)
    response = await rest.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {rotated.secret}"}
    )
    assert response.status_code == 200, response.text


async def test_a_key_stops_working_when_its_ttl_ends(
    sgw: Gateway, rest: httpx.AsyncClient, api: Api
) -> None:
    who = await _identity(sgw)
    issued = await api.identity.CreateApiKey(
        identity_service_pb2.CreateApiKeyRequest(
            parent=who.consumer, ttl=duration_pb2.Duration(seconds=1)
        ),
        metadata=ADMIN,
        timeout=10,
    )
    short = bearer(issued.secret)
    await _list_models(api.router, short)

    ends = issued.api_key.expire_time.ToNanoseconds() / 1e9
    await asyncio.sleep(max(0.0, ends - time.time()))
    await _refused_at(lambda: _list_models(api.router, short), within=3)
    response = await rest.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {issued.secret}"}
    )
    assert response.status_code == 401, response.text
    assert _message(response) == INVALID_KEY
    await _list_models(api.router, who.metadata)  # the consumer's other key is unaffected


# -- 9. calls made on the caller's behalf ----------------------------------------------


async def test_the_router_calls_the_session_service_as_the_caller(
    sgw: Gateway, rest: httpx.AsyncClient
) -> None:
    owner = await _identity(sgw, group=_group("router", "session"))
    stranger = await _identity(sgw, group=_group("router", "session"))

    created = await rest.post("/v1/sessions", json={}, headers=owner.headers)
    assert created.status_code == 200, created.text
    name = created.json()["session"]["name"]
    assert created.json()["session"]["owner"] == owner.consumer
    chat = await rest.post(
        "/v1/chat/completions",
        json={**CHAT, "gateway": {"session": name}},
        headers=owner.headers,
    )
    assert chat.status_code == 200, chat.text
    assert chat.headers["x-llmgw-session-saved"] == "true"
    listed = await rest.get(f"/v1/{name}/messages", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    turn = [
        (m["message"]["role"], "".join(p.get("text", "") for p in m["message"]["content"]))
        for m in listed.json()["messages"]
    ]
    assert turn == [("ROLE_USER", "Hello"), ("ROLE_ASSISTANT", DEFAULT_TEXT)]

    calls = _completions(sgw)
    fetched = await rest.get(f"/v1/{name}", headers=stranger.headers)
    assert fetched.status_code == 404, fetched.text
    borrowed = await rest.post(
        "/v1/chat/completions",
        json={**CHAT, "gateway": {"session": name}},
        headers=stranger.headers,
    )
    assert borrowed.status_code == 404, borrowed.text
    assert _completions(sgw) == calls
