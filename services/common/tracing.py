"""OpenTelemetry tracing of one service process: the SDK, gRPC server and client spans,
Redis spans, and W3C trace context in and out.

`configure` runs once per process from the settings `tracing_config` read. Without an
endpoint nothing is set up: `enabled()` is False, every helper here returns at once, no
exporter thread runs and calls carry nothing extra. With one, spans go through a
BatchSpanProcessor (bounded queue, spans dropped rather than requests slowed when the
collector cannot keep up; `OTEL_BSP_*` tune it) to the OTLP exporter.

Where spans come from:
- server: the one server interceptor (`services/common/interceptors.py`) opens ONE span per
  RPC (`ServerSpan`), continuing the caller's `traceparent` from the metadata; health checks
  and reflection stay unobserved as they do in the access log;
- client: every internal channel (`channels.InternalChannel`) gets the maintained grpc.aio
  client interceptors of opentelemetry-instrumentation-grpc, which open a client span per
  call and inject `traceparent`;
- Redis: opentelemetry-instrumentation-redis, whose statements are sanitised to the command
  name and one `?` per argument (never a key or a value);
- HTTP to the model providers, GenAI and tool spans: `services/common/genai_spans.py` and
  `services/provider/adapters/aiohttp_transport.py`.

Sampling: the standard samplers. The default, parentbased_always_on, continues a caller's
decision; at the edge Envoy decides for requests that come without one. A client span
started outside any trace (the identity cache's version poll, background health checks)
is never sampled: it would be a one-span trace every few hundred milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject, set_global_textmap
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from services.common.tracing_config import TracingSettings

log = logging.getLogger("llmgw.tracing")

TRACER_NAME = "llmgw"
# Seconds one export may take; the processor drops the batch after it.
EXPORT_TIMEOUT_SECONDS = 5.0
# Seconds the process waits for queued spans at shutdown.
SHUTDOWN_FLUSH_MILLIS = 3000

# Server-side codes that mean the service failed (OpenTelemetry's RPC conventions); the
# others (a caller's mistake, NOT_FOUND...) leave the server span's status unset.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _NoOrphanClients(Sampler):
    """`root`, except that a client span with no parent is dropped (see module doc)."""

    def __init__(self, root: Sampler) -> None:
        self._root = root

    def should_sample(  # noqa: PLR0917 (the SDK's Sampler signature)
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._root.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClients{{{self._root.get_description()}}}"


def sampler_for(settings: TracingSettings) -> Sampler:
    """The SDK sampler for the standard sampler name and ratio."""
    name = settings.sampler.removeprefix("parentbased_")
    root: Sampler
    if name == "always_on":
        root = ALWAYS_ON
    elif name == "always_off":
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(settings.ratio)
    guarded = _NoOrphanClients(root)
    return ParentBased(guarded) if settings.parent_based else guarded


def _exporter(settings: TracingSettings) -> SpanExporter:
    collector = settings.collector
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(
            endpoint=collector.url,
            insecure=collector.scheme == "http",
            timeout=EXPORT_TIMEOUT_SECONDS,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(endpoint=collector.url + "/v1/traces", timeout=EXPORT_TIMEOUT_SECONDS)


@dataclass
class _Active:
    provider: TracerProvider
    tracer: Tracer
    interceptors: list[grpc.aio.ClientInterceptor]


class _State:
    """The process's tracing (None: off)."""

    active: _Active | None = None


_state = _State()


def service_name(settings: TracingSettings, service: str) -> str:
    """OTEL_SERVICE_NAME when given, else `llmgw-<service>`."""
    return settings.service_name or f"llmgw-{service}"


def configure(
    settings: TracingSettings | None,
    service: str,
    replica: str = "",
    exporter: SpanExporter | None = None,
) -> bool:
    """Set up tracing for this process (again replaces it, for tests). Returns whether
    it is on. `exporter` replaces the OTLP one (tests). The provider is this module's,
    not the API's global one: nothing here depends on import order or on a library
    switching its own spans on."""
    shutdown()
    if settings is None:
        return False
    from opentelemetry.instrumentation.grpc import aio_client_interceptors  # noqa: PLC0415
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    attributes = {"service.name": service_name(settings, service), "service.namespace": "llmgw"}
    if replica:
        attributes["service.instance.id"] = replica
    provider = TracerProvider(resource=Resource.create(attributes), sampler=sampler_for(settings))
    provider.add_span_processor(
        BatchSpanProcessor(exporter or _exporter(settings), export_timeout_millis=5000)
    )
    # W3C trace context only: a caller's baggage is not carried into the gateway's calls.
    set_global_textmap(TraceContextTextMapPropagator())
    RedisInstrumentor().instrument(tracer_provider=provider)
    _state.active = _Active(
        provider=provider,
        tracer=provider.get_tracer(TRACER_NAME),
        interceptors=list(aio_client_interceptors(tracer_provider=provider)),
    )
    log.info(
        "tracing on",
        extra={
            "collector": settings.collector.url,
            "protocol": settings.protocol,
            "sampler": sampler_for(settings).get_description(),
        },
    )
    return True


