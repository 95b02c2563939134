"""The authentication step every RPC but health checks and reflection passes before its
handler runs.

A call is believed only when it proves where it came from (the proofs are described in
`assertion.py`):

- **From another gateway service**: a valid principal assertion (`x-llmgw-principal`).
  The consumer it names is loaded through the identity cache (current records, no key
  check: the first service did that), and the service ACL and IP allow-lists are checked
  again against the address it carries. The Provider (internal only) answers nothing
  else; it does not load the principal (it serves only the router, which checked it).
- **From Envoy's public listener**: the edge token (`x-llmgw-edge-token`). Only then is
  `x-llmgw-client-address` believed; the caller is then authenticated by its API key
  (`authorization: Bearer <key>`, or `x-api-key`), its address checked against its
  consumer's and groups' allow-lists, and its consumer's service ACL.

Anything else, a call straight to a service port or to Envoy's internal listener without
an assertion included, is UNAUTHENTICATED before any key is looked at.

With authentication off (loopback only) the proofs are required just the same; the
caller is then anonymous (principal None), except that the bootstrap admin key
(`LLMGW_ADMIN_KEY`, compared in constant time, never stored) is the admin it is with
authentication on, and is the only way into the admin RPCs.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from llmgw.identity.v1 import identity_pb2
from services.common import context
from services.common.caller import (
    API_KEY_HEADER,
    AUTHORIZATION_HEADER,
    CLIENT_ADDRESS_HEADER,
    Caller,
    is_investigation_issuer,
)
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.identity import acl
from services.common.identity.assertion import (
    ASSERTION_HEADER,
    EDGE_TOKEN_HEADER,
    INVALID,
    Assertion,
    InternalKeys,
)
from services.common.identity.cache import PrincipalCache
from services.common.identity.metrics import AUTH_FAILURES
from services.common.identity.principal import Principal

# Fully-qualified gRPC service -> the service name ACLs use.
PUBLIC_SERVICES: Mapping[str, str] = {
    "llmgw.router.v1.RouterService": "router",
    # The drop-in surfaces run the same chat turn: the same ACL.
    "llmgw.router.v1.CompatService": "router",
    "llmgw.router.v1.EmbeddingsService": "router",
    "llmgw.router.v1.AdminService": "admin",
    "llmgw.identity.v1.IdentityService": "admin",
    "llmgw.session.v1.SessionService": "session",
    "llmgw.tool.v1.ToolService": "tool",
    "llmgw.investigation.v1.InvestigationService": "investigation",
}
# Services only other gateway services may call (a principal assertion is required).
INTERNAL_SERVICES: Mapping[str, str] = {"llmgw.provider.v1.ProviderService": "provider"}
INTERNAL_ONLY = frozenset(INTERNAL_SERVICES.values())
# Infrastructure every client and Envoy may call without credentials.
UNGATED_PREFIXES = ("grpc.health.", "grpc.reflection.")

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

NOT_THROUGH_THE_GATEWAY = "calls must come through the gateway's public listener"
ADMIN_KEY_NEEDED = (
    "admin RPCs need the bootstrap admin key (LLMGW_ADMIN_KEY) as 'authorization: Bearer "
    "<key>' while authentication is off"
)
ADMIN_DISABLED = (
    "admin RPCs are disabled: authentication is off and no LLMGW_ADMIN_KEY is set; set "
    "LLMGW_ADMIN_KEY (at least 24 characters) and present it as 'authorization: Bearer "
    "<key>', or set LLMGW_AUTH=required"
)

_BEARER = "bearer "


def _acl_service(service: str, issuer: str) -> str:
    """The service whose ACL admits a vouched call: the Investigation service reads the
    toolsets in the Tool service on its caller's behalf, which the caller's
    `investigation` access allows (services/tool/access.py limits such calls to the
    read-only toolset tools)."""
    if service == acl.TOOL_SERVICE and is_investigation_issuer(issuer):
        return acl.INVESTIGATION_SERVICE
    return service


def service_of(method_path: str) -> str | None:
    """The ACL service name of `/pkg.Service/Method`; None for health and reflection.

    A service the gateway does not know (one added later and not mapped here) is gated
    under its full gRPC name, which only admins and groups allowing `*` pass: nothing
    reaches a handler unauthenticated because a map was not updated.
    """
    special = PUBLIC_METHODS.get(method_path)
    if special is not None:
        return special
    grpc_service = method_path.lstrip("/").split("/", 1)[0]
    if grpc_service.startswith(UNGATED_PREFIXES):
        return None
    return PUBLIC_SERVICES.get(grpc_service) or INTERNAL_SERVICES.get(grpc_service) or grpc_service


def _header(metadata: Iterable[tuple[str, str | bytes]], wanted: str) -> str | None:
    for name, value in metadata:
        if name == wanted and isinstance(value, str):
            return value
    return None


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
    """The client address Envoy passed on, else the connection's own peer (call only once
    the edge token proved the header is Envoy's)."""
    value = _header(metadata, CLIENT_ADDRESS_HEADER)
    if value:
        return value.strip()[:64]
    return acl.peer_address(peer) or ""


