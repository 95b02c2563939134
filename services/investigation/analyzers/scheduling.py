"""Pods that have nowhere to run: the scheduler cannot place them, or their node is
not ready.

Evidence quotes the scheduler's FailedScheduling message (which says why: resources,
taints, affinity, volumes) and the node's Ready condition.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import items, successful, text

# Pods on a failing node named in a detail.
_PODS_SHOWN = 5


def unschedulable(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    messages: dict[tuple[str, str], list[EvidenceRef | None]] = {}
    first: dict[tuple[str, str], str] = {}
    for event in obs.events:
        if event.reason == "FailedScheduling" and event.object_kind == "Pod":
            key = (event.namespace, event.object_name)
            messages.setdefault(key, []).append(quote(event.call, event.message))
            first.setdefault(key, event.message)
    for pod in obs.pods:
        for condition in pod.conditions:
            if (
                text(condition.get("type")) == "PodScheduled"
                and text(condition.get("status")) == "False"
            ):
                key = (pod.namespace, pod.name)
                message = text(condition.get("message"))
                messages.setdefault(key, []).append(quote(pod.call, message))
                first.setdefault(key, message)
    for (namespace, name), evidence in sorted(messages.items()):
        why = clipped(first[(namespace, name)])
        yield finding(
            "unschedulable",
            title=f"Pod {namespace}/{name} cannot be scheduled",
            detail=f"The scheduler cannot place pod {namespace}/{name}: {why}",
            subject=f"pod/{namespace}/{name}",
            evidence=evidence,
            severity=3,
            root_cause=f"Pod {namespace}/{name} cannot be scheduled: {why}" if why else "",
            recommendations=(
                "Free or add capacity, or lower the pod's requests, as the message says.",
                "Check taints, node selectors and affinity against the nodes.",
            ),
        )


def _ready_condition(node: dict[str, object]) -> dict[str, object]:
    for condition in items(node.get("conditions")):
        if text(condition.get("type")) == "Ready":
            return condition
    return {}


def node_not_ready(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    done: set[str] = set()
    for call in successful(obs.calls, "kubernetes_list_nodes"):
        for node in items(call.result.get("nodes")):
            name = text(node.get("name"))
            ready = _ready_condition(node)
            status = text(ready.get("status"))
            not_ready = status != "True" if ready else node.get("ready") is False
            if not name or name in done or not not_ready:
                continue
            done.add(name)
            reason, message = text(ready.get("reason")), text(ready.get("message"))
            on_it = [pod for pod in obs.pods if pod.node == name]
            evidence = [quote(call, message), quote(call, reason)]
            for pod in on_it:
                if not any(ref and ref.tool_call_id == pod.call.id for ref in evidence):
                    evidence.append(quote(pod.call, name))
            names = ", ".join(f"{p.namespace}/{p.name}" for p in on_it[:_PODS_SHOWN])
            state = f"Ready {status or 'False'}" + (f", {reason}" if reason else "")
            detail = f"Node {name}: {state}" + (f": {clipped(message)}" if message else "") + "."
            if on_it:
                detail += f" Pods on it: {names}" + (
                    " and more." if len(on_it) > _PODS_SHOWN else "."
                )
            yield finding(
                "node_not_ready",
                title=f"Node {name} is not ready",
                detail=detail,
                subject=f"node/{name}",
                evidence=evidence,
                severity=4,
                root_cause=f"Node {name} is not ready ({state}"
                + (f": {clipped(message)}" if message else "")
                + "); its pods cannot run.",
                recommendations=(
                    f"Check the kubelet and the container runtime on node {name}.",
                    f"Cordon and drain node {name} if it does not recover.",
                ),
            )
