"""Text of `llmgw investigate`: one progress line per event (for stderr) and the final
result for humans (for stdout). Works on the REST JSON of the API (proto field names,
enums by name), so it shows exactly what any REST client would receive."""

from __future__ import annotations

import json
import textwrap
from typing import Any

Json = dict[str, Any]

# Longest argument list shown on a tool-call line.
MAX_ARGUMENTS = 100
# Longest excerpt quoted under a finding (the stored excerpt may be up to 500).
MAX_EXCERPT = 200

# google.rpc.Code numbers, as a tool call's status carries them.
_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}

# How the analyzers bear on the root cause, as the result says it (REST enum names).
_SUPPORT = {
    "ROOT_CAUSE_SUPPORT_ANALYZER": "root cause from the analyzers",
    "ROOT_CAUSE_SUPPORT_CORROBORATED": "the model's root cause, corroborated by the analyzers",
    "ROOT_CAUSE_SUPPORT_UNCORROBORATED": "the model's root cause, not corroborated",
    "ROOT_CAUSE_SUPPORT_CONTRADICTED": "the model's root cause; the analyzers found another",
}


def enum_word(value: object, prefix: str) -> str:
    """`INVESTIGATION_STATE_SUCCEEDED` -> `succeeded` (what a person reads)."""
    text = str(value or "")
    return text.removeprefix(prefix).lower().replace("_", " ") or "unspecified"


def state_of(investigation: Json) -> str:
    return enum_word(investigation.get("state"), "INVESTIGATION_STATE_")


def _milliseconds(duration: object) -> str:
    """A JSON Duration (`"0.120s"`) as `120 ms`."""
    text = str(duration or "")
    try:
        return f"{round(float(text.removesuffix('s')) * 1000)} ms"
    except ValueError:
        return text


def _arguments(arguments: object) -> str:
    if not isinstance(arguments, dict) or not arguments:
        return ""
    # Sorted: a Struct's fields come in no particular order, and lines should compare.
    shown = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in sorted(arguments.items())
    )
    return shown if len(shown) <= MAX_ARGUMENTS else shown[: MAX_ARGUMENTS - 1] + "…"


def _outcome(status: object) -> str:
    code = int(status.get("code", 0) or 0) if isinstance(status, dict) else 0
    if code == 0:
        return "ok"
    message = str(status.get("message", "")) if isinstance(status, dict) else ""
    name = _CODES.get(code, f"code {code}")
    return f"{name}: {message}" if message else name


def tool_call_line(call: Json) -> str:
    """`[c3] kubernetes_pod_logs namespace=shop name=web-1 ok 120 ms`."""
    parts = [f"[{call.get('id', '?')}]", str(call.get("tool", "?"))]
    arguments = _arguments(call.get("arguments"))
    if arguments:
        parts.append(arguments)
    parts.append(_outcome(call.get("status")))
    parts.append(_milliseconds(call.get("duration")))
    if call.get("truncated"):
        parts.append("(truncated)")
    return " ".join(parts)


def _citations(evidence: object) -> str:
    if not isinstance(evidence, list):
        return ""
    ids = sorted({str(item.get("tool_call_id", "")) for item in evidence if isinstance(item, dict)})
    return " ".join(f"[{i}]" for i in ids if i)


def event_line(event: Json) -> str | None:
    """The progress line of one event; None for the result (printed in full at the end)."""
    if isinstance(event.get("progress"), dict):
        progress = event["progress"]
        percent = int(progress.get("percent", 0) or 0)
        message = progress.get("message") or ""
        return f"-- {progress.get('stage', '?')} ({percent}%) {message}".rstrip()
    if isinstance(event.get("tool_call"), dict):
        return "   " + tool_call_line(event["tool_call"])
    if isinstance(event.get("finding"), dict):
        finding = event["finding"]
        cited = _citations(finding.get("evidence"))
        origin = finding.get("origin", "")
        return f"   finding: {finding.get('title', '')} ({origin}) {cited}".rstrip()
    if "state" in event:
        return f"-- state: {enum_word(event['state'], 'INVESTIGATION_STATE_')}"
    return None


