"""The deterministic analyzers over realistic tool results, one scenario each.

Every finding of every scenario is checked against the evidence rule: its evidence
must pass `occurs` for the call it names.
"""

from __future__ import annotations

import dataclasses

import pytest

from services.investigation.analyzers import ANALYZERS, AnalyzerFinding, analyze
from services.investigation.calls import ToolCall
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
    node,
    pod,
    series,
)

POD = f"{NEW_RS}-x2x1q"
DB_ERROR = 'level=error msg="connect to db: dial tcp 10.0.0.5:5432: connection refused"'


def _checked(calls: list[ToolCall]) -> list[AnalyzerFinding]:
    findings = analyze(calls)
    by_id = {c.id: c for c in calls}
    for found in findings:
        assert found.evidence, found
        assert found.kind == found.analyzer
        assert 1 <= found.severity <= 4
        for ref in found.evidence:
            assert occurs(ref.excerpt, by_id[ref.tool_call_id]), (found.analyzer, ref)
    assert analyze(calls) == findings  # deterministic
    return findings


def _of(findings: list[AnalyzerFinding], analyzer: str) -> list[AnalyzerFinding]:
    return [f for f in findings if f.analyzer == analyzer]


def _excerpts(found: AnalyzerFinding) -> list[tuple[str, str]]:
    return [(ref.tool_call_id, ref.excerpt) for ref in found.evidence]


def _crash_loop(with_logs: bool) -> Calls:
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(
            pod(POD, containers=[crashing()]),
            [
                event("Started", "Started container api", f"Pod/{POD}", type="Normal"),
                event(
                    "BackOff",
                    "Back-off restarting failed container api in pod " + POD,
                    f"Pod/{POD}",
                    count=31,
                ),
            ],
        ),
    )
    if with_logs:
        calls.ok(
            "kubernetes_pod_logs",
            {"namespace": NS, "name": POD, "container": "api", "previous": True, "tail_lines": 200},
            {
                "pod": POD,
                "container": "api",
                "previous": True,
                "lines": [
                    'level=info msg="starting api" version=1.4.0',
                    'level=warn msg="retrying" errors=0',
                    DB_ERROR,
                    'level=info msg="shutting down"',
                ],
                "matched": None,
                "truncated": False,
            },
        )
    return calls


def test_crash_loop_quotes_the_previous_logs_last_error_line() -> None:
    calls = _crash_loop(with_logs=True)
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["crash_loop"]
    found = findings[0]
    assert found.subject == f"pod/{NS}/{POD}"
    assert _excerpts(found)[0] == ("c2", DB_ERROR)
    assert ("c1", "CrashLoopBackOff") in _excerpts(found)
    assert ("c1", f"Back-off restarting failed container api in pod {POD}") in _excerpts(found)
    assert "connection refused" in found.root_cause
    assert "restarted 7 times" in found.detail
    assert found.recommendations


def test_crash_loop_without_previous_logs_is_a_finding_without_root_cause() -> None:
    findings = _checked(_crash_loop(with_logs=False).made)
    assert [f.analyzer for f in findings] == ["crash_loop"]
    assert findings[0].root_cause == ""
    assert all(ref.tool_call_id == "c1" for ref in findings[0].evidence)


def test_the_same_pod_in_a_describe_and_a_listing_is_one_finding() -> None:
    calls = _crash_loop(with_logs=False)
    calls.ok(
        "kubernetes_list_pods", {"namespace": NS}, {"pods": [pod(POD, containers=[crashing()])]}
    )
    assert len(_of(_checked(calls.made), "crash_loop")) == 1


def test_oom_killed_with_its_memory_limit_outranks_the_crash_loop() -> None:
    calls = Calls()
    oom = container(
        restart_count=4,
        memory_limit="256Mi",
        last_state={
            "state": "terminated",
            "reason": "OOMKilled",
            "exit_code": 137,
            "finished_at": "",
        },
    )
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(pod(POD, containers=[oom])),
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["oom_killed", "crash_loop"]
    top = findings[0]
    assert top.severity == 4
    assert set(_excerpts(top)) == {("c1", "OOMKilled"), ("c1", "256Mi")}
    assert "256Mi" in top.root_cause
    # Running again between kills: restarts, not a back-off, so a weaker finding.
    assert findings[1].severity == 2 and findings[1].title.endswith("has restarted 4 times")


