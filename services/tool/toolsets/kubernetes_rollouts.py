"""Deployments and their rollout history, as `kubectl rollout history` sees it.

A Deployment's revisions are the ReplicaSets it controls (an owner reference with the
Deployment's uid), numbered by their `deployment.kubernetes.io/revision` annotation and
explained by `kubernetes.io/change-cause`. The diff compares the pod templates of the
newest two revisions, container by container: image, each environment variable, the
resources, args and command, the ports, and the liveness, readiness and startup probes
(their type, port and path, as kubernetes_describe_pod shows them: a probe moved to a
port nothing listens on is a change that kills pods; timings are not compared). "What
changed in the last rollout" is what a reader of a failing deployment wants first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightkube import operators
from lightkube.core.client import LabelSelector
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import Container, PodTemplateSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet

from services.tool.toolsets.kubernetes_pods import (
    JsonObject,
    conditions,
    environment,
    probes_and_ports,
    timestamp,
)

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def revision_of(meta: ObjectMeta | None) -> int:
    value = ((meta.annotations if meta is not None else None) or {}).get(REVISION, "")
    return int(value) if value.isdigit() else 0


def _containers(template: PodTemplateSpec | None) -> list[Container]:
    spec = template.spec if template is not None else None
    return list(spec.containers) if spec is not None else []


def images(template: PodTemplateSpec | None) -> dict[str, str]:
    return {c.name: c.image or "" for c in _containers(template)}


def deployment_summary(deployment: Deployment) -> JsonObject:
    meta, spec, status = deployment.metadata, deployment.spec, deployment.status
    return {
        "name": meta.name if meta is not None else "",
        "namespace": meta.namespace if meta is not None else "",
        "replicas": (spec.replicas if spec is not None else None) or 0,
        "ready_replicas": (status.readyReplicas if status is not None else None) or 0,
        "updated_replicas": (status.updatedReplicas if status is not None else None) or 0,
        "available_replicas": (status.availableReplicas if status is not None else None) or 0,
        "revision": revision_of(meta),
        "images": images(spec.template if spec is not None else None),
        "conditions": conditions(status.conditions if status is not None else None),
    }


def selector_pairs(spec: DeploymentSpec | None) -> LabelSelector:
    """The Deployment's selector as lightkube label pairs (matchLabels and expressions)."""
    selector = spec.selector if spec is not None else None
    if selector is None:
        return {}
    pairs: LabelSelector = {
        key: operators.equal(value) for key, value in (selector.matchLabels or {}).items()
    }
    for expression in selector.matchExpressions or []:
        values = expression.values or []
        made: dict[str, operators.Operator[Any]] = {
            "In": operators.in_(values),
            "NotIn": operators.not_in(values),
            "Exists": operators.exists(),
            "DoesNotExist": operators.not_exists(),
        }
        if expression.operator in made:
            pairs[expression.key] = made[expression.operator]
    return pairs


def owned_by(deployment: Deployment, replica_sets: Sequence[ReplicaSet]) -> list[ReplicaSet]:
    uid = deployment.metadata.uid if deployment.metadata is not None else None
    return [
        rs
        for rs in replica_sets
        if rs.metadata is not None
        and any(ref.uid == uid and ref.controller for ref in rs.metadata.ownerReferences or [])
    ]


def _env_strings(container: Container) -> dict[str, str]:
    """`NAME=value` per variable, values shown as `environment` shows them."""
    shown = {}
    for entry in environment([container]):
        value = entry.get("value", entry.get("value_from", ""))
        shown[entry["name"]] = f"{entry['name']}={value}"
    return shown


def _resources(container: Container) -> str:
    resources = container.resources
    if resources is None:
        return ""
    parts = [
        f"{kind}.{key}={value}"
        for kind, mapping in (("requests", resources.requests), ("limits", resources.limits))
        for key, value in sorted((mapping or {}).items())
    ]
    return " ".join(parts)


