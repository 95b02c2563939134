"""Time to first token of streamed completions, measured sequentially from one client.

The same lean client measures the upstream directly and through the gateway, so its own
cost cancels out of the difference. A raw keep-alive HTTP/1.1 connection is used: the
time runs from sending the request to reading the first SSE `data:` event that carries
content (or, for another stream shape, its own marker).
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

# What marks the first event that carries text: OpenAI's chat chunks.
CONTENT = b'"content"'


@dataclass(frozen=True)
class TtftResult:
    samples: int
    p50_ms: float
    p99_ms: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    """The value at rank `q` (0..1) of `values`, nearest rank, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: bytes,
    *,
    marker: bytes = CONTENT,
) -> float:
    started = time.perf_counter()
    writer.write(request)
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(status.decode(errors="replace").strip())
    chunked = False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    if not chunked:
        raise RuntimeError("expected a chunked SSE response")
    first: float | None = None
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            break
        data = await reader.readexactly(size + 2)
        if first is None and marker in data:
            first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("stream carried no content")
    return first


T = TypeVar("T")
Exchange = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[T]]


async def sequential(
    url: str, body: bytes, samples: int, api_key: str, *, warmup: int, exchange: Exchange[T]
) -> tuple[list[T], int]:
    """`warmup + samples` POSTs of `body` one after another on one keep-alive connection;
    the results of the last `samples` and the number of failed exchanges (each failure
    opens a new connection)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    results: list[T] = []
    errors = 0
    try:
        for i in range(warmup + samples):
            try:
                value = await exchange(reader, writer, request)
            except (RuntimeError, ConnectionError, asyncio.IncompleteReadError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                continue
            if i >= warmup:
                results.append(value)
    finally:
        writer.close()
    return results, errors


async def measure(
    url: str,
    body: bytes,
    samples: int,
    api_key: str,
    warmup: int = 50,
    *,
    marker: bytes = CONTENT,
) -> TtftResult:
    """TTFT of `samples` streams; `marker` is what the first text-carrying event holds
    (`"text_delta"` for Anthropic's stream shape)."""
    exchange = functools.partial(_one, marker=marker)
    times, errors = await sequential(url, body, samples, api_key, warmup=warmup, exchange=exchange)
    if not times:
        return TtftResult(0, float("nan"), float("nan"), errors)
    return TtftResult(
        samples=len(times),
        p50_ms=statistics.median(times) * 1000,
        p99_ms=percentile(times, 0.99) * 1000,
        errors=errors,
    )
