"""Writes a protocol's stream frames, applying a behaviour's pacing and stream faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from tests.fakes.behaviour import Behaviour


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes written as one chunk. `piece` frames carry content and are what stream
    faults count; `terminal` frames are the protocol's end-of-stream events."""

    data: bytes
    piece: bool = False
    terminal: bool = False


class Fault(Enum):
    BREAK = "break"
    ERROR = "error"
    TRUNCATE = "truncate"


def first_fault(behaviour: Behaviour) -> tuple[Fault, int] | None:
    """The fault that fires first; on a tie an abort beats an error beats a clean end."""
    faults = [
        (count, order, fault)
        for order, (fault, count) in enumerate(
            (
                (Fault.BREAK, behaviour.break_after),
                (Fault.ERROR, behaviour.error_after),
                (Fault.TRUNCATE, behaviour.truncate_after),
            )
        )
        if count is not None
    ]
    if not faults:
        return None
    count, _, fault = min(faults)
    return fault, count


def abort_connection(request: web.Request) -> None:
    """Resets the TCP connection with no further bytes: what a crashed upstream looks like."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def write_frames(
    request: web.Request,
    response: web.StreamResponse,
    frames: Iterable[Frame],
    behaviour: Behaviour,
    error_frame: Callable[[], bytes],
) -> None:
    """Raises ConnectionResetError when the client has gone away mid-stream."""
    fault = first_fault(behaviour)
    delay = behaviour.chunk_delay
    sent = 0
    for frame in frames:
        if fault is not None and (sent >= fault[1] or frame.terminal):
            await _apply_fault(fault[0], request, response, error_frame)
            return
        if frame.piece and sent and delay > 0:
            await asyncio.sleep(delay)
        await response.write(frame.data)
        if frame.piece:
            sent += 1
    await response.write_eof()


async def _apply_fault(
    fault: Fault,
    request: web.Request,
    response: web.StreamResponse,
    error_frame: Callable[[], bytes],
) -> None:
    if fault is Fault.BREAK:
        abort_connection(request)
        return
    if fault is Fault.ERROR:
        await response.write(error_frame())
    await response.write_eof()
