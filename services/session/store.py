"""Sessions in Redis: every operation is one Lua script, so each is atomic on its own.

The store takes validated values and answers `Session`/`SessionMessage` messages. It
raises NotFound, AlreadyExists and ResourceExhausted for the session's state and
Unavailable for any failure of Redis itself (`redis_errors.py`).

Every operation on one existing session takes `owner`, the owner the session must have
(None: any). The script checks it in the same step as the operation, and a session of
another owner raises the very NotFound of a missing session, so callers cannot tell the
two apart and no operation can act on a session whose owner it did not check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from google.protobuf import struct_pb2, timestamp_pb2

from llmgw.common.v1 import chat_pb2, error_reason_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common import field_masks
from services.common.errors import (
    AlreadyExists,
    Internal,
    NotFound,
    QuotaViolation,
    ResourceExhausted,
)
from services.common.lua_scripts import LuaScript, ScriptArg
from services.common.redis_errors import redis_errors_as_unavailable
from services.common.session_names import RESOURCE_TYPE, session_name
from services.session import keys
from services.session.codec import (
    encode_context,
    encode_labels,
    meta_from_reply,
    session_from_meta,
    timestamp_from_us,
)
from services.session.scripts import Scripts

# The most bytes of messages one read returns (GetSession, a ListMessages page): well
# within the gRPC message size, however large the history grew.
MAX_READ_BYTES = 16 * 1024 * 1024
# Index members examined per ListSessions call beyond the page itself: bounds the work
# one call spends skipping sessions that expired since the last sweep.
LIST_SCAN_SLACK = 1000
# Stored metadata returned per ListSessions call at most: a page ends early (with a
# next_page_token) rather than grow past what one response can carry, so large sessions
# of one owner cannot make the listing fail for everybody.
LIST_PAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class NewSession:
    session_id: str
    owner: str
    ttl_ms: int
    system_prompt: str
    context: struct_pb2.Struct
    labels: Mapping[str, str]


@dataclass(frozen=True)
class SessionChanges:
    """Fields to replace; None keeps the stored value."""

    ttl_ms: int | None = None
    system_prompt: str | None = None
    context: struct_pb2.Struct | None = None
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True)
class SessionPage:
    sessions: list[session_pb2.Session]
    # Exclusive create-time bound (microseconds) of the next page; None on the last page.
    next_cursor: int | None


@dataclass(frozen=True)
class AppendResult:
    first_index: int
    message_count: int
    expire_time: timestamp_pb2.Timestamp


@dataclass(frozen=True)
class SweepResult:
    removed: int
    live: int


def _array(reply: object) -> list[Any]:
    """Every script answers a non-empty array; anything else is a bug on our side."""
    if not isinstance(reply, list) or not reply:
        raise Internal("unexpected reply from the session store")
    return reply


def _status(reply: object) -> tuple[bytes, list[Any]]:
    """Per-session scripts answer `{status, ...}`; the status is a short ASCII word."""
    items = _array(reply)
    return items[0], items[1:]


def _not_found(session_id: str) -> NotFound:
    name = session_name(session_id)
    return NotFound(
        f"session '{name}' not found (it may have expired)",
        resource_type=RESOURCE_TYPE,
        resource_name=name,
    )


def _owner_scope(owner: str | None) -> str:
    """ARGV[3] of the per-session scripts (`lua/common.lua`)."""
    return "*" if owner is None else f"={owner}"


def _messages(raw: Sequence[bytes]) -> list[session_pb2.SessionMessage]:
    return [session_pb2.SessionMessage.FromString(item) for item in raw]


class SessionStore:
    """All session state lives in Redis; any replica can serve any session."""

    def __init__(self, client: aioredis.Redis, *, list_page_bytes: int = LIST_PAGE_BYTES) -> None:
        self._client = client
        self._scripts = Scripts()
        self._list_page_bytes = list_page_bytes

    async def _run(
        self, script: LuaScript, keys_: Sequence[str], args: Sequence[ScriptArg]
    ) -> object:
        async with redis_errors_as_unavailable():
            return await script(self._client, keys_, [keys.PREFIX, *args])

    async def create(self, new: NewSession) -> session_pb2.Session:
        reply = await self._run(
            self._scripts.create,
            [*keys.session_keys(new.session_id), keys.ALL_INDEX, keys.owner_index(new.owner)],
            [
                new.session_id,
                new.owner,
                new.ttl_ms,
                new.system_prompt.encode(),
                encode_context(new.context),
                encode_labels(new.labels),
            ],
        )
        status, rest = _status(reply)
        if status == b"EXISTS":
            name = session_name(new.session_id)
            raise AlreadyExists(f"session '{name}' already exists")
        return session_from_meta(new.session_id, meta_from_reply(rest[0]))

    async def _read(
        self,
        session_id: str,
        owner: str | None,
        start: int,
        stop: int,
        *,
        with_messages: bool,
        max_bytes: int,
        keep: str,
    ) -> tuple[session_pb2.Session, list[session_pb2.SessionMessage]]:
        reply = await self._run(
            self._scripts.read,
            keys.session_keys(session_id),
            [
                session_id,
                _owner_scope(owner),
                "1" if with_messages else "0",
                start,
                stop,
                min(max_bytes, MAX_READ_BYTES) if max_bytes > 0 else MAX_READ_BYTES,
                keep,
            ],
        )
        status, rest = _status(reply)
        if status == b"NOT_FOUND":
            raise _not_found(session_id)
        return session_from_meta(session_id, meta_from_reply(rest[0])), _messages(rest[1])

    async def get(
        self, session_id: str, message_limit: int, *, owner: str | None, max_bytes: int = 0
    ) -> session_pb2.Session:
        """The session and, with `message_limit` > 0, its most recent messages: as many as
        fit in `max_bytes` of serialized messages (0, or more than `MAX_READ_BYTES`: that
        bound), so the answer is bounded however large the history grew."""
        session, messages = await self._read(
            session_id,
            owner,
            -message_limit,
            -1,
            with_messages=message_limit > 0,
            max_bytes=max_bytes,
            keep="newest",
        )
        session.messages.extend(messages)
        return session

    async def list_messages(
        self, session_id: str, offset: int, page_size: int, *, owner: str | None
    ) -> tuple[list[session_pb2.SessionMessage], int]:
        """Messages from index `offset` (at most `MAX_READ_BYTES` of them, and always at
        least one when there is one), and the number of messages in the history."""
        session, messages = await self._read(
            session_id,
            owner,
            offset,
            offset + page_size - 1,
            with_messages=True,
            max_bytes=0,
            keep="oldest",
        )
        return messages, session.message_count

    async def list_sessions(self, owner: str, before: int | None, page_size: int) -> SessionPage:
        """Newest first; `owner` "" lists every session. `before` is an exclusive cursor."""
        index = keys.owner_index(owner) if owner else keys.ALL_INDEX
        want = page_size + 1
        reply = await self._run(
            self._scripts.list,
            [index],
            [
                owner,
                "+inf" if before is None else f"({before}",
                want,
                want + LIST_SCAN_SLACK,
                self._list_page_bytes,
            ],
        )
        items = _array(reply)
        bound: bytes = items[0]
        sessions = [
            session_from_meta(raw_id.decode(), meta_from_reply(flat)) for raw_id, flat in items[1:]
        ]
        if len(sessions) > page_size:
            sessions = sessions[:page_size]
            last = sessions[-1].create_time
            return SessionPage(sessions, last.seconds * 1_000_000 + last.nanos // 1000)
        if bound:
            # Redis prints the score; versions differ in notation (`1.7e+15` or digits).
            return SessionPage(sessions, int(float(bound.removeprefix(b"("))))
        return SessionPage(sessions, None)

    async def update(
        self, session_id: str, changes: SessionChanges, *, owner: str | None, etag: str = ""
    ) -> session_pb2.Session:
        """ABORTED when `etag` is set and is not the session's current etag."""
        fields: list[ScriptArg] = []
        if changes.system_prompt is not None:
            fields += ["system_prompt", changes.system_prompt.encode()]
        if changes.context is not None:
            fields += ["context", encode_context(changes.context)]
        if changes.labels is not None:
            fields += ["labels", encode_labels(changes.labels)]
        ttl: ScriptArg = "" if changes.ttl_ms is None else changes.ttl_ms
        reply = await self._run(
            self._scripts.update,
            keys.session_keys(session_id),
            [session_id, _owner_scope(owner), etag, ttl, *fields],
        )
        status, rest = _status(reply)
        if status == b"NOT_FOUND":
            raise _not_found(session_id)
        if status == b"STALE":
            raise field_masks.stale(session_name(session_id))
        return session_from_meta(session_id, meta_from_reply(rest[0]))

    async def clear(self, session_id: str, *, owner: str | None) -> session_pb2.Session:
        reply = await self._run(
            self._scripts.clear, keys.session_keys(session_id), [session_id, _owner_scope(owner)]
        )
        status, rest = _status(reply)
        if status == b"NOT_FOUND":
            raise _not_found(session_id)
        return session_from_meta(session_id, meta_from_reply(rest[0]))

    async def delete(self, session_id: str, *, owner: str | None) -> None:
        reply = await self._run(
            self._scripts.delete,
            [*keys.session_keys(session_id), keys.ALL_INDEX],
            [session_id, _owner_scope(owner)],
        )
        status, _ = _status(reply)
        if status == b"NOT_FOUND":
            raise _not_found(session_id)

    async def append(
        self,
        session_id: str,
        messages: Sequence[chat_pb2.Message],
        max_messages: int,
        *,
        owner: str | None,
    ) -> AppendResult:
        """All messages or none, contiguous; RESOURCE_EXHAUSTED past `max_messages`."""
        payloads = [
            session_pb2.SessionMessage(message=message).SerializeToString() for message in messages
        ]
        reply = await self._run(
            self._scripts.append,
            keys.session_keys(session_id),
            [session_id, _owner_scope(owner), max_messages, *payloads],
        )
        status, rest = _status(reply)
        if status == b"NOT_FOUND":
            raise _not_found(session_id)
        if status == b"FULL":
            name = session_name(session_id)
            raise ResourceExhausted(
                f"session '{name}' holds {rest[0]} messages; appending {len(messages)} would "
                f"exceed the limit of {max_messages}",
                [QuotaViolation(name, f"at most {max_messages} messages per session")],
                reason=error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED,
            )
        return AppendResult(int(rest[0]), int(rest[1]), timestamp_from_us(int(rest[2])))

    async def sweep(self, batch: int) -> SweepResult:
        """Drop index members of up to `batch` expired sessions; count the live ones."""
        reply = await self._run(self._scripts.sweep, [keys.EXPIRY_INDEX, keys.ALL_INDEX], [batch])
        items = _array(reply)
        return SweepResult(int(items[0]), int(items[1]))