def shutdown() -> None:
    """Flush queued spans (bounded wait) and switch tracing off."""
    if _state.active is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    active, _state.active = _state.active, None
    RedisInstrumentor().uninstrument()
    active.provider.force_flush(SHUTDOWN_FLUSH_MILLIS)
    active.provider.shutdown()


def enabled() -> bool:
    return _state.active is not None


def tracer() -> Tracer:
    """The process's tracer (a no-op one while tracing is off)."""
    active = _state.active
    return active.tracer if active is not None else trace.NoOpTracer()


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for an outgoing channel: client spans and `traceparent` (none when off)."""
    active = _state.active
    return list(active.interceptors) if active is not None else []


class _MetadataGetter(Getter[Iterable[tuple[str, str | bytes]]]):
    """Reads trace context from gRPC invocation metadata (keys arrive lower-case)."""

    def get(self, carrier: Iterable[tuple[str, str | bytes]], key: str) -> list[str] | None:
        values = [v for k, v in carrier if k == key and isinstance(v, str)]
        return values or None

    def keys(self, carrier: Iterable[tuple[str, str | bytes]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _MetadataGetter()


class ServerSpan:
    """The one span of one RPC on the server side, current while its handler runs."""

    __slots__ = ("_span", "_token")

    def __init__(
        self,
        method_path: str,
        metadata: Sequence[tuple[str, str | bytes]],
        request_id: str,
    ) -> None:
        active = _state.active
        assert active is not None
        parent = extract(metadata, getter=_GETTER)
        grpc_service, _, method = method_path.lstrip("/").partition("/")
        self._span: Span = active.tracer.start_span(
            f"{grpc_service}/{method}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": grpc_service,
                "rpc.method": method,
                "llmgw.request_id": request_id,
            },
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span, parent))

    def end(self, code: grpc.StatusCode) -> None:
        span = self._span
        if span.is_recording():
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in _SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
        otel_context.detach(self._token)


def start_server_span(
    method_path: str, metadata: Sequence[tuple[str, str | bytes]], request_id: str
) -> ServerSpan | None:
    """A server span for the RPC, or None while tracing is off."""
    if _state.active is None:
        return None
    return ServerSpan(method_path, metadata, request_id)


class HttpClientSpan:
    """One outgoing HTTP request (OpenTelemetry's HTTP client conventions), a child of the
    current span. It ends when the response body is done, so a streamed answer's span
    lasts as long as the stream. The URL is recorded without its query (where some APIs
    take keys)."""

    __slots__ = ("_ended", "span")

    def __init__(self, tracer: Tracer, method: str, url: str) -> None:
        parts = urlsplit(url)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.full": urlunsplit(
                (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
            ),
            "server.address": parts.hostname or "",
        }
        if parts.port is not None:
            attributes["server.port"] = parts.port
        self.span = tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        self._ended = False

    def headers(self) -> list[tuple[str, str]]:
        """The trace context headers that make the upstream's spans children of this one."""
        carrier: dict[str, str] = {}
        inject(carrier, context=trace.set_span_in_context(self.span))
        return list(carrier.items())

    def status(self, code: int) -> None:
        self.span.set_attribute("http.response.status_code", code)
        if code >= 400:
            self.span.set_attribute("error.type", str(code))
            self.span.set_status(Status(StatusCode.ERROR))

    def failed(self, error: BaseException) -> None:
        self.span.set_attribute("error.type", type(error).__name__)
        self.span.set_status(Status(StatusCode.ERROR))
        self.end()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self.span.end()


def http_client_span(method: str, url: str) -> HttpClientSpan | None:
    """A span for an outgoing HTTP request, or None while tracing is off."""
    active = _state.active
    if active is None:
        return None
    return HttpClientSpan(active.tracer, method, url)
