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

from collections.abc import AsyncIterator, Sequence

import aiohttp
import httpx2
import yarl

from services.common import tracing
from services.common.tracing import HttpClientSpan

# Bodies read as they arrive and bounded per event by the framing (framing.py); any
# other body is bounded whole.
STREAM_CONTENT_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl")
# An httpx2 request extension: set on a request whose answer is never a stream, so its
# body is bounded whatever content type the answer claims.
UNARY = "llmgw.unary"


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


def _client_timeout(
    pool: float | None, connect: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


def _plain_request(method: str, url: str | yarl.URL) -> httpx2.Request:
    """The httpx2 request an error names, for the exchanges of `AiohttpTransport.post`."""
    return httpx2.Request(method, str(url))


class _Body(httpx2.AsyncByteStream):
    """A response body as it arrives. Closing it before the end closes the connection,
    which is how a provider learns that the caller went away. A body longer than
    `limit` bytes raises ResponseTooLarge (None: a stream, bounded by its framing).
    Errors name `request`, or one built from the response when they happen."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request: httpx2.Request | None,
        limit: int | None,
        span: HttpClientSpan | None = None,
    ) -> None:
        self._response = response
        self._request = request
        self._limit = limit
        self._span = span

    def _named(self) -> httpx2.Request:
        return self._request or _plain_request(self._response.method, self._response.url)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in self._response.content.iter_any():
                received += len(chunk)
                if self._limit is not None and received > self._limit:
                    raise ResponseTooLarge(self._limit, self._named())
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            if self._span is not None:
                self._span.failed(error)
            raise _translate(error, self._named()) from error
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


# Headers of a body already decoded by aiohttp that no longer describe it.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Reply:
    """An answer of `AiohttpTransport.post`: read whole (`read`, then `content`) or as it
    arrives (`aiter_bytes`); `aclose` ends it early or releases the connection."""

    def __init__(self, response: aiohttp.ClientResponse, body: _Body) -> None:
        self._response = response
        self._body = body
        self.content = b""

    @property
    def status_code(self) -> int:
        return self._response.status

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return aiter(self._body)

    async def read(self) -> bytes:
        try:
            self.content = b"".join([chunk async for chunk in self._body])
        finally:
            await self._body.aclose()
        return self.content

    async def aclose(self) -> None:
        await self._body.aclose()

    async def as_httpx(self) -> httpx2.Response:
        """The answer read whole as an httpx2 response (what the SDKs' error mapping
        reads); its body is already decoded, so it names no encoding."""
        content = await self.read()
        headers = [
            (name, value)
            for name, value in self._response.raw_headers
            if name.decode("latin-1").lower() not in _ENCODING_HEADERS
        ]
        return httpx2.Response(
            self.status_code,
            headers=headers,
            content=content,
            request=_plain_request(self._response.method, self._response.url),
        )


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

    async def _exchange(
        self,
        method: str,
        url: str | yarl.URL,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
        *,
        decompress: bool,
        request: httpx2.Request | None,
        may_stream: bool = True,
    ) -> tuple[aiohttp.ClientResponse, _Body]:
        """The response (status and headers read) and its body, bounded unless a stream
        (a stream's content type, where `may_stream`)."""
        session = self._session or self._open()
        span = tracing.http_client_span(method, str(url))
        if span is not None:
            headers = [*headers, *span.headers()]
        try:
            response = await session.request(
                method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                auto_decompress=decompress,
            )
        except BaseException as error:
            if span is not None:
                span.failed(error)
            if isinstance(error, aiohttp.ClientError | TimeoutError):
                raise _translate(error, request or _plain_request(method, url)) from error
            raise
        if span is not None:
            span.status(response.status)
        streamed = may_stream and response.content_type in STREAM_CONTENT_TYPES
        limit = None if streamed else self._max_body_bytes
        return response, _Body(response, request, limit, span)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout", {})
        response, body = await self._exchange(
            request.method,
            str(request.url),
            request.headers.multi_items(),
            await request.aread(),
            _client_timeout(timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read")),
            # httpx2 decodes the body from its Content-Encoding itself.
            decompress=False,
            request=request,
            may_stream=not request.extensions.get(UNARY, False),
        )
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx2.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=body,
            request=request,
            extensions=extensions,
        )

    async def post(
        self,
        url: yarl.URL,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout: httpx2.Timeout,
        *,
        stream: bool,
    ) -> Reply:
        """POSTs `body`; the answer's status and headers read, its body not yet. A failed
        exchange raises httpx2's error for it, as through `handle_async_request`. Unless
        `stream`, the body is bounded whatever its content type says."""
        response, answer = await self._exchange(
            "POST",
            url,
            headers,
            body,
            _client_timeout(timeout.pool, timeout.connect, timeout.read),
            decompress=True,
            request=None,
            may_stream=stream,
        )
        return Reply(response, answer)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
