"""Runs an HTTP tool: one downstream call per attempt, retried while that may help.

Time: each attempt gets the tool's timeout, cut to what is left of the execution's
deadline (the request's `timeout` and the caller's gRPC deadline). An attempt that
times out is retried only when it was the tool's own timeout that ended it and time
is left; a retry whose backoff would end past the deadline is not started.

Before each attempt the downstream's circuit breaker is asked; an open breaker fails
the execution at once with RetryInfo, without calling the downstream. Every attempt's
outcome is recorded with the breaker.

The body is streamed and at most `max_output_bytes + 1` bytes of it are read;
redirects are not followed; proxies from the environment are not used. Within one
attempt aiohttp resends a GET, PUT or DELETE once when the connection closes before any
answer (RFC 9112 9.3.1); that counts as one attempt here.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import yarl
from google.protobuf import struct_pb2

from services.common import context
from services.common.breaker_machine import Outcome
from services.common.errors import GatewayError
from services.common.gateway_config import expand_env
from services.common.http_replies import retry_after_seconds
from services.common.tool_config import HostAllowList
from services.tool.body import read_capped, result_value
from services.tool.breakers import DownstreamBreakers
from services.tool.downstream_errors import (
    breaker_open,
    breaker_outcome,
    connection_failed,
    http_error,
    is_transient,
    timed_out,
)
from services.tool.entries import ToolEntry
from services.tool.url_guard import check_call_url, fill

# Of an error answer, only this much is read (for the reason quoted in the message).
ERROR_BODY_BYTES = 4096
USER_AGENT = "llm-gateway-tool/1"
# A `${NAME}` or `${NAME:-default}` reference, as the configuration loader expands them.
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
MAX_CONNECTIONS = 512


@dataclass(frozen=True)
class Execution:
    result: struct_pb2.Value
    truncated: bool
    attempts: int


@dataclass(frozen=True)
class _Call:
    """One execution's request, the same for every attempt."""

    url: str
    headers: Mapping[str, str]
    body: bytes | None
    # Values that must never appear in an error message.
    secrets: list[str]
    started: float


@dataclass(frozen=True)
class _Failure:
    error: GatewayError
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool


def _create_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
        cookie_jar=aiohttp.DummyCookieJar(),
        # Proxy variables would send tool calls elsewhere than the checked host.
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"User-Agent": USER_AGENT},
    )


class HttpExecutor:
    """Owns the process's one HTTP client, opened on first use (an aiohttp session
    belongs to the running loop) and closed by `close`."""

    def __init__(
        self,
        breakers: DownstreamBreakers,
        allow_list: Callable[[], HostAllowList],
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._breakers = breakers
        self._allow_list = allow_list
        self._environ = environ
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, entry: ToolEntry) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if entry.json_body:
            headers["Content-Type"] = "application/json"
        request_id = context.request_id.get()
        if request_id:
            headers[context.REQUEST_ID_HEADER] = request_id
        # Expanded on every call, so a rotated credential is used without a restart.
        headers.update({k: expand_env(v, self._environ) for k, v in entry.headers.items()})
        return headers

    def _secrets(self, entry: ToolEntry) -> list[str]:
        """What must never appear in a message: each `${NAME}` value the headers use,
        and header values written literally (a key pasted into the configuration)."""
        secrets = []
        for template in entry.headers.values():
            references = _REFERENCE.findall(template)
            if not references:
                secrets.append(template)
            secrets += [expand_env(reference, self._environ) for reference in references]
        return secrets

    async def execute(
        self, entry: ToolEntry, arguments: dict[str, Any], deadline: float | None
    ) -> Execution:
        """`deadline` is on this executor's clock (None: only the tool's own timeout)."""
        url = fill(entry.template, arguments)
        check_call_url(url, entry.template, self._allow_list())
        call = _Call(
            url=url,
            headers=self._headers(entry),
            body=orjson.dumps(arguments) if entry.json_body else None,
            secrets=self._secrets(entry),
            started=self._clock(),
        )
        attempts = 0
        while True:
            budget = entry.timeout
            if deadline is not None:
                budget = min(budget, deadline - self._clock())
                if budget <= 0:
                    raise timed_out(entry, self._clock() - call.started)
            attempts += 1
            outcome = await self._attempt(entry, call, budget)
            if isinstance(outcome, Execution):
                return Execution(outcome.result, outcome.truncated, attempts)
            if not outcome.retryable or attempts >= entry.max_attempts:
                raise outcome.error
            wait = entry.backoff.delay(attempts, outcome.retry_after, self._rng)
            if deadline is not None and self._clock() + wait >= deadline:
                raise outcome.error
            await self._sleep(wait)

    async def _attempt(self, entry: ToolEntry, call: _Call, budget: float) -> Execution | _Failure:
        """One downstream call, its outcome recorded with the breaker."""
        downstream = entry.template.downstream
        admission = self._breakers.admit(downstream)
        if not admission.allowed:
            wait = admission.reopen_at - self._breakers.now()
            return _Failure(breaker_open(entry, wait), retryable=False)
        try:
            reply = await self._send(entry, call, budget)
        except TimeoutError:
            self._breakers.record(downstream, Outcome.FAILURE, probe=admission.probe)
            # Cut short by the deadline rather than the tool's timeout: no time is left.
            retryable = budget >= entry.timeout
            return _Failure(timed_out(entry, self._clock() - call.started), retryable)
        except aiohttp.ClientError as broken:
            self._breakers.record(downstream, Outcome.FAILURE, probe=admission.probe)
            detail = str(broken) or type(broken).__name__
            return _Failure(connection_failed(entry, detail), retryable=True)
        except asyncio.CancelledError:
            # The caller went away: not the downstream's doing (frees a probe lease).
            self._breakers.record(downstream, Outcome.NEUTRAL, probe=admission.probe)
            raise
        self._breakers.record(downstream, breaker_outcome(reply.status), probe=admission.probe)
        if 200 <= reply.status < 300:
            return Execution(result_value(reply.body, reply.truncated), reply.truncated, 1)
        retry_after = retry_after_seconds(reply.headers)
        refused = http_error(entry, reply.status, reply.body, retry_after, call.secrets)
        return _Failure(refused, is_transient(reply.status), retry_after)

    async def _send(self, entry: ToolEntry, call: _Call, budget: float) -> _Reply:
        if self._session is None:
            self._session = _create_session()
        async with (
            asyncio.timeout(budget),
            self._session.request(
                entry.method,
                # Already encoded: re-encoding would decode %2E%2E into a path step.
                yarl.URL(call.url, encoded=True),
                headers=call.headers,
                data=call.body,
                allow_redirects=False,
            ) as response,
        ):
            ok = 200 <= response.status < 300
            cap = entry.max_output_bytes if ok else ERROR_BODY_BYTES
            data, truncated = await read_capped(response.content, cap)
            if truncated:
                # The rest is never read: drop the connection instead of draining it.
                response.close()
            return _Reply(response.status, response.headers, data, truncated)
