"""The model loop: steps, tool calls and their refusals, every limit ending it with what
it has (never an error)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import Unavailable
from services.investigation.calls import PlannedCall, ToolCall
from services.investigation.limits import Limits
from services.investigation.model_loop import ModelLoop
from services.investigation.toolbox import Toolbox
from tests.unit.investigation.fakes import FakeChat, FakeTools, answer, toolset_tool

CONCLUSION = json.dumps(
    {
        "summary": "web crashes",
        "root_cause": "bad config",
        "root_cause_evidence": [{"tool_call_id": "c1", "excerpt": "CrashLoopBackOff"}],
        "findings": [],
        "recommendations": ["fix it"],
        "confidence": 0.9,
    }
)
POD = {"pod": {"name": "web-1", "reason": "CrashLoopBackOff"}}
LOGS = {"lines": ["panic: missing DATABASE_URL"]}


async def _toolbox(tools: FakeTools) -> Toolbox:
    box = Toolbox(tools, owner="consumers/a", toolsets=[], timeout_s=5)  # type: ignore[arg-type]
    await box.load(1)
    return box


def _tools() -> FakeTools:
    return FakeTools(
        [toolset_tool("kubernetes_describe_pod"), toolset_tool("kubernetes_pod_logs")],
        {"kubernetes_describe_pod": POD, "kubernetes_pod_logs": LOGS},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _loop(
    chat: FakeChat,
    box: Toolbox,
    *,
    steps: int = 5,
    tokens: int = 100_000,
    cost: float = 0.0,
    clock: Clock | None = None,
    cancelled: asyncio.Event | None = None,
    per_step: int = 8,
    seen: list[ToolCall] | None = None,
    window: int | None = None,
) -> ModelLoop:
    clock = clock or Clock()

    async def on_step(step: int) -> None:
        return None

    async def on_call(call: ToolCall) -> None:
        if seen is not None:
            seen.append(call)

    return ModelLoop(
        chat,  # type: ignore[arg-type]
        box,
        model="m",
        limits=Limits(max_steps=steps, time_limit_s=300, max_tokens=tokens, max_cost=cost),
        deadline=clock.now + 300,
        max_calls_per_step=per_step,
        investigation_id="inv-1",
        attempt=2,
        cancelled=cancelled or asyncio.Event(),
        on_step=on_step,
        on_tool_call=on_call,
        context_window=window,
        clock=clock,
    )


def _logs_call(call_id: str, args: dict[str, Any] | None = None) -> tuple[str, str, str]:
    return (call_id, "kubernetes_pod_logs", json.dumps(args or {"name": "web-1"}))


async def test_tool_then_conclusion_is_complete_and_numbers_calls_after_the_context() -> None:
    tools = _tools()
    box = await _toolbox(tools)
    await box.gather([PlannedCall("kubernetes_describe_pod", {"name": "web-1"})])
    chat = FakeChat([answer(calls=[_logs_call("t1")]), answer(CONCLUSION)])
    seen: list[ToolCall] = []
    outcome = await _loop(chat, box, seen=seen).run("the alert")
    assert outcome.partial_reason == 0
    assert outcome.conclusion is not None and outcome.conclusion.root_cause == "bad config"
    assert outcome.steps == 2 and outcome.model == "fake-model"
    assert [c.id for c in seen] == ["c2"] and seen[0].requested_by == "model" and seen[0].step == 1
    tool_message = chat.requests[1].messages[-1]
    assert tool_message.role == "tool" and tool_message.tool_call_id == "t1"
    assert tool_message.content.string_value.startswith("[c2] kubernetes_pod_logs")
    assert "panic: missing DATABASE_URL" in tool_message.content.string_value
    first = chat.requests[0]
    assert first.gateway.request_id == "inv.inv-1.a2.s1" and first.gateway.cache == "bypass"
    assert chat.investigations == ["investigations/inv-1"] * 2 and not first.metadata
    assert {t.function.name for t in first.tools} == {
        "kubernetes_describe_pod",
        "kubernetes_pod_logs",
    }


async def test_step_limit_forces_a_conclusion_without_tools_and_is_partial() -> None:
    box = await _toolbox(_tools())
    chat = FakeChat(
        [
            answer(calls=[_logs_call("t1", {"name": "a"})]),
            answer(calls=[_logs_call("t2", {"name": "b"})]),
            answer(CONCLUSION),
        ]
    )
    outcome = await _loop(chat, box, steps=3).run("alert")
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_STEP_LIMIT
    assert outcome.conclusion is not None and outcome.steps == 3
    last = chat.requests[2]
    assert not last.tools and last.response_format.type == "json_schema"
    assert (
        last.messages[-1].role == "user" and "last step" in last.messages[-1].content.string_value
    )


async def test_calls_ask_for_what_the_models_window_leaves() -> None:
    chat = FakeChat([answer(CONCLUSION)])
    loop = _loop(chat, await _toolbox(_tools()), steps=1, window=4096)
    assert loop.budget.offer_tools  # two small tools fit beside the context
    await loop.run("alert")
    assert chat.requests[0].max_tokens == 1024


async def test_tools_a_small_window_cannot_hold_are_not_offered() -> None:
    chat = FakeChat([answer(CONCLUSION)])
    # Fifteen toolset schemas take about 9.4 KB: as much as these two long descriptions.
    described = FakeTools(
        [toolset_tool(f"kubernetes_t{i}", description="d" * 4700) for i in range(2)], {}
    )
    loop = _loop(chat, await _toolbox(described), window=4096)
    assert not loop.budget.offer_tools
    outcome = await loop.run("alert")
    first = chat.requests[0]
    assert not first.tools and first.response_format.type == "json_schema"
    assert outcome.partial_reason == 0 and outcome.steps == 1


async def test_one_step_conclusion_is_complete() -> None:
    chat = FakeChat([answer(CONCLUSION)])
    outcome = await _loop(chat, await _toolbox(_tools()), steps=1).run("alert")
    assert outcome.partial_reason == 0 and outcome.conclusion is not None


async def test_token_budget_stops_before_the_next_call() -> None:
    chat = FakeChat([answer(calls=[_logs_call("t1", {"name": str(i)})]) for i in range(5)])
    loop = _loop(chat, await _toolbox(_tools()), tokens=150)
    outcome = await loop.run("alert")
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_TOKEN_BUDGET
    assert len(chat.requests) == 2 and loop.input_tokens + loop.output_tokens == 240
    assert chat.requests[1].max_tokens == 30  # what the budget left


async def test_cost_budget() -> None:
    chat = FakeChat(
        [answer(calls=[_logs_call("t1", {"name": str(i)})], cost=0.02) for i in range(5)]
    )
    loop = _loop(chat, await _toolbox(_tools()), cost=0.05)
    outcome = await loop.run("alert")
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_COST_BUDGET
    assert len(chat.requests) == 3 and abs(loop.cost - 0.06) < 1e-9


async def test_time_limit() -> None:
    clock = Clock()

    def slow(_: object) -> Any:
        clock.now += 200
        return answer(calls=[_logs_call("t", {"n": clock.now})])

    chat = FakeChat([slow])
    outcome = await _loop(chat, await _toolbox(_tools()), clock=clock).run("alert")
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_TIME_LIMIT
    assert len(chat.requests) == 2


async def test_model_unavailable_is_partial_with_the_reason() -> None:
    chat = FakeChat([Unavailable("no healthy deployment")])
    outcome = await _loop(chat, await _toolbox(_tools())).run("alert")
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_MODEL_UNAVAILABLE
    assert "no healthy deployment" in outcome.partial_detail and outcome.conclusion is None


async def test_cancel_during_a_model_call_stops_at_once() -> None:
    chat = FakeChat([answer(CONCLUSION)])
    chat.block.clear()
    cancelled = asyncio.Event()
    task = asyncio.create_task(_loop(chat, await _toolbox(_tools()), cancelled=cancelled).run("a"))
    await asyncio.wait_for(chat.called.wait(), 2)
    cancelled.set()
    outcome = await asyncio.wait_for(task, 2)
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_CANCELLED


async def test_refused_calls_run_nothing_and_say_why() -> None:
    tools = _tools()
    box = await _toolbox(tools)
    await box.gather([PlannedCall("kubernetes_describe_pod", {"name": "web-1"})])
    calls = [
        ("u", "kubernetes_delete_pod", "{}"),
        ("j", "kubernetes_pod_logs", "{not json"),
        ("l", "kubernetes_pod_logs", "[1]"),
        ("r", "kubernetes_describe_pod", json.dumps({"name": "web-1"})),
        ("ok", "kubernetes_pod_logs", json.dumps({"name": "web-1"})),
        ("dup", "kubernetes_pod_logs", json.dumps({"name": "web-1"})),
        ("cap", "kubernetes_pod_logs", json.dumps({"name": "web-2"})),
    ]
    chat = FakeChat([answer(calls=calls), answer(CONCLUSION)])
    await _loop(chat, box, per_step=6).run("alert")
    assert tools.executed == [
        ("kubernetes_describe_pod", {"name": "web-1"}),
        ("kubernetes_pod_logs", {"name": "web-1"}),
    ]
    replies = {
        m.tool_call_id: m.content.string_value
        for m in chat.requests[1].messages
        if m.role == "tool"
    }
    assert "no tool 'kubernetes_delete_pod'" in replies["u"]
    assert "not valid JSON" in replies["j"]
    assert "must be a JSON object" in replies["l"]
    assert "already made as [c1]" in replies["r"]
    assert replies["ok"].startswith("[c2]")
    assert "already part of this step" in replies["dup"]
    assert "at most 6 tool calls" in replies["cap"]


async def test_an_answer_without_json_is_asked_again() -> None:
    chat = FakeChat([answer("I think it is the config."), answer(CONCLUSION)])
    outcome = await _loop(chat, await _toolbox(_tools())).run("alert")
    assert outcome.partial_reason == 0 and outcome.steps == 2
    assert chat.requests[1].messages[-1].content.string_value.startswith("Answer with the JSON")


async def test_no_readable_conclusion_within_the_steps_is_partial() -> None:
    chat = FakeChat([answer("no idea")])
    outcome = await _loop(chat, await _toolbox(_tools()), steps=2).run("alert")
    assert outcome.partial_reason == inv_pb2.PARTIAL_REASON_STEP_LIMIT
    assert outcome.conclusion is None