def test_image_pull_quotes_the_pull_failure_event() -> None:
    image = "registry.example.com/shop/api:1.4.1"
    failure = (
        f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to '
        f'resolve reference "{image}": {image}: not found'
    )
    waiting = container(
        image=image,
        ready=False,
        state="waiting",
        reason="ImagePullBackOff",
        message=f'Back-off pulling image "{image}"',
    )
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(pod(POD, containers=[waiting])),
    )
    calls.ok(
        "kubernetes_events",
        {"namespace": NS},
        {
            "events": [
                event("Failed", failure, f"Pod/{POD}"),
                event("Failed", "Error: ErrImagePull", "Pod/other"),
            ]
        },
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["image_pull"]
    found = findings[0]
    assert _excerpts(found)[0] == ("c2", failure)
    assert ("c1", image) in _excerpts(found)
    assert image in found.root_cause and "not found" in found.root_cause


def _rollout(old_running: bool) -> Calls:
    calls = Calls()
    calls.ok(
        "kubernetes_rollout_history",
        {"namespace": NS, "name": "api"},
        {
            "deployment": "api",
            "revisions": [
                {
                    "revision": 3,
                    "replicaset": OLD_RS,
                    "created": "2024-05-01T09:00:00Z",
                    "images": {"api": "registry.example.com/shop/api:1.3.9"},
                    "change_cause": "",
                },
                {
                    "revision": 4,
                    "replicaset": NEW_RS,
                    "created": "2024-05-02T10:00:00Z",
                    "images": {"api": "registry.example.com/shop/api:1.4.0"},
                    "change_cause": "",
                },
            ],
            "diff": {
                "from_revision": 3,
                "to_revision": 4,
                "changes": [
                    {
                        "container": "api",
                        "field": "image",
                        "before": "registry.example.com/shop/api:1.3.9",
                        "after": "registry.example.com/shop/api:1.4.0",
                    },
                ],
            },
        },
    )
    pods = [pod(POD, containers=[crashing()])]
    if old_running:
        pods += [
            pod(
                f"{OLD_RS}-{suffix}",
                owner=f"ReplicaSet/{OLD_RS}",
                containers=[container(image="registry.example.com/shop/api:1.3.9")],
            )
            for suffix in ("aaaaa", "bbbbb")
        ]
    calls.ok(
        "kubernetes_list_pods", {"namespace": NS, "limit": 200}, {"namespace": NS, "pods": pods}
    )
    return calls


def test_bad_rollout_names_the_change_as_root_cause() -> None:
    findings = _checked(_rollout(old_running=True).made)
    assert [f.analyzer for f in findings] == ["bad_rollout", "crash_loop"]
    found = findings[0]
    assert found.subject == f"deployment/{NS}/api"
    assert "Revision 4" in found.root_cause and "api:1.4.0" in found.root_cause
    assert ("c1", "registry.example.com/shop/api:1.4.0") in _excerpts(found)
    assert ("c2", f"ReplicaSet/{NEW_RS}") in _excerpts(found)
    assert ("c2", f"ReplicaSet/{OLD_RS}") in _excerpts(found)
    assert "rollout undo deployment/api" in found.recommendations[0]


def test_no_bad_rollout_without_old_pods_running() -> None:
    findings = _checked(_rollout(old_running=False).made)
    assert _of(findings, "bad_rollout") == []


def test_unschedulable_quotes_the_scheduler() -> None:
    why = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available."
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(
            pod(
                POD, phase="Pending", node="", containers=[container(ready=False, state="waiting")]
            ),
            [event("FailedScheduling", why, f"Pod/{POD}", count=12)],
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": why,
                }
            ],
        ),
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["unschedulable"]
    assert _excerpts(findings[0]) == [("c1", why)]
    assert "Insufficient memory" in findings[0].root_cause


