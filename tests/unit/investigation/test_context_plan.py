"""The context plan: first calls from the alert, second calls from what they returned."""

from __future__ import annotations

from typing import Any

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.calls import PlannedCall
from services.investigation.context_plan import (
    MAX_FOLLOWUP_CALLS,
    MAX_LOG_DRIVEN_CALLS,
    MAX_PLANNED_CALLS,
    followups,
    from_logs,
    graph_expression,
    plan,
)
from tests.unit.investigation.toolcalls import (
    NEW_RS,
    NS,
    Calls,
    container,
    crashing,
    described,
    pod,
)

TOOLS = frozenset(
    {
        "kubernetes_list_pods",
        "kubernetes_describe_pod",
        "kubernetes_events",
        "kubernetes_pod_logs",
        "kubernetes_list_deployments",
        "kubernetes_rollout_history",
        "kubernetes_list_nodes",
        "kubernetes_list_pvcs",
        "kubernetes_configmap_keys",
        "kubernetes_network_policies",
        "prometheus_query",
        "prometheus_query_range",
        "prometheus_alerts",
        "prometheus_rules",
    }
)


def _shape(calls: list[PlannedCall]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.tool, c.arguments) for c in calls]


def test_pod_alert() -> None:
    alert = inv_pb2.Alert(
        alert_name="KubePodCrashLooping",
        labels={"namespace": NS, "pod": "api-7d9f8c6b5-x2x1q", "container": "api"},
    )
    planned = plan(alert, TOOLS)
    target = {"namespace": NS, "name": "api-7d9f8c6b5-x2x1q"}
    assert _shape(planned) == [
        ("kubernetes_describe_pod", target),
        ("kubernetes_pod_logs", {**target, "container": "api", "tail_lines": 200}),
        ("kubernetes_events", {"namespace": NS, "kind": "Pod", "name": "api-7d9f8c6b5-x2x1q"}),
        ("kubernetes_events", {"namespace": NS}),
        ("prometheus_alerts", {}),
    ]
    assert all(c.reason for c in planned)


def test_only_available_tools_are_planned() -> None:
    alert = inv_pb2.Alert(alert_name="X", namespace=NS, labels={"pod": "api-1"})
    planned = plan(alert, {"prometheus_alerts", "kubernetes_describe_pod"})
    assert _shape(planned) == [
        ("kubernetes_describe_pod", {"namespace": NS, "name": "api-1"}),
        ("prometheus_alerts", {}),
    ]
    assert plan(alert, set()) == []


def test_deployment_alert_lists_the_namespace_pods_and_the_rollout_history() -> None:
    alert = inv_pb2.Alert(
        alert_name="KubeDeploymentReplicasMismatch", namespace=NS, labels={"deployment": "api"}
    )
    tools = [c[0] for c in _shape(plan(alert, TOOLS))]
    assert tools == [
        "kubernetes_rollout_history",
        "kubernetes_list_pods",
        "kubernetes_list_deployments",
        "kubernetes_events",
        "prometheus_alerts",
    ]
    listed = plan(alert, TOOLS)[1]
    assert listed.arguments == {"namespace": NS, "limit": 200}


def test_node_alert() -> None:
    by_label = inv_pb2.Alert(alert_name="KubeNodeNotReady", labels={"node": "node-b"})
    assert _shape(plan(by_label, TOOLS)) == [
        ("kubernetes_list_nodes", {}),
        ("prometheus_alerts", {}),
    ]
    by_instance = inv_pb2.Alert(
        alert_name="NodeFilesystemAlmostFull", labels={"instance": "node-b:9100"}
    )
    assert ("kubernetes_list_nodes", {}) in _shape(plan(by_instance, TOOLS))
    # `instance` names a scrape target, not a node, for alerts that are not about nodes.
    other = inv_pb2.Alert(alert_name="HighLatency", labels={"instance": "node-b:9100"})
    assert ("kubernetes_list_nodes", {}) not in _shape(plan(other, TOOLS))


def test_pvc_alert() -> None:
    alert = inv_pb2.Alert(
        alert_name="KubePersistentVolumeFillingUp",
        labels={"namespace": NS, "persistentvolumeclaim": "data-db-0"},
    )
    assert _shape(plan(alert, TOOLS)) == [
        ("kubernetes_list_pvcs", {"namespace": NS}),
        ("kubernetes_events", {"namespace": NS}),
        ("prometheus_alerts", {}),
    ]


