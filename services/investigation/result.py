"""The result of an investigation: analyzer findings and the model's conclusion, every
claim's evidence checked against the tool call it names before anything is stored.

- A model finding keeps the evidence items that check out; with none left it is not a
  finding but a rejected claim, with the reason.
- The model's root cause stands when at least one of its evidence items checks out;
  otherwise it is rejected and the strongest analyzer root cause (if any) takes its
  place.
- Confidence: the model's (or, without one, a figure from what the analyzers
  established), lowered by a fifth for every rejected claim and capped while partial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.analyzers import AnalyzerFinding
from services.investigation.calls import ToolCall
from services.investigation.conclusion import Cited, Conclusion
from services.investigation.evidence import EvidenceRef, check
from services.investigation.toolbox import to_invocation

# Each rejected claim multiplies the confidence by this.
REJECTION_FACTOR = 0.8
# A partial result claims at most this confidence.
PARTIAL_CEILING = 0.6
MAX_RECOMMENDATIONS = 10


def finding_proto(finding: AnalyzerFinding) -> inv_pb2.Finding:
    return inv_pb2.Finding(
        title=finding.title,
        detail=finding.detail,
        source=finding.source,
        evidence=[_evidence(e) for e in finding.evidence],
        origin=f"analyzer:{finding.analyzer}",
        kind=finding.kind,
        subject=finding.subject,
    )


def _evidence(ref: EvidenceRef) -> inv_pb2.Evidence:
    return inv_pb2.Evidence(tool_call_id=ref.tool_call_id, excerpt=ref.excerpt)


def verified_analyzer_findings(
    findings: Sequence[AnalyzerFinding], calls: Mapping[str, ToolCall]
) -> list[AnalyzerFinding]:
    """Analyzer findings whose evidence checks out (all of them, unless an analyzer has a
    bug: the check is applied to every claim alike)."""
    return [f for f in findings if f.evidence and not check(list(f.evidence), calls)[1]]


@dataclass
class _Checked:
    valid: list[EvidenceRef]
    reasons: list[str]


def _check(cited: Sequence[Cited], calls: Mapping[str, ToolCall]) -> _Checked:
    valid, reasons = check([EvidenceRef(c.tool_call_id, c.excerpt) for c in cited], calls)
    return _Checked(list(valid), list(reasons))


def _source(refs: Sequence[EvidenceRef], calls: Mapping[str, ToolCall]) -> str:
    toolsets = sorted({calls[r.tool_call_id].toolset for r in refs if r.tool_call_id in calls})
    return ",".join(toolsets)


@dataclass(frozen=True)
class Ending:
    """How the work ended: complete (reason 0) or partial, with the model used."""

    steps: int = 0
    model: str = ""
    partial_reason: inv_pb2.PartialReason = inv_pb2.PARTIAL_REASON_UNSPECIFIED
    partial_detail: str = ""


def build(
    findings: Sequence[AnalyzerFinding],
    found: Conclusion | None,
    calls: Sequence[ToolCall],
    ending: Ending,
) -> inv_pb2.InvestigationResult:
    """The result to store, every claim verified."""
    by_id = {c.id: c for c in calls}
    analyzer = sorted(verified_analyzer_findings(findings, by_id), key=lambda f: -f.severity)
    result = inv_pb2.InvestigationResult(
        tool_calls=[to_invocation(c) for c in calls],
        steps=ending.steps,
        model=ending.model,
        completeness=inv_pb2.COMPLETENESS_PARTIAL
        if ending.partial_reason
        else inv_pb2.COMPLETENESS_COMPLETE,
        partial_reason=ending.partial_reason,
        partial_detail=ending.partial_detail,
    )
    result.findings.extend(finding_proto(f) for f in analyzer)
    rejected = 0
    model_root = False
    if found is not None:
        rejected += _add_model_findings(result, found, by_id)
        root = _check(found.root_cause_evidence, by_id)
        if found.root_cause and root.valid:
            result.root_cause = found.root_cause
            result.root_cause_evidence.extend(_evidence(e) for e in root.valid)
            model_root = True
        elif found.root_cause:
            rejected += 1
            result.rejected_claims.add(
                title=f"root cause: {found.root_cause[:200]}",
                reason=_reason(root.reasons, found.root_cause_evidence),
            )
        result.summary = found.summary
    if not model_root:
        _analyzer_root(result, analyzer)
    if not result.summary:
        result.summary = _summary(analyzer, result.root_cause)
    result.recommendations.extend(_recommendations(found, analyzer))
    result.confidence = _confidence(found, analyzer, model_root, rejected, ending)
    return result


def _reason(reasons: Sequence[str], cited: Sequence[Cited]) -> str:
    if not cited:
        return "no evidence was cited"
    return "; ".join(reasons[:3]) or "the evidence did not check out"


def _add_model_findings(
    result: inv_pb2.InvestigationResult, found: Conclusion, by_id: Mapping[str, ToolCall]
) -> int:
    rejected = 0
    for claim in found.findings:
        checked = _check(claim.evidence, by_id)
        if not checked.valid:
            rejected += 1
            result.rejected_claims.add(
                title=claim.title, reason=_reason(checked.reasons, claim.evidence)
            )
            continue
        result.findings.add(
            title=claim.title,
            detail=claim.detail,
            source=_source(checked.valid, by_id),
            evidence=[_evidence(e) for e in checked.valid],
            origin="model",
        )
    return rejected


def _analyzer_root(
    result: inv_pb2.InvestigationResult, analyzer: Sequence[AnalyzerFinding]
) -> None:
    for finding in analyzer:
        if finding.root_cause:
            result.root_cause = finding.root_cause
            result.root_cause_evidence.extend(_evidence(e) for e in finding.evidence)
            return


def _summary(analyzer: Sequence[AnalyzerFinding], root_cause: str) -> str:
    if not analyzer:
        return "No problem was established from the evidence gathered."
    titles = "; ".join(f.title for f in analyzer[:5])
    lead = f"{root_cause} " if root_cause else ""
    return f"{lead}Established: {titles}."


def _recommendations(found: Conclusion | None, analyzer: Sequence[AnalyzerFinding]) -> list[str]:
    out: list[str] = []
    for text in [
        *(found.recommendations if found else ()),
        *(r for f in analyzer for r in f.recommendations),
    ]:
        if text and text not in out:
            out.append(text)
    return out[:MAX_RECOMMENDATIONS]


def _confidence(
    found: Conclusion | None,
    analyzer: Sequence[AnalyzerFinding],
    model_root: bool,
    rejected: int,
    ending: Ending,
) -> float:
    if found is not None and model_root and found.confidence is not None:
        base = found.confidence
    elif any(f.root_cause for f in analyzer):
        base = 0.7
    elif analyzer:
        base = 0.4
    else:
        base = 0.1
    value = base * REJECTION_FACTOR**rejected
    if ending.partial_reason:
        value = min(value, PARTIAL_CEILING)
    return round(max(0.0, min(1.0, value)), 3)
