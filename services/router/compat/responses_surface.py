"""`POST /v1/responses`: OpenAI's Responses API over the router's chat turn.

The body is translated (`responses_request`), the stored conversation of
`previous_response_id` put before its input (`responses_state`), and the turn answered
through `chat_turns` (admission, routing, limits, usage: nothing of its own), either as
one `response` object (`responses_reply`) or as the Responses event stream
(`responses_stream`). A stored response is saved before its id reaches the caller, so
the id can be continued at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import grpc
from google.api import httpbody_pb2

from llmgw.router.v1 import chat_pb2, compat_service_pb2
from services.common.caller import current_principal
from services.common.channels import remaining_timeout
from services.common.errors import PermissionDenied
from services.common.identity import acl
from services.router.compat import chat_turns
from services.router.compat.bodies import json_body, json_object, sse_body
from services.router.compat.responses_reply import assistant_message, from_completion, response_id
from services.router.compat.responses_request import (
    to_chat_request,
    with_history,
)
from services.router.compat.responses_state import ResponseStore
from services.router.compat.responses_stream import ResponseStream, events
from services.router.servicer import RouterServicer


async def create_response(
    router: RouterServicer,
    request: compat_service_pb2.CreateResponseRequest,
    context: grpc.aio.ServicerContext,
) -> AsyncGenerator[httpbody_pb2.HttpBody, None]:
    """The answer: one JSON body, or the event stream when `stream` is true."""
    parsed = to_chat_request(json_object(request.body))
    store = ResponseStore(router.sessions, router.catalog.config.sessions.max_messages)
    history: list[chat_pb2.ChatMessage] = []
    if parsed.previous_response_id:
        history = await store.history(parsed.previous_response_id, remaining_timeout(context))
    chat = with_history(parsed, history)
    conversation = history + parsed.input_messages
    storing = _storing(parsed.store)
    parsed.echo["store"] = storing
    if storing:
        store.check_room(len(conversation) + 1)
    resp_id = response_id()
    if not parsed.stream:
        answer = await chat_turns.answer(router, chat, context)
        response = from_completion(answer, resp_id, parsed.echo)
        if storing:
            await _save(store, resp_id, conversation, response["output"], context)
        yield json_body(response)
        return
    stream = ResponseStream(resp_id, chat.model, parsed.echo)

    async def save(final: dict[str, Any]) -> None:
        await _save(store, resp_id, conversation, final["output"], context)

    pieces = events(stream, chat_turns.streamed(router, chat, context), save if storing else None)
    async with contextlib.aclosing(pieces):
        async for piece in pieces:
            yield sse_body(piece)


def _storing(requested: bool | None) -> bool:
    """Whether this response is stored. Stored responses are sessions, so storing needs
    the caller's access to the session service: without it a response that did not ask
    for `store` is answered unstored (its `store` says false), and one that asked is
    refused before any model call."""
    if requested is False:
        return False
    principal = current_principal()
    if principal is None or acl.allows_service(principal, "session"):
        return True
    if requested:
        raise PermissionDenied(
            f"store: storing responses needs the session service, which is not allowed for "
            f"{principal.name}; send store: false"
        )
    return False


async def _save(
    store: ResponseStore,
    resp_id: str,
    conversation: list[chat_pb2.ChatMessage],
    output: list[dict[str, Any]],
    context: grpc.aio.ServicerContext,
) -> None:
    await store.save(
        resp_id, [*conversation, assistant_message(output)], remaining_timeout(context)
    )
