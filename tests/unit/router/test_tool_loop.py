"""The gateway-side tool loop's rules: concurrent runs, order, errors fed back, repeats."""

from __future__ import annotations

import asyncio
import json

import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.errors import DeadlineExceeded, RemoteError
from services.router.tool_loop import ToolLoop
from services.router.turn import Turn


class Executor:
    """Answers each tool after a scripted delay; `fail` names tools that fail."""

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.delays = delays or {}
        self.calls: list[tuple[str, dict[str, object]]] = []
        self.request_ids: list[str] = []

    async def execute(
        self,
        tool_id: str,
        arguments: struct_pb2.Struct,
        timeout: float | None,
        request_id: str = "",
    ) -> tool_pb2.ExecuteToolResponse:
        self.calls.append((tool_id, dict(arguments)))
        self.request_ids.append(request_id)
        await asyncio.sleep(self.delays.get(tool_id, 0))
        if tool_id == "slow":
            raise DeadlineExceeded("tools/slow took longer than 1s")
        if tool_id == "strict":
            status = status_pb2.Status(code=3, message="invalid arguments")
            status.details.add().Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="arguments.city", description="is a required property"
                        )
                    ]
                )
            )
            raise RemoteError(status)
        result = struct_pb2.Value()
        result.struct_value.update({"tool": tool_id, "echo": dict(arguments)})
        return tool_pb2.ExecuteToolResponse(name=f"tools/{tool_id}", result=result)


def _loop(
    executor: Executor, *names: str, max_iterations: int = 5, max_calls: int = 16
) -> ToolLoop:
    tools = {n: tool_pb2.Tool(name=f"tools/{n}", description=f"{n} tool") for n in names}
    return ToolLoop(tools, executor, max_iterations, max_calls)


def _assistant(*calls: tuple[str, str, str]) -> common_pb2.Message:
    return common_pb2.Message(
        role=common_pb2.ROLE_ASSISTANT,
        tool_calls=[common_pb2.ToolCall(id=i, name=n, arguments=a) for i, n, a in calls],
    )


async def _run(loop: ToolLoop, assistant: common_pb2.Message) -> list[tuple[str, str]]:
    loop.iteration += 1
    return [(p.tool_call_id, p.state) async for p in loop.execute(assistant, 5.0)]


async def test_calls_run_concurrently_and_results_keep_the_calls_order() -> None:
    executor = Executor({"a": 0.05, "b": 0.0})
    loop = _loop(executor, "a", "b")
    events = await _run(loop, _assistant(("c1", "a", '{"x": 1}'), ("c2", "b", "{}")))
    # Both start before either ends; b (no delay) finishes first.
    assert events == [
        ("c1", "started"),
        ("c2", "started"),
        ("c2", "succeeded"),
        ("c1", "succeeded"),
    ]
    assistant, first, second = loop.transcript
    assert assistant.role == common_pb2.ROLE_ASSISTANT
    assert [(m.role, m.tool_call_id, m.name) for m in (first, second)] == [
        (common_pb2.ROLE_TOOL, "c1", "a"),
        (common_pb2.ROLE_TOOL, "c2", "b"),
    ]
    assert json.loads(first.content[0].text) == {"tool": "a", "echo": {"x": 1}}


async def test_failures_are_fed_back_to_the_model_with_their_violations() -> None:
    loop = _loop(Executor(), "slow", "strict")
    events = await _run(loop, _assistant(("c1", "slow", "{}"), ("c2", "strict", "{}")))
    assert sorted(events) == [
        ("c1", "failed"),
        ("c1", "started"),
        ("c2", "failed"),
        ("c2", "started"),
    ]
    slow, strict = (json.loads(m.content[0].text)["error"] for m in loop.transcript[1:])
    assert slow["code"] == "DEADLINE_EXCEEDED"
    assert strict == {
        "code": "INVALID_ARGUMENT",
        "message": "invalid arguments",
        "violations": [{"field": "arguments.city", "description": "is a required property"}],
    }


async def test_fan_out_per_turn_is_capped_and_the_rest_refused_to_the_model() -> None:
    executor = Executor()
    loop = _loop(executor, "a", max_calls=3)
    calls = [(f"c{i}", "a", json.dumps({"i": i})) for i in range(10)]
    events = await _run(loop, _assistant(*calls))
    assert len(executor.calls) == 3
    refused = [call_id for call_id, state in events if state == "refused"]
    assert refused == [f"c{i}" for i in range(3, 10)]
    answers = [json.loads(m.content[0].text) for m in loop.transcript[1:]]
    assert [a.get("error", {}).get("code") for a in answers[3:]] == ["TOO_MANY_CALLS"] * 7
    assert len(answers) == 10  # every call of the turn gets an answer, run or refused