def _words(values: Sequence[str] | None) -> str:
    return " ".join(values or [])


def _probe_text(probe: JsonObject | None) -> str:
    """`httpGet port=8080 path=/healthz`, `tcpSocket port=9090`, `exec cat /tmp/ready`;
    "" for no probe."""
    if probe is None:
        return ""
    if probe["type"] == "exec":
        return f"exec {probe['path']}".rstrip()
    parts = [probe["type"], f"port={probe['port']}"]
    if probe["path"]:
        parts.append(f"{'service' if probe['type'] == 'grpc' else 'path'}={probe['path']}")
    return " ".join(parts)


def _probes_and_ports(container: Container) -> dict[str, str]:
    """Field -> its text: `ports` and `<kind>_probe` for liveness, readiness, startup."""
    shown = probes_and_ports(container)
    fields = {"ports": ", ".join(shown["ports"])}
    for kind in ("liveness", "readiness", "startup"):
        fields[f"{kind}_probe"] = _probe_text(shown["probes"].get(kind))
    return fields


def _change(container: str, field: str, before: str, after: str) -> JsonObject:
    return {"container": container, "field": field, "before": before, "after": after}


def _container_changes(name: str, old: Container | None, new: Container | None) -> list[JsonObject]:
    if old is None or new is None:
        # A container added or removed: its image is the change.
        before = old.image or "" if old is not None else ""
        after = new.image or "" if new is not None else ""
        return [_change(name, "image", before, after)]
    changes = []
    if old.image != new.image:
        changes.append(_change(name, "image", old.image or "", new.image or ""))
    old_env, new_env = _env_strings(old), _env_strings(new)
    for variable in sorted(set(old_env) | set(new_env)):
        before, after = old_env.get(variable, ""), new_env.get(variable, "")
        if before != after:
            changes.append(_change(name, "env", before, after))
    for field, before, after in (
        ("resources", _resources(old), _resources(new)),
        ("args", _words(old.args), _words(new.args)),
        ("command", _words(old.command), _words(new.command)),
    ):
        if before != after:
            changes.append(_change(name, field, before, after))
    old_shown, new_shown = _probes_and_ports(old), _probes_and_ports(new)
    for field, before in old_shown.items():
        if before != new_shown[field]:
            changes.append(_change(name, field, before, new_shown[field]))
    return changes


def template_diff(old: PodTemplateSpec | None, new: PodTemplateSpec | None) -> list[JsonObject]:
    before = {c.name: c for c in _containers(old)}
    after = {c.name: c for c in _containers(new)}
    names = list(after) + [n for n in before if n not in after]
    return [
        change
        for name in names
        for change in _container_changes(name, before.get(name), after.get(name))
    ]


def history(deployment: Deployment, replica_sets: Sequence[ReplicaSet]) -> JsonObject:
    """`{deployment, revisions (oldest first), diff of the newest two | null}`."""
    owned = sorted(owned_by(deployment, replica_sets), key=lambda rs: revision_of(rs.metadata))
    revisions = []
    for rs in owned:
        meta = rs.metadata
        template = rs.spec.template if rs.spec is not None else None
        revisions.append(
            {
                "revision": revision_of(meta),
                "replicaset": meta.name if meta is not None else "",
                "created": timestamp(meta.creationTimestamp if meta is not None else None),
                "images": images(template),
                "change_cause": ((meta.annotations if meta is not None else None) or {}).get(
                    CHANGE_CAUSE, ""
                ),
            }
        )
    diff = None
    if len(owned) >= 2:
        old, new = owned[-2], owned[-1]
        diff = {
            "from_revision": revision_of(old.metadata),
            "to_revision": revision_of(new.metadata),
            "changes": template_diff(
                old.spec.template if old.spec is not None else None,
                new.spec.template if new.spec is not None else None,
            ),
        }
    name = deployment.metadata.name if deployment.metadata is not None else ""
    return {"deployment": name, "revisions": revisions, "diff": diff}
