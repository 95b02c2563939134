"""What the calls showed, indexed once for every analyzer.

Several calls can show the same pod (its describe and a namespace listing) or the same
event (the pod's events and the namespace's): pods are kept once per subject, the
describe first since it carries conditions, volumes and events; events are kept from
every call, so a finding can cite whichever call the reader looks at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.investigation.calls import ToolCall
from services.investigation.results import (
    EventView,
    PodView,
    events,
    mapping,
    pods,
    successful,
    text,
)


@dataclass(frozen=True)
class Observations:
    calls: tuple[ToolCall, ...]
    # One view per pod subject, describes first, then in call order.
    pods: tuple[PodView, ...]
    # Every event of every call, in call order.
    events: tuple[EventView, ...]
    # Namespaces the Kubernetes calls were about: what "related to the alert" means.
    namespaces: frozenset[str]
    # `(namespace, pod)` of the pods the calls named.
    pod_names: frozenset[tuple[str, str]]
    # When the alert began firing, when known.
    alert_started: datetime | None = None

    def events_of(self, namespace: str, kind: str, name: str) -> list[EventView]:
        """Events about one object (`Pod`, `web-1`) of `namespace`."""
        return [
            event
            for event in self.events
            if event.namespace == namespace
            and event.object_kind == kind
            and event.object_name == name
        ]

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool) -> list[ToolCall]:
        """Successful `kubernetes_pod_logs` calls for the container (a call that named
        no container counts for the container its result names)."""
        found = []
        for call in successful(self.calls, "kubernetes_pod_logs"):
            args = call.arguments
            shown = text(args.get("container")) or text(mapping(call.result).get("container"))
            if (
                text(args.get("namespace")) == namespace
                and text(args.get("name")) == pod
                and shown == container
                and bool(args.get("previous")) == previous
            ):
                found.append(call)
        return found


def observe(calls: Sequence[ToolCall], alert_started: datetime | None = None) -> Observations:
    unique: dict[str, PodView] = {}
    for pod in pods(calls):
        if pod.name:
            unique.setdefault(pod.subject, pod)
    namespaces = {
        text(call.arguments.get("namespace"))
        for call in calls
        if call.toolset == "kubernetes" and text(call.arguments.get("namespace"))
    }
    pod_names = {
        (text(call.arguments.get("namespace")), text(call.arguments.get("name")))
        for call in calls
        if call.tool in ("kubernetes_describe_pod", "kubernetes_pod_logs")
    }
    return Observations(
        calls=tuple(calls),
        pods=tuple(unique.values()),
        events=tuple(events(calls)),
        namespaces=frozenset(namespaces),
        pod_names=frozenset(pod_names),
        alert_started=alert_started,
    )
