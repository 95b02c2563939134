"""What the fake Kubernetes API says besides objects: discovery documents, `Status`
error bodies and the `meta.k8s.io/v1` `Table` that kubectl asks for when it prints.

Discovery is the legacy form (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`,
answered as plain `application/json`): kubectl asks for aggregated discovery first and
falls back to it when the answer's content type is not the aggregated one.

Events are served twice, as the real server does: as core `v1` Events (what a scenario
writes) and as `events.k8s.io/v1` Events made from them by `event_v1`. The two views
differ the way a real cluster's do: an event the kubelet recorded through the core API
has `count`, `firstTimestamp` and `lastTimestamp` and, in `events.k8s.io/v1`, a null
`eventTime` with `deprecatedCount`, `deprecatedFirstTimestamp`,
`deprecatedLastTimestamp` and `deprecatedSource`; an event the scheduler recorded through
`events.k8s.io` has `eventTime` and a `series` {count, lastObservedTime}, and in core
`v1` no `count` and null `firstTimestamp`/`lastTimestamp`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    # "" for the core group.
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES = (
    Resource("pods", "Pod", "", "v1", True, ("po",)),
    Resource("events", "Event", "", "v1", True, ("ev",)),
    Resource("nodes", "Node", "", "v1", False, ("no",)),
    Resource("namespaces", "Namespace", "", "v1", False, ("ns",)),
    Resource("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", True, ("pvc",)),
    Resource("configmaps", "ConfigMap", "", "v1", True, ("cm",)),
    Resource("secrets", "Secret", "", "v1", True),
    Resource("deployments", "Deployment", "apps", "v1", True, ("deploy",)),
    Resource("replicasets", "ReplicaSet", "apps", "v1", True, ("rs",)),
    Resource("storageclasses", "StorageClass", "storage.k8s.io", "v1", False, ("sc",)),
    Resource("events", "Event", "events.k8s.io", "v1", True, ("ev",)),
    Resource("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True, ("netpol",)),
)
GROUPS = {
    ("apps", "v1"),
    ("storage.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
}
VERBS = ["get", "list"]


def resource(group: str, version: str, plural: str) -> Resource | None:
    for item in RESOURCES:
        if (item.group, item.version, item.plural) == (group, version, plural):
            return item
    return None


def event_v1(event: dict[str, Any]) -> dict[str, Any]:
    """A core `v1` Event as `events.k8s.io/v1` shows it (the server's conversion: fields
    renamed, the core-only ones kept as `deprecated*`, empty ones left out)."""
    shown: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": event["metadata"],
        "eventTime": event.get("eventTime"),
        "reportingController": event.get("reportingComponent", ""),
        "reportingInstance": event.get("reportingInstance", ""),
        "reason": event.get("reason", ""),
        "regarding": event.get("involvedObject", {}),
        "note": event.get("message", ""),
        "type": event.get("type", ""),
    }
    for core, renamed in (
        ("series", "series"),
        ("action", "action"),
        ("related", "related"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ):
        if event.get(core):
            shown[renamed] = event[core]
    return shown


def served(item: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` (as the scenario holds it) as `item`'s API version serves it."""
    return event_v1(obj) if (item.group, item.kind) == ("events.k8s.io", "Event") else obj


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list() -> dict[str, Any]:
    groups = []
    for group, version in sorted(GROUPS):
        entry = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    known = (group, version) in GROUPS if group else version == "v1"
    if not known:
        return None
    listed: list[dict[str, Any]] = []
    for item in RESOURCES:
        if (item.group, item.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": item.plural,
            "singularName": item.kind.lower(),
            "namespaced": item.namespaced,
            "kind": item.kind,
            "verbs": VERBS,
        }
        if item.short_names:
            entry["shortNames"] = list(item.short_names)
        listed.append(entry)
        if item.plural == "pods":
            listed.append(
                {
                    "name": "pods/log",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get"],
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": listed,
    }


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict:
    """A `kind: Status` failure body, as the API server sends with every error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class Refused(Exception):
    """An answer that is a `kind: Status` failure: raised where the fake finds it,
    answered with the body's code by the request handler."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.body = body


def bad_request(message: str) -> Refused:
    return Refused(status(400, "BadRequest", message))


def no_such_path() -> Refused:
    return Refused(status(404, "NotFound", "the server could not find the requested resource"))


def not_found(item: Resource, name: str) -> dict[str, Any]:
    what = f"{item.plural}.{item.group}" if item.group else item.plural
    return status(
        404,
        "NotFound",
        f'{what} "{name}" not found',
        {"name": name, "group": item.group, "kind": item.plural},
    )


def forbidden(item: Resource, verb: str, namespace: str | None, user: str) -> dict[str, Any]:
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    what = f"{item.plural}.{item.group}" if item.group else item.plural
    return status(
        403,
        "Forbidden",
        f'{what} is forbidden: User "{user}" cannot {verb} resource "{item.plural}" in API '
        f'group "{item.group}"{where}',
        {"kind": item.plural, "group": item.group},
    )


# --- Tables ---------------------------------------------------------------------------


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    # A MicroTime (`eventTime`, `series.lastObservedTime`) has microseconds.
    moment = datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    seconds = max(int((datetime.now(UTC) - moment).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pod_status(pod: dict[str, Any]) -> str:
    for state in pod.get("status", {}).get("containerStatuses", []):
        current = state.get("state", {})
        for key in ("waiting", "terminated"):
            reason = current.get(key, {}).get("reason")
            if reason:
                return str(reason)
    return str(pod.get("status", {}).get("phase", "Unknown"))


def _pod_row(pod: dict[str, Any]) -> list[Any]:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    ready = sum(1 for s in statuses if s.get("ready"))
    total = len(pod.get("spec", {}).get("containers", []))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        restarts,
        _age(pod["metadata"].get("creationTimestamp")),
    ]


def _event_row(event: dict[str, Any]) -> list[Any]:
    """Either view of an event (core `v1` or `events.k8s.io/v1`)."""
    involved = event.get("involvedObject") or event.get("regarding") or {}
    series = event.get("series") or {}
    seen = (
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("deprecatedLastTimestamp")
        or event.get("eventTime")
    )
    return [
        _age(seen),
        event.get("type", ""),
        event.get("reason", ""),
        f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
        event.get("message", event.get("note", "")),
    ]


def _deployment_row(deployment: dict[str, Any]) -> list[Any]:
    status_ = deployment.get("status", {})
    wanted = deployment.get("spec", {}).get("replicas", 1)
    return [
        deployment["metadata"]["name"],
        f"{status_.get('readyReplicas', 0)}/{wanted}",
        status_.get("updatedReplicas", 0),
        status_.get("availableReplicas", 0),
        _age(deployment["metadata"].get("creationTimestamp")),
    ]


def _node_row(node: dict[str, Any]) -> list[Any]:
    conditions = node.get("status", {}).get("conditions", [])
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    state = "Ready" if ready.get("status") == "True" else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    return [
        node["metadata"]["name"],
        state,
        _age(node["metadata"].get("creationTimestamp")),
        node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""),
    ]


def _selector_text(selector: dict[str, Any]) -> str:
    """A label selector as kubectl prints it (`<none>` when it selects everything)."""
    terms = [f"{key}={value}" for key, value in sorted(selector.get("matchLabels", {}).items())]
    for expression in selector.get("matchExpressions", []):
        values = ",".join(expression.get("values", []))
        terms.append(f"{expression['key']} {expression['operator'].lower()} ({values})")
    return ",".join(terms) or "<none>"


def _network_policy_row(policy: dict[str, Any]) -> list[Any]:
    return [
        policy["metadata"]["name"],
        _selector_text(policy.get("spec", {}).get("podSelector", {})),
        _age(policy["metadata"].get("creationTimestamp")),
    ]


def _default_row(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], _age(obj["metadata"].get("creationTimestamp"))]


def _columns(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "type": "integer" if name == "Restarts" else "string",
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": 0,
        }
        for name in names
    ]


_TABLES: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any]], list[Any]]]] = {
    "Pod": (_columns("Name", "Ready", "Status", "Restarts", "Age"), _pod_row),
    "Event": (_columns("Last Seen", "Type", "Reason", "Object", "Message"), _event_row),
    "Deployment": (
        _columns("Name", "Ready", "Up-to-date", "Available", "Age"),
        _deployment_row,
    ),
    "Node": (_columns("Name", "Status", "Age", "Version"), _node_row),
    "NetworkPolicy": (_columns("Name", "Pod-Selector", "Age"), _network_policy_row),
}


def table(
    kind: str, objects: Sequence[dict[str, Any]], resource_version: str, include: str
) -> dict[str, Any]:
    """A `Table` of `objects`; `include` is the request's `includeObject` (`Metadata`
    by default, `Object`, or `None`)."""
    columns, row = _TABLES.get(kind, (_columns("Name", "Age"), _default_row))
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj)}
        if include == "Object":
            entry["object"] = obj
        elif include != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
