"""Request ids (AIP-155): a repeat of a mutating request returns the first outcome.

A mutating RPC that carries a `request_id` (or, over REST, an `Idempotency-Key` header)
runs its work at most once per caller and id within the retention (24 h): the first
request claims the id in Redis and records its outcome (responses, initial and trailing
metadata); a repeat with the same id and the same request gets that outcome back
(marked `x-llmgw-idempotent-replay: true`); a repeat that arrives while the first still
runs waits for it, within its own deadline; a repeat with the same id but another
request is INVALID_ARGUMENT. Only outcomes are kept, never failures: when the work fails
(or its caller goes away) the claim is dropped and a repeat runs it again.

The runner renews its claim while it works; a runner that dies stops renewing, the claim
lapses after `lease` seconds, and the next repeat runs the work (the dead runner's
outcome is unknown to everybody, its caller included).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis
from google.protobuf.message import Message
from redis import exceptions as redis_exceptions

from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from services.common.idempotency.sealing import Sealer, SealingError
from services.common.lua_scripts import LuaScript
from services.common.redis_metrics import RedisOperation
from services.common.tasks import cancel_and_wait

log = logging.getLogger("llmgw.idempotency")

PREFIX = "llmgw:idem:"
RETENTION_SECONDS = 24 * 3600.0
LEASE_SECONDS = 15.0
# Outcomes larger than this are not kept: a repeat then learns the first request
# finished, not what it answered.
MAX_OUTCOME_BYTES = 8 * 1024 * 1024
# The longest a repeat waits for a running first request when it has no deadline.
MAX_WAIT_SECONDS = 600.0
REPLAY_HEADER = "x-llmgw-idempotent-replay"

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scope:
    """What one request id is unique within, and the request it must keep naming."""

    # The caller (`consumers/...`; `anonymous` with authentication off).
    principal: str
    # The RPC (`/llmgw.session.v1.SessionService/AppendMessages`).
    method: str
    request_id: str
    # A digest of the request without its request id (`fingerprint`).
    fingerprint: str
    # The outcome holds a secret (an issued API key): kept sealed, never in clear.
    secret: bool = False

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.principal}:{self.method}:{self.request_id}"


def fingerprint(request: Message, *clear: str) -> str:
    """A digest of `request` with the named request-id fields cleared (`gateway.request_id`
    clears a nested one)."""
    copy = type(request)()
    copy.CopyFrom(request)
    for path in clear:
        *parents, last = path.split(".")
        holder: Message = copy
        for parent in parents:
            holder = getattr(holder, parent)
        holder.ClearField(last)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


@dataclass
class Outcome:
    """What the first request answered."""

    responses: list[bytes] = field(default_factory=list)
    initial_metadata: Metadata = ()
    trailing_metadata: Metadata = ()
    # The first request finished but its answer was too large to keep.
    too_large: bool = False

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "r": [base64.b64encode(r).decode() for r in self.responses],
                "i": self.initial_metadata,
                "t": self.trailing_metadata,
                "x": self.too_large,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Outcome:
        data = orjson.loads(raw)
        return cls(
            [base64.b64decode(r) for r in data["r"]],
            tuple((k, v) for k, v in data["i"]),
            tuple((k, v) for k, v in data["t"]),
            bool(data["x"]),
        )

    def size(self) -> int:
        return sum(len(r) for r in self.responses)


# What a secret's outcome is stored as when there is no sealing secret: the secret is
# not kept, and a repeat is told so.
_NOT_KEPT = b"!" + Outcome(too_large=True).encode()


class Attempt:
    """A claimed request id: the work runs here, then `finish` or `release`."""

    def __init__(self, store: IdempotencyStore, scope: Scope, token: str) -> None:
        self._store = store
        self._scope = scope
        self._token = token
        self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        lease_ms = int(self._store.lease * 1000)
        while True:
            await asyncio.sleep(self._store.lease / 3)
            try:
                held = await self._store.scripts.renew(
                    self._store.redis, [self._scope.key], [self._token, lease_ms]
                )
            except redis_exceptions.RedisError:
                log.warning("could not renew the claim of a request id; retrying")
                continue
            if not held:
                return

    async def finish(self, outcome: Outcome) -> None:
        """Records the outcome for repeats (best effort: the caller already has it)."""
        await cancel_and_wait(self._renewer)
        if outcome.size() > self._store.max_outcome_bytes:
            outcome = Outcome(too_large=True)
        raw = outcome.encode()
        if self._scope.secret:
            raw = self._store.seal(self._scope, raw)
        try:
            await self._store.scripts.finish(
                self._store.redis,
                [self._scope.key],
                [self._token, raw, int(self._store.retention * 1000)],
            )
        except redis_exceptions.RedisError:
            log.warning("could not record the outcome of a request id: a repeat runs again")

    async def release(self) -> None:
        """Drops the claim after a failure: a repeat runs the work again."""
        await cancel_and_wait(self._renewer)
        with contextlib.suppress(redis_exceptions.RedisError):
            await self._store.scripts.release(self._store.redis, [self._scope.key], [self._token])


@dataclass(frozen=True)
class _Scripts:
    claim: LuaScript
    renew: LuaScript
    finish: LuaScript
    release: LuaScript


def _scripts(service: str) -> _Scripts:
    """The scripts, each timed as the operation `idempotency_<name>` of `service`."""
    package = __package__ or "services.common.idempotency"
    return _Scripts(
        *(
            LuaScript(package, name, timed=RedisOperation(service, f"idempotency_{name}"))
            for name in ("claim", "renew", "finish", "release")
        )
    )


class IdempotencyStore:
    """Request ids of one service's callers in Redis; see the module docstring."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        sealer: Sealer | None = None,
        retention: float = RETENTION_SECONDS,
        lease: float = LEASE_SECONDS,
        max_outcome_bytes: int = MAX_OUTCOME_BYTES,
        clock: Callable[[], float] = time.monotonic,
        service: str = "unknown",
    ) -> None:
        """`service`: the service whose Redis metrics the store's operations count in."""
        self.redis = redis
        self.scripts = _scripts(service)
        self.retention = retention
        self.lease = lease
        self.max_outcome_bytes = max_outcome_bytes
        self._sealer = sealer
        self._clock = clock

    async def claim(self, scope: Scope, timeout: float | None) -> Attempt | Outcome:
        """An `Attempt` when this request runs the work; the first request's `Outcome`
        when it finished already (waiting for it while it runs, up to `timeout`)."""
        deadline = self._clock() + (MAX_WAIT_SECONDS if timeout is None else timeout)
        delay = 0.02
        token = secrets.token_hex(16)
        while True:
            try:
                reply = await self.scripts.claim(
                    self.redis, [scope.key], [scope.fingerprint, token, int(self.lease * 1000)]
                )
            except redis_exceptions.RedisError as error:
                raise Unavailable(
                    "the request id could not be checked (the gateway's Redis is unreachable)"
                ) from error
            status = reply[0]
            if status == b"CLAIMED":
                return Attempt(self, scope, token)
            _same_request(scope, reply[1])
            if status == b"DONE":
                return self._outcome(scope, reply[2])
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise DeadlineExceeded(
                    f"the first request with request_id '{scope.request_id}' is still running"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)

    def seal(self, scope: Scope, raw: bytes) -> bytes:
        if self._sealer is None:
            # Nothing that could reveal the secret is kept; a repeat is told so.
            return _NOT_KEPT
        return self._sealer.seal(raw, scope.key.encode())

    def _outcome(self, scope: Scope, raw: bytes) -> Outcome:
        if scope.secret:
            # The whole marker, not its first byte: a sealed value starts with a random
            # nonce, whose first byte is "!" once in 256.
            if raw == _NOT_KEPT:
                raise FailedPrecondition(
                    f"the request with request_id '{scope.request_id}' completed; its secret "
                    "is shown once and was not kept (no LLMGW_INTERNAL_SECRET to seal it)"
                )
            if self._sealer is None:
                raise FailedPrecondition(
                    f"the request with request_id '{scope.request_id}' completed; its sealed "
                    "answer cannot be opened without LLMGW_INTERNAL_SECRET"
                )
            try:
                raw = self._sealer.open(raw, scope.key.encode())
            except SealingError:
                raise FailedPrecondition(
                    f"the request with request_id '{scope.request_id}' completed; its sealed "
                    "answer cannot be opened (was LLMGW_INTERNAL_SECRET changed?)"
                ) from None
        outcome = Outcome.decode(raw)
        if outcome.too_large:
            raise FailedPrecondition(
                f"the request with request_id '{scope.request_id}' completed; its answer was "
                "too large to keep for repeats"
            )
        return outcome


def _same_request(scope: Scope, stored: bytes | None) -> None:
    if stored is not None and stored.decode() != scope.fingerprint:
        raise InvalidArgument.for_field(
            "request_id",
            f"'{scope.request_id}' was already used for a different request; "
            "use a new id for a new request",
        )


def replayed(metadata: Sequence[tuple[str, str]]) -> Metadata:
    """`metadata` marked as a replay of the first outcome."""
    return (*((k, v) for k, v in metadata if k != REPLAY_HEADER), (REPLAY_HEADER, "true"))