def test_node_not_ready_names_the_pods_on_it() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_list_nodes",
        {},
        {
            "nodes": [
                node("node-a"),
                node(
                    "node-b",
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                ),
            ]
        },
    )
    calls.ok(
        "kubernetes_list_pods",
        {"namespace": NS},
        {"pods": [pod("api-1", node="node-b"), pod("api-2", node="node-a")]},
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["node_not_ready"]
    found = findings[0]
    assert found.subject == "node/node-b"
    assert ("c1", "Kubelet stopped posting node status.") in _excerpts(found)
    assert ("c2", "node-b") in _excerpts(found)
    assert "shop/api-1" in found.detail and "api-2" not in found.detail


def test_pvc_pending_with_a_missing_storage_class() -> None:
    failure = 'storageclass.storage.k8s.io "fast-ssd" not found'
    calls = Calls()
    calls.ok(
        "kubernetes_list_pvcs",
        {"namespace": NS},
        {
            "pvcs": [
                {
                    "name": "data-db-0",
                    "phase": "Pending",
                    "storage_class": "fast-ssd",
                    "requested": "10Gi",
                    "capacity": "",
                    "volume": "",
                    "access_modes": ["ReadWriteOnce"],
                },
                {
                    "name": "cache",
                    "phase": "Bound",
                    "storage_class": "standard",
                    "requested": "1Gi",
                    "capacity": "1Gi",
                    "volume": "pvc-1",
                    "access_modes": ["ReadWriteOnce"],
                },
            ],
            "storage_classes": [
                {"name": "standard", "provisioner": "rancher.io/local-path", "default": True}
            ],
        },
    )
    calls.ok(
        "kubernetes_events",
        {"namespace": NS},
        {"events": [event("ProvisioningFailed", failure, "PersistentVolumeClaim/data-db-0")]},
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["pvc_pending"]
    found = findings[0]
    assert found.subject == f"pvc/{NS}/data-db-0"
    assert ("c2", failure) in _excerpts(found)
    assert ("c1", "fast-ssd") in _excerpts(found)
    assert "storage class fast-ssd does not exist" in found.root_cause


def test_config_error_quotes_the_error_and_lists_the_keys_that_exist() -> None:
    message = "couldn't find key DB_HOST in ConfigMap shop/api-config"
    waiting = container(
        ready=False, state="waiting", reason="CreateContainerConfigError", message=message
    )
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(
            pod(POD, containers=[waiting]), [event("Failed", f"Error: {message}", f"Pod/{POD}")]
        ),
    )
    calls.ok(
        "kubernetes_configmap_keys",
        {"namespace": NS, "name": "api-config"},
        {"name": "api-config", "namespace": NS, "keys": ["DB_PORT", "LOG_LEVEL"]},
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["config_error"]
    found = findings[0]
    assert ("c1", message) in _excerpts(found)
    assert ("c1", f"Error: {message}") in _excerpts(found)
    assert "DB_PORT, LOG_LEVEL" in found.detail
    assert "DB_HOST" in found.root_cause


def test_probe_failures_and_related_prometheus_alerts() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_events",
        {"namespace": NS},
        {
            "events": [
                event(
                    "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    f"Pod/{POD}",
                    count=20,
                ),
                event(
                    "Unhealthy",
                    'Liveness probe failed: Get "http://10.1.2.3:8080/healthz": '
                    "context deadline exceeded",
                    f"Pod/{POD}",
                ),
            ]
        },
    )
    calls.ok(
        "prometheus_alerts",
        {},
        {
            "alerts": [
                {
                    "name": "KubePodNotReady",
                    "state": "firing",
                    "labels": {"alertname": "KubePodNotReady", "namespace": NS, "pod": POD},
                    "annotations": {"summary": f"Pod {NS}/{POD} has been in a non-ready state."},
                    "active_at": "2024-05-02T10:05:00Z",
                    "value": "1",
                },
                {
                    "name": "Watchdog",
                    "state": "firing",
                    "labels": {"alertname": "Watchdog"},
                    "annotations": {},
                    "active_at": "",
                    "value": "1",
                },
                {
                    "name": "KubeCPUOvercommit",
                    "state": "pending",
                    "labels": {"namespace": NS},
                    "annotations": {},
                    "active_at": "",
                    "value": "1",
                },
            ]
        },
    )
    findings = _checked(calls.made)
    assert [(f.analyzer, f.title.split(" ")[0]) for f in findings] == [
        ("probe_failure", "Liveness"),
        ("probe_failure", "Readiness"),
        ("prometheus_alert", "Alert"),
    ]
    related = findings[2]
    assert related.subject == f"pod/{NS}/{POD}" and related.source == "prometheus"
    assert ("c2", f"Pod {NS}/{POD} has been in a non-ready state.") in _excerpts(related)
    assert all(f.root_cause == "" for f in findings)


def test_metric_spike_quotes_max_and_last() -> None:
    query = 'sum by (pod) (rate(http_requests_total{code=~"5.."}[5m]))'
    calls = Calls()
    calls.ok(
        "prometheus_query_range",
        {"query": query},
        {
            "query": query,
            "step_seconds": 60,
            "series": [
                series(["1", "1.1", "0.9", "1", "1.2", "9"], {"pod": "api-1"}),
                series(["2", "2.1", "2", "2.2", "2.1", "2"], {"pod": "api-2"}),
            ],
            "truncated": False,
        },
    )
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["metric_spike"]
    found = findings[0]
    assert found.subject == f'series/{query}{{pod="api-1"}}'
    assert _excerpts(found) == [("c1", '"max":"9","last":"9"')]


def test_healthy_cluster_has_no_findings() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": POD},
        described(
            pod(POD),
            [
                event(
                    "Pulled",
                    "Container image already present on machine",
                    f"Pod/{POD}",
                    type="Normal",
                ),
                event("Started", "Started container api", f"Pod/{POD}", type="Normal"),
            ],
        ),
    )
    calls.ok(
        "kubernetes_pod_logs",
        {"namespace": NS, "name": POD},
        {
            "pod": POD,
            "container": "api",
            "previous": False,
            "lines": ["level=info msg=ready"],
            "matched": None,
            "truncated": False,
        },
    )
    calls.ok("kubernetes_list_nodes", {}, {"nodes": [node("node-a"), node("node-b")]})
    calls.ok(
        "kubernetes_list_pvcs",
        {"namespace": NS},
        {
            "pvcs": [{"name": "cache", "phase": "Bound", "storage_class": "standard"}],
            "storage_classes": [],
        },
    )
    calls.ok("prometheus_alerts", {}, {"alerts": []})
    calls.ok(
        "prometheus_query_range",
        {"query": "up"},
        {"query": "up", "series": [series(["1", "1", "1", "1"], {"job": "api"})]},
    )
    calls.failed(
        "kubernetes_pod_logs",
        {"namespace": NS, "name": POD, "previous": True},
        "FAILED_PRECONDITION",
        "container api has no previous instance",
    )
    assert analyze(calls.made) == []


