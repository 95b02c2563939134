"""In-process cache of key lookups, invalidated by the store's version key.

Every replica keeps its own cache. Before answering, a lookup makes sure the version key
was read less than `version_interval` (0.25 s) ago (one GET, shared by concurrent
lookups); when it changed, every entry is dropped. So a write on any replica (a revoke, a
deleted consumer, a changed group) reaches every replica's next lookup within
`version_interval` plus one round trip, well inside a second. Entries also expire after
`ttl`, and a cached principal stops working the moment its key expires.

Positive entries are keyed by key id and hold a SHA-256 fingerprint of the whole
presented key: a hit needs the same key, so a wrong secret for a cached key id never
matches (it goes to Redis). Negative entries are keyed by that fingerprint, so guessing
secrets for someone's key id never locks its owner out. Both maps are bounded.

A call another service vouched for (a principal assertion) names its consumer and key
instead of presenting the key: `vouched` loads that key's current records without its
secret, cached and invalidated in exactly the same way, so a revoked key, a disabled
consumer or a changed group takes effect on every hop within the same time.

Redis down: cached principals keep working until their `ttl` (the version cannot be
checked, so this is the window in which a revoke may go unseen); anything not cached is
refused with UNAVAILABLE, never let through.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisError

from services.common.errors import GatewayError, Unauthenticated, Unavailable
from services.common.identity import secrets as key_secrets
from services.common.identity.metrics import AUTH_FAILURES
from services.common.identity.principal import Principal
from services.common.identity.store import IdentityStore, Refusal

log = logging.getLogger("llmgw.identity")

DEFAULT_TTL_SECONDS = 30.0
VERSION_INTERVAL_SECONDS = 0.25
DEFAULT_TIMEOUT_SECONDS = 0.5
DEFAULT_MAX_ENTRIES = 10_000
RETRY_AFTER_SECONDS = 1.0

_FAILURES = (GatewayError, RedisError, OSError, TimeoutError)
_UNSET = object()
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class _Positive:
    fingerprint: bytes
    principal: Principal
    stored_at: float


@dataclass(frozen=True)
class _Negative:
    refusal: Refusal
    stored_at: float


class PrincipalCache:
    """`authenticate(key) -> Principal` for the request path; see the module docstring.

    `clock` gives unix seconds; give the store the same clock (key expiry is compared
    against it here too).
    """

    def __init__(
        self,
        store: IdentityStore,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        version_interval: float = VERSION_INTERVAL_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._interval = version_interval
        self._timeout = timeout
        self._max_entries = max_entries
        self._clock = clock
        self._positive: dict[str, _Positive] = {}
        self._negative: dict[bytes, _Negative] = {}
        # Key name -> what its records said (vouched calls); also bounded.
        self._vouched: dict[str, _Positive | _Negative] = {}
        self._version: object = _UNSET
        self._checked_at = -math.inf
        self._version_lock = asyncio.Lock()
        # Bumped by every flush: a store answer that raced a flush is not cached.
        self._generation = 0

    async def authenticate(self, key: str | None) -> Principal:
        """The principal of `key`; UNAUTHENTICATED for a missing or invalid key,
        UNAVAILABLE when it cannot be verified now."""
        if not key:
            AUTH_FAILURES.labels("missing").inc()
            raise Unauthenticated("an API key is required")
        principal = await self.lookup(key)
        if principal is None:
            raise Unauthenticated("the API key is not valid")
        return principal

    async def lookup(self, key: str) -> Principal | None:
        """The principal of a valid key, None for an invalid one; UNAVAILABLE when the
        key is not cached and Redis cannot answer."""
        parsed = key_secrets.parse_key(key)
        if parsed is None:
            AUTH_FAILURES.labels(Refusal.MALFORMED).inc()
            return None
        await self._check_version()
        now = self._clock()
        fingerprint = hashlib.sha256(key.encode()).digest()
        cached = self._cached(parsed.key_id, fingerprint, now)
        if cached is not None:
            return self._answer(cached)
        generation = self._generation
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._store.verify(key)
        except _FAILURES as error:
            AUTH_FAILURES.labels("unavailable").inc()
            log.warning("API key not verified, identity store failed: %s", error)
            raise Unavailable(
                "API keys cannot be verified now; retry later", retry_after=RETRY_AFTER_SECONDS
            ) from None
        if generation == self._generation:
            self._remember(parsed.key_id, fingerprint, result, now)
        return self._answer(result)

    async def vouched(self, consumer: str, key_name: str) -> Principal:
        """The principal another service vouched for (`consumers/{id}` and its key's
        name); UNAUTHENTICATED when the key or its consumer no longer qualifies,
        UNAVAILABLE when that cannot be checked now."""
        await self._check_version()
        now = self._clock()
        result = self._vouched_entry(key_name, now)
        if result is None:
            generation = self._generation
            try:
                async with asyncio.timeout(self._timeout):
                    result = await self._store.principal_of_key(key_name)
            except _FAILURES as error:
                AUTH_FAILURES.labels("unavailable").inc()
                log.warning("vouched caller not loaded, identity store failed: %s", error)
                raise Unavailable(
                    "the caller cannot be verified now; retry later",
                    retry_after=RETRY_AFTER_SECONDS,
                ) from None
            if generation == self._generation:
                entry = (
                    _Positive(b"", result, now)
                    if isinstance(result, Principal)
                    else _Negative(result, now)
                )
                _bounded_put(self._vouched, key_name, entry, self._max_entries)
        principal = self._answer(result)
        if principal is None or principal.name != consumer:
            raise Unauthenticated("the caller's API key is no longer valid")
        return principal

    def _vouched_entry(self, key_name: str, now: float) -> Principal | Refusal | None:
        entry = self._vouched.get(key_name)
        if entry is None:
            return None
        if now - entry.stored_at >= self._ttl:
            del self._vouched[key_name]
            return None
        if isinstance(entry, _Negative):
            return entry.refusal
        if entry.principal.expired(now):
            return Refusal.EXPIRED
        return entry.principal

    def clear(self) -> None:
        self._positive.clear()
        self._negative.clear()
        self._vouched.clear()
        self._generation += 1

    def _cached(self, key_id: str, fingerprint: bytes, now: float) -> Principal | Refusal | None:
        positive = self._positive.get(key_id)
        if positive is not None and hmac.compare_digest(positive.fingerprint, fingerprint):
            if now - positive.stored_at >= self._ttl:
                del self._positive[key_id]
            elif positive.principal.expired(now):
                del self._positive[key_id]
                return Refusal.EXPIRED
            else:
                return positive.principal
        negative = self._negative.get(fingerprint)
        if negative is not None:
            if now - negative.stored_at < self._ttl:
                return negative.refusal
            del self._negative[fingerprint]
        return None

    def _remember(
        self, key_id: str, fingerprint: bytes, result: Principal | Refusal, now: float
    ) -> None:
        if isinstance(result, Principal):
            _bounded_put(
                self._positive, key_id, _Positive(fingerprint, result, now), self._max_entries
            )
        else:
            _bounded_put(self._negative, fingerprint, _Negative(result, now), self._max_entries)

    @staticmethod
    def _answer(result: Principal | Refusal) -> Principal | None:
        if isinstance(result, Principal):
            return result
        AUTH_FAILURES.labels(result).inc()
        return None

    async def _check_version(self) -> None:
        """Reads the version key unless it was read less than `version_interval` ago."""
        if self._clock() - self._checked_at < self._interval:
            return
        async with self._version_lock:
            started = self._clock()
            if started - self._checked_at < self._interval:
                return  # another lookup checked while this one waited
            try:
                async with asyncio.timeout(self._timeout):
                    version = await self._store.version()
            except _FAILURES as error:
                # Keep the entries (the module docstring says why); try again next interval.
                log.warning("identity version not checked: %s", error)
                self._checked_at = started
                return
            self._checked_at = started
            if version != self._version:
                if self._version is not _UNSET:
                    self.clear()
                self._version = version


def _bounded_put(entries: dict[K, V], key: K, value: V, limit: int) -> None:
    """Inserts `value`, dropping the oldest entries beyond `limit` (insertion order)."""
    entries.pop(key, None)
    entries[key] = value
    while len(entries) > limit:
        del entries[next(iter(entries))]