def test_job_alert_lists_the_jobs_pods_by_label() -> None:
    alert = inv_pb2.Alert(
        alert_name="KubeJobFailed", namespace=NS, labels={"job_name": "backup-28571"}
    )
    assert (
        "kubernetes_list_pods",
        {"namespace": NS, "label_selector": "job-name=backup-28571"},
    ) in (_shape(plan(alert, TOOLS)))


def test_generator_url_expression_is_queried_over_the_last_hour() -> None:
    url = (
        "http://prometheus.monitoring:9090/graph?g0.expr=sum+by+%28pod%29+%28rate%28"
        "http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29%29+%3E+0.1&g0.tab=1"
    )
    alert = inv_pb2.Alert(alert_name="HighErrorRate", generator_url=url)
    assert _shape(plan(alert, TOOLS)) == [
        ("prometheus_alerts", {}),
        (
            "prometheus_query_range",
            {"query": 'sum by (pod) (rate(http_requests_total{code=~"5.."}[5m])) > 0.1'},
        ),
    ]


def test_graph_expression_edge_cases() -> None:
    assert graph_expression("") == ""
    assert graph_expression("http://p/graph?g0.tab=1") == ""
    assert graph_expression("http://p/graph?g0.expr=up%00") == ""
    assert graph_expression("http://p/graph?g0.expr=" + "a" * 3000) == ""
    assert graph_expression("http://p/graph?g0.expr=sum(%0A  up%0A)") == "sum(\n  up\n)"
    assert graph_expression("http://[::1/graph?g0.expr=up") == ""


def test_hostile_label_values_are_skipped() -> None:
    alert = inv_pb2.Alert(
        alert_name="KubePodCrashLooping",
        namespace=NS,
        labels={
            "pod": "../../etc/passwd",
            "container": "api; rm -rf /",
            "deployment": "a" * 254,
            "persistentvolumeclaim": "Data",
            "statefulset": "-db",
            "node": "node-b\n",
        },
    )
    assert _shape(plan(alert, TOOLS)) == [
        ("kubernetes_events", {"namespace": NS}),
        ("prometheus_alerts", {}),
    ]
    bad_namespace = inv_pb2.Alert(
        alert_name="X", namespace="Shop Prod", labels={"pod": "api-1", "namespace": NS}
    )
    assert _shape(plan(bad_namespace, TOOLS)) == [("prometheus_alerts", {})]


def test_plan_is_bounded_and_has_no_duplicates() -> None:
    alert = inv_pb2.Alert(
        alert_name="NodeEverything",
        namespace=NS,
        labels={
            "pod": "api-1",
            "container": "api",
            "deployment": "api",
            "statefulset": "db",
            "daemonset": "agent",
            "job_name": "backup",
            "persistentvolumeclaim": "data",
            "node": "node-b",
        },
        generator_url="http://p/graph?g0.expr=up",
    )
    planned = plan(alert, TOOLS)
    assert len(planned) == MAX_PLANNED_CALLS
    assert len({c.key() for c in planned}) == len(planned)
    assert planned[0].tool == "kubernetes_describe_pod"
    # The general calls keep their place whatever the labels name.
    assert _shape(planned[-3:]) == [
        ("kubernetes_events", {"namespace": NS}),
        ("prometheus_alerts", {}),
        ("prometheus_query_range", {"query": "up"}),
    ]


def test_followup_previous_logs_of_a_restarting_container() -> None:
    calls = Calls()
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": "api-1"},
        described(pod("api-1", containers=[crashing(), container("sidecar")])),
    )
    planned = followups(calls.made, TOOLS)
    assert _shape(planned) == [
        (
            "kubernetes_pod_logs",
            {
                "namespace": NS,
                "name": "api-1",
                "container": "api",
                "previous": True,
                "tail_lines": 200,
            },
        ),
        # The pod's ReplicaSet names its deployment: its revisions and pods.
        ("kubernetes_rollout_history", {"namespace": NS, "name": "api"}),
        ("kubernetes_list_pods", {"namespace": NS, "limit": 200}),
    ]
    # Made already: not again.
    for call in planned:
        calls.ok(call.tool, call.arguments, {"lines": []})
    assert followups(calls.made, TOOLS) == []


