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
    rollout = by_name("bad_rollout")
    by_keyword = score(rollout, _investigation("price_rules_v2 is missing", "", 0.8), 1.0)
    assert by_keyword.correct and by_keyword.judged_by == "keyword"
    assert (by_keyword.evidence_valid, by_keyword.evidence_invalid) == (0, 1)
    by_kind = score(rollout, _investigation("something", "bad_rollout", 0.8), 1.0)
    assert by_kind.correct and by_kind.judged_by == "kind"
    assert by_kind.evidence_valid == 1
    wrong = score(rollout, _investigation("the disk is full", "crash_loop", 0.8), 1.0)
    assert not wrong.correct and wrong.judged_by == "none"
    healthy = by_name("healthy")
    assert score(healthy, _investigation("", "", 0.1), 1.0).correct
    assert not score(healthy, _investigation("", "", 0.5), 1.0).correct
    assert not score(healthy, _investigation("the disk is full", "", 0.1), 1.0).correct
