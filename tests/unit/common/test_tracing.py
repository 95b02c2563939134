"""Spans of one process: one server span per RPC continuing the caller's traceparent,
client spans with traceparent injected, the sampler, GenAI spans, and trace ids in logs.
Spans are read from an in-memory exporter after `tracing.shutdown()` flushed them."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common import genai_spans, tracing
from services.common.channels import InternalChannel
from services.common.errors import NotFound
from services.common.identity.assertion import InternalKeys
from services.common.logs import JsonFormatter
from services.common.server import RunningServer, ServiceDefinition, create_server
from services.common.settings import ServiceSettings
from services.common.tracing_config import TracingSettings, tracing_settings
from tests.support.trust import TEST_INTERNAL_SECRET

SESSION = "llmgw.session.v1.SessionService"


def _settings(**env: str) -> TracingSettings:
    settings = tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", **env})
    assert settings is not None
    return settings


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(_settings(), "session", "session-1", exporter=exporter)
    yield exporter
    tracing.shutdown()


def _flushed(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.shutdown()
    return list(exporter.get_finished_spans())


class Sessions(session_grpc.SessionServiceServicer):
    """GetSession answers the trace id it runs in, or NOT_FOUND."""

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.GetSessionResponse:
        if request.name == "sessions/missing":
            raise NotFound("no such session", resource_type="session")
        span = trace.get_current_span().get_span_context()
        return session_pb2.GetSessionResponse(
            session=session_pb2.Session(name=trace.format_trace_id(span.trace_id))
        )


@pytest.fixture
async def server(exported: InMemorySpanExporter) -> AsyncIterator[RunningServer]:
    settings = ServiceSettings(service="session", port=0, metrics_port=0, access_log=False)
    running = await create_server(
        settings,
        ServiceDefinition(
            register=lambda srv: session_grpc.add_SessionServiceServicer_to_server(Sessions(), srv),
            service_names=[SESSION],
        ),
    )
    yield running
    await running.stop(0)


async def test_one_server_span_per_rpc_continues_the_callers_trace(
    server: RunningServer, exported: InMemorySpanExporter
) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = session_grpc.SessionServiceStub(channel)
        reply = await stub.GetSession(
            session_pb2.GetSessionRequest(name="sessions/a"),
            metadata=(("traceparent", f"00-{trace_id}-{parent}-01"),),
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetSession(session_pb2.GetSessionRequest(name="sessions/missing"))
        # Health checks stay out of traces, as they stay out of the access log.
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.session.name == trace_id
    spans = _flushed(exported)
    assert [s.name for s in spans] == [f"{SESSION}/GetSession"] * 2
    continued, fresh = spans
    assert continued.kind is SpanKind.SERVER
    assert continued.context is not None and fresh.context is not None
    assert trace.format_trace_id(continued.context.trace_id) == trace_id
    assert continued.parent is not None and trace.format_span_id(continued.parent.span_id) == parent
    assert continued.attributes is not None and continued.attributes["rpc.grpc.status_code"] == 0
    # Without a traceparent: a trace of its own. NOT_FOUND is the caller's, not an error.
    assert fresh.parent is None and fresh.context.trace_id != continued.context.trace_id
    assert fresh.attributes is not None and fresh.attributes["rpc.grpc.status_code"] == 5
    assert fresh.status.status_code is StatusCode.UNSET
    assert fresh.resource.attributes["service.name"] == "llmgw-session"
    assert fresh.resource.attributes["service.instance.id"] == "session-1"


async def test_internal_calls_are_client_spans_that_carry_traceparent(
    server: RunningServer, exported: InMemorySpanExporter
) -> None:
    internal = InternalChannel(
        f"127.0.0.1:{server.port}", InternalKeys(TEST_INTERNAL_SECRET, "router")
    )
    try:
        stub = session_grpc.SessionServiceStub(internal.channel)
        with tracing.tracer().start_as_current_span("request") as outer:
            reply = await stub.GetSession(
                session_pb2.GetSessionRequest(name="sessions/a"), metadata=internal.metadata(5)
            )
    finally:
        await internal.close()
    spans = {s.name: s for s in _flushed(exported)}
    client, served = spans[f"/{SESSION}/GetSession"], spans[f"{SESSION}/GetSession"]
    assert client.kind is SpanKind.CLIENT
    assert client.parent is not None and client.parent.span_id == outer.get_span_context().span_id
    # The server continued the client's span: the traceparent went with the call.
    assert served.parent is not None and client.context is not None
    assert served.parent.span_id == client.context.span_id
    assert reply.session.name == trace.format_trace_id(client.context.trace_id)


def _remote(sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=flags))


@pytest.mark.parametrize(
    ("env", "kind", "parent", "decision"),
    [
        # A client span outside any trace (a background poll) is never sampled...
        ({}, SpanKind.CLIENT, None, Decision.DROP),
        ({}, SpanKind.INTERNAL, None, Decision.RECORD_AND_SAMPLE),
        ({}, SpanKind.SERVER, None, Decision.RECORD_AND_SAMPLE),
        # ...inside one it follows its parent.
        ({}, SpanKind.CLIENT, True, Decision.RECORD_AND_SAMPLE),
        ({}, SpanKind.SERVER, False, Decision.DROP),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, SpanKind.SERVER, None, Decision.DROP),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, SpanKind.SERVER, False, Decision.RECORD_AND_SAMPLE),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, SpanKind.CLIENT, None, Decision.DROP),
    ],
)
def test_the_sampler(
    env: dict[str, str], kind: SpanKind, parent: bool | None, decision: Decision
) -> None:
    sampler = tracing.sampler_for(_settings(**env))
    context = None if parent is None else trace.set_span_in_context(_remote(parent))
    assert sampler.should_sample(context, 12345, "span", kind).decision is decision


def test_log_lines_carry_the_current_trace_and_span(exported: InMemorySpanExporter) -> None:
    formatter = JsonFormatter("session")
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO"})
    assert "trace_id" not in json.loads(formatter.format(record))
    with tracing.tracer().start_as_current_span("work") as span:
        line = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)


def test_a_provider_chat_span_in_the_genai_conventions(exported: InMemorySpanExporter) -> None:
    # Inside an RPC's span, as in the provider (a client span alone is not sampled).
    with (
        tracing.tracer().start_as_current_span("rpc"),
        genai_spans.chat("gpt-4o-mini", client=True) as span,
    ):
        span.provider("openai-eu", genai_spans.family_of(provider_pb2.PROVIDER_TYPE_AZURE_OPENAI))
        span.completion(
            provider_pb2.CompleteResponse(
                id="chatcmpl-1",
                model="gpt-4o-mini-2024",
                finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS,
                usage=common_pb2.Usage(input_tokens=12, output_tokens=3),
            )
        )
    with pytest.raises(NotFound), genai_spans.execute_tool("weather", "call_1"):
        raise NotFound("no such tool")
    chat, _, tool = _flushed(exported)
    assert chat.name == "chat gpt-4o-mini" and chat.kind is SpanKind.CLIENT
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.provider.name": "azure.ai.openai",
        "llmgw.provider": "openai-eu",
        "gen_ai.response.model": "gpt-4o-mini-2024",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
    }
    assert tool.name == "execute_tool weather"
    assert tool.attributes is not None and tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert tool.attributes["error.type"] == "NOT_FOUND"
    assert tool.status.status_code is StatusCode.ERROR


def test_off_adds_nothing() -> None:
    tracing.configure(None, "session")
    assert not tracing.enabled()
    assert tracing.client_interceptors() == []
    assert tracing.start_server_span("/a.B/C", (), "rid") is None
    assert tracing.http_client_span("GET", "http://x") is None
    with genai_spans.chat("m", client=False) as span:
        assert not span.recording
    assert not trace.get_current_span().get_span_context().is_valid


def test_invoke_agent_is_a_new_root_linked_to_the_request_that_queued_it(
    exported: InMemorySpanExporter,
) -> None:
    queued_by = SpanContext(
        trace_id=int(secrets.token_hex(16), 16),
        span_id=int(secrets.token_hex(8), 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    # Even under a current span (a worker's own work), the agent's run is a root.
    with (
        tracing.tracer().start_as_current_span("worker") as worker,
        genai_spans.invoke_agent("investigation", "inv-1", "m", [trace.Link(queued_by)]),
        genai_spans.execute_tool("kubernetes_get_pod"),
    ):
        pass
    tool, agent, _ = _flushed(exported)
    assert agent.name == "invoke_agent investigation" and agent.parent is None
    assert agent.context is not None and tool.parent is not None
    assert agent.context.trace_id != worker.get_span_context().trace_id
    assert tool.parent.span_id == agent.context.span_id
    assert [(link.context.trace_id, link.context.span_id) for link in agent.links] == [
        (queued_by.trace_id, queued_by.span_id)
    ]
    assert dict(agent.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "investigation",
        "gen_ai.agent.id": "inv-1",
        "gen_ai.request.model": "m",
    }
