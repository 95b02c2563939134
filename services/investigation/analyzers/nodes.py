"""Nodes under resource pressure, and the pods their kubelet evicted.

A node whose memory, disk or PID use crosses the kubelet's eviction threshold reports a
`*Pressure` condition True, gets a NoSchedule taint, and the kubelet evicts pods from
it: each evicted pod is left `Failed` with reason `Evicted` and the kubelet's message
(`The node was low on resource: ephemeral-storage. ...`, naming the container that used
the most). Pressure with evictions explains an outage by itself; pressure alone is a
strong lead; evictions seen without the node's listing still name the node.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import PodView, items, successful, text

# Evicted pods named in a detail.
_PODS_SHOWN = 5


def _evicted(obs: Observations) -> dict[str, list[PodView]]:
    """Evicted pods by node name."""
    found: dict[str, list[PodView]] = {}
    for pod in obs.pods:
        if pod.reason == "Evicted":
            found.setdefault(pod.node, []).append(pod)
    return found


def _eviction_evidence(obs: Observations, pods: list[PodView]) -> list[EvidenceRef | None]:
    evidence: list[EvidenceRef | None] = []
    for pod in pods:
        evidence.append(quote(pod.call, pod.message))
        for event in obs.events_of(pod.namespace, "Pod", pod.name):
            if event.reason == "Evicted":
                evidence.append(quote(event.call, event.message))
    return evidence


def _evictions_text(pods: list[PodView]) -> str:
    names = ", ".join(f"{p.namespace}/{p.name}" for p in pods[:_PODS_SHOWN])
    more = " and more" if len(pods) > _PODS_SHOWN else ""
    return f"the kubelet evicted {len(pods)} pods ({names}{more}): {clipped(pods[0].message)}"


def node_pressure(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    evicted = _evicted(obs)
    done: set[str] = set()
    for call in successful(obs.calls, "kubernetes_list_nodes"):
        for node in items(call.result.get("nodes")):
            name = text(node.get("name"))
            pressures = [
                c
                for c in items(node.get("conditions"))
                if text(c.get("type")).endswith("Pressure") and text(c.get("status")) == "True"
            ]
            if not name or name in done or not pressures:
                continue
            done.add(name)
            kinds = " and ".join(text(c.get("type")) for c in pressures)
            said = "; ".join(text(c.get("message")) for c in pressures if text(c.get("message")))
            evidence: list[EvidenceRef | None] = []
            for condition in pressures:
                evidence.append(quote(call, text(condition.get("message"))))
                evidence.append(quote(call, text(condition.get("type"))))
            evidence.extend(
                quote(call, taint)
                for taint in node.get("taints") or []
                if "pressure" in text(taint)
            )
            pods = evicted.get(name, [])
            evidence[1:1] = _eviction_evidence(obs, pods)
            state = f"Node {name} has {kinds}" + (f" ({clipped(said)})" if said else "")
            detail = state + (f"; {_evictions_text(pods)}" if pods else ".")
            yield finding(
                "node_pressure",
                title=f"Node {name} is under {kinds}",
                detail=detail,
                subject=f"node/{name}",
                evidence=evidence,
                severity=4 if pods else 3,
                root_cause=detail,
                recommendations=(
                    f"Free the resource on node {name} (find what fills it: the eviction "
                    "message names the largest consumer), or add capacity.",
                    "Set requests and limits for ephemeral storage and memory so the "
                    "scheduler and the kubelet account for them.",
                ),
            )
    for node_name, pods in sorted(evicted.items()):
        if node_name in done:
            continue
        where = f"node {node_name}" if node_name else "their node"
        detail = f"Pods were evicted from {where}: {_evictions_text(pods)}"
        yield finding(
            "node_pressure",
            title=f"Pods were evicted from {where}",
            detail=detail,
            subject=f"node/{node_name}" if node_name else pods[0].subject,
            evidence=_eviction_evidence(obs, pods),
            severity=3,
            root_cause=detail,
            recommendations=(f"Check the conditions of {where} (kubernetes_list_nodes).",),
        )
