"""What the model reads: the instructions, the alert with the gathered context, and each
tool call's output labelled with its id (`[c7] ...`), which is what evidence cites."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.analyzers import AnalyzerFinding
from services.investigation.calls import ToolCall

# The most bytes of tool output the first message carries; calls past it are listed by
# id with a note, and the model may call them again more narrowly.
CONTEXT_BYTES = 48_000
# The most bytes of one call's output shown (the rest is cut with a note).
CALL_BYTES = 16_000

# Output tokens one model call may generate at most.
MAX_CALL_TOKENS = 4096
# Tokens the instructions, the alert and the message framing take, about.
_OVERHEAD_TOKENS = 800
# Bytes of tool output per token, counted low so the context fits (JSON runs near 3.5).
_BYTES_PER_TOKEN = 3


@dataclass(frozen=True)
class Budget:
    """What one investigation's prompts may hold, for the model's context window."""

    # max_tokens of each model call.
    call_tokens: int = MAX_CALL_TOKENS
    # Tool output in the first message.
    context_bytes: int = CONTEXT_BYTES
    # One call's output, in the first message or a tool message.
    call_bytes: int = CALL_BYTES
    # Whether the tools are offered at all: their definitions take room in every request,
    # and a small window cannot hold them and the context together (the model then
    # concludes from the context in one step).
    offer_tools: bool = True


def budget_for(context_window: int | None, tool_bytes: int = 0) -> Budget:
    """The budget for a model whose requests hold `context_window` tokens (None: unknown,
    the defaults), with `tool_bytes` of tool definitions to offer: a small local model
    gets a first message that fits its window with room for the answer, instead of a
    request the model server refuses. Tools that would take more than half of the room
    are not offered."""
    if not context_window:
        return Budget()
    call_tokens = max(256, min(MAX_CALL_TOKENS, context_window // 4))
    room = context_window - call_tokens - _OVERHEAD_TOKENS
    tool_tokens = tool_bytes // _BYTES_PER_TOKEN
    offer_tools = tool_tokens * 2 <= room
    if offer_tools:
        room -= tool_tokens
    context_bytes = max(1500, min(CONTEXT_BYTES, room * _BYTES_PER_TOKEN))
    call_bytes = max(800, min(CALL_BYTES, context_bytes // 3))
    return Budget(call_tokens, context_bytes, call_bytes, offer_tools)


INSTRUCTIONS = """You are the on-call investigator of an alert. You have read-only tools \
over the cluster and its metrics. Work out the most likely root cause from evidence.

Rules:
- Every tool output is labelled with its call id, like [c3]. Evidence is an excerpt \
copied verbatim from one output, with that output's id. Claims without verbatim \
evidence are rejected, and rejected claims lower your confidence.
- Call tools only when their answer can change your conclusion; never repeat a call.
- When you have enough, stop calling tools and answer with one JSON object only:
{"summary": str, "root_cause": str, "root_cause_evidence": [{"tool_call_id": "c1", \
"excerpt": str}], "findings": [{"title": str, "detail": str, "evidence": [...]}], \
"recommendations": [str], "confidence": number from 0 to 1}
- If the evidence does not establish a cause, say so in root_cause and give a low \
confidence."""

FINAL_STEP = (
    "This is your last step: no more tool calls. Answer now with the JSON object, citing "
    "only the tool outputs above."
)
RETRY_JSON = "Answer with the JSON object only, as the instructions say."


def _arguments(call: ToolCall) -> str:
    return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def label(call: ToolCall) -> str:
    """The header line of a call's block: `[c3] kubernetes_pod_logs {...}`."""
    return f"[{call.id}] {call.tool} {_arguments(call)}"


def block(call: ToolCall, limit: int = CALL_BYTES) -> str:
    """A call's block: its header and its output (cut at `limit` bytes)."""
    output = call.output if call.ok else f"error {call.error_code}: {call.output}"
    data = output.encode()
    if len(data) > limit:
        output = data[:limit].decode(errors="ignore") + " …[cut: call it again narrower]"
    return f"{label(call)}\n{output}"


def _alert(alert: inv_pb2.Alert) -> str:
    lines = [f"Alert: {alert.alert_name}"]
    if alert.namespace:
        lines.append(f"Namespace: {alert.namespace}")
    if alert.labels:
        lines.append(
            "Labels: " + json.dumps(dict(sorted(alert.labels.items())), ensure_ascii=False)
        )
    if alert.annotations:
        lines.append(
            "Annotations: "
            + json.dumps(dict(sorted(alert.annotations.items())), ensure_ascii=False)
        )
    if alert.HasField("starts_at"):
        lines.append("Started: " + alert.starts_at.ToJsonString())
    return "\n".join(lines)


def _findings(findings: Sequence[AnalyzerFinding]) -> str:
    if not findings:
        return "Automatic checks found nothing conclusive."
    lines = ["Automatic checks found (each with its evidence):"]
    for f in findings:
        cited = "; ".join(f"[{e.tool_call_id}] {e.excerpt!r}" for e in f.evidence)
        lines.append(f"- {f.title} ({f.subject}): {f.detail} Evidence: {cited}")
    return "\n".join(lines)


def first_message(
    alert: inv_pb2.Alert,
    calls: Sequence[ToolCall],
    findings: Sequence[AnalyzerFinding],
    *,
    budget: Budget | None = None,
) -> tuple[str, set[str]]:
    """The first user message, and the ids of the calls whose output it shows."""
    budget = budget or Budget()
    parts = [_alert(alert), "", _findings(findings), "", "Context gathered:"]
    shown: set[str] = set()
    left = budget.context_bytes
    for call in calls:
        text = block(call, budget.call_bytes)
        if len(text.encode()) <= left:
            parts.append(text)
            shown.add(call.id)
            left -= len(text.encode())
        else:
            parts.append(f"{label(call)}\n(not shown: over the context budget)")
    if not calls:
        parts.append("(no tool output yet)")
    return "\n".join(parts), shown


def tool_message(call: ToolCall, limit: int = CALL_BYTES) -> str:
    """A tool message's content for a call the model asked for."""
    return block(call, limit)
