"""The proofs that a call came through the gateway: principal assertions and the edge token.

Both derive from one secret, `LLMGW_INTERNAL_SECRET` (at least 32 bytes, from the
environment), with HMAC-SHA256 under distinct labels, so neither derived value reveals the
secret or the other:

- **Principal assertion** (`x-llmgw-principal`): minted by a service for each call it makes
  on behalf of the request it serves, verified by the service that receives it. It reads
  `v1.<payload>.<signature>`, both parts url-safe base64 without padding; the payload is
  compact JSON naming the consumer (`consumers/{id}`, the bootstrap admin, or "" for no
  consumer: authentication off, or a call the service makes for itself), the key it
  authenticated with, the client address the first service believed, the request id, the
  expiry in unix milliseconds and the minting service. The signature is
  HMAC-SHA256(signing key, "v1." + payload). It lives at most `MAX_TTL_SECONDS`, and never
  beyond the call's own timeout (plus `CLOCK_SKEW_SECONDS` for clocks of different hosts),
  which bounds a replay.
- **Edge token** (`x-llmgw-edge-token`): Envoy cannot sign, so its public listener adds this
  constant (from its environment, `LLMGW_EDGE_TOKEN`, replacing any value a caller sent) to
  every request it forwards. A service believes `x-llmgw-client-address` only next to the
  right edge token. Envoy's internal listener removes both headers.

Every comparison is constant-time; a refusal never says which check failed (the metric
`llmgw_auth_failures_total{reason}` does).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from services.common.errors import Unauthenticated
from services.common.identity.metrics import AUTH_FAILURES

ASSERTION_HEADER = "x-llmgw-principal"
EDGE_TOKEN_HEADER = "x-llmgw-edge-token"
# Envoy's public listener reads the edge token from this variable of its environment.
EDGE_TOKEN_ENV = "LLMGW_EDGE_TOKEN"

MIN_SECRET_BYTES = 32
MAX_TTL_SECONDS = 30.0
CLOCK_SKEW_SECONDS = 2.0
# Longest assertion read at all: names and addresses are short, a request id at most 128.
MAX_ASSERTION_LENGTH = 2048

_VERSION = "v1"
_SIGNING_LABEL = b"llmgw/v1/principal-assertion"
_EDGE_LABEL = b"llmgw/v1/edge-token"
INVALID = "the gateway's internal credentials on this call are not valid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, label, hashlib.sha256).digest()


def edge_token(secret: str) -> str:
    """The edge token of `secret`: what Envoy's public listener adds to every request."""
    return _derive(secret.encode(), _EDGE_LABEL).hex()


def check_secret(secret: str) -> None:
    """ValueError (naming no value) for a secret too short to sign with."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")


@dataclass(frozen=True)
class Assertion:
    """What a verified principal assertion vouches for."""

    consumer: str
    key_name: str
    address: str
    request_id: str
    expires: float
    issuer: str


class InternalKeys:
    """Mints and verifies principal assertions, and checks edge tokens, for one secret.

    `clock` gives unix seconds.
    """

    def __init__(self, secret: str, issuer: str, *, clock: Callable[[], float] = time.time) -> None:
        check_secret(secret)
        raw = secret.encode()
        self._signing = _derive(raw, _SIGNING_LABEL)
        self._edge = _derive(raw, _EDGE_LABEL).hex().encode()
        self._issuer = issuer
        self._clock = clock

    def mint(
        self,
        *,
        consumer: str,
        key_name: str,
        address: str,
        request_id: str,
        timeout: float | None = None,
    ) -> str:
        """An assertion for one call; it expires with the call's `timeout` (None: none)."""
        lifetime = MAX_TTL_SECONDS
        if timeout is not None:
            lifetime = min(lifetime, max(timeout, 0.0) + CLOCK_SKEW_SECONDS)
        payload = _b64(
            orjson.dumps(
                {
                    "c": consumer,
                    "k": key_name,
                    "a": address,
                    "r": request_id,
                    "e": math.ceil((self._clock() + lifetime) * 1000),
                    "i": self._issuer,
                }
            )
        )
        return f"{_VERSION}.{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> Assertion:
        """The assertion `token` carries; UNAUTHENTICATED unless it is well-formed, signed
        with this secret and not expired."""
        if len(token) > MAX_ASSERTION_LENGTH:
            raise _refused("assertion_invalid")
        version, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if version != _VERSION or not payload or not signature:
            raise _refused("assertion_invalid")
        expected = self._sign(payload).encode()
        if not hmac.compare_digest(expected, signature.encode("ascii", "replace")):
            raise _refused("assertion_invalid")
        try:
            fields = orjson.loads(_unb64(payload))
            assertion = Assertion(
                consumer=_text(fields["c"]),
                key_name=_text(fields["k"]),
                address=_text(fields["a"]),
                request_id=_text(fields["r"]),
                expires=_number(fields["e"]) / 1000,
                issuer=_text(fields["i"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):  # orjson's error is a ValueError
            # Signed by a holder of the secret, yet unreadable: a bug, not an attack.
            raise _refused("assertion_invalid") from None
        now = self._clock()
        if now >= assertion.expires:
            raise _refused("assertion_expired")
        if assertion.expires - now > MAX_TTL_SECONDS + CLOCK_SKEW_SECONDS:
            raise _refused("assertion_invalid")
        return assertion

    def edge_token_matches(self, value: str) -> bool:
        return hmac.compare_digest(self._edge, value.encode("ascii", "replace"))

    def _sign(self, payload: str) -> str:
        return _b64(hmac.digest(self._signing, f"{_VERSION}.{payload}".encode(), hashlib.sha256))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _refused(reason: str) -> Unauthenticated:
    AUTH_FAILURES.labels(reason).inc()
    return Unauthenticated(INVALID)
