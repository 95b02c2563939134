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

Coalescing: the framing hands over the frames of each read of the body together. When
several arrived in one read (the upstream is ahead of us: under load, or a fast model),
adjacent pieces of text become one event, so the router, Envoy and the client each
handle one message instead of several. Nothing waits for more: a frame that arrives on
its own goes out on its own at once, so the first token is never delayed.
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


class Upstream(Protocol):
    """The upstream answer a stream reads (an httpx2 response, or the transport's Reply)."""

    async def aclose(self) -> None: ...


class Translator(Protocol[Frame_contra]):
    """A family's stream state: `feed` one frame, `done` once the terminal event came."""

    done: bool

    def feed(self, frame: Frame_contra) -> list[provider_pb2.StreamCompleteResponse]: ...

    def final(self) -> provider_pb2.StreamCompleteResponse: ...


async def _paced(
    batches: AsyncGenerator[list[Frame], None], idle_timeout: float, provider: str
) -> AsyncGenerator[list[Frame], None]:
    """`batches`, each awaited at most `idle_timeout` seconds."""
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                batch = await anext(batches)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise stream_idle(provider, idle_timeout) from None
        yield batch


def _text_only(event: provider_pb2.StreamCompleteResponse) -> str | None:
    """The kind of piece (`text` or `refusal`) of an event that carries nothing else."""
    kind = event.WhichOneof("event")
    if kind == "tool_call" or event.finish_reason or event.HasField("usage"):
        return None
    return kind


def coalesced(
    events: list[provider_pb2.StreamCompleteResponse],
) -> list[provider_pb2.StreamCompleteResponse]:
    """`events` with each run of adjacent text-only events (text, or refusal) of one
    response joined into one; everything else as it is, in order."""
    if len(events) < 2:
        return events
    out: list[provider_pb2.StreamCompleteResponse] = []
    run_kind: str | None = None
    for event in events:
        kind = _text_only(event)
        previous = out[-1] if out else None
        if (
            kind is not None
            and kind == run_kind
            and previous is not None
            and previous.id == event.id
            and previous.model == event.model
        ):
            if kind == "text":
                previous.text += event.text
            else:
                previous.refusal += event.refusal
            continue
        out.append(event)
        run_kind = kind
    return out


async def relay(
    response: Upstream,
    batches: AsyncGenerator[list[Frame], None],
    translator: Translator[Frame],
    provider: str,
    idle_timeout: float,
) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
    """The events of the frames `batches` brings, each read's coalesced."""
    paced = _paced(batches, idle_timeout, provider)
    try:
        async for batch in paced:
            if translator.done:
                # Read to the end of the body so the connection can be reused.
                continue
            events: list[provider_pb2.StreamCompleteResponse] = []
            failure: Exception | None = None
            for frame in batch:
                try:
                    events += translator.feed(frame)
                except Exception as error:  # an error event: what came before it goes out first
                    failure = error
                    break
                if translator.done:
                    events.append(translator.final())
                    break
            for event in coalesced(events):
                yield event
            if failure is not None:
                raise failure
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
        await batches.aclose()
        await response.aclose()
    if not translator.done:
        raise stream_ended_early(provider, "the body ended without the terminal event")
