"""Scoring one investigation against its scenario, with the evidence checked again here.

The evidence check does not reuse the service's code: it reads the stored result only.
An item is valid when its call exists, succeeded, and the excerpt (at least 3 non-space
characters, at most 500) occurs, whitespace runs made one space on both sides, in the
call's stored `output` or in one of the string leaves of that output read as JSON (a
log line with quotes is escaped in JSON text and quoted as it was logged).

Correct: the stored root cause (the model's, or the strongest analyzer's where the
model gave none or its own was rejected) contains the scenario's unique token, case
folded. Nothing else counts: a root cause that names the right kind of failure without
the token was not read from this cluster.

For the model modes, whose root cause stood is reported apart: `model_root` is
"accepted" (the model's own, its evidence checked), "rejected" (the model's, among the
rejected claims) or "none" (the model gave none, or never concluded). An analyzer root
cause is stored with that finding's evidence, all of it, and names the finding's subject
(`batch/report-worker-0`, `node-d4k`); the model's with what it cited that checked out.
A root cause with exactly one analyzer finding's evidence that names its subject is
taken for that finding's (the stored result does not say whose it is).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eval.scenarios import Scenario
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2

MIN_NONSPACE = 3
MAX_EXCERPT = 500


def _flat(text: str) -> str:
    return " ".join(text.split())


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


def _haystacks(call: inv_pb2.ToolInvocation) -> list[str]:
    texts = [_flat(call.output)]
    try:
        parsed = json.loads(call.output)
    except ValueError:
        parsed = None
    texts.extend(_flat(leaf) for leaf in _leaves(parsed))
    return texts


def evidence_valid(item: inv_pb2.Evidence, calls: dict[str, inv_pb2.ToolInvocation]) -> bool:
    call = calls.get(item.tool_call_id)
    if call is None or call.status.code != 0:
        return False
    excerpt = item.excerpt
    if len(excerpt) > MAX_EXCERPT or sum(not c.isspace() for c in excerpt) < MIN_NONSPACE:
        return False
    needle = _flat(excerpt)
    return any(needle in haystack for haystack in _haystacks(call))


def stored_evidence(result: inv_pb2.InvestigationResult) -> list[inv_pb2.Evidence]:
    """Every evidence item the result stores: the findings' and the root cause's."""
    return [e for f in result.findings for e in f.evidence] + list(result.root_cause_evidence)


@dataclass(frozen=True)
class Score:
    scenario: str
    token: str
    covered: bool
    state: str
    # The stored root cause contains the token.
    correct: bool
    # "accepted", "rejected" or "none" (see the module's docstring); "" without a model.
    model_root: str
    # The model's own root cause was accepted and contains the token.
    model_correct: bool
    root_cause: str
    # The kind of the strongest analyzer finding ("" when there is none).
    analyzer_kind: str
    evidence_valid: int
    evidence_invalid: int
    rejected_claims: tuple[str, ...]
    finding_titles: tuple[str, ...]
    completeness: str
    partial_reason: str
    partial_detail: str
    confidence: float
    steps: int
    tool_calls: int
    model_tool_calls: int
    tokens: int
    seconds: float


def _enum(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _key(items: Any) -> list[tuple[str, str]]:
    return [(e.tool_call_id, e.excerpt) for e in items]


def model_root(result: inv_pb2.InvestigationResult, with_model: bool) -> str:
    """Whose root cause stood: see the module's docstring."""
    if not with_model:
        return ""
    if any(r.title.startswith("root cause: ") for r in result.rejected_claims):
        return "rejected"
    if not result.root_cause:
        return "none"
    stored = _key(result.root_cause_evidence)
    analyzers = (f for f in result.findings if f.origin.startswith("analyzer:"))
    for found in analyzers:
        # `pod/ns/name` -> `ns/name`, `node/name` -> `name`: every analyzer root cause names it.
        named = found.subject.partition("/")[2]
        if _key(found.evidence) == stored and named and named in result.root_cause:
            return "none"
    return "accepted"


def score(
    scenario: Scenario,
    investigation: inv_pb2.Investigation,
    seconds: float,
    *,
    with_model: bool = False,
) -> Score:
    result = investigation.result
    calls = {c.id: c for c in result.tool_calls}
    items = stored_evidence(result)
    valid = sum(evidence_valid(item, calls) for item in items)
    analyzer = [f for f in result.findings if f.origin.startswith("analyzer:")]
    succeeded = investigation.state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED
    found = scenario.token.casefold() in result.root_cause.casefold()
    whose = model_root(result, with_model)
    return Score(
        scenario=scenario.name,
        token=scenario.token,
        covered=scenario.covered,
        state=_enum(inv_pb2.InvestigationState, investigation.state, "INVESTIGATION_STATE_"),
        correct=succeeded and found,
        model_root=whose,
        model_correct=succeeded and found and whose == "accepted",
        root_cause=result.root_cause,
        analyzer_kind=analyzer[0].kind if analyzer else "",
        evidence_valid=valid,
        evidence_invalid=len(items) - valid,
        rejected_claims=tuple(f"{r.title} ({r.reason})" for r in result.rejected_claims),
        finding_titles=tuple(f.title for f in result.findings),
        completeness=_enum(inv_pb2.Completeness, result.completeness, "COMPLETENESS_"),
        partial_reason=_enum(inv_pb2.PartialReason, result.partial_reason, "PARTIAL_REASON_"),
        partial_detail=result.partial_detail,
        confidence=result.confidence,
        steps=result.steps,
        tool_calls=len(result.tool_calls),
        model_tool_calls=sum(c.requested_by == "model" for c in result.tool_calls),
        tokens=investigation.usage.total_tokens,
        seconds=seconds,
    )
