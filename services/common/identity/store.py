"""Consumers, groups and API keys in Redis (layout in `layout.py`).

Writes are optimistic transactions (WATCH, read, MULTI) that also INCR the version key,
so every replica's `PrincipalCache` notices any change. Reads that a request depends on
(`verify`) are one Lua script: key record -> consumer -> groups in a single round trip.
Redis failures surface as UNAVAILABLE; nothing here retries beyond a lost WATCH race.

Authorization of the caller (admin role) is the caller's job: this layer trusts it.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import redis.asyncio as aioredis
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

from llmgw.identity.v1 import identity_pb2
from services.common import field_masks
from services.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.identity import layout, names, paging, validation
from services.common.identity import secrets as key_secrets
from services.common.identity.principal import Principal
from services.common.lua_scripts import LuaScript
from services.common.validation import Violations

log = logging.getLogger("llmgw.identity")

T = TypeVar("T")
_M = TypeVar("_M", bound=Message)
Writes = Callable[[Pipeline], object]

_REDIS_FAILURES = (RedisError, OSError, TimeoutError)
_WATCH_ATTEMPTS = 5
RETRY_AFTER_SECONDS = 1.0


class Refusal(enum.StrEnum):
    """Why a key was refused: for metrics and logs, never for the caller."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    WRONG_SECRET = "wrong_secret"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DISABLED = "disabled"


class IssuedKey(NamedTuple):
    """A new key's record and its secret; the secret is never available again."""

    api_key: identity_pb2.ApiKey
    secret: str


class RotatedKey(NamedTuple):
    """A rotation: the new key, its secret, and the old key with its new expiry."""

    api_key: identity_pb2.ApiKey
    secret: str
    previous_api_key: identity_pb2.ApiKey


@contextlib.asynccontextmanager
async def _redis_errors() -> AsyncIterator[None]:
    try:
        yield
    except GatewayError:
        raise
    except _REDIS_FAILURES as error:
        log.warning("identity store unavailable: %s: %s", type(error).__name__, error)
        raise Unavailable(
            "the identity store is unavailable; retry later", retry_after=RETRY_AFTER_SECONDS
        ) from None


