"""The evidence rule: an excerpt must occur in what the call it names returned."""

from __future__ import annotations

from services.investigation.evidence import MAX_EXCERPT_CHARS, EvidenceRef, check, occurs
from tests.unit.investigation.toolcalls import Calls

LOG_LINE = 'level=error msg="connect to db: dial tcp 10.0.0.5:5432: connection refused"'


def _logs() -> tuple[Calls, str]:
    calls = Calls()
    call = calls.ok(
        "kubernetes_pod_logs",
        {"namespace": "shop", "name": "api-1", "previous": True},
        {
            "pod": "api-1",
            "container": "api",
            "previous": True,
            "lines": ["starting   api\tv1.4.0", LOG_LINE, "exiting"],
            "matched": None,
            "truncated": False,
        },
    )
    return calls, call.id


def test_excerpt_in_output_or_a_string_leaf_occurs() -> None:
    calls, _ = _logs()
    call = calls.made[0]
    assert occurs("exiting", call)
    assert occurs('"container":"api"', call)  # in the rendered output, across fields
    assert not occurs("shutting down", call)


def test_whitespace_runs_are_normalised_on_both_sides() -> None:
    calls, _ = _logs()
    call = calls.made[0]
    assert occurs("starting api v1.4.0", call)  # the leaf has a run of spaces and a tab
    assert occurs("  starting \n api   v1.4.0 ", call)
    assert not occurs("startingapi", call)


def test_a_log_line_with_quotes_is_quoted_as_logged_or_as_rendered() -> None:
    calls, _ = _logs()
    call = calls.made[0]
    assert '\\"connect' in call.output  # the output escapes the line's quotes
    assert occurs(LOG_LINE, call)
    assert occurs('msg=\\"connect to db', call)
    assert occurs('msg="connect to db: dial tcp', call)


def test_a_leaf_counts_when_the_output_was_cut() -> None:
    calls = Calls()
    call = calls.ok("kubernetes_events", {"namespace": "shop"}, {"events": [], "note": "x" * 50})
    cut = type(call)(**{**call.__dict__, "output": call.output[:10], "truncated": True})
    assert occurs("x" * 40, cut)


def test_size_limits() -> None:
    calls = Calls()
    call = calls.ok("kubernetes_configmap_keys", {}, {"keys": ["ab", "a b c", "y" * 600]})
    assert not occurs("ab", call)
    assert not occurs(" a b ", call)  # two non-space characters
    assert occurs("a b c", call)
    assert occurs("y" * MAX_EXCERPT_CHARS, call)
    assert not occurs("y" * (MAX_EXCERPT_CHARS + 1), call)


def test_a_failed_call_is_never_evidence() -> None:
    calls = Calls()
    call = calls.failed(
        "kubernetes_describe_pod",
        {"namespace": "shop", "name": "api-1"},
        "NOT_FOUND",
        "pod shop/api-1 not found",
    )
    assert not occurs("pod shop/api-1 not found", call)


def test_check_keeps_valid_refs_once_in_order_with_a_reason_for_each_invalid() -> None:
    calls, cid = _logs()
    calls.failed("kubernetes_describe_pod", {}, "NOT_FOUND", "pod shop/api-2 not found")
    by_id = {c.id: c for c in calls.made}
    refs = [
        EvidenceRef(cid, LOG_LINE),
        EvidenceRef("c9", "exiting"),
        EvidenceRef(cid, "exiting"),
        EvidenceRef(cid, "  " + LOG_LINE),
        EvidenceRef("c2", "not found"),
        EvidenceRef(cid, "no such line here"),
        EvidenceRef(cid, "ok"),
        EvidenceRef("c" * 1000, "exiting"),
    ]
    valid, reasons = check(refs, by_id)
    assert valid == [EvidenceRef(cid, LOG_LINE), EvidenceRef(cid, "exiting")]
    assert reasons[0] == "c9 does not exist"
    assert reasons[1] == "c2 failed; evidence must come from a successful call"
    assert reasons[2] == "excerpt 'no such line here' not found in c1's output"
    assert "fewer than 3 non-space characters" in reasons[3]
    assert reasons[4].endswith("does not exist")
    assert len(reasons[4]) < 60  # a caller's id is quoted bounded
    assert len(reasons) == 5


def test_check_of_nothing() -> None:
    assert check([], {}) == ([], [])