async def test_a_caller_gone_away_leaves_no_execution_running() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    class Hanging(Executor):
        async def execute(
            self,
            tool_id: str,
            arguments: struct_pb2.Struct,
            timeout: float | None,
            request_id: str = "",
        ) -> tool_pb2.ExecuteToolResponse:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("not reached")

    loop = _loop(Hanging(), "a")
    progress = loop.execute(_assistant(("c1", "a", "{}")), 5.0)
    assert (await anext(progress)).state == "started"
    await started.wait()
    await progress.aclose()
    # The close returned only after the execution's task ended.
    assert cancelled.is_set()


async def test_executions_derive_their_request_ids_from_the_request_s() -> None:
    executor = Executor()
    loop = _loop(executor, "a")
    await _run(loop, _assistant(("c1", "a", "{}"), ("c2", "a", '{"x": 1}')))
    assert executor.request_ids == ["", ""]  # no request id, none for the executions
    executor, again = Executor(), Executor()
    for run in (executor, again):
        loop = _loop(run, "a")
        loop.request_id = "req-1"
        await _run(loop, _assistant(("c1", "a", "{}"), ("c2", "a", '{"x": 1}')))
    # A repeat of the request repeats the ids; each call has its own.
    assert executor.request_ids == again.request_ids
    assert len(set(executor.request_ids)) == 2 and all(executor.request_ids)


async def test_an_exact_repeat_is_refused_not_run() -> None:
    executor = Executor()
    loop = _loop(executor, "a")
    await _run(loop, _assistant(("c1", "a", '{"x": 1, "y": [2]}')))
    # The same arguments with other spacing and key order are the same call.
    events = await _run(
        loop, _assistant(("c2", "a", '{"y": [2],  "x": 1}'), ("c3", "a", '{"x": 2}'))
    )
    assert ("c2", "refused") in events and ("c3", "succeeded") in events
    assert executor.calls == [("a", {"x": 1.0, "y": [2.0]}), ("a", {"x": 2.0})]
    refusal = json.loads(loop.transcript[3].content[0].text)["error"]
    assert refusal["code"] == "REPEATED_CALL"
    assert "c1" in refusal["message"]


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '"text"'])
async def test_arguments_that_are_not_an_object_are_refused(arguments: str) -> None:
    executor = Executor()
    loop = _loop(executor, "a")
    assert await _run(loop, _assistant(("c1", "a", arguments))) == [("c1", "refused")]
    assert executor.calls == []
    assert json.loads(loop.transcript[1].content[0].text)["error"]["code"] == "INVALID_ARGUMENT"


def test_only_calls_of_registered_tools_belong_to_the_gateway() -> None:
    loop = _loop(Executor(), "a", max_iterations=2)
    a, other = common_pb2.ToolCall(name="a"), common_pb2.ToolCall(name="weather")
    assert loop.owns([a])
    assert not loop.owns([a, other])
    assert not loop.owns([])
    assert [d.name for d in loop.definitions()] == ["a"]
    loop.iteration = 2
    assert loop.at_limit()


async def test_the_session_record_drops_unrun_calls_at_the_iteration_limit() -> None:
    loop = _loop(Executor(), "a")
    await _run(loop, _assistant(("c1", "a", "{}")))
    user = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="q")])
    turn = Turn(session="sessions/s", new_turn=[user], loop=loop)
    final = _assistant(("c2", "a", '{"again": true}'))
    final.content.add(text="partial")
    record = turn.to_append(final, common_pb2.FINISH_REASON_MAX_ITERATIONS)
    assert [m.role for m in record] == [
        common_pb2.ROLE_USER,
        common_pb2.ROLE_ASSISTANT,
        common_pb2.ROLE_TOOL,
        common_pb2.ROLE_ASSISTANT,
    ]
    assert not record[-1].tool_calls and record[-1].content[0].text == "partial"
    assert len(final.tool_calls) == 1  # the answer itself is unchanged
    kept = turn.to_append(final, common_pb2.FINISH_REASON_TOOL_CALLS)
    assert len(kept[-1].tool_calls) == 1
