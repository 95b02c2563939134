"""What an analyzer establishes, and how its evidence is quoted.

An analyzer finding is typed (its kind is the analyzer's name, the vocabulary of
`Finding.kind`), names what it is about, and rests on evidence that passes the same
check as a model's claim: `quote` keeps an excerpt only when `occurs` accepts it, and
`finding` makes no finding without at least one valid excerpt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.investigation.calls import ToolCall
from services.investigation.evidence import MAX_EXCERPT_CHARS, EvidenceRef, occurs

# Evidence items kept per finding: enough to check it, few enough to read.
MAX_EVIDENCE = 8
# Characters of a quoted message inside a title, detail or root cause sentence.
SENTENCE_QUOTE_CHARS = 300


@dataclass(frozen=True)
class AnalyzerFinding:
    """A deterministic finding with its evidence."""

    # `crash_loop`, `oom_killed`...
    analyzer: str
    # Same vocabulary as `Finding.kind` (the analyzer's name).
    kind: str
    title: str
    detail: str
    # `pod/<ns>/<name>`, `deployment/<ns>/<name>`, `node/<name>`, `pvc/<ns>/<name>`,
    # `series/<expr>`.
    subject: str
    # The toolset of the evidence (`kubernetes`, `prometheus`).
    source: str
    # At least one item, each valid for the call it names.
    evidence: tuple[EvidenceRef, ...]
    # 1..4, for ordering; the strongest finding is the root cause candidate.
    severity: int
    # One sentence when this finding explains the alert by itself, else "".
    root_cause: str
    recommendations: tuple[str, ...]


def clipped(value: str, limit: int = SENTENCE_QUOTE_CHARS) -> str:
    """`value` on one line, cut at `limit` characters for a sentence."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quote(call: ToolCall, value: str) -> EvidenceRef | None:
    """`value` (a string leaf of `call`'s result, or a part of one) as evidence from
    `call`, cut to the excerpt limit; None when it is not valid evidence (too short,
    not there, a failed call)."""
    excerpt = value.strip()[:MAX_EXCERPT_CHARS]
    return EvidenceRef(call.id, excerpt) if occurs(excerpt, call) else None


def finding(
    analyzer: str,
    *,
    title: str,
    detail: str,
    subject: str,
    evidence: Iterable[EvidenceRef | None],
    severity: int,
    root_cause: str = "",
    recommendations: Iterable[str] = (),
    source: str = "kubernetes",
) -> AnalyzerFinding | None:
    """An `AnalyzerFinding` with its valid evidence (each once, at most `MAX_EVIDENCE`),
    or None when no evidence is valid."""
    refs: list[EvidenceRef] = []
    for ref in evidence:
        if ref is not None and ref not in refs and len(refs) < MAX_EVIDENCE:
            refs.append(ref)
    if not refs:
        return None
    return AnalyzerFinding(
        analyzer=analyzer,
        kind=analyzer,
        title=title,
        detail=detail,
        subject=subject,
        source=source,
        evidence=tuple(refs),
        severity=min(max(severity, 1), 4),
        root_cause=root_cause,
        recommendations=tuple(recommendations),
    )
