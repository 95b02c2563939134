"""The result of an investigation: analyzer findings and the model's conclusion, every
claim's evidence checked against the tool call it names before anything is stored.

- A model finding keeps the evidence items that check out; with none left it is not a
  finding but a rejected claim, with the reason.
- The model's root cause stands when at least one of its evidence items checks out;
  otherwise it is rejected and the strongest analyzer root cause (if any) takes its
  place.
- A quote that exists is not yet a relevant one: the model's root cause is then weighed
  against the analyzers' (`root_cause_support`): corroborated when an analyzer's root
  cause rests on the same excerpt of the same call, uncorroborated when no analyzer
  established one, contradicted when one established another.
- Confidence: the model's (or, without one, a figure from what the analyzers
  established), capped for an uncorroborated or contradicted root cause, lowered by a
  fifth for every rejected claim and capped while partial.
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
# The most a model's root cause may claim when no analyzer established a root cause, and
# when one established a different one.
UNCORROBORATED_CEILING = 0.6
CONTRADICTED_CEILING = 0.4
# The confidence of a root cause an analyzer established, and of analyzer findings only.
ANALYZER_ROOT_CONFIDENCE = 0.7
ANALYZER_FINDINGS_CONFIDENCE = 0.4
NOTHING_CONFIDENCE = 0.1
# A model root cause that names no confidence of its own: as an analyzer's when one
# corroborates it, else this.
MODEL_DEFAULT_CONFIDENCE = 0.5
# The shortest excerpt two claims may share to count as resting on the same evidence.
MIN_SHARED_EXCERPT = 12
_MODEL_SUPPORT = (
    inv_pb2.ROOT_CAUSE_SUPPORT_CORROBORATED,
    inv_pb2.ROOT_CAUSE_SUPPORT_UNCORROBORATED,
    inv_pb2.ROOT_CAUSE_SUPPORT_CONTRADICTED,
)
_CEILINGS = {
    inv_pb2.ROOT_CAUSE_SUPPORT_UNCORROBORATED: UNCORROBORATED_CEILING,
    inv_pb2.ROOT_CAUSE_SUPPORT_CONTRADICTED: CONTRADICTED_CEILING,
}


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
            _weigh_model_root(result, root.valid, analyzer)
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
    result.confidence = _confidence(found, analyzer, result, rejected, ending)
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
            result.root_cause_support = inv_pb2.ROOT_CAUSE_SUPPORT_ANALYZER
            result.root_cause_analyzer = f"analyzer:{finding.analyzer}"
            return


def _overlaps(a: EvidenceRef, b: EvidenceRef) -> bool:
    """One verified excerpt inside the other (from the same call or two calls that both
    show it, such as a pod's termination message and its logs), and long enough to be a
    fact rather than a word: the two claims rest on the same evidence."""
    short, long = sorted((a.excerpt, b.excerpt), key=len)
    return len(short) >= MIN_SHARED_EXCERPT and short in long


def _weigh_model_root(
    result: inv_pb2.InvestigationResult,
    cited: Sequence[EvidenceRef],
    analyzer: Sequence[AnalyzerFinding],
) -> None:
    """Sets how the analyzers' root causes bear on the model's (verified) one."""
    roots = [f for f in analyzer if f.root_cause]
    if not roots:
        result.root_cause_support = inv_pb2.ROOT_CAUSE_SUPPORT_UNCORROBORATED
        return
    for finding in roots:
        if any(_overlaps(m, a) for m in cited for a in finding.evidence):
            result.root_cause_support = inv_pb2.ROOT_CAUSE_SUPPORT_CORROBORATED
            result.root_cause_analyzer = f"analyzer:{finding.analyzer}"
            return
    result.root_cause_support = inv_pb2.ROOT_CAUSE_SUPPORT_CONTRADICTED
    result.root_cause_analyzer = f"analyzer:{roots[0].analyzer}"


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
    result: inv_pb2.InvestigationResult,
    rejected: int,
    ending: Ending,
) -> float:
    support = result.root_cause_support
    if found is not None and support in _MODEL_SUPPORT:
        base = found.confidence if found.confidence is not None else _model_default(support)
        base = min(base, _CEILINGS.get(support, 1.0))
    elif support == inv_pb2.ROOT_CAUSE_SUPPORT_ANALYZER:
        base = ANALYZER_ROOT_CONFIDENCE
    elif analyzer:
        base = ANALYZER_FINDINGS_CONFIDENCE
    else:
        base = NOTHING_CONFIDENCE
    value = base * REJECTION_FACTOR**rejected
    if ending.partial_reason:
        value = min(value, PARTIAL_CEILING)
    return round(max(0.0, min(1.0, value)), 3)


def _model_default(support: int) -> float:
    if support == inv_pb2.ROOT_CAUSE_SUPPORT_CORROBORATED:
        return ANALYZER_ROOT_CONFIDENCE
    return MODEL_DEFAULT_CONFIDENCE
