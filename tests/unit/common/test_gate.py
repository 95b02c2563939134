"""The authentication gate: where the key and the client address come from, the proofs a
call must carry (the edge token, a principal assertion), which keys are admitted (issued
keys over the real Redis, the bootstrap admin key), the service ACL and IP allow-lists,
authentication off; then the gate in a real grpc.aio server built by `create_server`.
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
from services.common import context
from services.common.caller import current_caller, current_principal
from services.common.channels import InternalChannel
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.identity.assertion import ASSERTION_HEADER, InternalKeys
from services.common.identity.cache import PrincipalCache
from services.common.identity.gate import (
    ADMIN_DISABLED,
    ADMIN_KEY_NEEDED,
    BOOTSTRAP_ADMIN,
    BOOTSTRAP_CONSUMER,
    NOT_THROUGH_THE_GATEWAY,
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
from tests.support.trust import TEST_INTERNAL_SECRET, edge_metadata, vouched_metadata

ADMIN_KEY = "bootstrap-admin-key-0123456789"
LOCAL_PEER = "ipv4:127.0.0.1:40000"
Metadata = Sequence[tuple[str, str]]
EDGE = edge_metadata()


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


def test_the_provider_is_gated_as_an_internal_service() -> None:
    assert service_of("/llmgw.provider.v1.ProviderService/Complete") == "provider"


@pytest.mark.parametrize(
    "method",
    [
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ],
)
def test_health_and_reflection_are_not_gated(method: str) -> None:
    assert service_of(method) is None


def test_a_service_nobody_mapped_is_gated_under_its_own_name() -> None:
    # Only admins and groups allowing `*` pass: a new service is never open by omission.
    assert (
        service_of("/llmgw.billing.v1.BillingService/Charge") == "llmgw.billing.v1.BillingService"
    )


# -- the proofs a call must carry -------------------------------------------------------


@pytest.fixture
def keys() -> InternalKeys:
    return InternalKeys(TEST_INTERNAL_SECRET, "test")


@pytest.fixture
def store(redis_client: aioredis.Redis) -> IdentityStore:
    return IdentityStore(redis_client)


@pytest.fixture
def cache(store: IdentityStore) -> PrincipalCache:
    # Every lookup reads the version key: a change is seen at once.
    return PrincipalCache(store, version_interval=0)


@pytest.fixture
def gate(keys: InternalKeys, cache: PrincipalCache) -> Gate:
    return Gate(keys, cache, admin_key=ADMIN_KEY)


@pytest.fixture
def open_gate(keys: InternalKeys) -> Gate:
    return Gate(keys, None, admin_key=ADMIN_KEY)


async def issue(
    store: IdentityStore,
    consumer_id: str,
    group: identity_pb2.Group,
    *,
    ip_allowlist: Sequence[str] = (),
) -> tuple[str, str]:
    """A group (`group`'s settings, id `{consumer_id}-g`), a consumer in it, and a key of
    the consumer; returns the key and its name."""
    made = await store.create_group(group, f"{consumer_id}-g")
    await store.create_consumer(
        identity_pb2.Consumer(groups=[made.name], ip_allowlist=list(ip_allowlist)), consumer_id
    )
    issued = await store.create_key(f"consumers/{consumer_id}")
    return issued.secret, issued.api_key.name


def bearer(key: str) -> Metadata:
    """The key as Envoy's public listener forwards it (with its edge token)."""
    return [*EDGE, ("authorization", f"Bearer {key}")]


async def test_a_valid_key_without_the_edge_token_is_refused(
    gate: Gate, store: IdentityStore
) -> None:
    key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    before = auth_failures("not_through_edge")
    for metadata in (
        [("authorization", f"Bearer {key}")],
        [("authorization", f"Bearer {ADMIN_KEY}")],
        [("authorization", f"Bearer {key}"), ("x-llmgw-edge-token", "guessed")],
        [("authorization", f"Bearer {key}"), *edge_metadata("another-secret-" + "x" * 32)],
    ):
        with pytest.raises(Unauthenticated) as caught:
            await gate.admit("session", metadata, LOCAL_PEER)
        assert str(caught.value) == NOT_THROUGH_THE_GATEWAY
    assert auth_failures("not_through_edge") == before + 4


async def test_a_client_address_without_the_edge_token_is_not_believed(
    gate: Gate, store: IdentityStore
) -> None:
    key, _ = await issue(
        store,
        "alice",
        identity_pb2.Group(allowed_services=["session"]),
        ip_allowlist=["10.0.0.0/8"],
    )
    forged = [("authorization", f"Bearer {key}"), ("x-llmgw-client-address", "10.1.2.3")]
    with pytest.raises(Unauthenticated, match="public listener"):
        await gate.admit("session", forged, LOCAL_PEER)
    # The same header next to the edge token is Envoy's, and believed.
    assert (await gate.admit("session", [*EDGE, *forged], LOCAL_PEER)).address == "10.1.2.3"


# -- the gate over real keys ----------------------------------------------------------


async def test_an_issued_key_is_admitted_by_bearer_and_by_x_api_key(
    gate: Gate, store: IdentityStore
) -> None:
    key, key_name = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))

    caller = await gate.admit("session", bearer(key), LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/alice"
    assert (caller.consumer, caller.key_name, caller.address) == (
        "consumers/alice",
        key_name,
        "127.0.0.1",
    )

    caller = await gate.admit("session", [*EDGE, ("x-api-key", key)], LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/alice"


async def test_a_missing_or_unknown_key_is_unauthenticated(
    gate: Gate, store: IdentityStore
) -> None:
    key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    with pytest.raises(Unauthenticated, match="an API key is required"):
        await gate.admit("session", EDGE, LOCAL_PEER)
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
    caller = await gate.admit("admin", [*EDGE, ("x-api-key", ADMIN_KEY)], LOCAL_PEER)
    assert caller.principal is BOOTSTRAP_ADMIN and caller.consumer == BOOTSTRAP_CONSUMER


async def test_without_an_admin_key_configured_the_bootstrap_key_is_just_invalid(
    keys: InternalKeys, cache: PrincipalCache
) -> None:
    gate = Gate(keys, cache, admin_key=None)
    with pytest.raises(Unauthenticated):
        await gate.admit("admin", bearer(ADMIN_KEY), LOCAL_PEER)


async def test_the_service_acl_admits_listed_services_and_router_for_everyone(
    gate: Gate, store: IdentityStore
) -> None:
    key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    await gate.admit("session", bearer(key), LOCAL_PEER)
    await gate.admit("router", bearer(key), LOCAL_PEER)  # open to every consumer
    for refused in ("tool", "investigation", "admin", "llmgw.billing.v1.BillingService"):
        with pytest.raises(PermissionDenied) as caught:
            await gate.admit(refused, bearer(key), LOCAL_PEER)
        assert str(caught.value) == f"the {refused} service is not allowed for consumers/alice"


async def test_an_admin_group_may_use_the_admin_service(gate: Gate, store: IdentityStore) -> None:
    key, _ = await issue(store, "root", identity_pb2.Group(admin=True))
    caller = await gate.admit("admin", bearer(key), LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/root"


async def test_the_ip_allow_list_checks_the_forwarded_address_not_the_peer(
    gate: Gate, store: IdentityStore
) -> None:
    key, _ = await issue(
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
    open_key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    fenced_key, _ = await issue(
        store, "bob", identity_pb2.Group(allowed_services=["session"]), ip_allowlist=["10.0.0.0/8"]
    )
    assert (await gate.admit("session", bearer(open_key), "unix:/sock")).address == ""
    with pytest.raises(PermissionDenied, match="an unknown address"):
        await gate.admit("session", bearer(fenced_key), "unix:/sock")


# -- calls another service vouched for --------------------------------------------------


async def test_a_vouched_call_is_admitted_as_the_consumer_it_names(
    gate: Gate, store: IdentityStore
) -> None:
    _, key_name = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    vouched = vouched_metadata(
        consumer="consumers/alice", key_name=key_name, address="198.51.100.4"
    )
    # No key, no edge token: the assertion is the whole proof.
    caller = await gate.admit("session", vouched, LOCAL_PEER)
    assert caller.principal is not None and caller.principal.name == "consumers/alice"
    assert (caller.consumer, caller.key_name, caller.address) == (
        "consumers/alice",
        key_name,
        "198.51.100.4",
    )
    # The vouched consumer's ACL still applies on this hop.
    with pytest.raises(PermissionDenied, match="the tool service is not allowed"):
        await gate.admit("tool", vouched, LOCAL_PEER)


async def test_a_vouched_call_checks_the_allow_list_against_the_vouched_address(
    gate: Gate, store: IdentityStore
) -> None:
    _, key_name = await issue(
        store,
        "alice",
        identity_pb2.Group(allowed_services=["session"]),
        ip_allowlist=["10.0.0.0/8"],
    )
    inside = vouched_metadata(consumer="consumers/alice", key_name=key_name, address="10.2.3.4")
    await gate.admit("session", inside, LOCAL_PEER)
    outside = vouched_metadata(consumer="consumers/alice", key_name=key_name, address="192.0.2.1")
    with pytest.raises(PermissionDenied, match=r"calls from 192\.0\.2\.1"):
        await gate.admit("session", outside, "ipv4:10.0.0.1:5000")


@pytest.mark.parametrize("change", ["revoke", "disable", "delete"])
async def test_a_vouched_key_that_stopped_qualifying_is_refused(
    gate: Gate, store: IdentityStore, change: str
) -> None:
    _, key_name = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    await gate.admit(
        "session", vouched_metadata(consumer="consumers/alice", key_name=key_name), LOCAL_PEER
    )  # cached now
    if change == "revoke":
        await store.revoke_key(key_name)
    elif change == "disable":
        await store.update_consumer(
            identity_pb2.Consumer(name="consumers/alice", disabled=True), ["disabled"]
        )
    else:
        await store.delete_consumer("consumers/alice")
    with pytest.raises(Unauthenticated, match="no longer valid"):
        await gate.admit(
            "session", vouched_metadata(consumer="consumers/alice", key_name=key_name), LOCAL_PEER
        )


async def test_an_assertion_naming_another_consumers_key_is_refused(
    gate: Gate, store: IdentityStore
) -> None:
    _, alice_key = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    await issue(store, "bob", identity_pb2.Group(allowed_services=["session"]))
    for consumer, key_name in (
        ("consumers/bob", alice_key),
        ("consumers/alice", "consumers/alice/keys/nosuchkey"),
        ("consumers/alice", "not a key name"),
    ):
        with pytest.raises(Unauthenticated):
            await gate.admit(
                "session", vouched_metadata(consumer=consumer, key_name=key_name), LOCAL_PEER
            )


async def test_an_assertion_is_bound_to_its_request_id(gate: Gate, store: IdentityStore) -> None:
    _, key_name = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    (_, rid), assertion = vouched_metadata(consumer="consumers/alice", key_name=key_name)
    for metadata in ([assertion], [("x-request-id", rid + "x"), assertion]):
        with pytest.raises(Unauthenticated, match="not valid"):
            await gate.admit("session", metadata, LOCAL_PEER)
    await gate.admit("session", [("x-request-id", rid), assertion], LOCAL_PEER)


async def test_a_forged_assertion_is_refused_whatever_else_the_call_carries(
    gate: Gate, store: IdentityStore
) -> None:
    key, key_name = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    forged = vouched_metadata(
        "another-internal-secret-0123456789abcdef",
        consumer="consumers/alice",
        key_name=key_name,
    )
    # A forged assertion is never rescued by a key and an edge token next to it.
    for metadata in (forged, [*forged, *bearer(key)]):
        with pytest.raises(Unauthenticated, match="not valid"):
            await gate.admit("session", metadata, LOCAL_PEER)


async def test_an_assertion_for_no_consumer_is_refused_while_keys_are_required(
    gate: Gate,
) -> None:
    with pytest.raises(Unauthenticated, match="an API key is required"):
        await gate.admit("session", vouched_metadata(), LOCAL_PEER)


async def test_the_bootstrap_admin_is_vouched_for_without_redis(keys: InternalKeys) -> None:
    gate = Gate(keys, PrincipalCache(IdentityStore(aioredis.Redis(port=1))), admin_key=None)
    caller = await gate.admit(
        "admin",
        vouched_metadata(consumer=BOOTSTRAP_CONSUMER, key_name=BOOTSTRAP_ADMIN.key_name),
        LOCAL_PEER,
    )
    assert caller.principal is BOOTSTRAP_ADMIN


# -- the internal-only provider -------------------------------------------------------


async def test_the_provider_answers_only_vouched_calls(keys: InternalKeys) -> None:
    gate = Gate(keys, None, load_principals=False)
    before = auth_failures("not_vouched")
    for metadata in (
        [],
        EDGE,
        bearer(ADMIN_KEY),
        [*EDGE, ("x-llmgw-client-address", "127.0.0.1")],
    ):
        with pytest.raises(Unauthenticated, match="only the gateway's own services"):
            await gate.admit("provider", metadata, LOCAL_PEER)
    assert auth_failures("not_vouched") == before + 4
    with pytest.raises(Unauthenticated, match="not valid"):
        await gate.admit(
            "provider", vouched_metadata("another-internal-secret-0123456789abcdef"), LOCAL_PEER
        )
    # Whoever it vouches for, even nobody (the router's own health checks).
    caller = await gate.admit("provider", vouched_metadata(), LOCAL_PEER)
    assert (caller.principal, caller.consumer) == (None, "")
    caller = await gate.admit(
        "provider",
        vouched_metadata(consumer="consumers/alice", key_name="consumers/alice/keys/k"),
        LOCAL_PEER,
    )
    assert (caller.principal, caller.consumer) == (None, "consumers/alice")


# -- authentication off ---------------------------------------------------------------


async def test_with_authentication_off_callers_are_anonymous_whatever_key_they_send(
    open_gate: Gate,
) -> None:
    for metadata in (EDGE, bearer("sk-an-openai-sdk-placeholder"), bearer("llmgw_whatever")):
        caller = await open_gate.admit("router", metadata, LOCAL_PEER)
        assert (caller.principal, caller.consumer) == (None, "")
    caller = await open_gate.admit("session", vouched_metadata(), LOCAL_PEER)
    assert caller.principal is None


async def test_with_authentication_off_the_proofs_are_still_required(open_gate: Gate) -> None:
    with pytest.raises(Unauthenticated, match="public listener"):
        await open_gate.admit("router", [], LOCAL_PEER)
    with pytest.raises(Unauthenticated, match="public listener"):
        await open_gate.admit("router", [("x-llmgw-client-address", "10.0.0.1")], LOCAL_PEER)
    with pytest.raises(Unauthenticated, match="not valid"):
        await open_gate.admit(
            "router",
            vouched_metadata(consumer="consumers/alice", key_name="consumers/alice/keys/k"),
            LOCAL_PEER,
        )


async def test_with_authentication_off_the_admin_key_is_the_admin(open_gate: Gate) -> None:
    caller = await open_gate.admit("admin", bearer(ADMIN_KEY), LOCAL_PEER)
    assert caller.principal is BOOTSTRAP_ADMIN
    # It is the admin on every other service too (and is accounted as such).
    assert (await open_gate.admit("router", bearer(ADMIN_KEY), LOCAL_PEER)).principal is (
        BOOTSTRAP_ADMIN
    )
    vouched = vouched_metadata(consumer=BOOTSTRAP_CONSUMER, key_name=BOOTSTRAP_ADMIN.key_name)
    assert (await open_gate.admit("admin", vouched, LOCAL_PEER)).principal is BOOTSTRAP_ADMIN


async def test_with_authentication_off_admin_rpcs_need_the_admin_key(open_gate: Gate) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await open_gate.admit("admin", EDGE, LOCAL_PEER)
    assert str(caught.value) == ADMIN_KEY_NEEDED
    with pytest.raises(Unauthenticated, match="the admin key is not valid"):
        await open_gate.admit("admin", bearer(ADMIN_KEY + "x"), LOCAL_PEER)
    # Nobody may vouch an anonymous caller into them either.
    with pytest.raises(Unauthenticated):
        await open_gate.admit("admin", vouched_metadata(), LOCAL_PEER)


async def test_with_authentication_off_and_no_admin_key_admin_rpcs_say_how_to_enable_them(
    keys: InternalKeys,
) -> None:
    gate = Gate(keys, None, admin_key=None)
    for metadata in (EDGE, bearer(ADMIN_KEY), vouched_metadata()):
        with pytest.raises(PermissionDenied) as caught:
            await gate.admit("admin", metadata, LOCAL_PEER)
        message = str(caught.value)
        assert message == ADMIN_DISABLED
        assert "LLMGW_ADMIN_KEY" in message and "LLMGW_AUTH=required" in message


# -- the gate in a real server --------------------------------------------------------


class Sessions(session_grpc.SessionServiceServicer):
    """Records who each call was admitted as, and what a call it made would carry."""

    def __init__(self, keys: InternalKeys) -> None:
        self._internal = InternalChannel("127.0.0.1:1", keys)
        self.seen: list[tuple[str | None, tuple[tuple[str, str], ...]]] = []

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.GetSessionResponse:
        principal = current_principal()
        self.seen.append((principal.name if principal else None, self._internal.metadata(5)))
        return session_pb2.GetSessionResponse(session=session_pb2.Session(name=request.name))

    async def DeleteSession(
        self, request: session_pb2.DeleteSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.DeleteSessionResponse:
        limit = Limit("consumer", "consumers/alice", "requests", "minute", 10)
        raise RateLimited([Refusal(limit, 10, 42.5)], {"requests": QuotaStatus(10, 0, 42.5)})


class Providers(provider_grpc.ProviderServiceServicer):
    def __init__(self) -> None:
        self.callers: list[str] = []

    async def ListProviders(
        self, request: provider_pb2.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.ListProvidersResponse:
        self.callers.append(current_caller().consumer)
        return provider_pb2.ListProvidersResponse()


async def _no_routing_state(model: str) -> list[admin_pb2.DeploymentState]:
    return []


@pytest.fixture
def sessions(keys: InternalKeys) -> Sessions:
    return Sessions(keys)


@pytest.fixture
def providers() -> Providers:
    return Providers()


@pytest.fixture
async def server(
    gate: Gate, sessions: Sessions, providers: Providers
) -> AsyncIterator[RunningServer]:
    admin = AdminServicer(
        CatalogStore(None, None, environ={}), _no_routing_state, UsageRecorder(None)
    )

    def register(srv: grpc.aio.Server) -> None:
        session_grpc.add_SessionServiceServicer_to_server(sessions, srv)
        provider_grpc.add_ProviderServiceServicer_to_server(providers, srv)
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


async def test_a_handler_sees_the_admitted_caller_and_vouches_for_it_never_passing_the_key(
    channel: grpc.aio.Channel, store: IdentityStore, sessions: Sessions, keys: InternalKeys
) -> None:
    key, key_name = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    stub = session_grpc.SessionServiceStub(channel)
    metadata = (*bearer(key), ("x-llmgw-client-address", "198.51.100.4"), ("x-request-id", "r-1"))
    await stub.GetSession(session_pb2.GetSessionRequest(name="sessions/s1"), metadata=metadata)
    ((name, passed_on),) = sessions.seen
    assert name == "consumers/alice"
    assert [header for header, _ in passed_on] == [context.REQUEST_ID_HEADER, ASSERTION_HEADER]
    assert all(key not in value for _, value in passed_on)
    vouched = keys.verify(dict(passed_on)[ASSERTION_HEADER])
    assert (vouched.consumer, vouched.key_name, vouched.address, vouched.request_id) == (
        "consumers/alice",
        key_name,
        "198.51.100.4",
        "r-1",
    )


async def test_a_call_without_a_key_never_reaches_the_handler(
    channel: grpc.aio.Channel, sessions: Sessions
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    request = session_pb2.GetSessionRequest(name="sessions/s1")
    assert await _code(stub.GetSession(request, metadata=EDGE)) is grpc.StatusCode.UNAUTHENTICATED
    malformed = (*EDGE, ("authorization", "Basic abc"))
    assert await _code(stub.GetSession(request, metadata=malformed)) is (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert sessions.seen == []


async def test_a_direct_call_with_a_valid_key_but_no_proof_never_reaches_the_handler(
    channel: grpc.aio.Channel, store: IdentityStore, sessions: Sessions
) -> None:
    key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
    stub = session_grpc.SessionServiceStub(channel)
    request = session_pb2.GetSessionRequest(name="sessions/s1")
    direct = (("authorization", f"Bearer {key}"), ("x-llmgw-client-address", "10.0.0.1"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSession(request, metadata=direct)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == NOT_THROUGH_THE_GATEWAY
    assert sessions.seen == []


async def test_health_checks_are_not_gated_and_the_provider_only_answers_vouched_calls(
    channel: grpc.aio.Channel, providers: Providers
) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="")
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = provider_grpc.ProviderServiceStub(channel)
    request = provider_pb2.ListProvidersRequest()
    for metadata in ((), EDGE, bearer(ADMIN_KEY)):
        assert await _code(stub.ListProviders(request, metadata=metadata)) is (
            grpc.StatusCode.UNAUTHENTICATED
        )
    assert providers.callers == []
    await stub.ListProviders(request, metadata=vouched_metadata(consumer="consumers/alice"))
    assert providers.callers == ["consumers/alice"]


async def test_get_usage_is_open_to_a_consumer_for_itself_but_admin_rpcs_are_not(
    channel: grpc.aio.Channel, store: IdentityStore
) -> None:
    key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
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
    key, _ = await issue(store, "carol", identity_pb2.Group(allowed_services=["admin"]))
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
    key, _ = await issue(store, "alice", identity_pb2.Group(allowed_services=["session"]))
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
