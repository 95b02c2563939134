"""The newer analyzers' edges over made ToolCalls: what they must not claim (a probe on
the right port, a change after the failure began, a log with one error) and what they
claim from partial reads (evictions without the node's listing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.investigation.analyzers import AnalyzerFinding, analyze
from services.investigation.analyzers.logs import last_error_line, most_repeated_error
from services.investigation.evidence import occurs
from tests.unit.investigation.toolcalls import (
    NEW_RS,
    NS,
    OLD_RS,
    Calls,
    container,
    crashing,
    described,
    event,
    pod,
)

POD = f"{NEW_RS}-x2x1q"


def _checked(calls: Calls, **options: Any) -> list[AnalyzerFinding]:
    findings = analyze(calls.made, **options)
    by_id = {c.id: c for c in calls.made}
    for found in findings:
        for ref in found.evidence:
            assert occurs(ref.excerpt, by_id[ref.tool_call_id]), (found.analyzer, ref)
    return findings


def _probed(port: str, listens: list[str]) -> dict[str, Any]:
    probed = {
        **container(ready=False, restart_count=4),
        "ports": listens,
        "probes": {"liveness": {"type": "httpGet", "port": port, "path": "/healthz"}},
    }
    return described(pod(POD, containers=[probed]))


REFUSED = (
    'Liveness probe failed: Get "http://10.1.2.3:9000/healthz": dial tcp 10.1.2.3:9000: '
    "connect: connection refused"
)


def test_a_probe_on_an_undeclared_port_is_the_root_cause() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod", {"namespace": NS, "name": POD}, _probed("9000", ["8080/TCP"])
    )
    calls.ok(
        "kubernetes_events",
        {"namespace": NS},
        {"events": [event("Unhealthy", REFUSED, f"Pod/{POD}")]},
    )
    (found, *_) = _checked(calls)
    assert (found.analyzer, found.severity) == ("probe_failure", 4)
    assert "checks port 9000, but the container listens on 8080/TCP" in found.root_cause
    assert {(r.tool_call_id, r.excerpt) for r in found.evidence} >= {
        ("c2", REFUSED),
        ("c1", "9000"),
        ("c1", "8080/TCP"),
    }


def test_a_probe_on_a_declared_port_or_its_name_is_only_a_symptom() -> None:
    for port, listens in (("9000", ["9000/TCP"]), ("metrics", ["metrics:9000/TCP"])):
        calls = Calls()
        calls.ok("kubernetes_describe_pod", {"namespace": NS, "name": POD}, _probed(port, listens))
        calls.ok(
            "kubernetes_events",
            {"namespace": NS},
            {"events": [event("Unhealthy", REFUSED, f"Pod/{POD}")]},
        )
        probe = next(f for f in _checked(calls) if f.analyzer == "probe_failure")
        assert (probe.severity, probe.root_cause) == (3, "")
    # Without the pod's description there is no port to compare.
    calls = Calls()
    calls.ok(
        "kubernetes_events",
        {"namespace": NS},
        {"events": [event("Unhealthy", REFUSED, f"Pod/{POD}")]},
    )
    assert _checked(calls)[0].root_cause == ""


def _history(created: str, after: str = "DB_POOL_MAX=2") -> dict[str, Any]:
    return {
        "deployment": "api",
        "revisions": [
            {
                "revision": 6,
                "replicaset": OLD_RS,
                "created": "2024-04-01T09:00:00Z",
                "images": {},
                "change_cause": "",
            },
            {
                "revision": 7,
                "replicaset": NEW_RS,
                "created": created,
                "images": {},
                "change_cause": "",
            },
        ],
        "diff": {
            "from_revision": 6,
            "to_revision": 7,
            "changes": [
                {"container": "api", "field": "env", "before": "DB_POOL_MAX=50", "after": after}
            ],
        },
    }


def _unhealthy_since(first_seen: str) -> dict[str, Any]:
    seen = event(
        "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", f"Pod/{POD}"
    )
    return {"events": [{**seen, "first_seen": first_seen}]}


def test_recent_change_needs_the_change_first_and_close() -> None:
    for created, first_seen, expected in (
        ("2024-05-02T10:00:00Z", "2024-05-02T10:05:00Z", True),
        ("2024-05-02T10:00:00Z", "2024-05-02T09:30:00Z", False),  # failing before it
        ("2024-05-01T10:00:00Z", "2024-05-02T10:05:00Z", False),  # a day before
    ):
        calls = Calls()
        calls.ok("kubernetes_rollout_history", {"namespace": NS, "name": "api"}, _history(created))
        calls.ok("kubernetes_events", {"namespace": NS}, _unhealthy_since(first_seen))
        changes = [f for f in _checked(calls) if f.analyzer == "recent_change"]
        assert bool(changes) is expected, (created, first_seen)
        if expected:
            assert "from DB_POOL_MAX=50 to DB_POOL_MAX=2" in changes[0].root_cause
            assert "5 minutes before the failure began" in changes[0].root_cause


def test_recent_change_from_the_alert_start_names_a_removed_variable() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_rollout_history",
        {"namespace": NS, "name": "api"},
        _history("2024-05-02T10:00:00Z", after=""),
    )
    findings = _checked(calls, alert_started=datetime(2024, 5, 2, 10, 20, tzinfo=UTC))
    (change,) = findings
    assert change.analyzer == "recent_change"
    assert "removed env DB_POOL_MAX of container api (was DB_POOL_MAX=50)" in change.root_cause
    assert "20 minutes before the failure began" in change.root_cause
    assert [(r.tool_call_id, r.excerpt) for r in change.evidence] == [("c1", "DB_POOL_MAX=50")]
    assert _checked(calls) == []  # no date for the failure, no claim


def test_evictions_without_the_nodes_listing_still_name_the_node() -> None:
    message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 64Mi. "
    evicted = {
        **pod("api-1", phase="Failed", node="node-q", containers=[]),
        "reason": "Evicted",
        "message": message,
    }
    calls = Calls()
    calls.ok("kubernetes_list_pods", {"namespace": NS}, {"pods": [evicted, pod("api-2")]})
    (found,) = _checked(calls)
    assert (found.analyzer, found.subject, found.severity) == ("node_pressure", "node/node-q", 3)
    assert "evicted 1 pods (shop/api-1)" in found.root_cause
    assert [r.excerpt for r in found.evidence] == [message.strip()]


def test_stuck_rollout_quotes_the_controller() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_list_deployments",
        {"namespace": NS},
        {
            "deployments": [
                {
                    "name": "api",
                    "namespace": NS,
                    "replicas": 3,
                    "ready_replicas": 3,
                    "updated_replicas": 1,
                    "available_replicas": 3,
                    "revision": 4,
                    "images": {},
                    "conditions": [
                        {
                            "type": "Progressing",
                            "status": "False",
                            "reason": "ProgressDeadlineExceeded",
                            "message": f'ReplicaSet "{NEW_RS}" has timed out progressing.',
                        }
                    ],
                },
                {
                    "name": "web",
                    "namespace": NS,
                    "conditions": [
                        {
                            "type": "Progressing",
                            "status": "True",
                            "reason": "NewReplicaSetAvailable",
                            "message": "",
                        }
                    ],
                },
            ]
        },
    )
    (found,) = _checked(calls)
    assert (found.analyzer, found.subject) == ("stuck_rollout", f"deployment/{NS}/api")
    assert "1 of 3 replicas updated, 3 ready" in found.detail


def test_error_lines() -> None:
    assert (
        last_error_line(["ERROR config: KEY missing", "FATAL exiting: status 1"])
        == "ERROR config: KEY missing"
    )
    assert last_error_line(["info", "FATAL exiting: status 1"]) == "FATAL exiting: status 1"
    line, repeats, errors = most_repeated_error(
        [
            "status=503 id=1",
            "ERROR pool exhausted id=1",
            "status=503 id=2",
            "ERROR pool exhausted id=2",
            "ok",
        ]
    )
    assert (line, repeats, errors) == ("ERROR pool exhausted id=2", 2, 4)
    calls = Calls()
    logs = {
        "pod": POD,
        "container": "api",
        "previous": False,
        "lines": ["ok", "ERROR once"],
        "matched": None,
        "truncated": False,
    }
    calls.ok("kubernetes_pod_logs", {"namespace": NS, "name": POD, "container": "api"}, logs)
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(pod(POD, containers=[crashing()])),
    )
    assert [f.analyzer for f in _checked(calls)] == ["crash_loop"]  # one error is no pattern
