"""The eval's own evidence check and verdicts, on hand-made results: it must refuse what
the service's check refuses, or a 0 in the invalid column would prove nothing."""

from __future__ import annotations

import json

from eval.scenarios import by_name
from eval.scoring import evidence_valid, score
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2

LOG = 'panic: pricing rules table "price_rules_v2" does not exist'


def _calls() -> dict[str, inv_pb2.ToolInvocation]:
    ok = inv_pb2.ToolInvocation(id="c1", output=json.dumps({"lines": [LOG, "aa   bb"]}))
    failed = inv_pb2.ToolInvocation(id="c2", output="pod not found")
    failed.status.code = 5
    return {"c1": ok, "c2": failed}


def test_evidence_check() -> None:
    calls = _calls()

    def valid(call_id: str, excerpt: str) -> bool:
        return evidence_valid(inv_pb2.Evidence(tool_call_id=call_id, excerpt=excerpt), calls)

    # As logged (a string leaf), and as escaped in the JSON text.
    assert valid("c1", LOG) and valid("c1", '\\"price_rules_v2\\"')
    assert valid("c1", "aa bb") and valid("c1", "aa\n bb")
    assert not valid("c99", LOG)
    assert not valid("c1", "connection refused")
    assert not valid("c2", "pod not found")
    assert not valid("c1", " p ")
    assert not valid("c1", "x" * 501)


def _investigation(root_cause: str, kind: str, confidence: float) -> inv_pb2.Investigation:
    investigation = inv_pb2.Investigation(state=inv_pb2.INVESTIGATION_STATE_SUCCEEDED)
    result = investigation.result
    result.root_cause, result.confidence = root_cause, confidence
    result.tool_calls.append(_calls()["c1"])
    if kind:
        result.findings.add(
            kind=kind,
            origin=f"analyzer:{kind}",
            evidence=[inv_pb2.Evidence(tool_call_id="c1", excerpt=LOG)],
        )
    result.root_cause_evidence.add(tool_call_id="c1", excerpt="made up")
    return investigation


def test_verdicts() -> None:
    """Found = the stored root cause holds the scenario's unique token (case folded)."""
    oom = by_name("oomkilled")
    found = score(
        oom, _investigation(f"OOMKilled at its {oom.token} limit", "oom_killed", 0.8), 1.0
    )
    assert found.correct and found.analyzer_kind == "oom_killed"
    assert (found.evidence_valid, found.evidence_invalid) == (1, 1)
    assert score(oom, _investigation(oom.token.upper(), "", 0.8), 1.0).correct
    missed = score(oom, _investigation("the disk is full", "oom_killed", 0.8), 1.0)
    assert not missed.correct
    failed = _investigation(oom.token, "", 0.8)
    failed.state = inv_pb2.INVESTIGATION_STATE_FAILED
    assert not score(oom, failed, 1.0).correct
