"""Drives a provider's streamed body through a family's translator.

The relay owns the stream contract for every family: events pass through as they come;
the final event (finish reason, usage) is produced when the provider's terminal event
arrives; a body that ends before it, or a connection that breaks, raises UNAVAILABLE
instead of ending quietly with a partial answer. The upstream response is closed on
every exit, including when the caller goes away (generator close or cancellation).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol, TypeVar

import httpx2

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.upstream_errors import stream_ended_early, timed_out

Frame_contra = TypeVar("Frame_contra", contravariant=True)
Frame = TypeVar("Frame")


class Translator(Protocol[Frame_contra]):
    """A family's stream state: `feed` one frame, `done` once the terminal event came."""

    done: bool

    def feed(self, frame: Frame_contra) -> list[provider_pb2.StreamCompleteResponse]: ...

    def final(self) -> provider_pb2.StreamCompleteResponse: ...


async def relay(
    response: httpx2.Response,
    frames: AsyncGenerator[Frame, None],
    translator: Translator[Frame],
    provider: str,
) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
    try:
        async for frame in frames:
            if translator.done:
                # Read to the end of the body so the connection can be reused.
                continue
            for event in translator.feed(frame):
                yield event
            if translator.done:
                yield translator.final()
    # A failure after the terminal event loses only the connection: the answer is whole.
    except httpx2.TimeoutException:
        if not translator.done:
            raise timed_out(provider) from None
    except httpx2.TransportError:
        if not translator.done:
            raise stream_ended_early(provider, "the connection broke") from None
    finally:
        await frames.aclose()
        await response.aclose()
    if not translator.done:
        raise stream_ended_early(provider, "the body ended without the terminal event")
