"""Builders and error inspection shared by the session tests."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from llmgw.common.v1 import chat_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.errors import RemoteError, find_detail
from tests.support.servicer_context import no_context


def text(role: int, value: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=role, content=[chat_pb2.ContentPart(text=value)])


def user(value: str) -> chat_pb2.Message:
    return text(chat_pb2.ROLE_USER, value)


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    return RemoteError.from_rpc_error(error).status


def violations_of(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields named by the BadRequest detail, in order."""
    bad = find_detail(status_of(error), error_details_pb2.BadRequest)
    assert bad is not None, "INVALID_ARGUMENT without a BadRequest detail"
    return [v.field for v in bad.field_violations]


def reason_of(error: grpc.aio.AioRpcError) -> str:
    info = find_detail(status_of(error), error_details_pb2.ErrorInfo)
    return info.reason if info else ""


async def create(
    stub: session_grpc.SessionServiceStub, session_id: str = "", **fields: object
) -> session_pb2.Session:
    reply = await stub.CreateSession(
        session_pb2.CreateSessionRequest(
            session_id=session_id, session=session_pb2.Session(**fields)
        )
    )
    return reply.session


async def append(
    stub: session_grpc.SessionServiceStub, name: str, *texts: str
) -> session_pb2.AppendMessagesResponse:
    return await stub.AppendMessages(
        session_pb2.AppendMessagesRequest(session=name, messages=[user(t) for t in texts])
    )


async def all_messages(
    stub: session_grpc.SessionServiceStub, name: str, page_size: int = 1000
) -> list[session_pb2.SessionMessage]:
    messages: list[session_pb2.SessionMessage] = []
    token = ""
    while True:
        reply = await stub.ListMessages(
            session_pb2.ListMessagesRequest(parent=name, page_size=page_size, page_token=token)
        )
        messages.extend(reply.messages)
        token = reply.next_page_token
        if not token:
            return messages


# For handlers called directly, outside a server.
NO_CONTEXT: Any = no_context()
