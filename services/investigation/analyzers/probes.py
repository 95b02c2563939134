"""Failing liveness, readiness and startup probes (the kubelet's Unhealthy events), and
a probe pointed at a port the container does not listen on.

A failing probe is usually a symptom: a liveness failure restarts the container, a
readiness failure takes the pod out of its Service, and why the application does not
answer is the cause. The exception is a probe that checks the wrong port: when the
pod's description shows the probe's port is none of the container's ports and the
kubelet's message names that port (`dial tcp 10.0.0.7:8181: connect: connection
refused`), the probe itself is the cause, and the finding says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import ContainerView, PodView

_PROBES = ("Liveness", "Readiness", "Startup")
# The port the kubelet's message names: `Get "http://10.0.0.7:8181/healthz"`, `dial tcp
# 10.0.0.7:8181`.
_MESSAGE_PORT = re.compile(r"(?:https?://|dial tcp )\[?[0-9A-Za-z.:-]*\]?:(\d{1,5})\b")
# `http:8080/TCP` or `8080/TCP`.
_PORT = re.compile(r"^(?:([^:]+):)?(\d{1,5})/")


@dataclass(frozen=True)
class _Mismatch:
    pod: PodView
    container: ContainerView
    port: str
    listens: list[str]


def _ports(container: ContainerView) -> dict[str, str]:
    """The container's port numbers by number and by name."""
    known: dict[str, str] = {}
    for entry in container.ports:
        found = _PORT.match(entry)
        if found:
            known[found.group(2)] = found.group(2)
            if found.group(1):
                known[found.group(1)] = found.group(2)
    return known


def _mismatch(pod: PodView | None, probe: str, message: str) -> _Mismatch | None:
    """The container whose `probe` checks the port `message` names, when that port is
    none of the container's declared ports."""
    said = _MESSAGE_PORT.search(message)
    if pod is None or said is None:
        return None
    for container in pod.containers:
        checked = container.probe(probe.lower())
        ports = _ports(container)
        port = str(checked.get("port", ""))
        if not ports or not port:
            continue
        number = ports.get(port, port)
        if number == said.group(1) and port not in ports:
            return _Mismatch(pod, container, port, container.ports)
    return None


def _pods(obs: Observations) -> dict[tuple[str, str], PodView]:
    return {(p.namespace, p.name): p for p in obs.pods if p.call.tool == "kubernetes_describe_pod"}


def probe_failure(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    found: dict[tuple[str, str, str], list[EvidenceRef | None]] = {}
    first: dict[tuple[str, str, str], str] = {}
    for event in obs.events:
        if event.reason != "Unhealthy" or event.object_kind != "Pod":
            continue
        probe = next((p for p in _PROBES if event.message.startswith(f"{p} probe")), "")
        if probe:
            key = (event.namespace, event.object_name, probe)
            found.setdefault(key, []).append(quote(event.call, event.message))
            first.setdefault(key, event.message)
    described = _pods(obs)
    for key, evidence in sorted(found.items()):
        namespace, name, probe = key
        wrong = _mismatch(described.get((namespace, name)), probe, first[key])
        if wrong is None:
            yield finding(
                "probe_failure",
                title=f"{probe} probe of pod {namespace}/{name} fails",
                detail=f"{probe} probe of pod {namespace}/{name}: {clipped(first[key])}",
                subject=f"pod/{namespace}/{name}",
                evidence=evidence,
                severity=3 if probe == "Liveness" else 2,
                recommendations=(
                    "Check what the probe calls and whether its timeout and threshold fit the app.",
                ),
            )
            continue
        container, listens = wrong.container, ", ".join(wrong.listens)
        call = wrong.pod.call
        evidence += [quote(call, wrong.port), *(quote(call, port) for port in wrong.listens)]
        sentence = (
            f"The {probe.lower()} probe of container {container.name} of pod "
            f"{namespace}/{name} checks port {wrong.port}, but the container listens on "
            f"{listens}: every probe is refused"
            + (", so the kubelet keeps restarting it." if probe == "Liveness" else ".")
        )
        yield finding(
            "probe_failure",
            title=f"{probe} probe of pod {namespace}/{name} checks port {wrong.port}, "
            "where nothing listens",
            detail=f"{sentence} The kubelet says: {clipped(first[key])}",
            subject=f"pod/{namespace}/{name}",
            evidence=evidence,
            severity=4,
            root_cause=sentence,
            recommendations=(
                f"Point the {probe.lower()} probe of container {container.name} at the "
                f"port it serves ({listens}), or at a named port.",
            ),
        )
