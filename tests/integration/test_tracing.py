"""One trace per request, across every hop: Envoy and every service export to an in-process
OTLP receiver (tests/support/otlp.py), given to them through the launcher's environment.

A chat through Envoy's public listener must come back as ONE trace whose spans link
Envoy (public) -> router server -> router chat -> router client -> Envoy (internal) ->
provider server -> provider chat -> upstream HTTP, with the GenAI attributes on both chat
spans, a caller's `traceparent` continued, its unsampled flag honoured, and the trace id
in the services' log lines. A chat's Session and Tool calls are children in its trace
(through the internal Envoy); an investigation's run is a trace of its own, rooted at
`invoke_agent investigation` with a Link to the request that created it, its model calls
and tool calls its descendants.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.investigation.v1 import investigation_service_pb2_grpc as inv_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.launcher.envoy_tracing import LISTENER_TAG
from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import Gateway, running_gateway
from tests.support.kube import running_kube_fake
from tests.support.otlp import OtlpReceiver, ReceivedSpan, running_receiver

pytestmark = pytest.mark.integration

SERVER, CLIENT, INTERNAL = 2, 3, 1  # OTLP Span.SpanKind values
ROUTER_METHOD = "llmgw.router.v1.RouterService/CreateChatCompletion"
PROVIDER_METHOD = "llmgw.provider.v1.ProviderService/Complete"
SESSION_SERVICE = "llmgw.session.v1.SessionService"
TOOL_METHOD = "llmgw.tool.v1.ToolService/ExecuteTool"
RUN_METHOD = "llmgw.investigation.v1.InvestigationService/RunInvestigation"
# The investigation's model, its upstream name at the OpenAI fake, and the alert's pod
# (the fake Kubernetes API's crashloop scenario).
INV_MODEL = "investigator"
INV_UPSTREAM = "inv-model"
KUBE_TOKEN = "fake-kube-token-tracing"
POD = "payments-5c8d7f9b6-x2x7q"
FINAL = {
    inv_pb2.INVESTIGATION_STATE_SUCCEEDED,
    inv_pb2.INVESTIGATION_STATE_FAILED,
    inv_pb2.INVESTIGATION_STATE_CANCELLED,
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with running_kube_fake(tmp_path_factory.mktemp("kube"), "crashloop", KUBE_TOKEN) as path:
        yield path


def _configure(document: dict[str, Any]) -> None:
    document["models"].append(
        {"name": INV_MODEL, "deployments": [{"provider": "openai", "model": INV_UPSTREAM}]}
    )
    document["investigations"] = {"default_model": INV_MODEL, "context_cache_seconds": 0}


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver, kubeconfig: Path
) -> Iterator[Gateway]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        # Export at once rather than every 5 s (the SDK reads it).
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "KUBECONFIG": str(kubeconfig),
    }
    with running_gateway(
        Path(tmp_path_factory.mktemp("tracing")), configure=_configure, env=lambda fakes: env
    ) as gw:
        yield gw


@pytest.fixture
def fresh(traced: Gateway) -> Gateway:
    """The traced gateway with the fakes' scripts cleared."""
    traced.reset_fakes()
    return traced


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


