"""The toolbox: numbering, a takeover's restored calls never made again, failures kept."""

from __future__ import annotations

from services.common.errors import NotFound
from services.investigation.calls import PlannedCall
from services.investigation.toolbox import Toolbox, call_from_invocation, to_invocation
from tests.unit.investigation.fakes import FakeTools, toolset_tool

LOGS = {"lines": ["panic: boom"]}


def _tools() -> FakeTools:
    return FakeTools(
        [toolset_tool("kubernetes_pod_logs"), toolset_tool("prometheus_query", "prometheus")],
        {"kubernetes_pod_logs": LOGS, "prometheus_query": NotFound("no such series")},
    )


async def _box(tools: FakeTools) -> Toolbox:
    box = Toolbox(tools, owner="", toolsets=[], timeout_s=5)  # type: ignore[arg-type]
    await box.load(1)
    return box


async def test_restored_calls_are_not_made_again_and_numbering_continues() -> None:
    first = await _box(_tools())
    [made] = await first.gather(
        [PlannedCall("kubernetes_pod_logs", {"name": "a", "tail_lines": 200})]
    )
    # What an event carries: arguments through a protobuf Struct (numbers become floats).
    restored = call_from_invocation(to_invocation(made))
    assert restored.arguments == {"name": "a", "tail_lines": 200} and restored.ok

    tools = _tools()
    second = await _box(tools)
    second.restore([to_invocation(made)])
    again = await second.gather(
        [
            PlannedCall("kubernetes_pod_logs", {"name": "a", "tail_lines": 200}),
            PlannedCall("kubernetes_pod_logs", {"name": "b"}),
        ]
    )
    assert [c.id for c in again] == ["c2"] and tools.executed == [
        ("kubernetes_pod_logs", {"name": "b"})
    ]


async def test_a_failed_call_is_recorded_with_its_code_and_restored_as_failed() -> None:
    box = await _box(_tools())
    [call] = await box.gather([PlannedCall("prometheus_query", {"query": "up"})])
    assert not call.ok and call.error_code == "NOT_FOUND" and call.output == "no such series"
    assert call.toolset == "prometheus"
    restored = call_from_invocation(to_invocation(call))
    assert not restored.ok and restored.error_code == "NOT_FOUND"


async def test_only_the_investigations_toolsets_are_loaded() -> None:
    box = Toolbox(_tools(), owner="", toolsets=["prometheus"], timeout_s=5)  # type: ignore[arg-type]
    await box.load(1)
    assert list(box.tools) == ["prometheus_query"] and box.toolsets() == ["prometheus"]