class IdentityStore:
    """CRUD of consumers, groups and keys, and the verification of a presented key.

    `redis` must return bytes (no `decode_responses`), as `create_redis` clients do.
    `clock` gives unix seconds: it stamps records and decides expiry.
    """

    def __init__(self, redis: aioredis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._lookup = LuaScript(__package__ or "services.common.identity", "lookup")

    async def version(self) -> bytes | None:
        """The version key's value; changes with every write (None: never written)."""
        async with _redis_errors():
            value = await self._redis.get(layout.VERSION)
        return value if isinstance(value, bytes) or value is None else str(value).encode()

    # -- consumers ------------------------------------------------------------------

    async def create_consumer(
        self, consumer: identity_pb2.Consumer, consumer_id: str
    ) -> identity_pb2.Consumer:
        violations = Violations()
        violations.require(
            names.valid_id(consumer_id), "consumer_id", f"must match {names.ID_PATTERN.pattern}"
        )
        validation.check_consumer(violations, consumer, "consumer")
        violations.raise_if_any()
        stored = _copy(consumer)
        stored.name = names.consumer_name(consumer_id)
        stored.ClearField("etag")
        _stamp(stored, self._clock(), created=True)

        async def plan(pipe: Pipeline) -> tuple[identity_pb2.Consumer, Writes]:
            if await pipe.hexists(layout.CONSUMERS, consumer_id):
                raise AlreadyExists(f"consumer {stored.name} already exists")
            await _require_groups(pipe, stored.groups)

            def writes(p: Pipeline) -> None:
                _put_consumer(p, consumer_id, stored)
                p.zadd(layout.CONSUMER_IDS, {consumer_id: 0})

            return stored, writes

        return _tagged(await self._atomically([layout.CONSUMERS, layout.GROUPS], plan))

    async def get_consumer(self, name: str) -> identity_pb2.Consumer:
        consumer_id = names.parse_consumer(name)
        async with _redis_errors():
            raw = await self._redis.hget(layout.CONSUMERS, consumer_id)
        if raw is None:
            raise _consumer_not_found(name)
        return _tagged(identity_pb2.Consumer.FromString(raw))

    async def list_consumers(
        self, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[identity_pb2.Consumer], str]:
        """One page in id order and the next page's token ("" on the last page)."""
        return await self._list(
            layout.CONSUMER_IDS, "consumers", page_size, page_token,
            lambda ids: self._hash_records(layout.CONSUMERS, ids, identity_pb2.Consumer),
        )  # fmt: skip

    async def update_consumer(
        self, consumer: identity_pb2.Consumer, update_mask: Sequence[str] = ()
    ) -> identity_pb2.Consumer:
        """Replaces the fields `update_mask` names (AIP-134: with no mask, the fields
        `consumer` populates; `*` for every mutable field). ABORTED when `consumer.etag`
        is set and is not the stored consumer's."""
        consumer_id = names.parse_consumer(consumer.name, "consumer.name")
        violations = Violations()
        paths = field_masks.update_paths(
            violations, consumer, update_mask, validation.CONSUMER_FIELDS
        )
        violations.raise_if_any()
        now = self._clock()

        async def plan(pipe: Pipeline) -> tuple[identity_pb2.Consumer, Writes]:
            raw = await pipe.hget(layout.CONSUMERS, consumer_id)
            if raw is None:
                raise _consumer_not_found(consumer.name)
            stored = identity_pb2.Consumer.FromString(raw)
            field_masks.require_etag(consumer.etag, field_masks.content_etag(stored), consumer.name)
            if not paths:
                return stored, _no_writes
            field_masks.apply_paths(consumer, stored, paths)
            _stamp(stored, now, created=False)
            checks = Violations()
            validation.check_consumer(checks, stored, "consumer")
            checks.raise_if_any()
            await _require_groups(pipe, stored.groups)
            return stored, lambda p: _put_consumer(p, consumer_id, stored)

        return _tagged(await self._atomically([layout.CONSUMERS, layout.GROUPS], plan))

    async def delete_consumer(self, name: str) -> None:
        """Deletes the consumer and every key of it; its keys stop working at once."""
        consumer_id = names.parse_consumer(name)
        index = layout.consumer_keys(consumer_id)

        async def plan(pipe: Pipeline) -> tuple[None, Writes]:
            if not await pipe.hexists(layout.CONSUMERS, consumer_id):
                raise _consumer_not_found(name)
            key_ids = [_text(k) for k in await pipe.zrange(index, 0, -1)]

            def writes(p: Pipeline) -> None:
                p.hdel(layout.CONSUMERS, consumer_id)
                p.zrem(layout.CONSUMER_IDS, consumer_id)
                p.hdel(layout.MEMBERSHIPS, consumer_id)
                p.delete(index, *(layout.key_record(k) for k in key_ids))

            return None, writes

        await self._atomically([layout.CONSUMERS, index], plan)

    # -- groups ---------------------------------------------------------------------

    async def create_group(self, group: identity_pb2.Group, group_id: str) -> identity_pb2.Group:
        violations = Violations()
        violations.require(
            names.valid_id(group_id), "group_id", f"must match {names.ID_PATTERN.pattern}"
        )
        validation.check_group(violations, group, "group")
        violations.raise_if_any()
        stored = _copy(group)
        stored.name = names.group_name(group_id)
        stored.ClearField("etag")
        _stamp(stored, self._clock(), created=True)

        async def plan(pipe: Pipeline) -> tuple[identity_pb2.Group, Writes]:
            if await pipe.hexists(layout.GROUPS, group_id):
                raise AlreadyExists(f"group {stored.name} already exists")

            def writes(p: Pipeline) -> None:
                p.hset(layout.GROUPS, group_id, stored.SerializeToString())
                p.zadd(layout.GROUP_IDS, {group_id: 0})

            return stored, writes

        return _tagged(await self._atomically([layout.GROUPS], plan))

    async def get_group(self, name: str) -> identity_pb2.Group:
        group_id = names.parse_group(name)
        async with _redis_errors():
            raw = await self._redis.hget(layout.GROUPS, group_id)
        if raw is None:
            raise _group_not_found(name)
        return _tagged(identity_pb2.Group.FromString(raw))

    async def list_groups(
        self, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[identity_pb2.Group], str]:
        return await self._list(
            layout.GROUP_IDS, "groups", page_size, page_token,
            lambda ids: self._hash_records(layout.GROUPS, ids, identity_pb2.Group),
        )  # fmt: skip

    async def update_group(
        self, group: identity_pb2.Group, update_mask: Sequence[str] = ()
    ) -> identity_pb2.Group:
        group_id = names.parse_group(group.name, "group.name")
        violations = Violations()
        paths = field_masks.update_paths(violations, group, update_mask, validation.GROUP_FIELDS)
        violations.raise_if_any()
        now = self._clock()

        async def plan(pipe: Pipeline) -> tuple[identity_pb2.Group, Writes]:
            raw = await pipe.hget(layout.GROUPS, group_id)
            if raw is None:
                raise _group_not_found(group.name)
            stored = identity_pb2.Group.FromString(raw)
            field_masks.require_etag(group.etag, field_masks.content_etag(stored), group.name)
            if not paths:
                return stored, _no_writes
            field_masks.apply_paths(group, stored, paths)
            _stamp(stored, now, created=False)
            checks = Violations()
            validation.check_group(checks, stored, "group")
            checks.raise_if_any()
            return stored, lambda p: p.hset(layout.GROUPS, group_id, stored.SerializeToString())

        return _tagged(await self._atomically([layout.GROUPS], plan))

    async def delete_group(self, name: str) -> None:
        """FAILED_PRECONDITION while a consumer still names the group."""
        group_id = names.parse_group(name)

        async def plan(pipe: Pipeline) -> tuple[None, Writes]:
            if not await pipe.hexists(layout.GROUPS, group_id):
                raise _group_not_found(name)
            memberships = await pipe.hgetall(layout.MEMBERSHIPS)
            members = sum(group_id in _text(v).split() for v in memberships.values())
            if members:
                raise FailedPrecondition(
                    f"group {name} still has {members} member(s); remove it from them first"
                )

            def writes(p: Pipeline) -> None:
                p.hdel(layout.GROUPS, group_id)
                p.zrem(layout.GROUP_IDS, group_id)

            return None, writes

        await self._atomically([layout.GROUPS, layout.MEMBERSHIPS], plan)

    # -- keys -----------------------------------------------------------------------

    async def create_key(self, consumer: str, ttl: float | None = None) -> IssuedKey:
        """Issues a key for `consumer` (`consumers/{c}`), expiring after `ttl` seconds."""
        consumer_id = names.parse_consumer(consumer, "parent")
        _check_duration(ttl, "ttl", allow_zero=False)
        now = self._clock()

        async def plan(pipe: Pipeline) -> tuple[IssuedKey, Writes]:
            if not await pipe.hexists(layout.CONSUMERS, consumer_id):
                raise _consumer_not_found(consumer)
            return await _issue(pipe, consumer_id, now, ttl)

        return await self._atomically([layout.CONSUMERS], plan)

    async def get_key(self, name: str) -> identity_pb2.ApiKey:
        consumer_id, key_id = names.parse_key(name)
        async with _redis_errors():
            key = await _read_key(self._redis, consumer_id, key_id, name)
        return _present(key, self._clock())

    async def list_keys(
        self, consumer: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[identity_pb2.ApiKey], str]:
        """A consumer's keys (revoked and expired ones included), never their secrets."""
        consumer_id = names.parse_consumer(consumer, "parent")
        async with _redis_errors():
            exists = await self._redis.hexists(layout.CONSUMERS, consumer_id)
        if not exists:
            raise _consumer_not_found(consumer)
        now = self._clock()

        async def fetch(ids: list[str]) -> list[identity_pb2.ApiKey]:
            pipe = self._redis.pipeline(transaction=False)
            for key_id in ids:
                pipe.hget(layout.key_record(key_id), "key")
            replies = await pipe.execute()
            return [_present(identity_pb2.ApiKey.FromString(r), now) for r in replies if r]

        return await self._list(
            layout.consumer_keys(consumer_id), f"keys/{consumer_id}", page_size, page_token, fetch
        )

    async def rotate_key(
        self, name: str, overlap_seconds: float, ttl: float | None = None
    ) -> RotatedKey:
        """Issues a new key for the same consumer; the old one expires after the overlap
        (or earlier, if it was going to expire earlier anyway). Overlap 0 ends it now."""
        consumer_id, key_id = names.parse_key(name)
        _check_duration(overlap_seconds, "overlap", allow_zero=True)
        _check_duration(ttl, "ttl", allow_zero=False)
        now = self._clock()
        record = layout.key_record(key_id)

        async def plan(pipe: Pipeline) -> tuple[RotatedKey, Writes]:
            old = await _read_key(pipe, consumer_id, key_id, name)
            if old.HasField("revoke_time"):
                raise FailedPrecondition(f"API key {name} is revoked; create a new key instead")
            if _expired(old, now):
                raise FailedPrecondition(f"API key {name} has expired; create a new key instead")
            end = now + overlap_seconds
            if not old.HasField("expire_time") or _seconds(old.expire_time) > end:
                old.expire_time.CopyFrom(_timestamp(end))
            issued, issue_writes = await _issue(pipe, consumer_id, now, ttl)

            def writes(p: Pipeline) -> None:
                issue_writes(p)
                p.hset(record, "key", old.SerializeToString())

            return RotatedKey(issued.api_key, issued.secret, _present(old, now)), writes

        return await self._atomically([layout.CONSUMERS, record], plan)

    async def revoke_key(self, name: str) -> identity_pb2.ApiKey:
        """Revokes at once (idempotent: a second revoke keeps the first revoke time)."""
        consumer_id, key_id = names.parse_key(name)
        now = self._clock()
        record = layout.key_record(key_id)

        async def plan(pipe: Pipeline) -> tuple[identity_pb2.ApiKey, Writes]:
            key = await _read_key(pipe, consumer_id, key_id, name)
            if not key.HasField("revoke_time"):
                key.revoke_time.CopyFrom(_timestamp(now))
            return _present(key, now), lambda p: p.hset(record, "key", key.SerializeToString())

        return await self._atomically([record], plan)

    # -- verification ---------------------------------------------------------------

    async def verify(self, token: str) -> Principal | Refusal:
        """The principal of a presented key, or why it is refused (UNAVAILABLE when
        Redis cannot answer)."""
        parsed = key_secrets.parse_key(token)
        if parsed is None:
            return Refusal.MALFORMED
        reply = await self._key_and_owner(parsed.key_id)
        if not reply:
            return Refusal.UNKNOWN
        salt, stored_digest, key_bytes, consumer_bytes, *group_bytes = reply
        if not key_secrets.matches(salt, stored_digest, parsed.secret):
            return Refusal.WRONG_SECRET
        return self._principal(key_bytes, consumer_bytes, group_bytes)

    async def principal_of_key(self, key_name: str) -> Principal | Refusal:
        """The principal behind the key `consumers/{c}/keys/{k}` as its records stand now,
        without its secret: for a call another service vouched for (it verified the
        secret). Refused like `verify` when the key or its consumer no longer qualifies."""
        try:
            _, key_id = names.parse_key(key_name)
        except InvalidArgument:
            return Refusal.MALFORMED
        reply = await self._key_and_owner(key_id)
        if not reply:
            return Refusal.UNKNOWN
        _, _, key_bytes, consumer_bytes, *group_bytes = reply
        return self._principal(key_bytes, consumer_bytes, group_bytes, expected_name=key_name)

    async def _key_and_owner(self, key_id: str) -> list[bytes] | None:
        """The lookup script's reply for one key id (see lua/lookup.lua)."""
        keys = [layout.key_record(key_id), layout.CONSUMERS, layout.MEMBERSHIPS, layout.GROUPS]
        async with _redis_errors():
            reply = await self._lookup(self._redis, keys, [])
        return list(reply) if reply else None

    def _principal(
        self,
        key_bytes: bytes,
        consumer_bytes: bytes,
        group_bytes: Sequence[bytes],
        *,
        expected_name: str | None = None,
    ) -> Principal | Refusal:
        key = identity_pb2.ApiKey.FromString(key_bytes)
        if expected_name is not None and key.name != expected_name:
            return Refusal.UNKNOWN
        if key.HasField("revoke_time"):
            return Refusal.REVOKED
        if _expired(key, self._clock()):
            return Refusal.EXPIRED
        consumer = identity_pb2.Consumer.FromString(consumer_bytes)
        if consumer.disabled:
            return Refusal.DISABLED
        expire = _seconds(key.expire_time) if key.HasField("expire_time") else None
        groups = tuple(identity_pb2.Group.FromString(g) for g in group_bytes)
        return Principal(consumer, groups, key.name, expire)

    async def lookup(self, token: str) -> Principal | None:
        """The principal of a valid key; None for any invalid one."""
        result = await self.verify(token)
        return result if isinstance(result, Principal) else None

    # -- helpers --------------------------------------------------------------------

    async def _atomically(
        self, watch: Sequence[str], plan: Callable[[Pipeline], Awaitable[tuple[T, Writes]]]
    ) -> T:
        """Runs `plan`'s reads under WATCH, then its writes and a version bump in MULTI."""
        async with _redis_errors():
            for _ in range(_WATCH_ATTEMPTS):
                async with self._redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(*watch)
                    result, writes = await plan(pipe)
                    if writes is _no_writes:
                        return result
                    pipe.multi()
                    writes(pipe)
                    pipe.incr(layout.VERSION)
                    try:
                        await pipe.execute()
                    except WatchError:
                        continue
                    return result
        raise Aborted("identity records kept changing during the update; retry")

    async def _list(
        self,
        index: str,
        listing: str,
        page_size: int,
        page_token: str,
        fetch: Callable[[list[str]], Awaitable[list[_M]]],
    ) -> tuple[list[_M], str]:
        violations = Violations()
        size = paging.page_size(violations, page_size)
        after = paging.decode_token(violations, listing, page_token)
        violations.raise_if_any()
        async with _redis_errors():
            raw = await self._redis.zrangebylex(
                index, f"({after}" if after else "-", "+", start=0, num=size + 1
            )
            ids = [_text(i) for i in raw]
            items = await fetch(ids[:size]) if ids else []
        token = paging.encode_token(listing, ids[size - 1]) if len(ids) > size else ""
        return items, token

    async def _hash_records(
        self, records: str, ids: list[str], kind: type[_Tagged]
    ) -> list[_Tagged]:
        values = await self._redis.hmget(records, ids)
        return [_tagged(kind.FromString(v)) for v in values if v is not None]


async def _issue(
    pipe: Pipeline, consumer_id: str, now: float, ttl: float | None
) -> tuple[IssuedKey, Writes]:
    key_id = key_secrets.new_key_id()
    while await pipe.exists(layout.key_record(key_id)):
        key_id = key_secrets.new_key_id()
    secret = key_secrets.new_secret()
    salt = key_secrets.new_salt()
    key = identity_pb2.ApiKey(
        name=names.key_name(consumer_id, key_id),
        prefix=key_secrets.display_prefix(key_id),
        create_time=_timestamp(now),
    )
    if ttl is not None:
        key.expire_time.CopyFrom(_timestamp(now + ttl))

    def writes(p: Pipeline) -> None:
        p.hset(
            layout.key_record(key_id),
            mapping={
                "consumer": consumer_id,
                "salt": salt,
                "digest": key_secrets.digest(salt, secret),
                "key": key.SerializeToString(),
            },
        )
        p.zadd(layout.consumer_keys(consumer_id), {key_id: 0})

    return IssuedKey(_present(key, now), key_secrets.format_key(key_id, secret)), writes


async def _read_key(
    client: aioredis.Redis | Pipeline, consumer_id: str, key_id: str, name: str
) -> identity_pb2.ApiKey:
    owner, raw = await client.hmget(layout.key_record(key_id), ["consumer", "key"])
    # A key of another consumer answers exactly like a missing one.
    if raw is None or owner is None or _text(owner) != consumer_id:
        raise NotFound(f"API key {name} not found", resource_type="api key", resource_name=name)
    return identity_pb2.ApiKey.FromString(raw)


async def _require_groups(pipe: Pipeline, group_names: Sequence[str]) -> None:
    ids = [names.group_id_of(n) or "" for n in group_names]
    if not ids:
        return
    values = await pipe.hmget(layout.GROUPS, ids)
    violations = Violations()
    for i, (name, value) in enumerate(zip(group_names, values, strict=True)):
        if value is None:
            violations.add(f"consumer.groups[{i}]", f"group {name} does not exist")
    violations.raise_if_any()


def _put_consumer(p: Pipeline, consumer_id: str, consumer: identity_pb2.Consumer) -> None:
    p.hset(layout.CONSUMERS, consumer_id, consumer.SerializeToString())
    p.hset(
        layout.MEMBERSHIPS,
        consumer_id,
        " ".join(names.group_id_of(n) or "" for n in consumer.groups),
    )


def _check_duration(seconds: float | None, field: str, *, allow_zero: bool) -> None:
    """Within (0 or more, up to `MAX_KEY_DURATION_SECONDS`]: an expiry must stay a
    timestamp a protobuf Timestamp can hold (before year 10000)."""
    if seconds is None:
        return
    if not seconds >= 0 or (seconds == 0 and not allow_zero):
        raise InvalidArgument.for_field(
            field, "must not be negative" if allow_zero else "must be positive"
        )
    if seconds > validation.MAX_KEY_DURATION_SECONDS:
        raise InvalidArgument.for_field(
            field, f"must be at most {validation.MAX_KEY_DURATION_SECONDS}s (ten years)"
        )


def _no_writes(pipe: Pipeline) -> None:
    """The writes of a plan that found nothing to change (no transaction is run)."""


_Tagged = TypeVar("_Tagged", identity_pb2.Consumer, identity_pb2.Group)


def _tagged(resource: _Tagged) -> _Tagged:
    """`resource` with its current etag (stored records never hold one)."""
    resource.etag = field_masks.content_etag(resource)
    return resource


def _present(key: identity_pb2.ApiKey, now: float) -> identity_pb2.ApiKey:
    shown = _copy(key)
    shown.active = not key.HasField("revoke_time") and not _expired(key, now)
    return shown


def _expired(key: identity_pb2.ApiKey, now: float) -> bool:
    return key.HasField("expire_time") and now >= _seconds(key.expire_time)


def _stamp(
    resource: identity_pb2.Consumer | identity_pb2.Group, now: float, *, created: bool
) -> None:
    if created:
        resource.create_time.CopyFrom(_timestamp(now))
    resource.update_time.CopyFrom(_timestamp(now))


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return float(stamp.ToNanoseconds()) / 1e9


def _copy(message: _M) -> _M:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _consumer_not_found(name: str) -> NotFound:
    return NotFound(f"consumer {name} not found", resource_type="consumer", resource_name=name)


def _group_not_found(name: str) -> NotFound:
    return NotFound(f"group {name} not found", resource_type="group", resource_name=name)
