"""Nodes, volume claims, storage classes and config maps as the kubernetes tools show
them. A ConfigMap is shown by its keys only: its values may be large, and which key is
missing is what a `CreateContainerConfigError` is about."""

from __future__ import annotations

from lightkube.resources.core_v1 import ConfigMap, Node, PersistentVolumeClaim
from lightkube.resources.storage_v1 import StorageClass

from services.tool.toolsets.kubernetes_pods import JsonObject, conditions

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def node_summary(node: Node) -> JsonObject:
    spec, status = node.spec, node.status
    found = conditions(status.conditions if status is not None else None)
    taints = (spec.taints if spec is not None else None) or []
    return {
        "name": node.metadata.name if node.metadata is not None else "",
        "ready": any(c["type"] == "Ready" and c["status"] == "True" for c in found),
        "unschedulable": bool(spec is not None and spec.unschedulable),
        "conditions": found,
        "taints": [
            f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}" for t in taints
        ],
        "capacity": {k: str(v) for k, v in ((status.capacity if status else None) or {}).items()},
        "allocatable": {
            k: str(v) for k, v in ((status.allocatable if status else None) or {}).items()
        },
    }


def pvc_summary(claim: PersistentVolumeClaim) -> JsonObject:
    spec, status = claim.spec, claim.status
    resources = spec.resources if spec is not None else None
    requests = (resources.requests if resources is not None else None) or {}
    capacity = (status.capacity if status is not None else None) or {}
    return {
        "name": claim.metadata.name if claim.metadata is not None else "",
        "phase": (status.phase if status is not None else None) or "Pending",
        "storage_class": (spec.storageClassName if spec is not None else None) or "",
        "requested": str(requests.get("storage", "")),
        "capacity": str(capacity.get("storage", "")),
        "volume": (spec.volumeName if spec is not None else None) or "",
        "access_modes": list((spec.accessModes if spec is not None else None) or []),
    }


def storage_class_summary(item: StorageClass) -> JsonObject:
    annotations = (item.metadata.annotations if item.metadata is not None else None) or {}
    return {
        "name": item.metadata.name if item.metadata is not None else "",
        "provisioner": item.provisioner,
        "default": annotations.get(DEFAULT_CLASS) == "true",
    }


def configmap_keys(item: ConfigMap) -> JsonObject:
    meta = item.metadata
    keys = sorted({*(item.data or {}), *(item.binaryData or {})})
    return {
        "name": meta.name if meta is not None else "",
        "namespace": meta.namespace if meta is not None else "",
        "keys": keys,
    }