@pytest.mark.parametrize(
    "result",
    [None, "text", [], {"pod": "x"}, {"pods": [1, None, {"containers": "x"}]}, {"nodes": [{}]}],
)
def test_malformed_results_are_ignored(result: object) -> None:
    calls = Calls()
    for tool in (
        "kubernetes_describe_pod",
        "kubernetes_list_pods",
        "kubernetes_list_nodes",
        "kubernetes_rollout_history",
        "prometheus_query_range",
        "prometheus_alerts",
    ):
        calls.ok(tool, {"namespace": NS}, result)
    assert analyze(calls.made) == []


def test_findings_are_ordered_strongest_first() -> None:
    calls = _rollout(old_running=True)
    for call in _crash_loop(with_logs=True).made:
        calls.made.append(dataclasses.replace(call, id=f"c{len(calls.made) + 1}"))
    findings = _checked(calls.made)
    assert [f.analyzer for f in findings] == ["bad_rollout", "crash_loop"]
    crash = findings[1]
    # The pod's describe (c3) comes first; its previous logs (c4) are quoted first.
    assert crash.evidence[0].tool_call_id == "c4"
    assert {ref.tool_call_id for ref in crash.evidence} >= {"c3", "c4"}


def test_registry_names_are_unique() -> None:
    names = [name for name, _ in ANALYZERS]
    assert len(names) == len(set(names)) == 16
