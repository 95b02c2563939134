"""Provider metrics: what each upstream was asked, how it answered, how fast, how much.

Labels carry the provider instance and the model as the provider knows it when it is an
upstream model of a catalogue deployment (`ModelLabels`); any other model (names a
prefix rule routes are the caller's to choose) is counted as `other`.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Counter, Gauge, Histogram

from llmgw.common.v1 import chat_pb2
from services.common import upstream_timing
from services.common.errors import GatewayError, reason_name
from services.common.gateway_config import GatewayConfig

OTHER_MODEL = "other"


class ModelLabels:
    """The `model` label of a call: its upstream model when a catalogue deployment of
    that provider instance names it, else `other`."""

    def __init__(self, config: GatewayConfig) -> None:
        self._known = frozenset(
            (deployment.provider, deployment.model)
            for entry in config.models
            for deployment in entry.deployments
        )

    def __call__(self, provider: str, model: str) -> str:
        return model if (provider, model) in self._known else OTHER_MODEL


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "llmgw_provider_requests_total",
    "Completions and embedding requests sent to providers (`method`: Complete, "
    "StreamComplete, Embed), by outcome: `ok` or the error reason.",
    ["provider", "model", "method", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "llmgw_provider_upstream_duration_seconds",
    "Time from sending a completion or embedding request to its last byte (the whole "
    "stream for streams).",
    ["provider", "model", "method"],
    buckets=_LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "llmgw_provider_time_to_first_token_seconds",
    "Time from sending a streamed completion to its first content event.",
    ["provider", "model"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "llmgw_provider_tokens_total",
    "Tokens providers reported, by kind: input, output, cached_input, cache_write_input, "
    "reasoning (cached and reasoning tokens are also counted in input and output).",
    ["provider", "model", "kind"],
)
ACTIVE_STREAMS = Gauge(
    "llmgw_provider_active_streams",
    "Streamed completions in progress.",
    ["provider"],
)

_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached_input", "cached_input_tokens"),
    ("cache_write_input", "cache_write_input_tokens"),
    ("reasoning", "reasoning_tokens"),
)


def outcome_of(error: BaseException) -> str:
    if isinstance(error, GatewayError):
        return reason_name(error.reason) if error.reason else error.code.name
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    return "INTERNAL"


class UpstreamCall:
    """Measures one completion or embedding request from the moment it is sent."""

    __slots__ = ("_duration", "_first_token", "_method", "_model", "_provider", "_start")

    def __init__(self, provider: str, model: str, method: str) -> None:
        self._provider = provider
        self._model = model
        self._method = method
        self._first_token: float | None = None
        self._duration = 0.0
        self._start = time.perf_counter()

    def first_token(self) -> None:
        if self._first_token is None:
            self._first_token = time.perf_counter() - self._start
            TIME_TO_FIRST_TOKEN.labels(self._provider, self._model).observe(self._first_token)

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """The call's upstream timing for the router (`upstream_timing`), once it ended."""
        return upstream_timing.trailers(self._duration, self._first_token)

    def succeeded(self, usage: chat_pb2.Usage | None) -> None:
        self._end("ok")
        if usage is None:
            return
        for kind, field in _TOKEN_KINDS:
            count = getattr(usage, field)
            if count:
                TOKENS.labels(self._provider, self._model, kind).inc(count)

    def failed(self, error: BaseException) -> None:
        self._end(outcome_of(error))

    def _end(self, outcome: str) -> None:
        self._duration = time.perf_counter() - self._start
        UPSTREAM_LATENCY.labels(self._provider, self._model, self._method).observe(self._duration)
        REQUESTS.labels(self._provider, self._model, self._method, outcome).inc()
