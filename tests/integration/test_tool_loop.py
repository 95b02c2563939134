"""The gateway-side tool loop through Envoy: scripted fake models, the real Tool service
and the fake downstream services behind its tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from tests.fakes import Behaviour, ToolCallSpec
from tests.fakes.downstream_fake import DownstreamControl
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

ANSWER = "Paris is mild and the router retries."


@pytest.fixture
async def channel(gw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as opened:
        yield opened


@pytest.fixture
def router(channel: grpc.aio.Channel) -> router_service_pb2_grpc.RouterServiceStub:
    return router_service_pb2_grpc.RouterServiceStub(channel)


def _request(
    model: str = "gpt-4o-mini", *tools: str, **gateway: Any
) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[
            chat_pb2.ChatMessage(
                role="user", content=struct_pb2.Value(string_value="Weather and routing?")
            )
        ],
        gateway=chat_pb2.GatewayOptions(tools=list(tools), **gateway),
    )


def _downstream(gw: Gateway) -> DownstreamControl:
    return DownstreamControl(gw.fakes["downstream"].root_url)


def _model_requests(gw: Gateway, kind: str = "openai") -> list[dict[str, Any]]:
    with gw.fakes[kind].control() as control:
        return [r.json for r in control.completions()]


TWO_CALLS = Behaviour(
    tool_calls=[
        ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="c1"),
        ToolCallSpec(
            name="search_corpus", arguments='{"query": "router replicas", "top_k": 2}', id="c2"
        ),
    ],
    usage=(10, 4),
)


async def test_two_iterations_run_the_tools_and_feed_their_results_back(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(TWO_CALLS, Behaviour(text=ANSWER, usage=(30, 8)))
    call = router.CreateChatCompletion(_request("gpt-4o-mini", "weather", "search_corpus"))
    reply = await call
    trailers = dict(await call.trailing_metadata())
    assert reply.choices[0].message.content == ANSWER
    assert reply.choices[0].finish_reason == "stop"
    assert not reply.choices[0].message.tool_calls
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (40, 12)
    assert trailers["x-llmgw-tool-iterations"] == "2"

    first, second = _model_requests(gw)
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["search_corpus", "weather"]
    assistant, *results = second["messages"][1:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert [(r["role"], r["tool_call_id"]) for r in results] == [("tool", "c1"), ("tool", "c2")]
    weather, search = (json.loads(r["content"]) for r in results)
    assert weather["city"] == "Paris" and "temperature_c" in weather
    assert len(search["results"]) == 2
    with _downstream(gw) as downstream:
        hits = downstream.stats().hits_by_path
    assert (hits.get("/weather/Paris"), hits.get("/search")) == (1, 1)


async def test_a_streamed_loop_reports_progress_then_streams_the_answer(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["anthropic"].control() as control:
        control.script(TWO_CALLS, Behaviour(chunks=["Paris ", "is ", "mild."], usage=(30, 8)))
    request = _request("claude-sonnet", "weather", "search_corpus")
    request.stream_options.include_usage = True
    progress, text, finishes, tool_deltas, usage = [], "", [], 0, None
    async for chunk in router.StreamChatCompletion(request, timeout=20):
        if chunk.HasField("tool_progress"):
            p = chunk.tool_progress
            progress.append((p.iteration, p.tool_call_id, p.tool_name, p.state))
        for choice in chunk.choices:
            text += choice.delta.content
            tool_deltas += len(choice.delta.tool_calls)
            if choice.HasField("finish_reason"):
                finishes.append(choice.finish_reason)
        if chunk.HasField("usage"):
            usage = chunk.usage
    assert progress[:2] == [(1, "c1", "weather", "started"), (1, "c2", "search_corpus", "started")]
    assert sorted(progress[2:]) == [
        (1, "c1", "weather", "succeeded"),
        (1, "c2", "search_corpus", "succeeded"),
    ]
    assert text == "Paris is mild."
    assert finishes == ["stop"]
    assert tool_deltas == 0  # the gateway ran them; the caller never sees them as calls
    assert usage is not None and usage.prompt_tokens == 40
    second = _model_requests(gw, "anthropic")[1]
    results = [b for m in second["messages"] for b in m["content"] if isinstance(b, dict)]
    assert [b["tool_use_id"] for b in results if b.get("type") == "tool_result"] == ["c1", "c2"]


async def test_the_iteration_limit_returns_the_partial_answer(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(
            *(
                Behaviour(
                    text=f"Checking {city}.",
                    tool_calls=[ToolCallSpec(name="weather", arguments=json.dumps({"city": city}))],
                )
                for city in ("Oslo", "Rome", "Lima")
            )
        )
    call = router.CreateChatCompletion(_request("gpt-4o-mini", "weather", max_iterations=2))
    reply = await call
    choice = reply.choices[0]
    assert choice.finish_reason == "max_iterations"
    assert choice.message.content == "Checking Rome."
    assert [c.function.arguments for c in choice.message.tool_calls] == ['{"city": "Rome"}']
    assert dict(await call.trailing_metadata())["x-llmgw-tool-iterations"] == "2"
    assert len(_model_requests(gw)) == 2
    with _downstream(gw) as downstream:
        hits = downstream.stats().hits_by_path
    assert hits == {"/weather/Oslo": 1}


async def test_an_exact_repeat_is_refused_and_errors_reach_the_model(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Oslo"}')]),
            Behaviour(
                tool_calls=[
                    ToolCallSpec(name="weather", arguments='{ "city":"Oslo" }', id="again"),
                    ToolCallSpec(name="weather", arguments="{}", id="empty"),
                ]
            ),
            Behaviour(text="Done."),
        )
    reply = await router.CreateChatCompletion(_request("gpt-4o-mini", "weather"))
    assert reply.choices[0].message.content == "Done."
    third = _model_requests(gw)[2]
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in third["messages"][-2:]}
    assert results["again"]["error"]["code"] == "REPEATED_CALL"
    assert results["empty"]["error"]["code"] == "INVALID_ARGUMENT"
    assert {"field": "arguments.city", "description": "is a required property"} in results["empty"][
        "error"
    ]["violations"]
    with _downstream(gw) as downstream:
        assert downstream.stats().hits_by_path == {"/weather/Oslo": 1}


async def test_calls_of_the_callers_own_tools_go_back_to_the_caller(
    gw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                tool_calls=[
                    ToolCallSpec(name="weather", arguments='{"city": "Oslo"}', id="g"),
                    ToolCallSpec(name="calendar", arguments='{"day": "today"}', id="mine"),
                ]
            )
        )
    request = _request("gpt-4o-mini", "weather")
    request.tools.add(type="function", function=chat_pb2.ChatFunctionDefinition(name="calendar"))
    calls: dict[int, str] = {}
    finishes = []
    async for chunk in router.StreamChatCompletion(request, timeout=20):
        for choice in chunk.choices:
            for piece in choice.delta.tool_calls:
                calls[piece.index] = calls.get(piece.index, "") + piece.function.name
            if choice.HasField("finish_reason"):
                finishes.append(choice.finish_reason)
    assert calls == {0: "weather", 1: "calendar"}
    assert finishes == ["tool_calls"]
    with _downstream(gw) as downstream:
        assert downstream.stats().hits == 0


async def test_the_loop_is_stored_in_the_session(
    gw: Gateway, channel: grpc.aio.Channel, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    sessions = session_grpc.SessionServiceStub(channel)
    created = await sessions.CreateSession(session_pb2.CreateSessionRequest(), timeout=10)
    name = created.session.name
    with gw.fakes["openai"].control() as control:
        control.script(TWO_CALLS, Behaviour(text=ANSWER))
    await router.CreateChatCompletion(
        _request("gpt-4o-mini", "weather", "search_corpus", session=name), timeout=20
    )
    stored = await sessions.GetSession(
        session_pb2.GetSessionRequest(name=name, view=session_pb2.SESSION_VIEW_FULL), timeout=10
    )
    roles = [m.message.role for m in stored.session.messages]
    assert roles == [
        common_pb2.ROLE_USER,
        common_pb2.ROLE_ASSISTANT,
        common_pb2.ROLE_TOOL,
        common_pb2.ROLE_TOOL,
        common_pb2.ROLE_ASSISTANT,
    ]
    assert [c.id for c in stored.session.messages[1].message.tool_calls] == ["c1", "c2"]
    assert stored.session.messages[-1].message.content[0].text == ANSWER


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"tools": ["no_such_tool"]}, "gateway.tools[0]"),
        ({"tools": ["weather", "weather"]}, "gateway.tools[1]"),
        ({"tools": ["bad name!"]}, "gateway.tools[0]"),
        ({"max_iterations": 3}, "gateway.max_iterations"),
        ({"tools": ["weather"], "max_iterations": 99}, "gateway.max_iterations"),
    ],
)
async def test_bad_tool_options_are_invalid_argument(
    gw: Gateway, options: dict[str, Any], field: str
) -> None:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "gateway": options},
        )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert [v["field"] for d in details for v in d.get("field_violations", [])] == [field]
    with gw.fakes["openai"].control() as control:
        assert control.stats().hits == 0
