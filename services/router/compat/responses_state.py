"""`previous_response_id` over the Session service.

Each stored response (`store` not false) is a session of its own, named after the
response id (`sessions/resp_...`), holding the whole conversation up to and including
that answer: the previous response's messages, this request's input, this answer. A
request naming a previous response loads that session's messages and puts them before
its input. Nothing is ever mutated, so branching from any earlier response works.
Sessions belong to the consumer that created them: another consumer's response id is
NOT_FOUND, exactly as an unknown one. Instructions are not stored: as in OpenAI's API,
they apply to the one response that sent them.

Cost per stored turn: one ListMessages page per 100 earlier messages (when
continuing), then one CreateSession and one AppendMessages carrying the whole
conversation, so storage grows with the square of a conversation's length (each
response keeps its own copy), bounded by the session service's per-session message limit
and its TTL.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import json_format

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.common.v1 import error_reason_pb2
from llmgw.router.v1 import chat_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.errors import GatewayError, NotFound, QuotaViolation, ResourceExhausted
from services.common.session_client import SessionClient
from services.common.session_names import RESOURCE_TYPE, session_name
from services.router.compat.responses_request import RESPONSE_ID, json_value

# The largest stored conversation a request may continue: it is sent to the provider as
# a whole, and no provider request is larger.
MAX_HISTORY_BYTES = 16 * 1024 * 1024

_ROLES = {
    "system": common_pb2.ROLE_SYSTEM,
    "developer": common_pb2.ROLE_DEVELOPER,
    "user": common_pb2.ROLE_USER,
    "assistant": common_pb2.ROLE_ASSISTANT,
    "tool": common_pb2.ROLE_TOOL,
}
_ROLE_NAMES = {number: name for name, number in _ROLES.items()}


def to_stored(message: chat_pb2.ChatMessage) -> common_pb2.Message:
    """A chat message as the session service stores it."""
    out = common_pb2.Message(
        role=_ROLES.get(message.role, common_pb2.ROLE_USER),
        name=message.name,
        tool_call_id=message.tool_call_id,
    )
    content = json_format.MessageToDict(message.content) if message.HasField("content") else None
    if isinstance(content, str):
        out.content.append(common_pb2.ContentPart(text=content))
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "image_url":
                image = part.get("image_url", {})
                out.content.append(
                    common_pb2.ContentPart(
                        image_url=common_pb2.ImageUrl(
                            url=image.get("url", ""), detail=image.get("detail", "")
                        )
                    )
                )
            else:
                out.content.append(common_pb2.ContentPart(text=part.get("text", "")))
    for call in message.tool_calls:
        out.tool_calls.append(
            common_pb2.ToolCall(
                id=call.id, name=call.function.name, arguments=call.function.arguments
            )
        )
    if not out.content and not out.tool_calls:
        out.content.append(common_pb2.ContentPart(text=""))
    return out


def from_stored(message: common_pb2.Message) -> chat_pb2.ChatMessage:
    """A stored message back as a chat message."""
    out = chat_pb2.ChatMessage(
        role=_ROLE_NAMES.get(message.role, "user"),
        name=message.name,
        tool_call_id=message.tool_call_id,
    )
    parts: list[dict[str, object]] = []
    for part in message.content:
        if part.WhichOneof("part") == "image_url":
            image = {"url": part.image_url.url}
            if part.image_url.detail:
                image["detail"] = part.image_url.detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": part.text})
    if parts:
        out.content.CopyFrom(json_value(parts))
    for call in message.tool_calls:
        out.tool_calls.append(
            chat_pb2.ChatToolCall(
                id=call.id,
                type="function",
                function=chat_pb2.ChatFunctionCall(name=call.name, arguments=call.arguments),
            )
        )
    return out


def _not_found(response_id: str) -> NotFound:
    return NotFound(
        f"previous_response_id: previous response with id '{response_id[:80]}' not found",
        resource_type=RESOURCE_TYPE,
        resource_name=response_id[:80],
    )


class ResponseStore:
    """Stored responses of the current caller, one session each."""

    def __init__(self, sessions: SessionClient, max_messages: int) -> None:
        self._sessions = sessions
        # The session service's limit per session (a stored conversation is one).
        self._max_messages = max_messages

    async def history(self, response_id: str, timeout: float | None) -> list[chat_pb2.ChatMessage]:
        """The conversation up to and including `response_id`'s answer."""
        if not RESPONSE_ID.match(response_id):
            raise _not_found(response_id)
        try:
            stored = await self._sessions.list_messages(
                session_name(response_id), self._max_messages, MAX_HISTORY_BYTES, timeout
            )
        except GatewayError as error:
            if error.code is grpc.StatusCode.NOT_FOUND:
                raise _not_found(response_id) from None
            raise
        size = sum(message.ByteSize() for message in stored)
        if size > MAX_HISTORY_BYTES:
            raise ResourceExhausted(
                f"previous_response_id: the stored conversation is {size} bytes; at most "
                f"{MAX_HISTORY_BYTES} can be continued (start a new conversation)",
                reason=error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED,
            )
        return [from_stored(message) for message in stored]

    def check_room(self, count: int) -> None:
        """Refuses, before any model call, a conversation too long to store."""
        if count > self._max_messages:
            raise ResourceExhausted(
                f"this conversation would hold {count} messages; a stored response holds at "
                f"most {self._max_messages} (send store: false, or start a new conversation)",
                [QuotaViolation("store", f"at most {self._max_messages} messages per response")],
                reason=error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED,
            )

    async def save(
        self, response_id: str, messages: Sequence[chat_pb2.ChatMessage], timeout: float | None
    ) -> None:
        """Stores the whole conversation as the session of `response_id`."""
        name = await self._sessions.create(response_id, session_pb2.Session(), timeout)
        await self._sessions.append(name, [to_stored(message) for message in messages], timeout)
