"""SessionService: validates each request completely, then runs one store operation.

Sessions belong to the consumer that created them (`owner.py`). An operation on one
session passes the owner the caller may use to the store, which checks it atomically
with the operation: another consumer's session is NOT_FOUND, exactly as a missing one.
"""

from __future__ import annotations

import time

import grpc

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common import field_masks
from services.common.enum_checks import check_enum
from services.common.gateway_config import SessionConfig
from services.common.idempotency.run import once, request_scope
from services.common.idempotency.store import IdempotencyStore
from services.common.owners import current_owner, listing_owner, required_owner
from services.common.session_names import (
    check_session_id,
    new_session_id,
    parse_session_name,
    session_name,
)
from services.common.validation import Violations
from services.session.message_checks import check_messages
from services.session.metrics import (
    APPEND_LATENCY,
    MESSAGES_APPENDED,
    SESSIONS_CREATED,
    SESSIONS_DELETED,
)
from services.session.page_tokens import decode_page_token, encode_page_token
from services.session.request_checks import (
    MUTABLE_FIELDS,
    check_context,
    check_labels,
    check_owner_filter,
    check_system_prompt,
    page_size,
    ttl_ms,
)
from services.session.store import NewSession, SessionChanges, SessionStore

DEFAULT_MESSAGE_LIMIT = 100
MAX_MESSAGE_LIMIT = 1000
DEFAULT_SESSION_PAGE = 50
MAX_SESSION_PAGE = 1000
DEFAULT_MESSAGE_PAGE = 100
MAX_MESSAGE_PAGE = 1000

_SESSIONS_LISTING = "sessions"
_MESSAGES_LISTING = "messages"


