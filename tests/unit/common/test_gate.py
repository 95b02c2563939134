"""The authentication gate: where the key and the client address come from, which keys
are admitted (issued keys over the real Redis, the bootstrap admin key), the service
ACL and IP allow-lists; then the gate in a real grpc.aio server built by `create_server`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.caller import current_principal, forwarded_metadata
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.identity.cache import PrincipalCache
from services.common.identity.gate import (
    BOOTSTRAP_ADMIN,
    PUBLIC_SERVICES,
    Gate,
    client_address,
    presented_key,
    service_of,
)
from services.common.identity.store import IdentityStore
from services.common.rate_limits import Limit, QuotaStatus, Refusal
from services.common.server import RunningServer, ServiceDefinition, create_server
from services.common.settings import ServiceSettings
from services.router.admin import AdminServicer
from services.router.catalog_store import CatalogStore
from services.router.identity_service import IdentityServicer
from services.router.limits.errors import RateLimited
from services.router.usage.recorder import UsageRecorder

ADMIN_KEY = "bootstrap-admin-key-0123456789"
LOCAL_PEER = "ipv4:127.0.0.1:40000"
Metadata = Sequence[tuple[str, str]]


def auth_failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("llmgw_auth_failures_total", {"reason": reason})
    return value or 0.0


# -- where the key comes from ---------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert presented_key([("authorization", f"{scheme} llmgw_key")]) == "llmgw_key"


def test_x_api_key_is_read_when_there_is_no_authorization() -> None:
    assert presented_key([("x-request-id", "r1"), ("x-api-key", " llmgw_key ")]) == "llmgw_key"


def test_authorization_wins_over_x_api_key() -> None:
    metadata = [("x-api-key", "from-header"), ("authorization", "Bearer from-bearer")]
    assert presented_key(metadata) == "from-bearer"


def test_no_key_at_all_is_none_and_an_empty_bearer_is_none() -> None:
    assert presented_key([("x-request-id", "r1")]) is None
    assert presented_key([("authorization", "Bearer   ")]) is None


@pytest.mark.parametrize("value", ["Basic dXNlcjpwdw==", "llmgw_key", "Bearer", "Token abc"])
def test_an_authorization_header_that_is_not_bearer_is_unauthenticated(value: str) -> None:
    before = auth_failures("malformed")
    # Even a usable x-api-key does not rescue a malformed authorization header.
    with pytest.raises(Unauthenticated, match="Bearer <API key>") as caught:
        presented_key([("authorization", value), ("x-api-key", "llmgw_key")])
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert auth_failures("malformed") == before + 1


# -- where the client address comes from ----------------------------------------------


def test_the_client_address_header_wins_over_the_peer() -> None:
    metadata = [("x-llmgw-client-address", " 203.0.113.7 ")]
    assert client_address(metadata, LOCAL_PEER) == "203.0.113.7"


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.1:5000", "10.0.0.1"),
        ("ipv6:[::1]:5000", "::1"),
        ("unix:/tmp/socket", ""),
    ],
)
def test_without_the_header_the_peer_address_is_used(peer: str, address: str) -> None:
    assert client_address([("x-llmgw-client-address", "")], peer) == address


# -- which ACL service a method belongs to --------------------------------------------


def test_public_services_map_to_their_acl_names() -> None:
    assert service_of("/llmgw.router.v1.RouterService/ChatCompletion") == "router"
    assert service_of("/llmgw.session.v1.SessionService/GetSession") == "session"
    assert service_of("/llmgw.tool.v1.ToolService/ExecuteTool") == "tool"
    assert service_of("/llmgw.investigation.v1.InvestigationService/Start") == "investigation"
    assert service_of("/llmgw.router.v1.AdminService/GetRoutingState") == "admin"
    assert service_of("/llmgw.identity.v1.IdentityService/CreateConsumer") == "admin"


def test_get_usage_is_gated_as_a_router_call() -> None:
    assert service_of("/llmgw.router.v1.AdminService/GetUsage") == "router"


@pytest.mark.parametrize(
    "method",
    [
        "/llmgw.provider.v1.ProviderService/Complete",
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ],
)
def test_internal_and_infrastructure_services_are_not_gated(method: str) -> None:
    assert service_of(method) is None


# -- the gate over real keys ----------------------------------------------------------


@pytest.fixture
def store(redis_client: aioredis.Redis) -> IdentityStore:
    return IdentityStore(redis_client)


@pytest.fixture
def gate(store: IdentityStore) -> Gate:
    return Gate(PrincipalCache(store), admin_key=ADMIN_KEY)


async def issue(
    store: IdentityStore,
    consumer_id: str,
    group: identity_pb2.Group,
    *,
    ip_allowlist: Sequence[str] = (),
) -> str:
    """A group (`group`'s settings, id `{consumer_id}-g`), a consumer in it, and a key of
    the consumer; returns the key."""
    made = await store.create_group(group, f"{consumer_id}-g")
    await store.create_consumer(
        identity_pb2.Consumer(groups=[made.name], ip_allowlist=list(ip_allowlist)), consumer_id
    )
    issued = await store.create_key(f"consumers/{consumer_id}")
    return issued.secret


def bearer(key: str) -> Metadata:
    return [("authorization", f"Bearer {key}")]


async def test_an_issued_key_is_admitted_by_bearer_and_by_x_api_key(
    gate: Gate, store: IdentityStore
) -> None:
    key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))

    caller = await gate.admit("session", bearer(key), LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/alice"
    assert (caller.key, caller.address) == (key, "127.0.0.1")

    caller = await gate.admit("session", [("x-api-key", key)], LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/alice"


async def test_a_missing_or_unknown_key_is_unauthenticated(
    gate: Gate, store: IdentityStore
) -> None:
    key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    with pytest.raises(Unauthenticated, match="an API key is required"):
        await gate.admit("session", [], LOCAL_PEER)
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for refused in (wrong_secret, "llmgw_not-a-key", ADMIN_KEY[:-1]):
        with pytest.raises(Unauthenticated, match="not valid"):
            await gate.admit("session", bearer(refused), LOCAL_PEER)


async def test_the_bootstrap_admin_key_is_an_admin_that_may_use_every_service(
    gate: Gate,
) -> None:
    for service in PUBLIC_SERVICES.values():
        caller = await gate.admit(service, bearer(ADMIN_KEY), LOCAL_PEER)
        assert caller.principal is BOOTSTRAP_ADMIN
    caller = await gate.admit("admin", [("x-api-key", ADMIN_KEY)], LOCAL_PEER)
    assert caller.principal is BOOTSTRAP_ADMIN and caller.key == ADMIN_KEY


async def test_without_an_admin_key_configured_the_bootstrap_key_is_just_invalid(
    store: IdentityStore,
) -> None:
    gate = Gate(PrincipalCache(store), admin_key=None)
    with pytest.raises(Unauthenticated):
        await gate.admit("admin", bearer(ADMIN_KEY), LOCAL_PEER)


async def test_the_service_acl_admits_listed_services_and_router_for_everyone(
    gate: Gate, store: IdentityStore
) -> None:
    key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    await gate.admit("session", bearer(key), LOCAL_PEER)
    await gate.admit("router", bearer(key), LOCAL_PEER)  # open to every consumer
    for refused in ("tool", "investigation", "admin"):
        with pytest.raises(PermissionDenied) as caught:
            await gate.admit(refused, bearer(key), LOCAL_PEER)
        assert str(caught.value) == f"the {refused} service is not allowed for consumers/alice"


async def test_an_admin_group_may_use_the_admin_service(gate: Gate, store: IdentityStore) -> None:
    key = await issue(store, "root", identity_pb2.Group(admin=True))
    caller = await gate.admit("admin", bearer(key), LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/root"


async def test_the_ip_allow_list_checks_the_forwarded_address_not_the_peer(
    gate: Gate, store: IdentityStore
) -> None:
    key = await issue(
        store,
        "alice",
        identity_pb2.Group(allowed_services=["session"]),
        ip_allowlist=["10.1.0.0/16"],
    )
    inside, outside = "ipv4:10.1.2.3:5000", LOCAL_PEER

    # Envoy's header decides when present, whatever the connection's peer is.
    forwarded = [*bearer(key), ("x-llmgw-client-address", "10.1.9.9")]
    caller = await gate.admit("session", forwarded, outside)
    assert caller.address == "10.1.9.9"
    with pytest.raises(PermissionDenied, match=r"calls from 192\.168\.0\.1 are not allowed"):
        await gate.admit(
            "session", [*bearer(key), ("x-llmgw-client-address", "192.168.0.1")], inside
        )

    # Without the header, the peer's own address is checked.
    assert (await gate.admit("session", bearer(key), inside)).address == "10.1.2.3"
    with pytest.raises(PermissionDenied, match=r"calls from 127\.0\.0\.1 are not allowed"):
        await gate.admit("session", bearer(key), outside)


async def test_an_unknown_address_passes_only_when_nothing_restricts(
    gate: Gate, store: IdentityStore
) -> None:
    open_key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    fenced_key = await issue(
        store, "bob", identity_pb2.Group(allowed_services=["session"]), ip_allowlist=["10.0.0.0/8"]
    )
    assert (await gate.admit("session", bearer(open_key), "unix:/sock")).address == ""
    with pytest.raises(PermissionDenied, match="an unknown address"):
        await gate.admit("session", bearer(fenced_key), "unix:/sock")


# -- the gate in a real server --------------------------------------------------------


class Sessions(session_grpc.SessionServiceServicer):
    """Records who each call was admitted as, and what it would pass on downstream."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, tuple[tuple[str, str], ...]]] = []

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.GetSessionResponse:
        principal = current_principal()
        self.seen.append((principal.name if principal else None, forwarded_metadata()))
        return session_pb2.GetSessionResponse(session=session_pb2.Session(name=request.name))

    async def DeleteSession(
        self, request: session_pb2.DeleteSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.DeleteSessionResponse:
        limit = Limit("consumer", "consumers/alice", "requests", "minute", 10)
        raise RateLimited([Refusal(limit, 10, 42.5)], {"requests": QuotaStatus(10, 0, 42.5)})


class Providers(provider_grpc.ProviderServiceServicer):
    async def ListProviders(
        self, request: provider_pb2.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.ListProvidersResponse:
        return provider_pb2.ListProvidersResponse()


async def _no_routing_state(model: str) -> list[admin_pb2.DeploymentState]:
    return []


@pytest.fixture
def sessions() -> Sessions:
    return Sessions()


@pytest.fixture
async def server(gate: Gate, sessions: Sessions) -> AsyncIterator[RunningServer]:
    admin = AdminServicer(
        CatalogStore(None, None, environ={}), _no_routing_state, UsageRecorder(None)
    )

    def register(srv: grpc.aio.Server) -> None:
        session_grpc.add_SessionServiceServicer_to_server(sessions, srv)
        provider_grpc.add_ProviderServiceServicer_to_server(Providers(), srv)
        admin_grpc.add_AdminServiceServicer_to_server(admin, srv)
        identity_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(None), srv)

    settings = ServiceSettings(service="session", port=0, metrics_port=0, access_log=False)
    running = await create_server(
        settings,
        ServiceDefinition(
            register=register,
            service_names=[
                "llmgw.session.v1.SessionService",
                "llmgw.provider.v1.ProviderService",
                "llmgw.router.v1.AdminService",
                "llmgw.identity.v1.IdentityService",
            ],
            gate=gate,
        ),
    )
    yield running
    await running.stop(0)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


async def _code(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_a_handler_sees_the_admitted_caller_and_passes_its_credentials_on(
    channel: grpc.aio.Channel, store: IdentityStore, sessions: Sessions
) -> None:
    key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    stub = session_grpc.SessionServiceStub(channel)
    metadata = (*bearer(key), ("x-llmgw-client-address", "198.51.100.4"))
    await stub.GetSession(session_pb2.GetSessionRequest(name="sessions/s1"), metadata=metadata)
    assert sessions.seen == [
        (
            "consumers/alice",
            (("authorization", f"Bearer {key}"), ("x-llmgw-client-address", "198.51.100.4")),
        )
    ]


async def test_a_call_without_a_key_never_reaches_the_handler(
    channel: grpc.aio.Channel, sessions: Sessions
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    request = session_pb2.GetSessionRequest(name="sessions/s1")
    assert await _code(stub.GetSession(request)) is grpc.StatusCode.UNAUTHENTICATED
    malformed = (("authorization", "Basic abc"),)
    assert await _code(stub.GetSession(request, metadata=malformed)) is (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert sessions.seen == []


async def test_health_checks_and_the_internal_provider_service_are_not_gated(
    channel: grpc.aio.Channel,
) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="")
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await provider_grpc.ProviderServiceStub(channel).ListProviders(
        provider_pb2.ListProvidersRequest()
    )


async def test_get_usage_is_open_to_a_consumer_for_itself_but_admin_rpcs_are_not(
    channel: grpc.aio.Channel, store: IdentityStore
) -> None:
    key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    admin = admin_grpc.AdminServiceStub(channel)
    md = bearer(key)
    await admin.GetUsage(admin_pb2.GetUsageRequest(), metadata=md)
    await admin.GetUsage(admin_pb2.GetUsageRequest(subject="consumers/alice"), metadata=md)
    await admin.GetUsage(admin_pb2.GetUsageRequest(subject="groups/alice-g"), metadata=md)
    others = admin.GetUsage(admin_pb2.GetUsageRequest(subject="consumers/bob"), metadata=md)
    assert await _code(others) is grpc.StatusCode.PERMISSION_DENIED
    routing = admin.GetRoutingState(admin_pb2.GetRoutingStateRequest(), metadata=md)
    assert await _code(routing) is grpc.StatusCode.PERMISSION_DENIED

    as_admin = bearer(ADMIN_KEY)
    await admin.GetUsage(admin_pb2.GetUsageRequest(subject="consumers/bob"), metadata=as_admin)
    await admin.GetRoutingState(admin_pb2.GetRoutingStateRequest(), metadata=as_admin)


async def test_listing_the_admin_service_without_the_admin_role_reaches_only_get_usage(
    channel: grpc.aio.Channel, store: IdentityStore
) -> None:
    # The gate lets this consumer into AdminService; every RPC but GetUsage on itself
    # still needs the admin role.
    key = await issue(store, "carol", identity_pb2.Group(allowed_services=["admin"]))
    admin = admin_grpc.AdminServiceStub(channel)
    md = bearer(key)
    await admin.GetUsage(admin_pb2.GetUsageRequest(), metadata=md)
    for call in (
        admin.GetRoutingState(admin_pb2.GetRoutingStateRequest(), metadata=md),
        identity_grpc.IdentityServiceStub(channel).CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(consumer_id="x"), metadata=md
        ),
        admin.GetUsage(admin_pb2.GetUsageRequest(subject="consumers/dave"), metadata=md),
    ):
        assert await _code(call) is grpc.StatusCode.PERMISSION_DENIED


async def test_a_refusal_sends_its_trailers_with_the_status(
    channel: grpc.aio.Channel, store: IdentityStore
) -> None:
    key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    stub = session_grpc.SessionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DeleteSession(
            session_pb2.DeleteSessionRequest(name="sessions/s1"), metadata=bearer(key)
        )
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers["retry-after"] == "43"
    assert trailers["x-ratelimit-remaining-requests"] == "0"
    assert trailers["x-ratelimit-reset-requests"] == "43s"
    assert "grpc-status-details-bin" in trailers