class Gate:
    """Admits calls; see the module docstring.

    `principals` None means authentication is off: callers are anonymous but for the
    bootstrap admin key. `load_principals` False admits vouched calls without loading
    their principal (the provider has no identity store).
    """

    def __init__(
        self,
        keys: InternalKeys,
        principals: PrincipalCache | None,
        *,
        admin_key: str | None = None,
        load_principals: bool = True,
    ) -> None:
        self._keys = keys
        self._principals = principals
        self._admin_key = admin_key.encode() if admin_key else None
        self._load = load_principals

    @property
    def required(self) -> bool:
        """Whether API keys are required (authentication on)."""
        return self._principals is not None

    async def admit(
        self, service: str, metadata: Iterable[tuple[str, str | bytes]], peer: str
    ) -> Caller:
        entries = tuple(metadata)
        token = _header(entries, ASSERTION_HEADER)
        if token is not None:
            return await self._vouched(service, entries, self._keys.verify(token))
        if service in INTERNAL_ONLY:
            AUTH_FAILURES.labels("not_vouched").inc()
            raise Unauthenticated("this service answers only the gateway's own services")
        edge = _header(entries, EDGE_TOKEN_HEADER)
        if edge is None or not self._keys.edge_token_matches(edge):
            AUTH_FAILURES.labels("not_through_edge").inc()
            raise Unauthenticated(NOT_THROUGH_THE_GATEWAY)
        address = client_address(entries, peer)
        principal = await self._principal(service, presented_key(entries))
        self._check(principal, service, address)
        return Caller.of(principal, address)

    async def _principal(self, service: str, key: str | None) -> Principal | None:
        if (
            key
            and self._admin_key is not None
            and hmac.compare_digest(key.encode(), self._admin_key)
        ):
            return BOOTSTRAP_ADMIN
        if self._principals is not None:
            return await self._principals.authenticate(key)
        # Authentication off: a key is not looked at (clients such as the OpenAI SDK
        # always send one), except on the admin RPCs, which only the admin key opens.
        if service == acl.ADMIN_SERVICE:
            if self._admin_key is None:
                raise PermissionDenied(ADMIN_DISABLED)
            if key:
                AUTH_FAILURES.labels("wrong_secret").inc()
                raise Unauthenticated("the admin key is not valid")
            AUTH_FAILURES.labels("missing").inc()
            raise Unauthenticated(ADMIN_KEY_NEEDED)
        return None

    async def _vouched(
        self, service: str, metadata: tuple[tuple[str, str | bytes], ...], vouched: Assertion
    ) -> Caller:
        # The assertion is bound to the request id it was minted for.
        if not hmac.compare_digest(
            (_header(metadata, context.REQUEST_ID_HEADER) or "").encode(),
            vouched.request_id.encode(),
        ):
            AUTH_FAILURES.labels("assertion_invalid").inc()
            raise Unauthenticated(INVALID)
        if not self._load or service in INTERNAL_ONLY:
            return Caller(None, vouched.consumer, vouched.key_name, vouched.address, vouched.issuer)
        principal = await self._vouched_principal(service, vouched)
        self._check(principal, _acl_service(service, vouched.issuer), vouched.address)
        return Caller.of(principal, vouched.address, vouched.issuer)

    async def _vouched_principal(self, service: str, vouched: Assertion) -> Principal | None:
        if vouched.consumer == BOOTSTRAP_CONSUMER:
            return BOOTSTRAP_ADMIN
        if not vouched.consumer:
            # No consumer: anonymous with authentication off, else refused as a call
            # without a key would be.
            return await self._principal(service, None)
        if self._principals is None:
            # Only a service with authentication on can have vouched for a consumer.
            AUTH_FAILURES.labels("assertion_invalid").inc()
            raise Unauthenticated(INVALID)
        return await self._principals.vouched(vouched.consumer, vouched.key_name)

    @staticmethod
    def _check(principal: Principal | None, service: str, address: str) -> None:
        if principal is None:
            return
        acl.require_ip(principal, address or "an unknown address")
        acl.require_service(principal, service)
