"""eval/RESULTS.md: the machine, the command, a table per mode, the totals, and a
paragraph that reads the figures back without going beyond them."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eval.scoring import Score

MODE_TITLES = {
    "analyzers": "Analyzers alone (`model: none`)",
    "scripted": "Scripted model (one poisoned scenario)",
    "real": "Embedded real model (SmolLM2-135M-Instruct via llama-server)",
}
ROOT_CAUSE_CHARS = 90


@dataclass(frozen=True)
class Setup:
    """How the run was made, for the header."""

    machine: str
    date: str
    command: str
    kube_start_seconds: float
    switch_ms: Sequence[float]
    prometheus_start_seconds: float
    notes: Sequence[str] = ()


def _cell(text: str, limit: int = ROOT_CAUSE_CHARS) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _found(s: Score) -> str:
    return "yes" if s.correct else "**no**"


def _row(s: Score) -> str:
    partial = s.completeness + (
        f" ({s.partial_reason})" if s.partial_reason != "unspecified" else ""
    )
    return (
        f"| {s.scenario} | `{s.token}` | {_found(s)} | {s.model_root or '—'} | "
        f"{_cell(s.root_cause) or '—'} | {s.analyzer_kind or '—'} | "
        f"{s.evidence_valid}/{s.evidence_invalid} | {len(s.rejected_claims)} | "
        f"{s.state}, {partial} | "
        f"{s.confidence:.2f} | {s.steps} | {s.tool_calls} ({s.model_tool_calls}) | "
        f"{s.tokens} | {s.seconds:.1f} |"
    )


def _table(scores: Sequence[Score]) -> list[str]:
    return [
        "| scenario | token | token in root cause | model's own root cause | root cause "
        "| strongest analyzer kind | evidence valid/invalid | rejected claims "
        "| state, completeness | confidence | steps | tool calls (by model) | tokens | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(s) for s in scores),
    ]


def _overview(results: Mapping[str, Sequence[Score]]) -> list[str]:
    """One row per scenario, one column per mode: the token found, and for a model
    mode whose root cause it was."""
    modes = list(results)
    rows = {s.scenario: [s] for s in next(iter(results.values()))}
    for mode in modes[1:]:
        for s in results[mode]:
            rows.setdefault(s.scenario, []).append(s)
    head = "| scenario | token | an analyzer covers it | " + " | ".join(modes) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(modes)]
    for name, scores in rows.items():
        cells = [
            _found(s) + (f" (model's root cause: {s.model_root})" if s.model_root else "")
            for s in scores
        ]
        first = scores[0]
        covered = "yes" if first.covered else "no"
        lines.append(f"| {name} | `{first.token}` | {covered} | " + " | ".join(cells) + " |")
    return lines


def _rejected(scores: Sequence[Score]) -> list[str]:
    lines = [f"- {s.scenario}: {_cell(claim, 400)}" for s in scores for claim in s.rejected_claims]
    return ["Rejected claims (title, then the reason):", "", *lines, ""] if lines else []


def _partial(scores: Sequence[Score]) -> list[str]:
    lines = [
        f"- {s.scenario}: {s.partial_reason}: {_cell(s.partial_detail, 400)}"
        for s in scores
        if s.partial_detail
    ]
    return ["Why partial (the service's own words):", "", *lines, ""] if lines else []


def _total(scores: Sequence[Score]) -> str:
    correct = sum(s.correct for s in scores)
    invalid = sum(s.evidence_invalid for s in scores)
    valid = sum(s.evidence_valid for s in scores)
    rejected = sum(len(s.rejected_claims) for s in scores)
    seconds = [s.seconds for s in scores]
    return (
        f"**token found in {correct}/{len(scores)}**; evidence {valid} valid, {invalid} invalid; "
        f"{rejected} rejected claim(s); {sum(s.tokens for s in scores)} tokens; "
        f"median {statistics.median(seconds):.1f} s, total {sum(seconds):.0f} s."
    )


def _reading(mode: str, scores: Sequence[Score]) -> str:
    """One paragraph per mode, from the figures only."""
    n = len(scores)
    correct = sum(s.correct for s in scores)
    invalid = sum(s.evidence_invalid for s in scores)
    partial = [s for s in scores if s.completeness != "complete"]
    failed = [s.scenario for s in scores if s.state != "succeeded"]
    parts = [
        f"{MODE_TITLES[mode]}: the token in the stored root cause in {correct}/{n}; "
        f"{invalid} stored evidence item(s) failed the eval's own check."
    ]
    wrong = [s.scenario for s in scores if not s.correct]
    if wrong:
        parts.append(f"Token missing: {', '.join(wrong)}.")
    if mode == "analyzers":
        covered = [s for s in scores if s.covered]
        parts.append(
            f"Where an analyzer covers the class: {sum(s.correct for s in covered)}/{len(covered)}."
        )
    else:
        accepted = [s for s in scores if s.model_root == "accepted"]
        rejected = [s.scenario for s in scores if s.model_root == "rejected"]
        parts.append(
            f"The model's own root cause stood in {len(accepted)}/{n} "
            f"({sum(s.model_correct for s in accepted)} with the token); "
            f"rejected in {len(rejected)}"
            + (f" ({', '.join(rejected)})" if rejected else "")
            + f"; in {n - len(accepted) - len(rejected)} the model gave none or never "
            "concluded, and the strongest analyzer root cause stands."
        )
    claims = [
        f"{s.scenario} ({len(s.rejected_claims)}, confidence then {s.confidence:.2f})"
        for s in scores
        if s.rejected_claims
    ]
    if claims:
        parts.append(f"Claims were rejected in: {', '.join(claims)}.")
    if partial:
        reasons = sorted({s.partial_reason for s in partial})
        parts.append(f"{len(partial)}/{n} partial ({', '.join(reasons)}).")
    if failed:
        parts.append(f"Not succeeded: {', '.join(failed)}.")
    silent = [s for s in scores if s.partial_reason == "model_unavailable" and s.tokens == 0]
    if mode != "analyzers" and silent:
        parts.append(
            f"In {len(silent)}/{n} the model answered nothing (model_unavailable, 0 tokens)."
        )
    if mode != "analyzers":
        seconds = [s.seconds for s in scores]
        parts.append(
            f"Per investigation: {statistics.median(seconds):.1f} s median, "
            f"{max(seconds):.1f} s at most; {sum(s.tokens for s in scores)} tokens in all."
        )
    return " ".join(parts)


def render(setup: Setup, results: Mapping[str, Sequence[Score]]) -> str:
    lines = [
        "# Investigation eval",
        "",
        f"- Machine: {setup.machine}",
        f"- Date: {setup.date}",
        f"- Command: `{setup.command}`",
        "- One gateway for the whole run (auth required, one investigation replica, context "
        "cache off); one fake Kubernetes API switched between scenarios "
        f"(`POST /_fake/scenario`: median {statistics.median(setup.switch_ms or [0]):.1f} ms "
        f"per switch, against {setup.kube_start_seconds:.2f} s to start a fake process, "
        "before any Tool-service restart a fake per scenario would also need); a real "
        f"Prometheus (ready in {setup.prometheus_start_seconds:.2f} s) for the error-rate "
        "scenario. Alerts carry Alertmanager's labels and start time.",
        "- The issue's ten incidents, each with distractors and a unique token in its true "
        "cause. Found: the stored root cause (the model's where it stood, else the "
        "strongest analyzer's) contains the token, case folded. Model's own root cause: "
        "accepted (its evidence checked out), rejected, or none (none given, or no "
        "conclusion). Evidence valid/invalid: every stored excerpt checked again by the "
        "eval against the stored output of the call it names.",
        *(f"- {note}" for note in setup.notes),
        "",
    ]
    lines += ["## Token found, per scenario and mode", "", *_overview(results), ""]
    for mode, scores in results.items():
        lines += [f"## {MODE_TITLES[mode]}", "", *_table(scores), ""]
        lines += [*_rejected(scores), *_partial(scores), _total(scores), ""]
    lines += ["## What the figures say", ""]
    lines += [_reading(mode, scores) + "\n" for mode, scores in results.items()]
    return "\n".join(lines).rstrip() + "\n"
