"""One trace per request, across every hop: Envoy and every service export to an in-process
OTLP receiver (tests/support/otlp.py), given to them through the launcher's environment.

A chat through Envoy's public listener must come back as ONE trace whose spans link
Envoy (public) -> router server -> router chat -> router client -> Envoy (internal) ->
provider server -> provider chat -> upstream HTTP, with the GenAI attributes on both chat
spans, a caller's `traceparent` continued, its unsampled flag honoured, and the trace id
in the services' log lines.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from services.launcher.envoy_tracing import LISTENER_TAG
from tests.support.gateway import Gateway, running_gateway
from tests.support.otlp import OtlpReceiver, ReceivedSpan, running_receiver

pytestmark = pytest.mark.integration

SERVER, CLIENT, INTERNAL = 2, 3, 1  # OTLP Span.SpanKind values
ROUTER_METHOD = "llmgw.router.v1.RouterService/CreateChatCompletion"
PROVIDER_METHOD = "llmgw.provider.v1.ProviderService/Complete"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Gateway]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        # Export at once rather than every 5 s (the SDK reads it).
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with running_gateway(Path(tmp_path_factory.mktemp("tracing")), env=lambda fakes: env) as gw:
        yield gw


def _chat() -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="Hi"))],
    )


async def _call(gw: Gateway, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        await stub.CreateChatCompletion(_chat(), metadata=metadata, timeout=20)


def _only(spans: list[ReceivedSpan], what: str, listener: str = "", **want: object) -> ReceivedSpan:
    found = [
        s
        for s in spans
        if all(getattr(s, k) == v for k, v in want.items())
        and (not listener or s.attributes.get(LISTENER_TAG) == listener)
    ]
    assert len(found) == 1, f"{what}: {len(found)} spans match {want}: {spans}"
    return found[0]


def _tree_complete(trace_id: str) -> Callable[[list[ReceivedSpan]], bool]:
    def ready(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        names = {(s.service, s.name) for s in mine}
        return (
            sum(1 for s in mine if s.service == "envoy") >= 2
            and ("llmgw-provider", "POST") in names
            and ("llmgw-router", ROUTER_METHOD) in names
        )

    return ready


def _check_tree(spans: list[ReceivedSpan]) -> ReceivedSpan:
    """Asserts the parent links of one chat's trace; returns its public Envoy span."""
    public = _only(spans, "public Envoy span", service="envoy", listener="public")
    router = _only(spans, "router server span", service="llmgw-router", name=ROUTER_METHOD)
    router_chat = _only(spans, "router chat span", service="llmgw-router", name="chat gpt-4o-mini")
    router_client = _only(
        spans, "router client span", service="llmgw-router", name="/" + PROVIDER_METHOD
    )
    internal = _only(spans, "internal Envoy span", service="envoy", listener="internal")
    provider = _only(spans, "provider server span", service="llmgw-provider", name=PROVIDER_METHOD)
    provider_chat = _only(
        spans, "provider chat span", service="llmgw-provider", name="chat gpt-4o-mini"
    )
    http = _only(spans, "upstream HTTP span", service="llmgw-provider", name="POST")
    chain = [public, router, router_chat, router_client, internal, provider, provider_chat, http]
    for parent, child in itertools.pairwise(chain):
        assert child.parent_span_id == parent.span_id, (parent, child)
    assert (router.kind, router_client.kind, provider.kind) == (SERVER, CLIENT, SERVER)
    assert (router_chat.kind, provider_chat.kind, http.kind) == (INTERNAL, CLIENT, CLIENT)
    assert router.attributes["rpc.grpc.status_code"] == 0
    assert http.attributes["http.response.status_code"] == 200
    for chat in (router_chat, provider_chat):
        attributes = chat.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert attributes["gen_ai.response.model"]
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    return public


async def test_callers_traceparent_is_continued_through_both_envoy_hops(
    traced: Gateway, receiver: OtlpReceiver
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    await _call(traced, (("traceparent", f"00-{trace_id}-{caller_span}-01"),))
    receiver.wait_for(_tree_complete(trace_id))
    public = _check_tree(receiver.trace(trace_id))
    assert public.parent_span_id == caller_span
    # The trace is in the log lines of the services that served it.
    log = (traced.stack.logs / "router-1.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if trace_id in line]
    assert any(line.get("msg") == "rpc finished" for line in lines)
    assert all(line["trace_id"] == trace_id and len(line["span_id"]) == 16 for line in lines)


async def test_a_request_without_traceparent_is_one_trace_rooted_at_envoy(
    traced: Gateway, receiver: OtlpReceiver
) -> None:
    before = {s.trace_id for s in receiver.spans}
    await _call(traced)

    def new_root(spans: list[ReceivedSpan]) -> bool:
        return any(
            s.trace_id not in before
            and s.attributes.get(LISTENER_TAG) == "public"
            and _tree_complete(s.trace_id)(spans)
            for s in spans
        )

    spans = receiver.wait_for(new_root)
    roots = [
        s for s in spans if s.trace_id not in before and s.attributes.get(LISTENER_TAG) == "public"
    ]
    assert len(roots) == 1
    public = _check_tree(receiver.trace(roots[0].trace_id))
    assert public.parent_span_id == ""


async def test_callers_unsampled_flag_is_honoured(traced: Gateway, receiver: OtlpReceiver) -> None:
    unsampled = secrets.token_hex(16)
    await _call(traced, (("traceparent", f"00-{unsampled}-{secrets.token_hex(8)}-00"),))
    # A sampled request after it: once its whole tree is in, the first one's spans would
    # be too, had anyone sampled them.
    sampled = secrets.token_hex(16)
    await _call(traced, (("traceparent", f"00-{sampled}-{secrets.token_hex(8)}-01"),))
    receiver.wait_for(_tree_complete(sampled))
    assert receiver.trace(unsampled) == []
