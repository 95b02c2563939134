"""Who is calling the current RPC, as the authentication step of the interceptor found it.

Handlers read it through `current_principal()`. Calls a service makes while serving the
request carry a principal assertion for this caller (`channels.InternalChannel`), never
the caller's API key: the key stops at the first service.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from services.common.identity.principal import Principal

# gRPC metadata (REST headers through Envoy) that carry an API key.
AUTHORIZATION_HEADER = "authorization"
API_KEY_HEADER = "x-api-key"
# Set by Envoy's public listener to the connecting peer's address (a caller's own value
# is replaced there, and the internal listener removes it); believed only next to the
# edge token (services/common/identity/assertion.py).
CLIENT_ADDRESS_HEADER = "x-llmgw-client-address"


# Sent by the Investigation service on its model calls: the investigation the call works
# for (`investigations/{id}`); the router believes it only from that service.
INVESTIGATION_HEADER = "x-llmgw-investigation"


def is_investigation_issuer(issuer: str) -> bool:
    """`investigation`, or a replica of it (`investigation-2`)."""
    name, _, replica = issuer.partition("-")
    return name == "investigation" and (not replica or replica.isdigit())


@dataclass(frozen=True)
class Caller:
    """The admitted caller of one RPC.

    `principal` None means the caller may do everything and is accounted as the
    anonymous consumer (authentication off), or that this service does not load
    principals (the provider, which serves only the router's calls). `consumer` and
    `key_name` are what calls made on its behalf vouch for: "" for no consumer.
    """

    principal: Principal | None
    consumer: str = ""
    key_name: str = ""
    # The client's address as Envoy saw it ("" when unknown).
    address: str = ""
    # The gateway service that vouched for the caller on this call (the principal
    # assertion's issuer: `router-1`, `investigation`...); "" for a call from the edge.
    vouched_by: str = ""

    @property
    def for_investigation(self) -> bool:
        """Whether the Investigation service made this call on the caller's behalf."""
        return is_investigation_issuer(self.vouched_by)

    @classmethod
    def of(cls, principal: Principal | None, address: str, vouched_by: str = "") -> Caller:
        if principal is None:
            return cls(principal=None, address=address, vouched_by=vouched_by)
        return cls(principal, principal.name, principal.key_name, address, vouched_by)


_OPEN = Caller(principal=None)
_current: contextvars.ContextVar[Caller] = contextvars.ContextVar("llmgw_caller", default=_OPEN)


def current_caller() -> Caller:
    return _current.get()


def current_principal() -> Principal | None:
    """The caller's principal; None while authentication is off."""
    return _current.get().principal


def set_caller(caller: Caller) -> contextvars.Token[Caller]:
    return _current.set(caller)


def reset_caller(token: contextvars.Token[Caller]) -> None:
    _current.reset(token)
