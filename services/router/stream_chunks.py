"""A chat turn's events (`turn_events`) as OpenAI `chat.completion.chunk`s
(StreamChatCompletion), sent as they come: headers at `Started`, trailers at
`Settled`, and the usage chunk last when the caller asked for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import grpc

from llmgw.router.v1 import chat_pb2
from services.router.chat_response import ChunkBuilder
from services.router.turn_events import (
    Delta,
    Failed,
    Finished,
    Settled,
    Started,
    ToolStep,
    TurnEvent,
)


async def chunks(
    events: AsyncGenerator[TurnEvent, None],
    rpc: grpc.aio.ServicerContext,
    *,
    include_usage: bool,
) -> AsyncGenerator[chat_pb2.StreamChatCompletionResponse, None]:
    """The turn's chunks; closing this generator closes the turn."""
    builder: ChunkBuilder | None = None
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Started):
                await rpc.send_initial_metadata(tuple(event.metadata))
                builder = ChunkBuilder(event.model)
                continue
            if builder is None:
                raise RuntimeError(f"a chat turn's {type(event).__name__} before it started")
            chunk = _chunk(builder, event, rpc, include_usage=include_usage)
            if chunk is not None:
                yield chunk


def _chunk(
    builder: ChunkBuilder,
    event: TurnEvent,
    rpc: grpc.aio.ServicerContext,
    *,
    include_usage: bool,
) -> chat_pb2.StreamChatCompletionResponse | None:
    if isinstance(event, Delta):
        return builder.content(event.event)
    if isinstance(event, ToolStep):
        return builder.progress(event.progress)
    if isinstance(event, Failed):
        return builder.error(event.status)
    if isinstance(event, Finished):
        return builder.finish(event.finish_reason)
    if isinstance(event, Settled):
        rpc.set_trailing_metadata(tuple(event.trailers))
        if include_usage and event.usage is not None:
            return builder.usage(event.usage)
    return None
