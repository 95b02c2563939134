"""What the model reads: labelled tool outputs, sized to the model's context window."""

from __future__ import annotations

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.analyzers import analyze
from services.investigation.prompts import (
    CALL_BYTES,
    CONTEXT_BYTES,
    Budget,
    budget_for,
    first_message,
    tool_message,
)
from tests.unit.investigation.toolcalls import NS, Calls, crashing, described, event, pod

POD = "api-7d9f8c6b5-x2x1q"


def _calls() -> Calls:
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(pod(POD, containers=[crashing()]), [event("BackOff", "Back-off", f"Pod/{POD}")]),
    )
    lines = [f"2026-01-01T10:00:{i % 60:02d}Z INFO request {i} served in 12 ms" for i in range(400)]
    calls.ok("kubernetes_pod_logs", {"namespace": NS, "name": POD}, {"lines": lines})
    return calls


def test_an_unknown_window_keeps_the_defaults() -> None:
    assert budget_for(None) == Budget()
    big = budget_for(200_000)
    assert big.context_bytes == CONTEXT_BYTES and big.call_bytes == CALL_BYTES


def test_a_small_window_gets_a_first_message_that_fits_with_room_to_answer() -> None:
    budget = budget_for(4096)
    assert budget.call_tokens == 1024
    calls = _calls()
    alert = inv_pb2.Alert(alert_name="KubePodCrashLooping", namespace=NS, labels={"pod": POD})
    text, shown = first_message(alert, calls.made, analyze(calls.made), budget=budget)
    # About 3 bytes a token: the message leaves the answer's 1,024 tokens free.
    assert len(text.encode()) // 3 + budget.call_tokens < 4096
    assert "[c1] kubernetes_describe_pod" in text and "c1" in shown
    # The long log is cut to the per-call share, with a note saying how to ask for less.
    assert "c2" in shown and "call it again narrower" in text


def test_every_output_is_labelled_with_its_call_id() -> None:
    calls = _calls()
    assert tool_message(calls.made[1], 200).startswith("[c2] kubernetes_pod_logs")


def test_tool_definitions_count_against_a_small_window() -> None:
    few = budget_for(4096, tool_bytes=1200)
    assert few.offer_tools and few.context_bytes < budget_for(4096).context_bytes
    # Fifteen toolset schemas (about 9.4 KB) leave a 4,096-token model no room: not offered.
    many = budget_for(4096, tool_bytes=9400)
    assert not many.offer_tools and many.context_bytes == budget_for(4096).context_bytes
    assert budget_for(200_000, tool_bytes=9400).offer_tools