def _traceparent() -> tuple[str, tuple[tuple[str, str], ...]]:
    """A new trace id and the metadata that starts the call in it."""
    trace_id = secrets.token_hex(16)
    return trace_id, (("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),)


def _linked_up(trace_id: str, spans: list[ReceivedSpan]) -> bool:
    """Every received span of the trace has its parent received too, but for the public
    Envoy span of a call that came with a caller's `traceparent` (the exporters flush on
    their own schedules, Envoy's every few seconds)."""
    mine = [s for s in spans if s.trace_id == trace_id]
    ids = {s.span_id for s in mine}
    return all(
        not s.parent_span_id
        or s.parent_span_id in ids
        or s.attributes.get(LISTENER_TAG) == "public"
        for s in mine
    )


def _ancestry(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """`span`'s ancestors in its trace, nearest first (stops at a parent not received)."""
    by_id = {s.span_id: s for s in spans if s.trace_id == span.trace_id}
    chain: list[ReceivedSpan] = []
    parent = by_id.get(span.parent_span_id)
    while parent is not None and len(chain) < len(by_id):
        chain.append(parent)
        parent = by_id.get(parent.parent_span_id)
    return chain


def _via_internal_envoy(
    server: ReceivedSpan, spans: list[ReceivedSpan], caller: str, method: str
) -> ReceivedSpan:
    """Asserts `server` is the child of the internal Envoy's span, itself the child of
    `caller`'s client span for `method`; returns that client span."""
    internal, client = _ancestry(server, spans)[:2]
    assert (internal.service, internal.attributes.get(LISTENER_TAG)) == ("envoy", "internal")
    assert (client.service, client.name, client.kind) == (caller, "/" + method, CLIENT)
    return client


async def test_a_chats_session_calls_are_children_in_its_trace(
    fresh: Gateway, receiver: OtlpReceiver
) -> None:
    trace_id, metadata = _traceparent()
    async with grpc.aio.insecure_channel(fresh.grpc_target) as channel:
        sessions = session_grpc.SessionServiceStub(channel)
        created = await sessions.CreateSession(
            session_pb2.CreateSessionRequest(session=session_pb2.Session()), timeout=10
        )
        request = _chat()
        request.gateway.session = created.session.name
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        call = router.CreateChatCompletion(request, metadata=metadata, timeout=20)
        await call
        assert dict(await call.trailing_metadata())["x-llmgw-session-saved"] == "true"
    load, save = f"{SESSION_SERVICE}/GetSession", f"{SESSION_SERVICE}/AppendMessages"

    def ready(spans: list[ReceivedSpan]) -> bool:
        names = {(s.service, s.name) for s in spans if s.trace_id == trace_id}
        return (
            {("llmgw-session", load), ("llmgw-session", save)} <= names
            and _tree_complete(trace_id)(spans)
            and _linked_up(trace_id, spans)
        )

    receiver.wait_for(ready)
    spans = receiver.trace(trace_id)
    router = _only(spans, "router server span", service="llmgw-router", name=ROUTER_METHOD)
    for method in (load, save):
        server = _only(spans, method, service="llmgw-session", name=method)
        assert server.kind == SERVER
        client = _via_internal_envoy(server, spans, "llmgw-router", method)
        assert router in _ancestry(client, spans)


async def test_the_gateway_tool_loops_tool_runs_are_children_of_its_chat_span(
    fresh: Gateway, receiver: OtlpReceiver
) -> None:
    with fresh.fakes["openai"].control() as control:
        control.script(
            Behaviour(tool_calls=[ToolCallSpec("weather", '{"city": "Paris"}', id="c1")]),
            Behaviour(text="Mild in Paris."),
        )
    trace_id, metadata = _traceparent()
    request = _chat()
    request.gateway.tools.append("weather")
    async with grpc.aio.insecure_channel(fresh.grpc_target) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        reply = await router.CreateChatCompletion(request, metadata=metadata, timeout=20)
    assert reply.choices[0].message.content == "Mild in Paris."

    def ready(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        return (
            any(s.name == TOOL_METHOD and s.service == "llmgw-tool" for s in mine)
            and sum(s.name == PROVIDER_METHOD and s.kind == SERVER for s in mine) == 2
            and _tree_complete(trace_id)(spans)
            and _linked_up(trace_id, spans)
        )

    receiver.wait_for(ready)
    spans = receiver.trace(trace_id)
    chat = _only(spans, "router chat span", service="llmgw-router", name="chat gpt-4o-mini")
    tool = _only(spans, "execute_tool span", service="llmgw-router", name="execute_tool weather")
    assert tool.parent_span_id == chat.span_id
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert (tool.attributes["gen_ai.tool.name"], tool.attributes["gen_ai.tool.call.id"]) == (
        "weather",
        "c1",
    )
    server = _only(spans, "tool server span", service="llmgw-tool", name=TOOL_METHOD)
    assert server.kind == SERVER and server.attributes["rpc.grpc.status_code"] == 0
    client = _via_internal_envoy(server, spans, "llmgw-router", TOOL_METHOD)
    assert client.parent_span_id == tool.span_id
    # Both model calls of the loop are children of the same chat span too.
    providers = [s for s in spans if s.name == PROVIDER_METHOD and s.kind == SERVER]
    assert all(chat in _ancestry(s, spans) for s in providers)


def _conclusion() -> str:
    return json.dumps(
        {
            "summary": "The payments api crash-loops.",
            "root_cause": "",
            "root_cause_evidence": [],
            "findings": [],
            "recommendations": [],
            "confidence": 0.2,
        }
    )


async def test_an_investigation_is_a_trace_of_its_own_linked_to_its_creating_request(
    fresh: Gateway, receiver: OtlpReceiver
) -> None:
    fresh.fakes["openai"].control().set_conversation(
        INV_UPSTREAM,
        [
            Behaviour(
                tool_calls=[ToolCallSpec("kubernetes_list_deployments", '{"namespace": "shop"}')]
            ),
            Behaviour(text=_conclusion()),
        ],
    )
    created_in, metadata = _traceparent()
    spec = inv_pb2.Investigation(
        alert=inv_pb2.Alert(alert_name="KubePodCrashLooping", namespace="shop", labels={"pod": POD})
    )
    async with grpc.aio.insecure_channel(fresh.grpc_target) as channel:
        stub = inv_grpc.InvestigationServiceStub(channel)
        events = [
            r.event
            async for r in stub.RunInvestigation(
                inv_pb2.RunInvestigationRequest(investigation=spec), metadata=metadata, timeout=60
            )
        ]
    assert events[-1].state in FINAL
    agent_id = events[0].investigation.removeprefix("investigations/")

    def agent_of(spans: list[ReceivedSpan]) -> ReceivedSpan | None:
        return next(
            (
                s
                for s in spans
                if s.name == "invoke_agent investigation"
                and s.attributes.get("gen_ai.agent.id") == agent_id
            ),
            None,
        )

    def ready(spans: list[ReceivedSpan]) -> bool:
        agent = agent_of(spans)
        if agent is None:
            return False
        mine = [s for s in spans if s.trace_id == agent.trace_id]
        return (
            sum(s.name == "chat investigator" and s.service == "llmgw-router" for s in mine) >= 2
            and any(s.name == "execute_tool kubernetes_list_deployments" for s in mine)
            and sum(s.name == TOOL_METHOD and s.service == "llmgw-tool" for s in mine)
            >= sum(s.name.startswith("execute_tool ") for s in mine)
            and any(s.name == RUN_METHOD for s in spans if s.trace_id == created_in)
            and _linked_up(agent.trace_id, spans)
        )

    agent = agent_of(receiver.wait_for(ready))
    assert agent is not None
    # A root of its own trace, linked to the RPC that created the investigation.
    run = _only(receiver.trace(created_in), "Run server span", name=RUN_METHOD)
    assert (agent.parent_span_id, agent.service) == ("", "llmgw-investigation")
    assert agent.trace_id != created_in
    assert agent.links == ((created_in, run.span_id),)
    assert agent.attributes["gen_ai.request.model"] == INV_MODEL
    spans = receiver.trace(agent.trace_id)
    # Its model calls: router chat spans below it, through the internal Envoy.
    chats = [s for s in spans if s.name == "chat investigator" and s.service == "llmgw-router"]
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        router = _ancestry(chat, spans)[0]
        assert router.name == ROUTER_METHOD
        _via_internal_envoy(router, spans, "llmgw-investigation", ROUTER_METHOD)
        assert agent in _ancestry(chat, spans)
    # Its tool calls (context gathering and the model's): execute_tool spans below it,
    # each with the Tool service's server span below that.
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    servers = [s for s in spans if s.name == TOOL_METHOD and s.service == "llmgw-tool"]
    assert len(servers) == len(tools) >= 2
    for tool in tools:
        assert tool.service == "llmgw-investigation" and agent in _ancestry(tool, spans)
    for server in servers:
        client = _via_internal_envoy(server, spans, "llmgw-investigation", TOOL_METHOD)
        assert client.parent_span_id in {tool.span_id for tool in tools}
