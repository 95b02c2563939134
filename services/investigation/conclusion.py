"""The model's conclusion: the JSON document it is asked for, and a tolerant reading of it.

Models wrap JSON in code fences, add prose around it, write NaN, use the wrong types:
what can be read is read, bounded, and every claim still goes through the evidence
check (services/investigation/result.py). What cannot be read is None, and the loop
asks again while it may.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 4000
MAX_TITLE = 300
MAX_FINDINGS = 20
MAX_EVIDENCE = 10
MAX_RECOMMENDATIONS = 10
MAX_EXCERPT = 500
# What the schema asks for: less than what is read, so an answer fits one call's output
# tokens (a model server that enforces the schema by grammar, like llama-server, stops
# each string there instead of running out of tokens mid-document).
SCHEMA_TEXT = 600
SCHEMA_TITLE = 160
SCHEMA_EXCERPT = 200
SCHEMA_EVIDENCE = 3
SCHEMA_FINDINGS = 5
SCHEMA_RECOMMENDATIONS = 5

_EVIDENCE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": SCHEMA_EVIDENCE,
    "items": {
        "type": "object",
        "properties": {
            "tool_call_id": {
                "type": "string",
                "pattern": "^c[0-9]{1,4}$",
                "description": "Id of the tool call whose output holds the excerpt (c1...).",
            },
            "excerpt": {
                "type": "string",
                "maxLength": SCHEMA_EXCERPT,
                "description": "Text copied verbatim from that output.",
            },
        },
        "required": ["tool_call_id", "excerpt"],
        "additionalProperties": False,
    },
}

# What the model is asked to answer with (response_format json_schema on the last step).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {
            "type": "string",
            "maxLength": SCHEMA_TEXT,
            "description": "A short paragraph for the on-call engineer.",
        },
        "root_cause": {
            "type": "string",
            "maxLength": SCHEMA_TEXT,
            "description": "The most likely root cause, one or two sentences.",
        },
        "root_cause_evidence": _EVIDENCE_SCHEMA,
        "findings": {
            "type": "array",
            "maxItems": SCHEMA_FINDINGS,
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "maxLength": SCHEMA_TITLE},
                    "detail": {"type": "string", "maxLength": SCHEMA_TEXT},
                    "evidence": _EVIDENCE_SCHEMA,
                },
                "required": ["title", "detail", "evidence"],
                "additionalProperties": False,
            },
        },
        "recommendations": {
            "type": "array",
            "items": {"type": "string", "maxLength": SCHEMA_TITLE},
            "maxItems": SCHEMA_RECOMMENDATIONS,
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": [
        "summary",
        "root_cause",
        "root_cause_evidence",
        "findings",
        "recommendations",
        "confidence",
    ],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Cited:
    """An evidence item as the model wrote it (not yet checked)."""

    tool_call_id: str
    excerpt: str


@dataclass(frozen=True)
class ClaimedFinding:
    title: str
    detail: str
    evidence: tuple[Cited, ...]


@dataclass(frozen=True)
class Conclusion:
    summary: str
    root_cause: str
    root_cause_evidence: tuple[Cited, ...]
    findings: tuple[ClaimedFinding, ...]
    recommendations: tuple[str, ...] = field(default_factory=tuple)
    # None when the model gave none (or not a number in 0..1).
    confidence: float | None = None


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if isinstance(value, str):
        return value.strip()[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)[:limit]
    return ""


def _evidence(value: Any) -> tuple[Cited, ...]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return ()
    out = []
    for item in value[:MAX_EVIDENCE]:
        if not isinstance(item, dict):
            continue
        call = _text(item.get("tool_call_id") or item.get("id") or item.get("call"), 32)
        excerpt = _text(item.get("excerpt") or item.get("quote"), MAX_EXCERPT + 1)
        if call and excerpt:
            out.append(Cited(call.strip("[]"), excerpt))
    return tuple(out)


def _findings(value: Any) -> tuple[ClaimedFinding, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for item in value[:MAX_FINDINGS]:
        if not isinstance(item, dict):
            continue
        title = _text(item.get("title"), MAX_TITLE)
        if title:
            out.append(
                ClaimedFinding(title, _text(item.get("detail")), _evidence(item.get("evidence")))
            )
    return tuple(out)


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    if 1 < number <= 100:
        number /= 100
    return number if 0 <= number <= 1 else None


def _closed(text: str) -> str | None:
    """`text` (from its first `{`) as a complete JSON document: as far as its first
    top-level object ends, or, when the answer was cut off (out of tokens), up to its last
    complete value with the open arrays and objects closed. None when nothing is whole."""
    closers: list[str] = []
    in_string = escaped = False
    cut: tuple[int, list[str]] | None = None
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if closers:
                closers.pop()
            if not closers:
                return text[: i + 1]
            cut = (i + 1, list(closers))
        elif ch == ",":
            cut = (i, list(closers))
    if cut is None:
        return None
    end, still_open = cut
    return text[:end] + "".join(reversed(still_open))


def _document(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    whole = _closed(text[start:])
    if whole is None:
        return None
    try:
        # NaN and Infinity are read as None: a bad number must not lose the document.
        value = json.loads(whole, parse_constant=lambda _: None)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse(text: str) -> Conclusion | None:
    """The conclusion in the model's answer, or None when it holds none (no JSON object,
    or one with neither a summary nor a root cause)."""
    document = _document(text or "")
    if document is None:
        return None
    summary = _text(document.get("summary"))
    root_cause = _text(document.get("root_cause"))
    if not summary and not root_cause:
        return None
    recommendations = document.get("recommendations")
    return Conclusion(
        summary=summary,
        root_cause=root_cause,
        root_cause_evidence=_evidence(document.get("root_cause_evidence")),
        findings=_findings(document.get("findings")),
        recommendations=tuple(
            t for t in (_text(r, 1000) for r in recommendations[:MAX_RECOMMENDATIONS]) if t
        )
        if isinstance(recommendations, list)
        else (),
        confidence=_confidence(document.get("confidence")),
    )