def test_followup_worst_pod_of_the_deployment_and_nodes_for_a_pending_one() -> None:
    calls = Calls()
    calls.ok("kubernetes_rollout_history", {"namespace": NS, "name": "api"}, {"deployment": "api"})
    calls.ok(
        "kubernetes_list_pods",
        {"namespace": NS, "limit": 200},
        {
            "namespace": NS,
            "pods": [
                pod("api-7d9f8c6b5-aaaaa"),
                pod(
                    "api-7d9f8c6b5-ppppp",
                    phase="Pending",
                    node="",
                    containers=[
                        container(ready=False, state="waiting", reason="ContainerCreating")
                    ],
                ),
                pod("api-7d9f8c6b5-x2x1q", containers=[crashing(3)]),
                pod("db-0", owner="StatefulSet/db", containers=[crashing(40, "db-0")]),
                pod(
                    "api-worker-5f6d7c8b9-zzzzz",
                    owner="ReplicaSet/api-worker-5f6d7c8b9",
                    containers=[crashing(12)],
                ),
            ],
            "truncated": False,
        },
    )
    planned = _shape(followups(calls.made, TOOLS))
    assert planned == [
        ("kubernetes_describe_pod", {"namespace": NS, "name": "api-7d9f8c6b5-x2x1q"}),
        (
            "kubernetes_pod_logs",
            {
                "namespace": NS,
                "name": "api-7d9f8c6b5-x2x1q",
                "container": "api",
                "previous": True,
                "tail_lines": 200,
            },
        ),
        # The running pod's current logs (the waiting one's are refused by the kubelet).
        (
            "kubernetes_pod_logs",
            {"namespace": NS, "name": "api-7d9f8c6b5-aaaaa", "container": "api", "tail_lines": 200},
        ),
        ("kubernetes_list_nodes", {}),
    ]


def test_followup_pvcs_of_a_pending_pod_and_keys_of_a_missing_configmap_key() -> None:
    calls = Calls()
    waiting = container(
        ready=False,
        state="waiting",
        reason="CreateContainerConfigError",
        message="couldn't find key DB_HOST in ConfigMap shop/api-config",
    )
    calls.ok(
        "kubernetes_describe_pod",
        {"namespace": NS, "name": "db-0"},
        described(
            pod("db-0", phase="Pending", node="", owner="StatefulSet/db", containers=[waiting]),
            volumes=[{"name": "data", "kind": "persistentVolumeClaim", "source": "data-db-0"}],
        ),
    )
    assert _shape(followups(calls.made, TOOLS)) == [
        ("kubernetes_configmap_keys", {"namespace": NS, "name": "api-config"}),
        ("kubernetes_list_nodes", {}),
        ("kubernetes_list_pvcs", {"namespace": NS}),
    ]


def test_followups_are_bounded_and_skip_failed_and_unrelated_calls() -> None:
    calls = Calls()
    calls.failed(
        "kubernetes_describe_pod", {"namespace": NS, "name": "gone"}, "NOT_FOUND", "pod not found"
    )
    calls.ok(
        "kubernetes_list_pods",
        {"namespace": NS, "label_selector": "app=api"},
        {"pods": [pod(f"{NEW_RS}-{i:05d}", containers=[crashing(5)]) for i in range(20)]},
    )
    planned = followups(calls.made, TOOLS)
    assert len(planned) == MAX_FOLLOWUP_CALLS
    assert len({c.key() for c in planned}) == len(planned)
    unrelated = Calls()
    unrelated.ok(
        "kubernetes_list_pods", {"namespace": NS}, {"pods": [pod("db-0", containers=[crashing()])]}
    )
    assert followups(unrelated.made, TOOLS) == []


def _deployment_pods(*pods: dict[str, Any]) -> Calls:
    calls = Calls()
    calls.ok("kubernetes_rollout_history", {"namespace": NS, "name": "api"}, {"deployment": "api"})
    calls.ok(
        "kubernetes_list_pods",
        {"namespace": NS, "limit": 200},
        {"namespace": NS, "pods": list(pods), "truncated": False},
    )
    return calls


def _logs(name: str, container_name: str = "api") -> tuple[str, dict[str, Any]]:
    arguments = {"namespace": NS, "name": name, "container": container_name, "tail_lines": 200}
    return ("kubernetes_pod_logs", arguments)


