"""One chat turn for a drop-in surface, through the same path as RouterService: the
caller's request translated to a `CreateChatCompletionRequest`, admitted
(`RouterServicer.admit`: keys, ACLs, limits, one snapshot of the catalogue), run by the
turn runner and answered either folded into one completion or as completion chunks,
which each surface translates into its vendor's shape. No surface repeats the loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Protocol

import grpc

from llmgw.router.v1 import chat_pb2
from services.common import genai_spans
from services.router import chat_spans
from services.router.gen_ai_metrics import Operation, RequestTiming
from services.router.stream_chunks import chunks
from services.router.turn_context import TurnContext
from services.router.turn_runner import run_turn
from services.router.unary_fold import fold


class Admission(Protocol):
    """What admits a chat request (RouterServicer)."""

    async def admit(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        operation: Operation,
        request_id: str,
        timing: RequestTiming,
    ) -> TurnContext: ...


async def answer(
    chat: Admission,
    request: chat_pb2.CreateChatCompletionRequest,
    context: grpc.aio.ServicerContext,
) -> chat_pb2.CreateChatCompletionResponse:
    """The whole answer. Its routing, cache and quota metadata go out as headers (call
    before yielding the answer): a drop-in RPC streams its one body, and Envoy passes a
    stream's headers, not its trailers, to REST clients."""
    timing = RequestTiming("chat")
    with genai_spans.chat(request.model, client=False) as span:
        turn = await chat.admit(request, context, "chat", "", timing)
        reply = await fold(run_turn(turn, span), context)
        chat_spans.answered(span, reply)
    metadata = tuple(context.trailing_metadata() or ())
    context.set_trailing_metadata(())
    await context.send_initial_metadata(metadata)
    return reply


async def streamed(
    chat: Admission,
    request: chat_pb2.CreateChatCompletionRequest,
    context: grpc.aio.ServicerContext,
) -> AsyncGenerator[chat_pb2.StreamChatCompletionResponse, None]:
    """The answer's chunks, usage last; closing this generator closes the turn. A
    failure after the first chunk comes as a chunk carrying its status (`error`), then
    raises."""
    timing = RequestTiming("chat_stream")
    request.stream = True
    request.stream_options.include_usage = True
    with genai_spans.chat(request.model, client=False) as span:
        turn = await chat.admit(request, context, "chat_stream", "", timing)
        translated = chunks(run_turn(turn, span), context, include_usage=True)
        async with contextlib.aclosing(translated):
            async for chunk in translated:
                chat_spans.streamed(span, chunk)
                yield chunk
