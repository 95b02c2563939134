"""The stored result: every claim's evidence checked, rejected claims recorded and
costing confidence, analyzer findings as the floor."""

from __future__ import annotations

from dataclasses import replace

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.analyzers import analyze
from services.investigation.conclusion import Cited, ClaimedFinding, Conclusion
from services.investigation.result import Ending, build
from tests.unit.investigation.toolcalls import NS, Calls, crashing, described, event, pod

POD = "api-7d9f8c6b5-x2x1q"


def _calls() -> Calls:
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(
            pod(POD, containers=[crashing()]),
            [event("BackOff", "Back-off restarting failed container api", f"Pod/{POD}")],
        ),
    )
    calls.ok(
        "kubernetes_pod_logs",
        {"namespace": NS, "name": POD, "previous": True},
        {
            "pod": POD,
            "container": "api",
            "previous": True,
            "lines": ["boot", 'fatal: "DATABASE_URL" is not set'],
            "matched": None,
            "truncated": False,
        },
    )
    return calls


def _conclusion(**over: object) -> Conclusion:
    base: dict[str, object] = {
        "summary": "api crash-loops",
        "root_cause": "DATABASE_URL is missing",
        "root_cause_evidence": (Cited("c2", 'fatal: "DATABASE_URL" is not set'),),
        "findings": (
            ClaimedFinding("container exits", "exits 1", (Cited("c1", "CrashLoopBackOff"),)),
            ClaimedFinding("disk full", "made up", (Cited("c1", "no space left on device"),)),
            ClaimedFinding("ghost", "cites nothing real", (Cited("c9", "anything"),)),
        ),
        "recommendations": ("set DATABASE_URL",),
        "confidence": 0.9,
    }
    base.update(over)
    return Conclusion(**base)  # type: ignore[arg-type]


def test_model_claims_are_verified_and_bad_ones_rejected() -> None:
    calls = _calls()
    result = build(analyze(calls.made), _conclusion(), calls.made, Ending(2, "m"))
    assert result.completeness == inv_pb2.COMPLETENESS_COMPLETE
    assert result.root_cause == "DATABASE_URL is missing"
    assert [e.tool_call_id for e in result.root_cause_evidence] == ["c2"]
    model = [f for f in result.findings if f.origin == "model"]
    assert [f.title for f in model] == ["container exits"] and model[0].source == "kubernetes"
    rejected = {r.title: r.reason for r in result.rejected_claims}
    assert "not found in c1" in rejected["disk full"]
    assert "c9 does not exist" in rejected["ghost"]
    assert result.confidence == round(0.9 * 0.8 * 0.8, 3)
    # The crash-loop analyzer rests its root cause on the same log line.
    assert result.root_cause_support == inv_pb2.ROOT_CAUSE_SUPPORT_CORROBORATED
    assert result.root_cause_analyzer.startswith("analyzer:")
    assert any(f.origin.startswith("analyzer:") for f in result.findings)
    for finding in result.findings:
        assert finding.evidence, finding.title
    assert [c.id for c in result.tool_calls] == ["c1", "c2"]


def test_unverifiable_root_cause_falls_back_to_the_analyzers() -> None:
    calls = _calls()
    bad = _conclusion(root_cause_evidence=(Cited("c2", "out of memory"),), findings=())
    result = build(analyze(calls.made), bad, calls.made, Ending(1, "m"))
    assert result.root_cause != "DATABASE_URL is missing" and result.root_cause
    assert result.rejected_claims[0].title.startswith("root cause:")
    assert result.root_cause_support == inv_pb2.ROOT_CAUSE_SUPPORT_ANALYZER
    assert result.root_cause_analyzer.startswith("analyzer:")
    assert result.confidence == 0.56  # the analyzers' 0.7, one rejection


def test_analyzers_alone_and_partial_caps_confidence() -> None:
    calls = _calls()
    ending = Ending(0, "", inv_pb2.PARTIAL_REASON_MODEL_UNAVAILABLE, "no model")
    result = build(analyze(calls.made), None, calls.made, ending)
    assert result.completeness == inv_pb2.COMPLETENESS_PARTIAL
    assert result.partial_reason == inv_pb2.PARTIAL_REASON_MODEL_UNAVAILABLE
    assert result.root_cause and result.summary and result.confidence <= 0.6


def test_nothing_found() -> None:
    result = build([], None, [], Ending())
    assert result.summary.startswith("No problem") and result.confidence == 0.1
    assert not result.findings and not result.root_cause


def test_a_real_but_irrelevant_quote_is_contradicted_and_capped() -> None:
    # "boot" does occur in c2, but the analyzers established another root cause.
    calls = _calls()
    off = _conclusion(
        root_cause="the service is still booting",
        root_cause_evidence=(Cited("c2", "boot"),),
        findings=(),
        confidence=1.0,
    )
    result = build(analyze(calls.made), off, calls.made, Ending(1, "m"))
    assert result.root_cause == "the service is still booting"
    assert result.root_cause_support == inv_pb2.ROOT_CAUSE_SUPPORT_CONTRADICTED
    assert result.root_cause_analyzer.startswith("analyzer:")
    assert result.confidence == 0.4
    # The analyzers' own root cause is still there, as a finding with its evidence.
    assert any("DATABASE_URL" in e.excerpt for f in result.findings for e in f.evidence)


def test_a_model_root_cause_no_analyzer_established_is_capped() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_pod_logs",
        {"namespace": NS, "name": POD},
        {
            "pod": POD,
            "container": "api",
            "previous": False,
            "lines": ["pool exhausted: 50 of 50 connections in use"],
            "matched": None,
            "truncated": False,
        },
    )
    found = _conclusion(
        root_cause="the connection pool is exhausted",
        root_cause_evidence=(Cited("c1", "pool exhausted: 50 of 50"),),
        findings=(),
        confidence=0.95,
    )
    result = build(analyze(calls.made), found, calls.made, Ending(1, "m"))
    assert result.root_cause_support == inv_pb2.ROOT_CAUSE_SUPPORT_UNCORROBORATED
    assert result.root_cause_analyzer == ""
    assert result.confidence == 0.6
    unsure = build(analyze(calls.made), replace(found, confidence=None), calls.made, Ending(1, "m"))
    assert unsure.confidence == 0.5
