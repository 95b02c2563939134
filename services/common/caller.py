"""Who is calling the current RPC, as the authentication step of the interceptor found it.

Handlers read it through `current_principal()`; service-to-service calls made while
serving the request pass the caller's key and address on (`channels.call_metadata`), so
every service authenticates the original caller itself and no service trusts another's
word for who is calling.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from services.common.identity.principal import Principal

# gRPC metadata (REST headers through Envoy) that carry an API key.
AUTHORIZATION_HEADER = "authorization"
API_KEY_HEADER = "x-api-key"
# Set by Envoy's public listener to the connecting peer's address (a caller's own value
# is removed there first); services pass it on to each other unchanged.
CLIENT_ADDRESS_HEADER = "x-llmgw-client-address"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one RPC.

    `principal` None means authentication is off (local loopback default): the caller
    may do everything and is accounted as the anonymous consumer.
    """

    principal: Principal | None
    # The presented key, passed on to the services this request calls.
    key: str = ""
    # The client's address as Envoy saw it ("" when unknown).
    address: str = ""


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


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    """The caller's key and address as metadata for a call made on its behalf."""
    caller = _current.get()
    found: list[tuple[str, str]] = []
    if caller.key:
        found.append((AUTHORIZATION_HEADER, f"Bearer {caller.key}"))
    if caller.address:
        found.append((CLIENT_ADDRESS_HEADER, caller.address))
    return tuple(found)
