"""Anthropic Messages drop-in: `POST /v1/messages` (one `message`, or its event stream
when `stream` is true) and `POST /v1/messages/count_tokens`, over the router's one chat
turn (`chat_turns`): keys, ACLs, routing, fallbacks, limits, usage and cache as for any
chat request. Errors raised before the first body become the HTTP status (Envoy wraps
them in Anthropic's error envelope); a failure mid-stream is written as an `error`
event first."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import grpc
from google.api import httpbody_pb2

from llmgw.router.v1 import compat_service_pb2
from services.common.caller import current_principal
from services.common.identity import acl
from services.router.admission import check_model
from services.router.chat_options import validated
from services.router.compat import anthropic_stream, chat_turns
from services.router.compat.anthropic_reply import to_message
from services.router.compat.anthropic_request import to_chat_request
from services.router.compat.bodies import json_body, json_object, sse_body
from services.router.servicer import RouterServicer


async def create_message(
    router: RouterServicer,
    request: compat_service_pb2.CreateMessageRequest,
    context: grpc.aio.ServicerContext,
) -> AsyncGenerator[httpbody_pb2.HttpBody, None]:
    """The answer as Anthropic's `message` JSON, or as its SSE events."""
    chat = to_chat_request(json_object(request.body))
    if not chat.stream:
        reply = await chat_turns.answer(router, chat, context)
        yield json_body(to_message(reply))
        return
    chunks = chat_turns.streamed(router, chat, context)
    events = anthropic_stream.sse(chunks, chat.model)
    # Closing the events closes the turn when the client goes away.
    async with contextlib.aclosing(chunks), contextlib.aclosing(events):
        async for piece in events:
            yield sse_body(piece)


async def count_tokens(
    router: RouterServicer,
    request: compat_service_pb2.CountMessageTokensRequest,
    context: grpc.aio.ServicerContext,
) -> httpbody_pb2.HttpBody:
    """`{"input_tokens": N}` for the request as the model's first deployment the caller
    may reach would get it, counted by the router's prompt counter (the provider's
    tokenizer where the gateway has it, else its estimate); no model is called."""
    chat = to_chat_request(json_object(request.body), counting=True)
    catalog = router.catalog
    principal = current_principal()
    resolved = catalog.resolve(chat.model)
    check_model(principal, chat.model, resolved)
    upstream = validated(chat, streaming=False)
    reachable = [
        deployment
        for deployment in resolved.deployments
        if principal is None
        or any(
            acl.allows_model(principal, name, deployment.provider)
            for name in {chat.model, resolved.name}
        )
    ]
    provider_type = ""
    if reachable:
        first = reachable[0]
        upstream.provider, upstream.model = first.provider, first.model
        provider = catalog.config.providers.get(first.provider)
        provider_type = provider.type if provider is not None else ""
    tokens, _exact = router.prompt_counter.count(upstream, provider_type)
    return json_body({"input_tokens": tokens})
