"""Pods and events as the kubernetes tools show them: what a reader needs to tell why a
pod is unwell (phase, readiness, restarts, each container's state and last
termination, resources, conditions, events), none of the API object's bookkeeping.

Secret values are never read: an environment variable taken from a Secret is shown as
`secret:<name>/<key>`, and a literal value passes through the log redactor (a key
pasted into a manifest is shown masked).

Events come in two shapes, as the API server holds them: one recorded through the core
API (the kubelet's: `count`, `firstTimestamp`, `lastTimestamp`, `source`, no
`eventTime`) and one recorded through `events.k8s.io` (the scheduler's: `eventTime`, a
`series` {count, lastObservedTime} when it repeated, `reportingComponent`, and no count
or timestamps). Both read the same here: the count is `count`, else the series' count,
else 1; last seen is the series' last observation, else `lastTimestamp`, else
`eventTime`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lightkube.models.core_v1 import (
    Container,
    ContainerState,
    ContainerStatus,
    EnvFromSource,
    EnvVar,
    Probe,
    Volume,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Pod

from services.common.logs import redact

JsonObject = dict[str, Any]


def timestamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age_seconds(meta: ObjectMeta | None, now: datetime) -> int:
    created = meta.creationTimestamp if meta is not None else None
    return 0 if created is None else max(int((now - created).total_seconds()), 0)


def owner(meta: ObjectMeta | None) -> str:
    """`Kind/name` of the controlling owner (or the first one), "" when none."""
    refs = (meta.ownerReferences if meta is not None else None) or []
    chosen = next((ref for ref in refs if ref.controller), refs[0] if refs else None)
    return "" if chosen is None else f"{chosen.kind}/{chosen.name}"


def conditions(items: Sequence[Any] | None) -> list[JsonObject]:
    """`[{type, status, reason, message}]` of any object's status conditions."""
    return [
        {
            "type": item.type,
            "status": item.status,
            "reason": item.reason or "",
            "message": item.message or "",
        }
        for item in items or []
    ]


def _state(state: ContainerState | None) -> tuple[str, str, str, int | None]:
    """(state, reason, message, exit code) of a container state."""
    if state is None:
        return "waiting", "", "", None
    if state.terminated is not None:
        done = state.terminated
        return "terminated", done.reason or "", done.message or "", done.exitCode
    if state.waiting is not None:
        return "waiting", state.waiting.reason or "", state.waiting.message or "", None
    return "running", "", "", None


def _last_state(status: ContainerStatus | None) -> JsonObject | None:
    last = status.lastState if status is not None else None
    if last is None or (last.terminated is None and last.waiting is None and last.running is None):
        return None
    state, reason, _, exit_code = _state(last)
    finished = last.terminated.finishedAt if last.terminated is not None else None
    return {
        "state": state,
        "reason": reason,
        "exit_code": exit_code,
        "finished_at": timestamp(finished),
    }


def _resources(container: Container) -> JsonObject:
    resources = container.resources
    requests = (resources.requests if resources is not None else None) or {}
    limits = (resources.limits if resources is not None else None) or {}
    return {
        "requests": {key: str(value) for key, value in requests.items()},
        "limits": {key: str(value) for key, value in limits.items()},
    }


def container_summary(container: Container, status: ContainerStatus | None) -> JsonObject:
    state, reason, message, exit_code = _state(status.state if status is not None else None)
    return {
        "name": container.name,
        "image": container.image or (status.image if status is not None else ""),
        "ready": bool(status is not None and status.ready),
        "restart_count": status.restartCount if status is not None else 0,
        "state": state,
        "reason": reason,
        "message": message,
        "exit_code": exit_code,
        "last_state": _last_state(status),
        "resources": _resources(container),
    }


def pod_summary(pod: Pod, now: datetime) -> JsonObject:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    statuses = {s.name: s for s in (status.containerStatuses if status is not None else None) or []}
    containers = spec.containers if spec is not None else []
    shown = [container_summary(c, statuses.get(c.name)) for c in containers]
    return {
        "name": meta.name if meta is not None else "",
        "namespace": meta.namespace if meta is not None else "",
        "phase": (status.phase if status is not None else None) or "Unknown",
        # The pod's own reason and message (`Evicted` and the kubelet's why).
        "reason": (status.reason if status is not None else None) or "",
        "message": (status.message if status is not None else None) or "",
        "ready": f"{sum(1 for c in shown if c['ready'])}/{len(shown)}",
        "restarts": sum(int(c["restart_count"]) for c in shown),
        "node": (spec.nodeName if spec is not None else None) or "",
        "owner": owner(meta),
        "age_seconds": age_seconds(meta, now),
        "containers": shown,
    }


# --- describe ---------------------------------------------------------------------------

_SOURCE_NAME_FIELDS = ("claimName", "name", "secretName", "path", "server")


def volume(item: Volume) -> JsonObject:
    """`{name, kind, source}`: the volume's type (`persistentVolumeClaim`, `configMap`,
    `secret`, `emptyDir`...) and what it is made from (claim, map or secret name)."""
    for kind, source in item.to_dict().items():
        if kind == "name" or source is None:
            continue
        detail = source if isinstance(source, dict) else {}
        name = next((str(detail[f]) for f in _SOURCE_NAME_FIELDS if detail.get(f)), "")
        return {"name": item.name, "kind": kind, "source": name}
    return {"name": item.name, "kind": "unknown", "source": ""}


