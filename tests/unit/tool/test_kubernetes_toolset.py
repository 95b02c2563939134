"""The kubernetes toolset against the fake Kubernetes API, in process: what each tool
returns for the scenarios, how API failures become gateway errors, and that no tool
ever reads a Secret."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.tool.toolsets import kubernetes
from tests.support.kube import write_kubeconfig
from tests.unit.tool.conftest import KUBE_TOKEN as TOKEN
from tests.unit.tool.conftest import StartKube


async def _raises(kind: type[GatewayError], awaitable: Awaitable[Any]) -> GatewayError:
    with pytest.raises(kind) as caught:
        await awaitable
    return caught.value


CRASHING = "payments-5c8d7f9b6-x2x7q"


# --- Shapes ---------------------------------------------------------------------------


async def test_list_pods_summarises_a_crash_loop(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    result = await kube.call("list_pods", namespace="shop")
    assert result["truncated"] is False
    (pod,) = result["pods"]
    assert pod["ready"] == "0/1" and pod["restarts"] == 7 and pod["node"] == "node-a"
    assert pod["owner"] == "ReplicaSet/payments-5c8d7f9b6"
    assert 1100 < pod["age_seconds"] < 1300
    (container,) = pod["containers"]
    assert (container["state"], container["reason"]) == ("waiting", "CrashLoopBackOff")
    assert container["last_state"]["reason"] == "Error"
    assert container["last_state"]["exit_code"] == 1
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }


async def test_list_pods_limit_and_selectors(start_kube: StartKube) -> None:
    kube = await start_kube("bad_rollout")
    first = await kube.call("list_pods", namespace="shop", limit=2)
    assert len(first["pods"]) == 2 and first["truncated"] is True
    new = await kube.call(
        "list_pods", namespace="shop", label_selector="pod-template-hash=7f6b9c5d4"
    )
    assert [p["name"] for p in new["pods"]] == ["api-7f6b9c5d4-zzzzz"]
    assert "labelSelector=pod-template-hash%3D7f6b9c5d4" in kube.fake.paths("pods?")[-1]
    sets = await kube.call(
        "list_pods", namespace="shop", label_selector="app=api,pod-template-hash notin (7f6b9c5d4)"
    )
    assert len(sets["pods"]) == 3
    none = await kube.call("list_pods", namespace="shop", field_selector="status.phase=Pending")
    assert none["pods"] == []


async def test_describe_pod_has_env_by_reference_volumes_and_events(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    result = await kube.call("describe_pod", namespace="shop", name=CRASHING)
    pod = result["pod"]
    assert {
        "container": "api",
        "name": "DB_PASSWORD",
        "value_from": "secret:db-creds/password",
    } in pod["env"]
    assert {"container": "api", "name": "DB_HOST", "value": "db.shop.svc"} in pod["env"]
    assert pod["volumes"] == [{"name": "config", "kind": "configMap", "source": "payments-config"}]
    assert {
        "type": "Ready",
        "status": "False",
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [api]",
    } in pod["conditions"]
    assert pod["labels"]["app"] == "payments"
    reasons = [e["reason"] for e in result["events"]]
    assert reasons == ["Started", "BackOff"]  # newest last
    assert result["events"][1]["count"] == 31 and result["events"][1]["source"] == "kubelet"
    # The events were selected by the pod's uid, as kubectl describe does.
    assert "involvedObject.uid%3D" in kube.fake.paths("/events")[-1]


async def test_no_tool_reads_a_secret(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    for tool, arguments in [
        ("list_pods", {"namespace": "shop"}),
        ("describe_pod", {"namespace": "shop", "name": CRASHING}),
        ("events", {"namespace": "shop"}),
        ("pod_logs", {"namespace": "shop", "name": CRASHING}),
        ("list_deployments", {"namespace": "shop"}),
        ("rollout_history", {"namespace": "shop", "name": "payments"}),
        ("list_nodes", {}),
        ("list_pvcs", {"namespace": "shop"}),
        ("configmap_keys", {"namespace": "shop", "name": "payments-config"}),
        ("network_policies", {"namespace": "shop", "pod": CRASHING}),
    ]:
        result = await kube.call(tool, **arguments)
        assert "c2VjcmV0" not in repr(result)  # the Secret's base64 value
    assert kube.fake.requests and not kube.fake.paths("secrets")


async def test_events_filter_by_object_and_limit(start_kube: StartKube) -> None:
    kube = await start_kube("bad_rollout")
    result = await kube.call("events", namespace="shop", kind="Deployment", name="api")
    assert [e["message"] for e in result["events"]] == ["Scaled up replica set api-7f6b9c5d4 to 1"]
    assert result["events"][0]["object"] == "Deployment/api"
    newest = await kube.call("events", namespace="shop", limit=1)
    assert newest["truncated"] is True
    assert newest["events"][0]["reason"] == "BackOff"  # seen a minute ago, the newest


async def test_pod_logs_previous_with_grep_counts_matches(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    result = await kube.call(
        "pod_logs", namespace="shop", name=CRASHING, previous=True, grep="ERROR|FATAL"
    )
    assert result["container"] == "api" and result["previous"] is True
    assert result["matched"] == 2
    assert result["lines"] == [
        "2026-01-01T09:55:01Z ERROR config: required key PAYMENT_API_KEY is not set",
        "2026-01-01T09:55:01Z FATAL exiting: invalid configuration",
    ]
    literal = await kube.call("pod_logs", namespace="shop", name=CRASHING, grep="[not a regex")
    assert literal["matched"] == 0


async def test_pod_logs_tail_and_since(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    tail = await kube.call("pod_logs", namespace="shop", name=CRASHING, tail_lines=1)
    assert len(tail["lines"]) == 1 and tail["truncated"] is True and tail["matched"] is None
    assert "tailLines=1" in kube.fake.paths("/log")[-1]
    # The previous instance wrote its lines 499 to 500 seconds ago.
    window = {"namespace": "shop", "name": CRASHING, "previous": True}
    assert len((await kube.call("pod_logs", **window, since_seconds=600))["lines"]) == 4
    assert (await kube.call("pod_logs", **window, since_seconds=450))["lines"] == []


async def test_pod_logs_refusals(start_kube: StartKube) -> None:
    kube = await start_kube("imagepull")
    error = await _raises(
        FailedPrecondition, kube.call("pod_logs", namespace="shop", name="checkout-7b9c8d-qq2lm")
    )
    assert "is waiting to start: trying and failing to pull image" in error.message
    assert "has not started, so it has no log yet" in error.message
    error = await _raises(
        FailedPrecondition,
        kube.call("pod_logs", namespace="shop", name="checkout-7b9c8d-qq2lm", previous=True),
    )
    assert 'previous terminated container "checkout"' in error.message
    assert "has no earlier instance" in error.message
    error = await _raises(
        InvalidArgument,
        kube.call("pod_logs", namespace="shop", name="checkout-7b9c8d-qq2lm", container="nope"),
    )
    assert "has no container 'nope'" in error.message
    error = await _raises(
        InvalidArgument,
        kube.call("pod_logs", namespace="shop", name="checkout-7b9c8d-qq2lm", grep="(a+)+$"),
    )
    assert "nested quantifiers" in error.message


async def test_deployments_and_rollout_history_diff(start_kube: StartKube) -> None:
    kube = await start_kube("bad_rollout")
    (deployment,) = (await kube.call("list_deployments", namespace="shop"))["deployments"]
    assert deployment["revision"] == 3
    assert (deployment["ready_replicas"], deployment["updated_replicas"]) == (3, 1)
    assert deployment["images"] == {"api": "registry.example.com/api:2.4.0"}
    history = await kube.call("rollout_history", namespace="shop", name="api")
    assert [r["revision"] for r in history["revisions"]] == [1, 2, 3]
    assert history["revisions"][2]["change_cause"] == "release 2.4.0 with new pricing"
    assert history["revisions"][2]["replicaset"] == "api-7f6b9c5d4"
    diff = history["diff"]
    assert (diff["from_revision"], diff["to_revision"]) == (2, 3)
    assert diff["changes"] == [
        {
            "container": "api",
            "field": "image",
            "before": "registry.example.com/api:2.3.1",
            "after": "registry.example.com/api:2.4.0",
        },
        {
            "container": "api",
            "field": "env",
            "before": "FEATURE_FLAGS=",
            "after": "FEATURE_FLAGS=new-pricing",
        },
    ]


async def test_rollout_history_of_one_revision_has_no_diff(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    history = await kube.call("rollout_history", namespace="shop", name="payments")
    assert len(history["revisions"]) == 1 and history["diff"] is None


async def test_nodes_pvcs_and_configmap_keys(start_kube: StartKube) -> None:
    kube = await start_kube("node_not_ready")
    nodes = {n["name"]: n for n in (await kube.call("list_nodes"))["nodes"]}
    assert nodes["node-a"]["ready"] is True
    sick = nodes["node-b"]
    assert sick["ready"] is False and sick["unschedulable"] is True
    assert "node.kubernetes.io/not-ready:NoSchedule" in sick["taints"]
    ready = next(c for c in sick["conditions"] if c["type"] == "Ready")
    assert "cni plugin not initialized" in ready["message"]

    kube = await start_kube("pvc_pending")
    result = await kube.call("list_pvcs", namespace="db")
    claims = {c["name"]: c for c in result["pvcs"]}
    assert claims["data-postgres-0"] == {
        "name": "data-postgres-0",
        "phase": "Pending",
        "storage_class": "fast-ssd-z9",
        "requested": "50Gi",
        "capacity": "",
        "volume": "",
        "access_modes": ["ReadWriteOnce"],
    }
    assert result["storage_classes"] == [
        {"name": "standard", "provisioner": "rancher.io/local-path", "default": True}
    ]

    kube = await start_kube("config_missing")
    keys = await kube.call("configmap_keys", namespace="shop", name="orders-config")
    assert keys == {
        "name": "orders-config",
        "namespace": "shop",
        "keys": ["ORDERS_DB_HOST", "ORDERS_QUEUE"],
    }


async def test_scheduler_events_count_and_last_seen_come_from_their_series(
    start_kube: StartKube,
) -> None:
    # The scheduler records through events.k8s.io: no count and no lastTimestamp in v1.
    kube = await start_kube("unschedulable")
    (event,) = (await kube.call("events", namespace="ml"))["events"]
    assert event["reason"] == "FailedScheduling" and event["count"] == 12
    assert event["source"] == "default-scheduler"
    now = datetime.now(UTC)
    first = datetime.strptime(event["first_seen"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    last = datetime.strptime(event["last_seen"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 24 * 60 < (now - first).total_seconds() < 26 * 60
    assert 0 < (now - last).total_seconds() < 120


async def test_unsupported_field_selector_is_invalid_argument_naming_the_supported(
    start_kube: StartKube,
) -> None:
    kube = await start_kube("healthy")
    error = await _raises(
        InvalidArgument,
        kube.call("list_pods", namespace="shop", field_selector="spec.containers.image=x"),
    )
    assert "field label not supported: spec.containers.image" in error.message
    assert "pods can be selected by the fields metadata.name" in error.message
    assert "status.phase" in error.message


async def test_describe_pod_shows_ports_and_probes(start_kube: StartKube) -> None:
    kube = await start_kube("liveness_wrong_port")
    result = await kube.call("describe_pod", namespace="web", name="storefront-6f8d9b7c4-j5k2l")
    (container,) = result["pod"]["containers"]
    assert container["ports"] == ["http:8080/TCP"]
    assert container["probes"] == {
        "liveness": {"type": "httpGet", "port": "8181", "path": "/healthz"},
        "readiness": {"type": "httpGet", "port": "http", "path": "/ready"},
    }
    neighbour = await kube.call("describe_pod", namespace="web", name="catalog-5d7c6b9f8-p3q4r")
    assert neighbour["pod"]["containers"][0]["probes"]["readiness"] == {
        "type": "tcpSocket",
        "port": "9090",
        "path": "",
    }
    # A listing stays a summary.
    listed = (await kube.call("list_pods", namespace="web"))["pods"][0]["containers"][0]
    assert "probes" not in listed and "ports" not in listed


async def test_evicted_pods_show_the_kubelets_reason(start_kube: StartKube) -> None:
    kube = await start_kube("node_disk_pressure")
    pods = {p["name"]: p for p in (await kube.call("list_pods", namespace="reports"))["pods"]}
    evicted = pods["report-api-7c9f6b8d5-4kz8p"]
    assert (evicted["phase"], evicted["reason"]) == ("Failed", "Evicted")
    assert evicted["message"].startswith("The node was low on resource: ephemeral-storage.")
    assert evicted["node"] == "node-d4k"
    assert pods["report-scheduler-0"]["reason"] == ""


# --- Errors ---------------------------------------------------------------------------


async def test_missing_object_is_not_found_naming_it(start_kube: StartKube) -> None:
    kube = await start_kube("healthy")
    error = await _raises(NotFound, kube.call("describe_pod", namespace="shop", name="ghost"))
    assert error.message == "pod 'ghost' in namespace 'shop' not found"
    await _raises(NotFound, kube.call("rollout_history", namespace="shop", name="ghost"))


async def test_forbidden_is_permission_denied(start_kube: StartKube) -> None:
    kube = await start_kube("healthy", forbidden=frozenset({"nodes"}))
    error = await _raises(PermissionDenied, kube.call("list_nodes"))
    assert "may not read the nodes" in error.message
    assert 'cannot list resource "nodes"' in error.message


async def test_wrong_credentials_are_a_failed_precondition(
    start_kube: StartKube, tmp_path: Path
) -> None:
    kube = await start_kube("healthy")
    config = write_kubeconfig(tmp_path / "wrong", kube.fake.url, token="wrong-token")
    toolset = kubernetes.from_env({"KUBECONFIG": str(config)})
    assert toolset is not None
    try:
        tool = {t.name: t for t in toolset.tools()}["kubernetes_list_nodes"]
        error = await _raises(FailedPrecondition, tool.run({}))
        assert "refused the configured credentials" in error.message
        assert "wrong-token" not in error.message
    finally:
        await toolset.close()


async def test_server_errors_and_timeouts_are_unavailable_and_deadline(
    start_kube: StartKube,
) -> None:
    kube = await start_kube("healthy")
    kube.fake.fail_status = 503
    error = await _raises(Unavailable, kube.call("list_nodes"))
    assert "HTTP 503" in error.message
    kube.fake.fail_status = None
    kube.fake.delay = 1.0
    client = kube.toolset._client._client._client  # the httpx client lightkube made
    client.timeout = type(client.timeout)(0.05)
    await _raises(DeadlineExceeded, kube.call("list_nodes"))


async def test_unreachable_api_is_unavailable(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", token=TOKEN)
    toolset = kubernetes.from_env({"KUBECONFIG": str(config)})
    assert toolset is not None and toolset.backend == "127.0.0.1:1"
    try:
        tool = {t.name: t for t in toolset.tools()}["kubernetes_list_nodes"]
        error = await _raises(Unavailable, tool.run({}))
        assert "cannot reach the Kubernetes API" in error.message
    finally:
        await toolset.close()


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("app=web,", "empty term"),
        ("app=we b", "not a valid label value"),
        ("-bad=x", "not a valid label key"),
        ("app=a,app=b", "appears twice"),
        ("app=\x01", "control characters"),
    ],
)
async def test_bad_selectors_are_refused_before_any_request(
    start_kube: StartKube, selector: str, problem: str
) -> None:
    kube = await start_kube("healthy")
    error = await _raises(
        InvalidArgument, kube.call("list_pods", namespace="shop", label_selector=selector)
    )
    assert problem in error.message
    assert not kube.fake.requests
