"""A scenario of the fake Kubernetes API: real-shaped objects and container logs.

A scenario file is YAML:

```yaml
objects:            # Kubernetes objects as the API returns them (apiVersion, kind, ...)
  - {apiVersion: v1, kind: Pod, metadata: {name: web-1, namespace: shop}, spec: ..., status: ...}
logs:               # "<namespace>/<pod>/<container>": current and previous instance
  shop/web-1/app: {current: ["line", ...], previous: ["line", {ago: 30, text: "line"}]}
```

Times are relative to the moment the scenario loads, so ages and "last seen" stay
realistic: any string `$ago(90s)` (units s, m, h, d) becomes an RFC 3339 time that long
ago, `$now` the current time. A log line is a string (written just now) or
`{ago: seconds, text}` (so `sinceSeconds` has something to cut).

What the API server would fill in is filled in here: `metadata.uid`,
`resourceVersion`, `creationTimestamp` (an hour ago) and `generation`, and the `uid`
and `apiVersion` of an `ownerReferences` entry that names another object of the
scenario by kind and name (`controller: true` unless said otherwise), and the `uid` of
an Event's `involvedObject` (kubectl describe selects events by it).

Events are written as core `v1` Events, in either of the shapes a real cluster holds:
one recorded by the kubelet (or another core-API recorder: `count`, `firstTimestamp`,
`lastTimestamp`, `source`) or one recorded through `events.k8s.io` by the scheduler
(`eventTime`, `series: {count, lastObservedTime}`, `reportingComponent`, `action`, and
no count or timestamps). The fields the other shape has are filled in as the server
shows them: null times (`eventTime: null` for the kubelet's, `firstTimestamp: null`
and `lastTimestamp: null` for the scheduler's), an empty `source`, and the reporting
component and instance; `eventTime` and `lastObservedTime` are MicroTimes
(microseconds).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

SCENARIOS = Path(__file__).resolve().parent / "kube_scenarios"
_AGO = re.compile(r"^\$ago\((\d+)([smhd])\)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Kinds whose objects live in a namespace (the others are cluster-wide).
CLUSTER_KINDS = frozenset({"Node", "StorageClass", "Namespace", "PersistentVolume"})


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _render(value: Any, now: datetime) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, now) for item in value]
    if isinstance(value, str):
        if value == "$now":
            return rfc3339(now)
        match = _AGO.match(value)
        if match:
            seconds = int(match.group(1)) * _UNITS[match.group(2)]
            return rfc3339(now - timedelta(seconds=seconds))
    return value


@dataclass(frozen=True)
class LogLine:
    text: str
    # When it was written (seconds since the epoch).
    at: float


@dataclass
class ContainerLogs:
    current: list[LogLine] = field(default_factory=list)
    # None: the container has no previous instance.
    previous: list[LogLine] | None = None


@dataclass
class Scenario:
    objects: list[dict[str, Any]]
    # "<namespace>/<pod>/<container>" -> its logs.
    logs: dict[str, ContainerLogs]

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for obj in self.objects:
            meta = obj["metadata"]
            same = obj["kind"] == kind and meta["name"] == name
            if same and (namespace is None or meta.get("namespace") == namespace):
                return obj
        return None


def _lines(raw: Any, now: datetime) -> list[LogLine]:
    lines = []
    for entry in raw or []:
        if isinstance(entry, dict):
            at = now - timedelta(seconds=float(entry.get("ago", 0)))
            lines.append(LogLine(str(entry["text"]), at.timestamp()))
        else:
            lines.append(LogLine(str(entry), now.timestamp()))
    return lines


def _fill_metadata(obj: dict[str, Any], now: datetime, version: int) -> None:
    meta = obj.setdefault("metadata", {})
    namespace = meta.get("namespace", "")
    meta.setdefault(
        "uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{obj['kind']}/{namespace}/{meta['name']}"))
    )
    meta.setdefault("resourceVersion", str(1000 + version))
    meta.setdefault("creationTimestamp", rfc3339(now - timedelta(hours=1)))
    if obj["kind"] in ("Deployment", "ReplicaSet"):
        meta.setdefault("generation", 1)
    if obj["kind"] not in CLUSTER_KINDS:
        meta.setdefault("namespace", "default")


def _micro(value: Any) -> Any:
    """An RFC 3339 time as a MicroTime (`...:05.000000Z`); anything else as it is."""
    if isinstance(value, str) and value.endswith("Z") and "." not in value:
        return value[:-1] + ".000000Z"
    return value


def _fill_event(event: dict[str, Any]) -> None:
    source = event.setdefault("source", {})
    event["eventTime"] = _micro(event.get("eventTime"))
    series = event.get("series")
    if isinstance(series, dict):
        series["lastObservedTime"] = _micro(series.get("lastObservedTime"))
    event.setdefault("firstTimestamp", None)
    event.setdefault("lastTimestamp", None)
    event.setdefault("reportingComponent", source.get("component", ""))
    event.setdefault("reportingInstance", source.get("host", ""))


def _link_owners(scenario: Scenario) -> None:
    for obj in scenario.objects:
        meta = obj["metadata"]
        involved = obj.get("involvedObject")
        if obj["kind"] == "Event" and involved is not None:
            target = scenario.find(involved["kind"], involved["name"], involved.get("namespace"))
            if target is not None:
                involved.setdefault("uid", target["metadata"]["uid"])
        for ref in meta.get("ownerReferences", []):
            owner = scenario.find(ref["kind"], ref["name"], meta.get("namespace"))
            if owner is None:
                continue
            ref.setdefault("uid", owner["metadata"]["uid"])
            ref.setdefault("apiVersion", owner["apiVersion"])
            ref.setdefault("controller", True)
            ref.setdefault("blockOwnerDeletion", True)


def load_scenario(source: str | Path, now: datetime | None = None) -> Scenario:
    """A scenario by name (a file of tests/fakes/kube_scenarios) or path."""
    path = Path(source)
    if not path.suffix:
        path = SCENARIOS / f"{source}.yaml"
    document = yaml.safe_load(path.read_text()) or {}
    return scenario_from_document(document, now)


def scenario_from_document(document: dict[str, Any], now: datetime | None = None) -> Scenario:
    moment = now or datetime.now(UTC)
    objects = _render(document.get("objects") or [], moment)
    for index, obj in enumerate(objects):
        _fill_metadata(obj, moment, index)
        if obj["kind"] == "Event" and obj.get("apiVersion", "v1") == "v1":
            _fill_event(obj)
    logs = {
        key: ContainerLogs(
            current=_lines(value.get("current"), moment),
            previous=_lines(value["previous"], moment) if "previous" in value else None,
        )
        for key, value in (document.get("logs") or {}).items()
    }
    scenario = Scenario(objects=objects, logs=logs)
    _link_owners(scenario)
    return scenario
