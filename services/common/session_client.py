"""Calls to the Session service (session-aware chat, an investigation's follow-up
conversation), through Envoy's internal listener."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.channels import InternalChannel
from services.common.remote import translate_rpc_error

# The most messages one GetSession returns (the session service's own maximum).
MAX_HISTORY_MESSAGES = 1000
# Messages per ListMessages page: small enough that a page of large messages stays
# well within the gRPC message size.
LIST_PAGE_MESSAGES = 100


class SessionClient:
    """A SessionService stub on a service's shared internal channel."""

    def __init__(self, internal: InternalChannel) -> None:
        self._stub = session_grpc.SessionServiceStub(internal.channel)
        self._metadata = internal.metadata

    async def create(
        self, session_id: str, session: session_pb2.Session, timeout: float | None
    ) -> str:
        """Creates `sessions/{session_id}` for the current caller; an existing session of
        that id (a repeat, or a race with another replica) is used as it is. Returns its
        name."""
        request = session_pb2.CreateSessionRequest(session=session, session_id=session_id)
        try:
            reply = await self._stub.CreateSession(
                request, timeout=timeout, metadata=self._metadata(timeout)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                return f"sessions/{session_id}"
            raise translate_rpc_error(error, "session") from None
        return reply.session.name

    async def load(
        self, name: str, limit: int, max_bytes: int, timeout: float | None
    ) -> session_pb2.Session:
        """The session with its `limit` most recent messages (oldest first), as many as
        fit in `max_bytes` of serialized messages (0: the session service's own bound)."""
        request = session_pb2.GetSessionRequest(
            name=name,
            view=session_pb2.SESSION_VIEW_FULL,
            message_limit=limit,
            message_bytes_limit=max_bytes,
        )
        try:
            reply = await self._stub.GetSession(
                request, timeout=timeout, metadata=self._metadata(timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise translate_rpc_error(error, "session") from None
        return reply.session

    async def append(
        self,
        name: str,
        messages: Sequence[common_pb2.Message],
        timeout: float | None,
        request_id: str = "",
    ) -> session_pb2.AppendMessagesResponse:
        """Appends the messages in one atomic step (all or none; once per `request_id`,
        when given)."""
        request = session_pb2.AppendMessagesRequest(
            session=name, messages=messages, request_id=request_id
        )
        try:
            return await self._stub.AppendMessages(
                request, timeout=timeout, metadata=self._metadata(timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise translate_rpc_error(error, "session") from None

    async def list_messages(
        self, name: str, max_messages: int, max_bytes: int, timeout: float | None
    ) -> list[common_pb2.Message]:
        """Every message of the session, oldest first, page by page: at most
        `max_messages` (the session service's own limit per session bounds it too), and
        no page is asked for once `max_bytes` of messages have arrived."""
        messages: list[common_pb2.Message] = []
        size = 0
        token = ""
        while True:
            request = session_pb2.ListMessagesRequest(
                parent=name, page_size=LIST_PAGE_MESSAGES, page_token=token
            )
            try:
                reply = await self._stub.ListMessages(
                    request, timeout=timeout, metadata=self._metadata(timeout)
                )
            except grpc.aio.AioRpcError as error:
                raise translate_rpc_error(error, "session") from None
            messages.extend(item.message for item in reply.messages)
            size += sum(item.message.ByteSize() for item in reply.messages)
            token = reply.next_page_token
            if not token or len(messages) >= max_messages or size > max_bytes:
                return messages[:max_messages]
