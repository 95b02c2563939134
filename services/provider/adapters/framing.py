"""Splits a streamed HTTP body into server-sent events or NDJSON lines.

Both follow their specifications strictly at the end of the body: an event without its
blank line, or a line without its newline, is incomplete and dropped, so a truncated
body surfaces as a stream without its terminal event rather than as a half event.

Both are bounded: an event (its data lines together) or a line longer than `max_bytes`
raises `FrameTooLarge` instead of growing a buffer without end; the relay turns it into
a status naming the limit.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable


class FrameTooLarge(Exception):
    """An event or line of the stream exceeds the configured `max_event_bytes`."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a stream event exceeds {limit} bytes")
        self.limit = limit


async def sse_batches(
    chunks: AsyncIterable[bytes], max_bytes: int
) -> AsyncGenerator[list[tuple[str, bytes]], None]:
    """(event name, data) per event, in lists: the events each read of the body completed
    (a list is never empty). Data lines are joined with newlines; comments and `id:` /
    `retry:` fields are ignored."""
    pending = b""
    event = ""
    data: list[bytes] = []
    size = 0
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        batch: list[tuple[str, bytes]] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if data:
                    batch.append((event, b"\n".join(data)))
                event = ""
                data = []
                size = 0
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                data.append(value)
                size += len(value) + 1
                if size > max_bytes:
                    break
            elif name == b"event":
                event = value.decode("utf-8", "replace")
        # The events completed before an oversized one still go out, as they came.
        if batch:
            yield batch
        if size > max_bytes or len(pending) > max_bytes:
            raise FrameTooLarge(max_bytes)


async def sse_events(
    chunks: AsyncIterable[bytes], max_bytes: int
) -> AsyncGenerator[tuple[str, bytes], None]:
    """The events of `sse_batches` one by one."""
    async for batch in sse_batches(chunks, max_bytes):
        for event in batch:
            yield event


async def ndjson_batches(
    chunks: AsyncIterable[bytes], max_bytes: int
) -> AsyncGenerator[list[bytes], None]:
    """Each non-blank newline-terminated line, in lists: the lines each read of the body
    completed (a list is never empty)."""
    pending = b""
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        batch: list[bytes] = []
        too_large = False
        for line in lines:
            if len(line) > max_bytes:
                too_large = True
                break
            if line.strip():
                batch.append(line)
        # The lines completed before an oversized one still go out, as they came.
        if batch:
            yield batch
        if too_large or len(pending) > max_bytes:
            raise FrameTooLarge(max_bytes)


async def ndjson_lines(chunks: AsyncIterable[bytes], max_bytes: int) -> AsyncGenerator[bytes, None]:
    """The lines of `ndjson_batches` one by one."""
    async for batch in ndjson_batches(chunks, max_bytes):
        for line in batch:
            yield line
