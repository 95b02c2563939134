"""Failing liveness, readiness and startup probes (the kubelet's Unhealthy events).

A failing probe is a symptom: a liveness failure restarts the container, a readiness
failure takes the pod out of its Service. It rarely explains an alert by itself, so
these findings carry no root cause sentence.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef

_PROBES = ("Liveness", "Readiness", "Startup")


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
    for key, evidence in sorted(found.items()):
        namespace, name, probe = key
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
