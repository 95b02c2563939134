"""DNS egress a NetworkPolicy blocks: the pod cannot resolve names, so it fails on every
lookup with a timeout (a crash loop or an error rate whose cause is not in the pod).

The verdict comes from the `kubernetes_network_policies` tool asked about one pod (the
policies selecting it and whether any of their egress rules allows port 53); the
evidence quotes that verdict and, when the pod's logs show it, the failed lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.calls import ToolCall
from services.investigation.results import items, strings, successful, text

# A name lookup that failed: Go's resolver (`lookup host on 10.96.0.10:53: ... i/o
# timeout`, `no such host`, `server misbehaving`), glibc (`Temporary failure in name
# resolution`), Node.js (`getaddrinfo EAI_AGAIN`), curl (`Could not resolve host`).
DNS_FAILURE = re.compile(
    r"lookup \S+.*?(i/o timeout|no such host|server misbehaving|connection refused)"
    r"|temporary failure in name resolution|getaddrinfo EAI_AGAIN|could not resolve host",
    re.IGNORECASE,
)
_BLOCKED = "blocked"


def dns_failure(lines: list[str]) -> str:
    """The last log line that shows a failed name lookup, or ""."""
    return next((line for line in reversed(lines) if DNS_FAILURE.search(line)), "")


def failed_lookup(obs: Observations, namespace: str, pod: str) -> tuple[ToolCall, str] | None:
    """A log call of `pod` (current or previous) with a failed lookup, and that line."""
    for call in successful(obs.calls, "kubernetes_pod_logs"):
        args = call.arguments
        if text(args.get("namespace")) != namespace or text(args.get("name")) != pod:
            continue
        line = dns_failure(strings(call.result.get("lines")))
        if line:
            return call, line
    return None


def dns_egress_blocked(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call in successful(obs.calls, "kubernetes_network_policies"):
        pod = text(call.result.get("pod"))
        verdict = text(call.result.get("dns_egress"))
        if not pod or not verdict.startswith(_BLOCKED):
            continue
        namespace = text(call.arguments.get("namespace"))
        policies = [text(p.get("name")) for p in items(call.result.get("policies"))]
        named = ", ".join(p for p in policies if p) or "a NetworkPolicy"
        where = f"pod {namespace}/{pod}"
        lookup = failed_lookup(obs, namespace, pod)
        evidence = [quote(call, verdict)]
        because = ""
        if lookup is not None:
            evidence.insert(0, quote(lookup[0], lookup[1]))
            because = f"; its lookups fail: {clipped(lookup[1])}"
        yield finding(
            "dns_egress_blocked",
            title=f"DNS egress of {where} is blocked by {named}",
            detail=f"{clipped(verdict)}{because}",
            subject=f"pod/{namespace}/{pod}",
            evidence=evidence,
            # A failed lookup in its logs makes it the cause; alone it is a risk.
            severity=4 if lookup is not None else 2,
            root_cause=(
                f"NetworkPolicy {named} blocks DNS egress of {where}, so its name "
                f"lookups time out{because}."
                if lookup is not None
                else ""
            ),
            recommendations=(
                f"Allow egress to the cluster DNS (kube-dns, 53/UDP and 53/TCP) in {named}, "
                "or add a policy selecting the pod that allows it.",
            ),
        )
