"""Policies every overlay must keep: unprivileged pods with limits and probes, drains
long enough for streams, disruption budgets and autoscalers that point at real
workloads, Secrets referenced and never committed, Envoy's clusters matching the
Services, and NetworkPolicies that allow exactly the paths of the topology."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.gateway_config import load_config
from services.common.settings import DEFAULT_PORTS
from services.launcher import k8s_manifests
from services.launcher.k8s_network import INTERNAL_CALLERS
from services.launcher.stack import SERVICES
from services.launcher.topology import load_topology
from tests.unit.deploy.k8s_build import (
    K8S,
    OVERLAYS,
    Obj,
    allowed,
    build,
    by_kind,
    container_ports,
    pod_labels,
    selects,
    workloads,
)

REDIS_USERS = {"router", "session", "tool", "investigation"}


def _pod_spec(workload: Obj) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _containers(workload: Obj) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = _pod_spec(workload)["containers"]
    return containers


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> tuple[Obj, ...]:
    return build(request.param)


def test_every_pod_is_unprivileged_with_a_read_only_root(objects: tuple[Obj, ...]) -> None:
    for name, workload in workloads(objects).items():
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert "hostNetwork" not in pod and "hostPID" not in pod, name
        for container in _containers(workload):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert security.get("privileged") is not True, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp is no emptyDir"


def test_every_container_has_requests_limits_and_probes(objects: tuple[Obj, ...]) -> None:
    for name, workload in workloads(objects).items():
        for container in _containers(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, f"{name}: {bound}"
            assert container["readinessProbe"] and container["livenessProbe"], name
            image = container["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


def test_services_probe_grpc_health_on_their_own_port(objects: tuple[Obj, ...]) -> None:
    deployments = by_kind(objects, "Deployment")
    for spec in load_topology().services:
        container = _containers(deployments[spec.name])[0]
        port, metrics = DEFAULT_PORTS[spec.name]
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
            "grpc": port,
            "metrics": metrics,
        }
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            # Kubernetes' native gRPC probe on grpc.health.v1, asking for what Envoy's
            # health checks ask for.
            assert container[probe]["grpc"] == {"port": port, "service": spec.health_service}


def test_drains_outlast_the_longest_request(objects: tuple[Obj, ...]) -> None:
    """A service finishes RPCs for LLMGW_SHUTDOWN_GRACE after SIGTERM; the kubelet waits
    for the preStop pause plus that, so a stream up to the request deadline ends."""
    topology = load_topology()
    deadline = topology.cluster_policy.request_deadline
    health = topology.cluster_policy.health_check
    deployments = by_kind(objects, "Deployment")
    for name in SERVICES:
        pod = _pod_spec(deployments[name])
        container = pod["containers"][0]
        grace = float(_env(container)["LLMGW_SHUTDOWN_GRACE"]["value"])
        assert grace >= deadline, name
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pause = int(command[1])
        # Envoy stops routing to the replica first: DNS refresh and failed health checks.
        assert pause > k8s_manifests.ENVOY_DNS_REFRESH_SECONDS + health.interval * 2
        assert pod["terminationGracePeriodSeconds"] > pause + grace, name
    envoy = _pod_spec(deployments["envoy"])
    command = envoy["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:3] == ["python", "/app/entrypoint.py", "drain"]
    drain = float(command[3])
    assert drain >= deadline
    assert envoy["terminationGracePeriodSeconds"] > drain


def test_every_workload_has_a_disruption_budget(objects: tuple[Obj, ...]) -> None:
    budgets = list(by_kind(objects, "PodDisruptionBudget").values())
    for name, workload in workloads(objects).items():
        matching = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(workload))]
        assert len(matching) == 1, f"{name}: {len(matching)} disruption budgets"
        assert matching[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": matching[0]["spec"]["selector"],
        }


def test_autoscalers_scale_existing_deployments_once(objects: tuple[Obj, ...]) -> None:
    deployments = by_kind(objects, "Deployment")
    targets = [
        h["spec"]["scaleTargetRef"]["name"]
        for h in by_kind(objects, "HorizontalPodAutoscaler").values()
    ]
    targets += [
        s["spec"]["scaleTargetRef"]["name"] for s in by_kind(objects, "ScaledObject").values()
    ]
    assert len(targets) == len(set(targets)), "a Deployment with two autoscalers"
    for name in targets:
        assert name in deployments, name
    for hpa in by_kind(objects, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert hpa["spec"]["minReplicas"] >= 2


def test_prod_scales_the_router_on_requests_in_flight() -> None:
    objects = build("prod")
    scaled = by_kind(objects, "ScaledObject")["router"]
    assert "router" not in by_kind(objects, "HorizontalPodAutoscaler")
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    query = triggers["prometheus"]["metadata"]["query"]
    assert "llmgw_rpc_in_flight" in query and 'service="router"' in query
    assert triggers["cpu"]["metricType"] == "Utilization"
    assert scaled["spec"]["minReplicaCount"] == 3
    for deployment in by_kind(objects, "Deployment").values():
        assert deployment["spec"]["replicas"] == 3


def test_dev_runs_one_replica_and_the_local_model() -> None:
    objects = build("dev")
    deployments = by_kind(objects, "Deployment")
    assert "llama" in deployments
    assert {d["spec"]["replicas"] for d in deployments.values()} == {1}
    assert not by_kind(objects, "HorizontalPodAutoscaler")
    config = by_kind(objects, "ConfigMap")
    gateway = next(c for n, c in config.items() if n.startswith("llm-gateway-config"))
    assert "llama.llm-gateway.svc.cluster.local:8090" in gateway["data"]["gateway.yaml"]


def test_secrets_are_referenced_and_never_committed(objects: tuple[Obj, ...]) -> None:
    assert not by_kind(objects, "Secret"), "a Secret is committed"
    deployments = by_kind(objects, "Deployment")
    for name in (*SERVICES, "envoy"):
        env = _env(_containers(deployments[name])[0])
        ref = env["LLMGW_INTERNAL_SECRET"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == k8s_manifests.SECRET and not ref.get("optional"), name
        # Envoy gets the internal secret only (its entrypoint derives the edge token).
        if name == "envoy":
            assert "LLMGW_ADMIN_KEY" not in env and "OPENAI_API_KEY" not in env
        else:
            admin = env["LLMGW_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]
            assert admin["name"] == k8s_manifests.SECRET
            assert env["LLMGW_AUTH"]["value"] == "required"
        for key in k8s_manifests.PROVIDER_KEYS:
            if name in k8s_manifests.PROVIDER_KEY_USERS:
                ref = env[key]["valueFrom"]["secretKeyRef"]
                assert ref["name"] == k8s_manifests.PROVIDER_SECRET and ref["optional"] is True
            else:
                assert key not in env, f"{name} gets {key}"
        for variable, entry in env.items():
            assert "value" not in entry or not any(
                word in variable for word in ("KEY", "SECRET", "TOKEN", "PASSWORD")
            ), f"{name}: {variable} has a literal value"


def test_redis_url_only_where_redis_is_used(objects: tuple[Obj, ...]) -> None:
    deployments = by_kind(objects, "Deployment")
    for name in SERVICES:
        env = _env(_containers(deployments[name])[0])
        assert ("LLMGW_REDIS_URL" in env) == (name in REDIS_USERS), name


def test_envoy_clusters_are_the_headless_services(objects: tuple[Obj, ...]) -> None:
    configs = by_kind(objects, "ConfigMap")
    envoy_config = next(c for n, c in configs.items() if n.startswith("envoy-config"))
    config = yaml.safe_load(envoy_config["data"]["envoy.yaml"])
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    services = by_kind(objects, "Service")
    for name in SERVICES:
        address = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        socket = address["endpoint"]["address"]["socket_address"]
        assert socket["address"] == f"{name}.llm-gateway.svc.cluster.local"
        service = services[name]
        assert service["spec"]["clusterIP"] == "None", f"{name} is not headless"
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"] == socket[
            "port_value"
        ]
    envoy = _containers(by_kind(objects, "Deployment")["envoy"])[0]
    mount = next(m for m in envoy["volumeMounts"] if m["name"] == "config")
    assert _env(envoy)["LLMGW_ENVOY_CONFIG"]["value"] == f"{mount['mountPath']}/envoy.yaml"
    internal = load_topology().listeners.internal
    expected = f"envoy-internal.llm-gateway.svc.cluster.local:{internal}"
    assert {p["port"] for p in services["envoy-internal"]["spec"]["ports"]} == {internal}
    for name in SERVICES:
        env = _env(_containers(by_kind(objects, "Deployment")[name])[0])
        assert env["LLMGW_INTERNAL_ADDR"]["value"] == expected


def test_the_gateway_config_of_every_overlay_is_valid(
    objects: tuple[Obj, ...], tmp_path: Path
) -> None:
    configs = by_kind(objects, "ConfigMap")
    gateway = next(c for n, c in configs.items() if n.startswith("llm-gateway-config"))
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway["data"]["gateway.yaml"])
    config = load_config(path, {})
    assert config.default_model
    assert "api_key:" not in path.read_text()


def test_service_monitors_select_a_service_port(objects: tuple[Obj, ...]) -> None:
    services = list(by_kind(objects, "Service").values())
    monitors = by_kind(objects, "ServiceMonitor")
    if not monitors:
        return
    assert set(monitors) == {*SERVICES, "envoy"}
    for name, monitor in monitors.items():
        endpoint = monitor["spec"]["endpoints"][0]
        scraped = [
            s
            for s in services
            if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
            and endpoint["port"] in {p["name"] for p in s["spec"]["ports"]}
        ]
        assert [s["metadata"]["name"] for s in scraped] == [name]
        assert endpoint["honorLabels"] is True
    assert monitors["envoy"]["spec"]["endpoints"][0]["path"] == "/stats/prometheus"


# --- NetworkPolicies --------------------------------------------------------------------------


def _expected_paths(objects: tuple[Obj, ...]) -> set[tuple[str, str, int]]:
    """(source, destination, port) inside the namespace that the topology needs."""
    topology = load_topology()
    paths = {("envoy", spec.name, spec.port) for spec in topology.services}
    paths |= {(caller, "envoy", topology.listeners.internal) for caller in INTERNAL_CALLERS}
    paths |= {(user, "redis", 6379) for user in REDIS_USERS}
    if "llama" in workloads(objects):
        paths.add(("provider", "llama", 8090))
    return paths


def test_a_default_deny_covers_every_pod(objects: tuple[Obj, ...]) -> None:
    policies = by_kind(objects, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name, workload in workloads(objects).items():
        own = [
            p
            for n, p in policies.items()
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod_labels(workload))
        ]
        assert own, f"{name}: no NetworkPolicy of its own"


def test_only_the_topologys_paths_are_open_inside_the_namespace(
    objects: tuple[Obj, ...],
) -> None:
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = workloads(objects)
    expected = _expected_paths(objects)
    for (source, src), (destination, dst) in itertools.product(pods.items(), repeat=2):
        for port in container_ports(dst):
            permitted = allowed(policies, pod_labels(src), pod_labels(dst), port)
            assert permitted == ((source, destination, port) in expected), (
                f"{source} -> {destination}:{port}"
            )


def test_the_provider_is_reached_only_through_envoy(objects: tuple[Obj, ...]) -> None:
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = workloads(objects)
    provider = pod_labels(pods["provider"])
    port = DEFAULT_PORTS["provider"][0]
    reachers = [n for n, w in pods.items() if allowed(policies, pod_labels(w), provider, port)]
    assert reachers == ["envoy"]
    for outside in ("internet", "monitoring", "cluster-private"):
        assert not allowed(policies, outside, provider, port), outside
    # Envoy's internal listener, which routes to the provider, takes only the callers.
    internal = load_topology().listeners.internal
    envoy = pod_labels(pods["envoy"])
    callers = [n for n, w in pods.items() if allowed(policies, pod_labels(w), envoy, internal)]
    assert sorted(callers) == sorted(INTERNAL_CALLERS)


def test_only_the_provider_leaves_the_cluster(objects: tuple[Obj, ...]) -> None:
    policies = list(by_kind(objects, "NetworkPolicy").values())
    for name, workload in workloads(objects).items():
        labels = pod_labels(workload)
        for port in (443, 80, 8443):
            expected = name == "provider" and port == 443
            assert allowed(policies, labels, "internet", port) == expected, f"{name}:{port}"
        # Never to private addresses (the cloud metadata endpoint, nodes, other pods).
        assert not allowed(policies, labels, "cluster-private", 443), name
        # Every pod resolves names.
        assert allowed(policies, labels, "kube-dns", 53), name


def test_monitoring_reaches_metrics_and_clients_reach_the_edge(objects: tuple[Obj, ...]) -> None:
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = workloads(objects)
    listeners = load_topology().listeners
    for name in SERVICES:
        port, metrics = DEFAULT_PORTS[name]
        labels = pod_labels(pods[name])
        assert allowed(policies, "monitoring", labels, metrics), name
        assert not allowed(policies, "monitoring", labels, port), name
        assert not allowed(policies, "internet", labels, port), name
    envoy = pod_labels(pods["envoy"])
    assert allowed(policies, "internet", envoy, listeners.public)
    assert allowed(policies, "monitoring", envoy, listeners.ops)
    assert not allowed(policies, "internet", envoy, listeners.internal)
    assert not allowed(policies, "internet", envoy, listeners.ops)
    redis = pod_labels(pods["redis"])
    assert not allowed(policies, "internet", redis, 6379)
    assert not allowed(policies, "monitoring", redis, 6379)


def test_the_evaluator_sees_an_open_path_once_policies_allow_it() -> None:
    """The NetworkPolicy checks above would pass vacuously if the evaluator denied all."""
    objects = build("staging")
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = workloads(objects)
    session = pod_labels(pods["session"])
    tool = pod_labels(pods["tool"])
    assert not allowed(policies, session, tool, 50054)
    open_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "open"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{}],
            "egress": [{}],
        },
    }
    assert allowed([*policies, open_all], session, tool, 50054)


def test_readme_documents_the_secrets_and_every_overlay() -> None:
    text = (K8S / "README.md").read_text()
    assert f"kubectl -n llm-gateway create secret generic {k8s_manifests.SECRET}" in text
    assert k8s_manifests.PROVIDER_SECRET in text
    for overlay in OVERLAYS:
        assert f"overlays/{overlay}" in text