def _value_from(variable: EnvVar) -> str:
    source = variable.valueFrom
    if source is None:
        return ""
    if source.secretKeyRef is not None:
        return f"secret:{source.secretKeyRef.name}/{source.secretKeyRef.key}"
    if source.configMapKeyRef is not None:
        return f"configmap:{source.configMapKeyRef.name}/{source.configMapKeyRef.key}"
    if source.fieldRef is not None:
        return f"field:{source.fieldRef.fieldPath}"
    if source.resourceFieldRef is not None:
        return f"resource:{source.resourceFieldRef.resource}"
    return "other"


def _env_from(container: str, source: EnvFromSource) -> JsonObject:
    if source.secretRef is not None:
        origin = f"secret:{source.secretRef.name}"
    elif source.configMapRef is not None:
        origin = f"configmap:{source.configMapRef.name}"
    else:
        origin = "other"
    return {"container": container, "name": f"{source.prefix or ''}*", "value_from": origin}


def environment(containers: Sequence[Container]) -> list[JsonObject]:
    """Every container's variables: a literal value (redacted where it looks like a
    credential), or where it comes from; whole `envFrom` sources as `name: PREFIX*`."""
    shown: list[JsonObject] = []
    for container in containers:
        for variable in container.env or []:
            entry: JsonObject = {"container": container.name, "name": variable.name}
            if variable.valueFrom is not None:
                entry["value_from"] = _value_from(variable)
            else:
                entry["value"] = redact(variable.value or "")
            shown.append(entry)
        shown.extend(_env_from(container.name, source) for source in container.envFrom or [])
    return shown


def _probe(probe: Probe | None) -> JsonObject | None:
    """`{type, port, path}` of a probe (port as written: a number or a port's name)."""
    if probe is None:
        return None
    if probe.httpGet is not None:
        scheme = (probe.httpGet.scheme or "HTTP").lower()
        return {
            "type": f"{scheme}Get",
            "port": str(probe.httpGet.port),
            "path": probe.httpGet.path or "/",
        }
    if probe.tcpSocket is not None:
        return {"type": "tcpSocket", "port": str(probe.tcpSocket.port), "path": ""}
    if probe.grpc is not None:
        return {"type": "grpc", "port": str(probe.grpc.port), "path": probe.grpc.service or ""}
    command = " ".join(probe.exec.command or []) if probe.exec is not None else ""
    return {"type": "exec", "port": "", "path": command}


def probes_and_ports(container: Container) -> JsonObject:
    """A container's ports (`8080/TCP`, `http:8080/TCP` when named) and its probes
    (`liveness`, `readiness`, `startup`: those it has)."""
    ports = [
        (f"{port.name}:" if port.name else "") + f"{port.containerPort}/{port.protocol or 'TCP'}"
        for port in container.ports or []
    ]
    probes = {
        kind: shown
        for kind, probe in (
            ("liveness", container.livenessProbe),
            ("readiness", container.readinessProbe),
            ("startup", container.startupProbe),
        )
        if (shown := _probe(probe)) is not None
    }
    return {"ports": ports, "probes": probes}


def pod_details(pod: Pod, now: datetime) -> JsonObject:
    """The pod summary with conditions, labels, node selector, volumes and environment,
    and each container's ports and probes."""
    spec, status = pod.spec, pod.status
    details = pod_summary(pod, now)
    for shown, container in zip(
        details["containers"], spec.containers if spec is not None else [], strict=True
    ):
        shown.update(probes_and_ports(container))
    details["conditions"] = conditions(status.conditions if status is not None else None)
    details["labels"] = dict((pod.metadata.labels if pod.metadata is not None else None) or {})
    details["node_selector"] = dict((spec.nodeSelector if spec is not None else None) or {})
    details["volumes"] = [volume(v) for v in (spec.volumes if spec is not None else None) or []]
    details["env"] = environment(spec.containers if spec is not None else [])
    return details


# --- events -----------------------------------------------------------------------------


def _last_seen(event: Event) -> datetime | None:
    series = event.series.lastObservedTime if event.series is not None else None
    return series or event.lastTimestamp or event.eventTime or event.firstTimestamp


def _count(event: Event) -> int:
    series = event.series.count if event.series is not None else None
    return event.count or series or 1


def event_summary(event: Event) -> JsonObject:
    involved = event.involvedObject
    source = event.source
    return {
        "type": event.type or "",
        "reason": event.reason or "",
        "message": event.message or "",
        "count": _count(event),
        "object": f"{involved.kind or ''}/{involved.name or ''}",
        "first_seen": timestamp(event.firstTimestamp or event.eventTime),
        "last_seen": timestamp(_last_seen(event)),
        "source": (source.component if source is not None else None)
        or event.reportingComponent
        or "",
    }


def events_newest_last(events: Sequence[Event], limit: int) -> tuple[list[JsonObject], bool]:
    """The `limit` most recent events, oldest first, and whether older ones were left out."""
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(events, key=lambda e: _last_seen(e) or epoch)
    kept = ordered[-limit:] if limit > 0 else []
    return [event_summary(e) for e in kept], len(ordered) > len(kept)