def test_followup_current_logs_of_a_deployment_alerts_running_pods() -> None:
    # A 5xx ratio alert names only the deployment; every pod is ready, and the cause is
    # in what they log: the current logs of its running pods, the worst first, bounded.
    calls = _deployment_pods(
        pod(f"{NEW_RS}-aaaaa"),
        pod(f"{NEW_RS}-bbbbb", containers=[container(ready=False), container("proxy")]),
        pod(f"{NEW_RS}-ccccc"),
        pod("web-5f6d7c8b9-zzzzz", owner="ReplicaSet/web-5f6d7c8b9"),
    )
    assert _shape(followups(calls.made, TOOLS)) == [
        ("kubernetes_describe_pod", {"namespace": NS, "name": f"{NEW_RS}-bbbbb"}),
        _logs(f"{NEW_RS}-bbbbb"),
        _logs(f"{NEW_RS}-bbbbb", "proxy"),
        _logs(f"{NEW_RS}-aaaaa"),
    ]
    # A pod whose current logs were read already is not read again; a Pending one has none.
    calls.ok("kubernetes_pod_logs", {"namespace": NS, "name": f"{NEW_RS}-aaaaa"}, {"lines": []})
    calls.ok("kubernetes_describe_pod", {"namespace": NS, "name": f"{NEW_RS}-bbbbb"}, {})
    calls.ok(
        "kubernetes_pod_logs",
        {"namespace": NS, "name": f"{NEW_RS}-bbbbb", "previous": False},
        {"lines": []},
    )
    assert _shape(followups(calls.made, TOOLS)) == [_logs(f"{NEW_RS}-ccccc")]
    pending = _deployment_pods(pod(f"{NEW_RS}-ppppp", phase="Pending", node=""))
    assert ("kubernetes_pod_logs") not in {c.tool for c in followups(pending.made, TOOLS)}


def test_followup_nodes_for_evicted_pods() -> None:
    evicted = pod(
        f"{NEW_RS}-eeeee",
        phase="Failed",
        containers=[container(ready=False, state="terminated", reason="ContainerStatusUnknown")],
    )
    calls = _deployment_pods(
        {**evicted, "reason": "Evicted", "message": "The node was low on resource: memory."}
    )
    planned = _shape(followups(calls.made, TOOLS))
    assert ("kubernetes_list_nodes", {}) in planned
    # A pod that failed on its own (no reason from the kubelet) says nothing of its node.
    failed = _deployment_pods(evicted)
    assert ("kubernetes_list_nodes", {}) not in _shape(followups(failed.made, TOOLS))


def test_followup_revisions_of_the_deployment_owning_the_alerts_pod() -> None:
    for owner, expected in (
        ("ReplicaSet/ledger-api-6d8e7f9c5", "ledger-api"),
        ("StatefulSet/ledger-db", None),
        ("ReplicaSet/short", None),
        ("ReplicaSet/Bad_Name-6d8e7f9c5", None),
    ):
        calls = Calls()
        calls.ok(
            "kubernetes_describe_pod",
            {"namespace": NS, "name": "p"},
            described(pod("p", owner=owner, containers=[container(ready=False)])),
        )
        histories = [
            c.arguments["name"]
            for c in followups(calls.made, TOOLS)
            if c.tool == "kubernetes_rollout_history"
        ]
        assert histories == ([expected] if expected else []), owner


def _logs_of(calls: Calls, name: str, *lines: str, previous: bool = False) -> None:
    calls.ok(
        "kubernetes_pod_logs",
        {"namespace": NS, "name": name, "previous": previous},
        {"pod": name, "container": "api", "previous": previous, "lines": list(lines)},
    )


LOOKUP_TIMEOUT = (
    'err="dial tcp: lookup db.shop.svc.cluster.local on 10.96.0.10:53: read udp '
    '10.244.1.9:52114->10.96.0.10:53: i/o timeout"'
)


def test_from_logs_reads_the_policies_of_pods_whose_lookups_fail() -> None:
    calls = Calls()
    _logs_of(calls, "api-1", "boot", LOOKUP_TIMEOUT, previous=True)
    _logs_of(calls, "api-2", "boot", "ready")
    _logs_of(calls, "api-3", "getaddrinfo EAI_AGAIN cache.shop.svc")
    assert _shape(from_logs(calls.made, TOOLS)) == [
        ("kubernetes_network_policies", {"namespace": NS, "pod": "api-1"}),
        ("kubernetes_network_policies", {"namespace": NS, "pod": "api-3"}),
    ]
    # Not offered without the tool, never repeated, and bounded.
    assert from_logs(calls.made, TOOLS - {"kubernetes_network_policies"}) == []
    calls.ok("kubernetes_network_policies", {"namespace": NS, "pod": "api-1"}, {"pod": "api-1"})
    assert _shape(from_logs(calls.made, TOOLS)) == [
        ("kubernetes_network_policies", {"namespace": NS, "pod": "api-3"})
    ]
    many = Calls()
    for index in range(5):
        _logs_of(many, f"api-{index}", LOOKUP_TIMEOUT)
    assert len(from_logs(many.made, TOOLS)) == MAX_LOG_DRIVEN_CALLS
