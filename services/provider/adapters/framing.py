"""Splits a streamed HTTP body into server-sent events or NDJSON lines.

Both follow their specifications strictly at the end of the body: an event without its
blank line, or a line without its newline, is incomplete and dropped, so a truncated
body surfaces as a stream without its terminal event rather than as a half event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncGenerator[tuple[str, bytes], None]:
    """(event name, data) per event; data lines are joined with newlines, comments and
    `id:` / `retry:` fields are ignored."""
    pending = b""
    event = ""
    data: list[bytes] = []
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
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")


async def ndjson_lines(chunks: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """Each non-blank newline-terminated line."""
    pending = b""
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.strip():
                yield line
