"""The authentication step every public RPC passes before its handler runs.

The shared interceptor calls `Gate.admit` for each RPC of a public service (the map
below); health checks, reflection and the internal-only provider service are not
gated. A call is admitted when it presents a valid key (`authorization: Bearer <key>`,
or `x-api-key`), comes from an address its consumer's and groups' allow-lists admit,
and its consumer may use the service. Otherwise UNAUTHENTICATED (no or an invalid key)
or PERMISSION_DENIED naming what was refused.

`admin_key` (LLMGW_ADMIN_KEY) is the bootstrap credential: it is admitted as an admin
that may do everything, so the first consumers and keys can be created. It is compared
in constant time and never stored.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from llmgw.identity.v1 import identity_pb2
from services.common.caller import (
    API_KEY_HEADER,
    AUTHORIZATION_HEADER,
    CLIENT_ADDRESS_HEADER,
    Caller,
)
from services.common.errors import Unauthenticated
from services.common.identity import acl
from services.common.identity.cache import PrincipalCache
from services.common.identity.metrics import AUTH_FAILURES
from services.common.identity.principal import Principal

# Fully-qualified gRPC service -> the service name ACLs use. Only these are gated.
PUBLIC_SERVICES: Mapping[str, str] = {
    "llmgw.router.v1.RouterService": "router",
    "llmgw.router.v1.AdminService": "admin",
    "llmgw.identity.v1.IdentityService": "admin",
    "llmgw.session.v1.SessionService": "session",
    "llmgw.tool.v1.ToolService": "tool",
    "llmgw.investigation.v1.InvestigationService": "investigation",
}

# The bootstrap admin's identity. Underscores are not valid in resource ids, so no
# consumer or group created through the API can share these names.
BOOTSTRAP_CONSUMER = "consumers/_admin"
_BOOTSTRAP_GROUP = identity_pb2.Group(
    name="groups/_admin",
    display_name="bootstrap admin (LLMGW_ADMIN_KEY)",
    admin=True,
    allowed_models=["*"],
    allowed_tools=["*"],
    allowed_services=["*"],
)
BOOTSTRAP_ADMIN = Principal(
    consumer=identity_pb2.Consumer(
        name=BOOTSTRAP_CONSUMER,
        display_name="bootstrap admin (LLMGW_ADMIN_KEY)",
        groups=[_BOOTSTRAP_GROUP.name],
    ),
    groups=(_BOOTSTRAP_GROUP,),
    key_name=f"{BOOTSTRAP_CONSUMER}/keys/_bootstrap",
)

# Methods whose service ACL differs from their service's. Reading one's own usage is
# open to every consumer (AdminService.GetUsage decides whose usage may be read).
PUBLIC_METHODS: Mapping[str, str] = {"/llmgw.router.v1.AdminService/GetUsage": "router"}

_BEARER = "bearer "


def service_of(method_path: str) -> str | None:
    """The ACL service name of `/pkg.Service/Method`; None for an ungated service."""
    special = PUBLIC_METHODS.get(method_path)
    if special is not None:
        return special
    grpc_service = method_path.lstrip("/").split("/", 1)[0]
    return PUBLIC_SERVICES.get(grpc_service)


def presented_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The API key in the metadata; UNAUTHENTICATED for an authorization header that is
    not `Bearer <key>`."""
    authorization = api_key = None
    for name, value in metadata:
        if not isinstance(value, str):
            continue
        if name == AUTHORIZATION_HEADER and authorization is None:
            authorization = value
        elif name == API_KEY_HEADER and api_key is None:
            api_key = value
    if authorization is not None:
        if authorization[: len(_BEARER)].lower() != _BEARER:
            AUTH_FAILURES.labels("malformed").inc()
            raise Unauthenticated("the authorization header must be 'Bearer <API key>'")
        return authorization[len(_BEARER) :].strip() or None
    return api_key.strip() if api_key else None


def client_address(metadata: Iterable[tuple[str, str | bytes]], peer: str) -> str:
    """The client address Envoy passed on, else the connection's own peer."""
    for name, value in metadata:
        if name == CLIENT_ADDRESS_HEADER and isinstance(value, str) and value:
            return value.strip()[:64]
    return acl.peer_address(peer) or ""


class Gate:
    """Admits the calls of public RPCs; see the module docstring."""

    def __init__(self, principals: PrincipalCache, *, admin_key: str | None = None) -> None:
        self._principals = principals
        self._admin_key = admin_key.encode() if admin_key else None

    async def admit(
        self, service: str, metadata: Iterable[tuple[str, str | bytes]], peer: str
    ) -> Caller:
        entries = tuple(metadata)
        key = presented_key(entries)
        address = client_address(entries, peer)
        principal = await self._principal(key)
        acl.require_ip(principal, address or "an unknown address")
        acl.require_service(principal, service)
        return Caller(principal=principal, key=key or "", address=address)

    async def _principal(self, key: str | None) -> Principal:
        if (
            key
            and self._admin_key is not None
            and hmac.compare_digest(key.encode(), self._admin_key)
        ):
            return BOOTSTRAP_ADMIN
        return await self._principals.authenticate(key)
