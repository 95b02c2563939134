"""OpenTelemetry GenAI-convention histograms, and the gateway's own overhead.

Two sides of one request, both measured in the router:

- client (`gen_ai_client_*`): the gateway calling an upstream model, once per attempt
  (a retry or a fallback is another observation). Measured here rather than in the
  provider service because the model label must be the catalogue's name, which only the
  router knows (the provider sees the upstream model name, which several catalogue
  entries and every prefix rule may share); the time therefore includes the internal
  hop to the provider service (about a millisecond), which the provider's own
  `llmgw_provider_upstream_duration_seconds` leaves out.
- server (`gen_ai_server_*`): what the gateway's caller sees, from the moment the router
  took the request; streams only, answers from the response cache excluded (they never
  reach a model; `llmgw_cache_requests_total` counts them).

`llmgw_gateway_overhead_seconds` is the router's time minus the upstream time the
provider reported (`upstream_timing`): what the gateway adds to the model. Observed for
requests answered by a model without the gateway tool loop (tool calls are neither);
retry backoff waits count as overhead, and an attempt the provider reported no time for
(it failed) counts whole as upstream.

Labels are bounded: the operation is `chat` or `embeddings`, the provider is the provider instance's
configured type (`openai`, `anthropic`, ...), the model is `ResolvedModel.label` (a
catalogue name, else `other`), the error type a gRPC status code name. Each request costs
a few clock reads and a handful of histogram observations: no per-token work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Literal

from prometheus_client import Histogram

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.common.errors import GatewayError
from services.common.gateway_config import ProviderConfig
from services.common.upstream_timing import UpstreamTiming
from services.router.routing.plan import Candidate

# The GenAI operation names (OTel `gen_ai.operation.name`): completions, embeddings.
CHAT = "chat"
EMBEDDINGS = "embeddings"
Operation = Literal["chat", "chat_stream", "embeddings"]

_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
)  # fmt: skip
_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5)
_OVERHEAD_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip

CLIENT_TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage",
    "Tokens of one upstream model call as the provider reported them, by token type "
    "(input, output); one observation per successful attempt.",
    ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"],
    buckets=_TOKEN_BUCKETS,
)
CLIENT_OPERATION_DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Time of one upstream model call made by the router (per attempt; a stream to its "
    "last event), error_type empty on success, else the gRPC status code name.",
    ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
    buckets=_DURATION_BUCKETS,
)
SERVER_TIME_TO_FIRST_TOKEN = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time from the router taking a streamed request to its first chunk, by requested "
    "catalogue model (answers from the response cache excluded).",
    ["gen_ai_operation_name", "gen_ai_request_model"],
    buckets=_TTFT_BUCKETS,
)
SERVER_TIME_PER_OUTPUT_TOKEN = Histogram(
    "gen_ai_server_time_per_output_token_seconds",
    "Time per output token after the first of a successful stream: (end - first chunk) / "
    "(output tokens - 1), by requested catalogue model (streams of one token, of the "
    "gateway tool loop or from the response cache excluded).",
    ["gen_ai_operation_name", "gen_ai_request_model"],
    buckets=_TPOT_BUCKETS,
)
GATEWAY_OVERHEAD = Histogram(
    "llmgw_gateway_overhead_seconds",
    "Time a request spent in the gateway, upstream model time excluded: for `chat` the "
    "router's whole time minus every attempt's upstream time, for `chat_stream` the same "
    "up to the first chunk. Requests answered by a model without the gateway tool loop; "
    "retry waits count, and an attempt the provider reported no time for counts as "
    "upstream.",
    ["operation"],
    buckets=_OVERHEAD_BUCKETS,
)


def error_type(error: BaseException) -> str:
    """A bounded name for how an attempt failed: its gRPC status code name."""
    if isinstance(error, GatewayError):
        return error.code.name
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    return "INTERNAL"


class Attempt:
    """One upstream call, from the router's side; end it with `succeeded` or `failed`
    (the first end counts, later ones do nothing)."""

    __slots__ = ("_model", "_operation", "_provider", "_request", "_start", "elapsed", "upstream")

    def __init__(self, request: RequestTiming, model_label: str, provider_kind: str) -> None:
        self._request = request
        self._operation = EMBEDDINGS if request.operation == "embeddings" else CHAT
        self._model = model_label
        self._provider = provider_kind
        self._start = time.perf_counter()
        # Seconds the call took (None until it ended), and what the provider reported.
        self.elapsed: float | None = None
        self.upstream = UpstreamTiming()

    def succeeded(self, usage: common_pb2.Usage | None) -> None:
        if not self._end(""):
            return
        if usage is not None:
            labels = (self._operation, self._provider, self._model)
            CLIENT_TOKEN_USAGE.labels(*labels, "input").observe(usage.input_tokens)
            if self._operation == CHAT:
                CLIENT_TOKEN_USAGE.labels(*labels, "output").observe(usage.output_tokens)

    def failed(self, error: BaseException) -> None:
        self._end(error_type(error))

    def _end(self, error: str) -> bool:
        if self.elapsed is not None:
            return False
        self.elapsed = time.perf_counter() - self._start
        CLIENT_OPERATION_DURATION.labels(
            self._operation, self._provider, self._model, error
        ).observe(self.elapsed)
        self._request.attempts.append(self)
        return True

    @property
    def upstream_seconds(self) -> float:
        """The provider's upstream time when it reported one, else the whole call."""
        elapsed = self.elapsed or 0.0
        reported = self.upstream.duration
        return elapsed if reported is None else min(reported, elapsed)


class RequestTiming:
    """One chat request's times, from the moment the router took it."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.start = time.perf_counter()
        # Ended attempts, in order.
        self.attempts: list[Attempt] = []
        self._first_chunk: float | None = None
        # Attempts that had ended when the first chunk went out (those before the answer).
        self._before_first = 0

    def attempt(self, candidate: Candidate, providers: Mapping[str, ProviderConfig]) -> Attempt:
        """Starts timing a call to `candidate`'s deployment."""
        config = providers.get(candidate.deployment.provider)
        kind = config.type if config is not None else "unknown"
        return Attempt(self, candidate.model_label, kind)

    def first_chunk(self, model_label: str) -> None:
        """The stream's first chunk goes out now (answered by a model)."""
        if self._first_chunk is not None:
            return
        self._first_chunk = time.perf_counter() - self.start
        self._before_first = len(self.attempts)
        SERVER_TIME_TO_FIRST_TOKEN.labels(CHAT, model_label).observe(self._first_chunk)

    def answered(self, model_label: str, output_tokens: int, *, tools: bool) -> None:
        """The request succeeded, its last ended attempt the answer: time per output
        token and overhead, where they apply (see the module docstring)."""
        if tools or not self.attempts:
            return
        answer = self.attempts[-1]
        now = time.perf_counter() - self.start
        if self.operation == "chat":
            upstream = sum(a.upstream_seconds for a in self.attempts)
            GATEWAY_OVERHEAD.labels("chat").observe(max(now - upstream, 0.0))
            return
        first = self._first_chunk
        if first is None:
            return
        if output_tokens > 1:
            SERVER_TIME_PER_OUTPUT_TOKEN.labels(CHAT, model_label).observe(
                (now - first) / (output_tokens - 1)
            )
        upstream_first = answer.upstream.first_token
        if upstream_first is None:
            return
        failed_before = sum(a.upstream_seconds for a in self.attempts[: self._before_first])
        overhead = first - failed_before - upstream_first
        GATEWAY_OVERHEAD.labels("chat_stream").observe(max(overhead, 0.0))