class SessionServicer(session_grpc.SessionServiceServicer):
    def __init__(
        self,
        store: SessionStore,
        limits: SessionConfig,
        once: IdempotencyStore | None = None,
    ) -> None:
        self._store = store
        self._limits = limits
        # Request ids of CreateSession and AppendMessages (None: refused).
        self._once = once

    def _check_settings(
        self, violations: Violations, session: session_pb2.Session, fields: list[str]
    ) -> None:
        """Size and shape of the mutable settings named in `fields`."""
        max_bytes = self._limits.max_settings_bytes
        if "system_prompt" in fields:
            check_system_prompt(
                violations, "session.system_prompt", session.system_prompt, max_bytes
            )
        if "context" in fields:
            check_context(violations, "session.context", session.context, max_bytes)
        if "labels" in fields:
            check_labels(violations, "session.labels", session.labels)

    def _ttl(self, violations: Violations, session: session_pb2.Session) -> int:
        ttl = session.ttl if session.HasField("ttl") else None
        return ttl_ms(violations, "session.ttl", ttl, self._limits)

    async def CreateSession(
        self, request: session_pb2.CreateSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.CreateSessionResponse:
        violations = Violations()
        if request.session_id:
            check_session_id(violations, "session_id", request.session_id)
        spec = request.session
        ttl = self._ttl(violations, spec)
        self._check_settings(violations, spec, ["system_prompt", "context", "labels"])
        where = request_scope(violations, "session.CreateSession", request, context)
        violations.raise_if_any()
        return await once(
            self._once,
            where,
            context,
            session_pb2.CreateSessionResponse,
            lambda _: self._create(request, ttl),
        )

    async def _create(
        self, request: session_pb2.CreateSessionRequest, ttl: int
    ) -> session_pb2.CreateSessionResponse:
        spec = request.session
        created = await self._store.create(
            NewSession(
                session_id=request.session_id or new_session_id(),
                owner=current_owner(),
                ttl_ms=ttl,
                system_prompt=spec.system_prompt,
                context=spec.context,
                labels=dict(spec.labels),
            )
        )
        SESSIONS_CREATED.inc()
        return session_pb2.CreateSessionResponse(session=created)

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.GetSessionResponse:
        violations = Violations()
        session_id = parse_session_name(violations, "name", request.name)
        check_enum(violations, "view", request.view, session_pb2.SessionView)
        limit = page_size(
            violations,
            "message_limit",
            request.message_limit,
            DEFAULT_MESSAGE_LIMIT,
            MAX_MESSAGE_LIMIT,
        )
        violations.require(
            request.message_bytes_limit >= 0, "message_bytes_limit", "must not be negative"
        )
        violations.raise_if_any()
        full = request.view == session_pb2.SESSION_VIEW_FULL
        session = await self._store.get(
            session_id,
            limit if full else 0,
            owner=required_owner(),
            max_bytes=request.message_bytes_limit,
        )
        return session_pb2.GetSessionResponse(session=session)

    async def ListSessions(
        self, request: session_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.ListSessionsResponse:
        violations = Violations()
        size = page_size(
            violations, "page_size", request.page_size, DEFAULT_SESSION_PAGE, MAX_SESSION_PAGE
        )
        # A malformed owner filter is reported with the other problems, not checked further.
        owner = (
            listing_owner(request.owner)
            if check_owner_filter(violations, "owner", request.owner)
            else ""
        )
        before = (
            decode_page_token(
                violations, "page_token", request.page_token, _SESSIONS_LISTING, owner
            )
            if request.page_token
            else None
        )
        violations.raise_if_any()
        page = await self._store.list_sessions(owner, before, size)
        token = (
            ""
            if page.next_cursor is None
            else encode_page_token(_SESSIONS_LISTING, owner, page.next_cursor)
        )
        return session_pb2.ListSessionsResponse(sessions=page.sessions, next_page_token=token)

    async def UpdateSession(
        self, request: session_pb2.UpdateSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.UpdateSessionResponse:
        violations = Violations()
        spec = request.session
        session_id = parse_session_name(violations, "session.name", spec.name)
        fields = field_masks.update_paths(
            violations, spec, request.update_mask.paths, MUTABLE_FIELDS
        )
        self._check_settings(violations, spec, fields)
        # A masked but unset TTL returns the session to the configured default.
        ttl = self._ttl(violations, spec) if "ttl" in fields else None
        violations.raise_if_any()
        if not fields:
            # Nothing to change: the session as it is (its etag still checked).
            current = await self._store.get(session_id, 0, owner=required_owner())
            field_masks.require_etag(spec.etag, current.etag, current.name)
            return session_pb2.UpdateSessionResponse(session=current)
        changes = SessionChanges(
            ttl_ms=ttl,
            system_prompt=spec.system_prompt if "system_prompt" in fields else None,
            context=spec.context if "context" in fields else None,
            labels=dict(spec.labels) if "labels" in fields else None,
        )
        updated = await self._store.update(
            session_id, changes, owner=required_owner(), etag=spec.etag
        )
        return session_pb2.UpdateSessionResponse(session=updated)

    async def DeleteSession(
        self, request: session_pb2.DeleteSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.DeleteSessionResponse:
        violations = Violations()
        session_id = parse_session_name(violations, "name", request.name)
        violations.raise_if_any()
        await self._store.delete(session_id, owner=required_owner())
        SESSIONS_DELETED.inc()
        return session_pb2.DeleteSessionResponse()

    async def AppendMessages(
        self, request: session_pb2.AppendMessagesRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.AppendMessagesResponse:
        violations = Violations()
        session_id = parse_session_name(violations, "session", request.session)
        check_messages(violations, "messages", request.messages, self._limits.max_message_bytes)
        where = request_scope(violations, "session.AppendMessages", request, context)
        violations.raise_if_any()
        return await once(
            self._once,
            where,
            context,
            session_pb2.AppendMessagesResponse,
            lambda _: self._append(session_id, request),
        )

    async def _append(
        self, session_id: str, request: session_pb2.AppendMessagesRequest
    ) -> session_pb2.AppendMessagesResponse:
        started = time.perf_counter()
        result = await self._store.append(
            session_id, request.messages, self._limits.max_messages, owner=required_owner()
        )
        APPEND_LATENCY.observe(time.perf_counter() - started)
        MESSAGES_APPENDED.inc(len(request.messages))
        return session_pb2.AppendMessagesResponse(
            first_index=result.first_index,
            message_count=result.message_count,
            expire_time=result.expire_time,
        )

    async def ListMessages(
        self, request: session_pb2.ListMessagesRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.ListMessagesResponse:
        violations = Violations()
        session_id = parse_session_name(violations, "parent", request.parent)
        size = page_size(
            violations, "page_size", request.page_size, DEFAULT_MESSAGE_PAGE, MAX_MESSAGE_PAGE
        )
        scope = session_name(session_id)
        offset = (
            decode_page_token(
                violations, "page_token", request.page_token, _MESSAGES_LISTING, scope
            )
            if request.page_token
            else 0
        )
        violations.raise_if_any()
        messages, total = await self._store.list_messages(
            session_id, offset, size, owner=required_owner()
        )
        end = offset + len(messages)
        token = encode_page_token(_MESSAGES_LISTING, scope, end) if end < total else ""
        return session_pb2.ListMessagesResponse(messages=messages, next_page_token=token)

    async def ClearHistory(
        self, request: session_pb2.ClearHistoryRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.ClearHistoryResponse:
        violations = Violations()
        session_id = parse_session_name(violations, "session", request.session)
        violations.raise_if_any()
        session = await self._store.clear(session_id, owner=required_owner())
        return session_pb2.ClearHistoryResponse(session=session)
