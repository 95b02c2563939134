"""A chat turn's events (`turn_events`) folded into one `chat.completion` answer
(CreateChatCompletion): the answer at `Finished`, all metadata as trailers at
`Settled`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import grpc

from llmgw.router.v1 import chat_pb2
from services.router import chat_response
from services.router.turn_events import Finished, Settled, TurnEvent


async def fold(
    events: AsyncGenerator[TurnEvent, None], rpc: grpc.aio.ServicerContext
) -> chat_pb2.CreateChatCompletionResponse:
    """Reads the turn to its end (a failure raises out of it) and returns its answer."""
    finished: Finished | None = None
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Finished):
                finished = event
            elif isinstance(event, Settled):
                # Trailers, not headers: sending headers apart from the answer would open
                # a window in which this replica dying leaves Envoy a started response it
                # cannot retry.
                rpc.set_trailing_metadata((*event.metadata, *event.trailers))
    if finished is None:
        raise RuntimeError("the chat turn ended without an answer")
    return chat_response.completion(
        finished.answer,
        finished.model,
        finish_reason=finished.finish_reason,
        total_usage=finished.usage,
    )
