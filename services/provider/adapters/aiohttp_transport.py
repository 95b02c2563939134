"""An httpx2 transport on aiohttp, for the provider SDKs and the Ollama client.

Both SDKs speak httpx2 and accept any httpx2 client. Their default transport parses
HTTP in pure Python; aiohttp's C parser saves 250-350 µs per unary completion against a
local provider, a third of the gateway's latency budget.
The SDKs ship an aiohttp adapter too, but it reports a refused connection as a
connect *timeout*; this one maps each aiohttp failure to the httpx2 exception that
names it, so the SDKs' own error classes (APIConnectionError, APITimeoutError) and
ours stay right. With tracing on, each request is an HTTP client span (ended with its
body) whose `traceparent` goes upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx2

from services.common import tracing
from services.common.tracing import HttpClientSpan

# Bodies read as they arrive and bounded per event by the framing (framing.py); any
# other body is bounded whole.
STREAM_CONTENT_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl")


class ResponseTooLarge(httpx2.ReadError):
    """A response body (not a stream) exceeds the provider's `max_response_bytes`."""

    def __init__(self, limit: int, request: httpx2.Request) -> None:
        super().__init__(f"the response body exceeds {limit} bytes", request=request)
        self.limit = limit


def _translate(error: Exception, request: httpx2.Request) -> httpx2.TransportError:
    message = str(error) or type(error).__name__
    kind: type[httpx2.TransportError]
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        kind = httpx2.ConnectTimeout
    elif isinstance(error, TimeoutError):
        kind = httpx2.ReadTimeout
    elif isinstance(error, aiohttp.ClientConnectorError):
        kind = httpx2.ConnectError
    elif isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        kind = httpx2.RemoteProtocolError
    elif isinstance(error, aiohttp.InvalidURL):
        kind = httpx2.UnsupportedProtocol
    else:
        kind = httpx2.ReadError
    return kind(message, request=request)


def too_large(error: BaseException) -> ResponseTooLarge | None:
    """The ResponseTooLarge behind `error` (itself, or what an SDK wrapped), if any."""
    for candidate in (error, error.__cause__, error.__context__):
        if isinstance(candidate, ResponseTooLarge):
            return candidate
    return None


class _Body(httpx2.AsyncByteStream):
    """A response body as it arrives. Closing it before the end closes the connection,
    which is how a provider learns that the caller went away. A body longer than
    `limit` bytes raises ResponseTooLarge (None: a stream, bounded by its framing)."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request: httpx2.Request,
        limit: int | None,
        span: HttpClientSpan | None = None,
    ) -> None:
        self._response = response
        self._request = request
        self._limit = limit
        self._span = span

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in self._response.content.iter_any():
                received += len(chunk)
                if self._limit is not None and received > self._limit:
                    raise ResponseTooLarge(self._limit, self._request)
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            if self._span is not None:
                self._span.failed(error)
            raise _translate(error, self._request) from error
        except ResponseTooLarge as error:
            if self._span is not None:
                self._span.failed(error)
            raise

    async def aclose(self) -> None:
        if self._span is not None:
            self._span.end()
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """One aiohttp session (one connection pool) per provider instance."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_body_bytes: int | None = None,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self._max_connections = max_connections
        self._max_body_bytes = max_body_bytes
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, keepalive_timeout=self._keepalive_expiry
        )
        # httpx2 decodes the body from its Content-Encoding itself and keeps the cookies.
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        headers = request.headers.multi_items()
        span = tracing.http_client_span(request.method, str(request.url))
        if span is not None:
            headers += span.headers()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            )
        except BaseException as error:
            if span is not None:
                span.failed(error)
            if isinstance(error, aiohttp.ClientError | TimeoutError):
                raise _translate(error, request) from error
            raise
        if span is not None:
            span.status(response.status)
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        streamed = response.content_type in STREAM_CONTENT_TYPES
        return httpx2.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request, None if streamed else self._max_body_bytes, span),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
