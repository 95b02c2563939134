"""Drives a provider's streamed body through a family's translator.

The relay owns the stream contract for every family: events pass through as they come;
the final event (finish reason, usage) is produced when the provider's terminal event
arrives; a body that ends before it, or a connection that breaks, raises UNAVAILABLE
instead of ending quietly with a partial answer. The upstream response is closed on
every exit, including when the caller goes away (generator close or cancellation).

A stream that sends no event for `idle_timeout` seconds is abandoned with UNAVAILABLE:
keep-alive comments (`: ping`) reset the socket's read timeout but are no event, so
without this an upstream sending only them would hold the caller until its deadline,
or forever without one. An event over the framing's size limit ends it the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Protocol, TypeVar

import httpx2

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.framing import FrameTooLarge
from services.provider.adapters.upstream_errors import (
    stream_ended_early,
    stream_event_too_large,
    stream_idle,
    timed_out,
)

Frame_contra = TypeVar("Frame_contra", contravariant=True)
Frame = TypeVar("Frame")


class Translator(Protocol[Frame_contra]):
    """A family's stream state: `feed` one frame, `done` once the terminal event came."""

    done: bool

    def feed(self, frame: Frame_contra) -> list[provider_pb2.StreamCompleteResponse]: ...

    def final(self) -> provider_pb2.StreamCompleteResponse: ...


async def _paced(
    frames: AsyncGenerator[Frame, None], idle_timeout: float, provider: str
) -> AsyncGenerator[Frame, None]:
    """`frames`, each awaited at most `idle_timeout` seconds."""
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                frame = await anext(frames)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise stream_idle(provider, idle_timeout) from None
        yield frame


async def relay(
    response: httpx2.Response,
    frames: AsyncGenerator[Frame, None],
    translator: Translator[Frame],
    provider: str,
    idle_timeout: float,
) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
    paced = _paced(frames, idle_timeout, provider)
    try:
        async for frame in paced:
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
    except FrameTooLarge as error:
        raise stream_event_too_large(provider, error.limit) from None
    finally:
        await paced.aclose()
        await frames.aclose()
        await response.aclose()
    if not translator.done:
        raise stream_ended_early(provider, "the body ended without the terminal event")
