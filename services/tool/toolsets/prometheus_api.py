"""Calls to Prometheus' HTTP API, and its failures as the gateway's errors.

Every call returns the `data` member of a `{"status":"success"}` answer or raises a
`GatewayError` whose message the caller can act on: a query Prometheus refused
(`bad_data`, `execution`) is INVALID_ARGUMENT quoting Prometheus' own reason; a refused
token is PERMISSION_DENIED; a Prometheus that failed, could not be reached or timed out
is UNAVAILABLE or DEADLINE_EXCEEDED. The token is never part of a message: Prometheus'
text is quoted through `quote` (one line, bounded, known secret shapes removed) and the
token itself is removed from it.

Answers are read up to `MAX_ANSWER_BYTES`: a query matching a whole TSDB is refused with
a hint to narrow it instead of being held in memory. Redirects are not followed, so the
bearer token only ever goes to the configured host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.http_replies import quote

_R = error_reason_pb2
# Largest answer read from Prometheus; a bigger one means the query should be narrowed.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
# Seconds one call may take unless the toolset is given another bound (the tool
# service's own timeout usually ends a call sooner).
DEFAULT_TIMEOUT_SECONDS = 30.0
_REDACTED = "[redacted]"
# A token shorter than this is not worth hiding from messages (and would mangle them).
_MIN_SECRET = 6

Params = Sequence[tuple[str, str]]


class PrometheusApi:
    """One Prometheus: its root URL, the optional bearer token, one pooled HTTP client."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token or None
        self.timeout = timeout
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
        )
        self.backend = backend_of(httpx.URL(self._base))

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: Params = ()) -> Any:
        """GET `path` (`/api/v1/alerts`); the answer's `data`."""
        return await self._call("GET", path, params=params)

    async def post(self, path: str, form: Params) -> Any:
        """POST `path` with a form (how the query endpoints take long PromQL)."""
        return await self._call("POST", path, form=form)

    async def _call(self, method: str, path: str, *, params: Params = (), form: Params = ()) -> Any:
        url = self._base + path
        try:
            request = self._client.build_request(
                method,
                url,
                params=list(params) or None,
                content=urlencode(list(form)).encode() if form else None,
                headers={"Content-Type": "application/x-www-form-urlencoded"} if form else None,
            )
            response = await self._client.send(request, stream=True)
            try:
                body, complete = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise DeadlineExceeded(
                f"Prometheus at {self.backend} did not answer within {self.timeout:.3g}s",
                reason=_R.ERROR_REASON_UPSTREAM_TIMEOUT,
            ) from None
        except httpx.TransportError as error:
            raise Unavailable(
                f"cannot reach Prometheus at {self.backend}: {self._quote(str(error))}",
                reason=_R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
            ) from None
        if not complete:
            raise InvalidArgument(
                f"Prometheus' answer is larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB; "
                "narrow the query with label matchers or aggregate it (sum by, topk)",
                reason=_R.ERROR_REASON_LIMIT_EXCEEDED,
            )
        document = _json(body)
        if response.status_code == 200 and _succeeded(document):
            return document["data"]
        raise self._error(response.status_code, document, path)

    def _quote(self, text: str) -> str:
        if self._token and len(self._token) >= _MIN_SECRET:
            text = text.replace(self._token, _REDACTED)
        return quote(text)

    def _error(self, status: int, document: Any, path: str) -> GatewayError:
        """The error for an answer that is not a success."""
        if status in (401, 403):
            said = (
                "refused the token (PROMETHEUS_TOKEN)"
                if self._token
                else "requires a token (set PROMETHEUS_TOKEN)"
            )
            return PermissionDenied(
                f"Prometheus at {self.backend} {said}: HTTP {status}",
                reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
            )
        if isinstance(document, dict) and document.get("status") == "error":
            return self._api_error(status, document)
        if 300 <= status < 400:
            return FailedPrecondition(
                f"Prometheus at {self.backend} redirected {path} (HTTP {status}); set "
                "PROMETHEUS_URL to the address it redirects to",
                reason=_R.ERROR_REASON_TOOL_FAILED,
            )
        if status == 200 or status >= 500 or status == 429:
            what = "is not Prometheus' API JSON" if status == 200 else f"HTTP {status}"
            return Unavailable(
                f"Prometheus at {self.backend} answered {path} with {what}",
                reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
            )
        return FailedPrecondition(
            f"Prometheus at {self.backend} answered {path} with HTTP {status}; is "
            "PROMETHEUS_URL the root of a Prometheus server?",
            reason=_R.ERROR_REASON_TOOL_FAILED,
        )

    def _api_error(self, status: int, document: dict[str, Any]) -> GatewayError:
        """An `{"status":"error","errorType":..,"error":..}` answer."""
        kind = str(document.get("errorType", ""))
        said = self._quote(str(document.get("error", "")))
        if kind == "bad_data":
            return InvalidArgument(
                f"Prometheus refused the query: {said}",
                reason=_R.ERROR_REASON_TOOL_ARGUMENTS_INVALID,
            )
        if kind == "execution":
            return InvalidArgument(
                f"Prometheus could not run the query: {said}",
                reason=_R.ERROR_REASON_TOOL_ARGUMENTS_INVALID,
            )
        if kind == "timeout":
            return DeadlineExceeded(
                f"Prometheus timed out running the query: {said}",
                reason=_R.ERROR_REASON_UPSTREAM_TIMEOUT,
            )
        if kind == "not_found":
            return NotFound(f"Prometheus found nothing: {said}")
        return Unavailable(
            f"Prometheus at {self.backend} failed (HTTP {status}, {kind or 'no error type'}): "
            f"{said}",
            reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        )


def backend_of(url: httpx.URL) -> str:
    """`host:port` of a URL, the scheme's port when it names none (what the tool
    service's breakers and metrics key by)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{port}"


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    """The body up to `MAX_ANSWER_BYTES`, and whether it was all of it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return b"", False
        chunks.append(chunk)
    return b"".join(chunks), True


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _succeeded(document: Any) -> bool:
    return isinstance(document, dict) and document.get("status") == "success" and "data" in document