def _quote(item: Json) -> str:
    excerpt = " ".join(str(item.get("excerpt", "")).split())
    if len(excerpt) > MAX_EXCERPT:
        excerpt = excerpt[: MAX_EXCERPT - 1] + "…"
    return f'[{item.get("tool_call_id", "?")}] "{excerpt}"'


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent) or [indent]


def _completeness(result: Json) -> str:
    completeness = enum_word(result.get("completeness"), "COMPLETENESS_")
    if completeness != "partial":
        return completeness
    reason = enum_word(result.get("partial_reason"), "PARTIAL_REASON_")
    detail = result.get("partial_detail") or ""
    return f"partial ({reason}){': ' + detail if detail else ''}"


def render_result(investigation: Json) -> str:
    """The investigation for humans: state, summary, the root cause with the quotes it
    rests on, findings, recommendations, confidence and completeness."""
    lines = [f"{investigation.get('name', '?')}: {state_of(investigation)}"]
    error = investigation.get("error")
    if isinstance(error, dict) and error.get("message"):
        lines.append(f"Error: {error['message']}")
    result = investigation.get("result")
    if not isinstance(result, dict) or not (result.get("summary") or result.get("findings")):
        if len(lines) == 1:
            lines.append(f"Progress: {int(investigation.get('progress_percent', 0) or 0)}%")
        return "\n".join(lines) + "\n"
    lines.append(f"Completeness: {_completeness(result)}")
    if result.get("summary"):
        lines += ["", "Summary:", *_wrapped(str(result["summary"]), "  ")]
    if result.get("root_cause"):
        lines += ["", "Root cause:", *_wrapped(str(result["root_cause"]), "  ")]
        lines += [f"    {_quote(item)}" for item in result.get("root_cause_evidence") or []]
    findings = result.get("findings") or []
    if findings:
        lines += ["", "Findings:"]
        for finding in findings:
            lines.append(f"  - {finding.get('title', '')} ({finding.get('origin', '')})")
            if finding.get("detail"):
                lines += _wrapped(str(finding["detail"]), "      ")
            lines += [f"      {_quote(item)}" for item in finding.get("evidence") or []]
    recommendations = result.get("recommendations") or []
    if recommendations:
        lines += ["", "Recommendations:"]
        lines += [f"  - {text}" for text in recommendations]
    rejected = result.get("rejected_claims") or []
    if rejected:
        lines += ["", "Rejected claims (evidence did not check out):"]
        lines += [f"  - {r.get('title', '')}: {r.get('reason', '')}" for r in rejected]
    support = _SUPPORT.get(str(result.get("root_cause_support", "")), "")
    confidence = f"Confidence: {float(result.get('confidence', 0) or 0):.2f}"
    lines += ["", f"{confidence} ({support})" if support else confidence]
    usage = investigation.get("usage") or {}
    model = result.get("model") or "none (analyzers only)"
    lines.append(
        f"Model: {model}; {int(result.get('steps', 0) or 0)} steps, "
        f"{len(result.get('tool_calls') or [])} tool calls, "
        f"{int(usage.get('total_tokens', 0) or 0)} tokens, "
        f"cost {float(investigation.get('cost', 0) or 0):.6f}"
    )
    return "\n".join(lines) + "\n"


def render_summary_line(investigation: Json) -> str:
    """One line of `llmgw investigate list`."""
    alert = investigation.get("alert") or {}
    where = f" ({alert['namespace']})" if alert.get("namespace") else ""
    return (
        f"{investigation.get('name', '?')}  {state_of(investigation):<9}  "
        f"{investigation.get('create_time', '')}  {alert.get('alert_name', '')}{where}"
    )
