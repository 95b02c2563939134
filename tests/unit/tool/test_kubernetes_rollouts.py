"""The rollout diff over ReplicaSets as the API returns them: probes (liveness,
readiness, startup: type, port, path) and ports are compared beside the image, env,
resources, args and command."""

from __future__ import annotations

import copy
from typing import Any, cast

from lightkube.resources.apps_v1 import Deployment, ReplicaSet

from services.tool.toolsets.kubernetes_rollouts import history

UID = "0d1c9a52-4c1e-4a43-9a0e-5f1f0c2f7d11"
CONTAINER: dict[str, Any] = {
    "name": "web",
    "image": "registry.example.com/storefront:3.2.0",
    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
}


def _deployment() -> Deployment:
    document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "storefront", "namespace": "web", "uid": UID},
        "spec": {
            "selector": {"matchLabels": {"app": "storefront"}},
            "template": {"spec": {"containers": [CONTAINER]}},
        },
    }
    return cast(Deployment, Deployment.from_dict(document))


def _replica_set(revision: int, container: dict[str, Any]) -> ReplicaSet:
    document = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"storefront-rev{revision}",
            "namespace": "web",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "storefront",
                    "uid": UID,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "selector": {"matchLabels": {"app": "storefront"}},
            "template": {"spec": {"containers": [container]}},
        },
    }
    return cast(ReplicaSet, ReplicaSet.from_dict(document))


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    diff = history(_deployment(), [_replica_set(2, new), _replica_set(1, old)])["diff"]
    assert (diff["from_revision"], diff["to_revision"]) == (1, 2)
    return list(diff["changes"])


def test_a_liveness_probe_moved_to_another_port_is_the_only_change() -> None:
    moved = copy.deepcopy(CONTAINER)
    moved["livenessProbe"]["httpGet"]["port"] = 8181
    assert _changes(CONTAINER, moved) == [
        {
            "container": "web",
            "field": "liveness_probe",
            "before": "httpGet port=8080 path=/healthz",
            "after": "httpGet port=8181 path=/healthz",
        }
    ]


def test_probe_timings_alone_are_no_change() -> None:
    slower = copy.deepcopy(CONTAINER)
    slower["livenessProbe"]["periodSeconds"] = 30
    assert _changes(CONTAINER, slower) == []


def test_ports_and_probes_added_removed_or_changed_in_kind() -> None:
    changed = copy.deepcopy(CONTAINER)
    changed["ports"].append({"containerPort": 9090, "protocol": "TCP"})
    changed["readinessProbe"] = {"tcpSocket": {"port": 8080}}
    del changed["livenessProbe"]
    changed["startupProbe"] = {"exec": {"command": ["cat", "/tmp/started"]}}
    assert _changes(CONTAINER, changed) == [
        {
            "container": "web",
            "field": "ports",
            "before": "http:8080/TCP",
            "after": "http:8080/TCP, 9090/TCP",
        },
        {
            "container": "web",
            "field": "liveness_probe",
            "before": "httpGet port=8080 path=/healthz",
            "after": "",
        },
        {
            "container": "web",
            "field": "readiness_probe",
            "before": "httpGet port=http path=/ready",
            "after": "tcpSocket port=8080",
        },
        {
            "container": "web",
            "field": "startup_probe",
            "before": "",
            "after": "exec cat /tmp/started",
        },
    ]
