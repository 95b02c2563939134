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


async def sse_events(
    chunks: AsyncIterable[bytes], max_bytes: int
) -> AsyncGenerator[tuple[str, bytes], None]:
    """(event name, data) per event; data lines are joined with newlines, comments and
    `id:` / `retry:` fields are ignored."""
    pending = b""
    event = ""
    data: list[bytes] = []
    size = 0
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if data:
                    yield event, b"\n".join(data)
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
                    raise FrameTooLarge(max_bytes)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
        if len(pending) > max_bytes:
            raise FrameTooLarge(max_bytes)


async def ndjson_lines(chunks: AsyncIterable[bytes], max_bytes: int) -> AsyncGenerator[bytes, None]:
    """Each non-blank newline-terminated line."""
    pending = b""
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if len(line) > max_bytes:
                raise FrameTooLarge(max_bytes)
            if line.strip():
                yield line
        if len(pending) > max_bytes:
            raise FrameTooLarge(max_bytes)
