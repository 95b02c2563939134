"""The scripted model: per scenario, one tool call of its own (one the context plan did
not make), then a JSON conclusion whose evidence cites tool outputs by content
(`{{cite:NEEDLE}}` becomes the id of the first `[cN]` block holding NEEDLE, see
tests/fakes/README.md "Conversations").

In `POISONED` the conclusion also makes two claims resting on evidence that does not
exist: a made-up excerpt cited from a real call, and a real excerpt cited from a call
id (`c99`) that was never made. Both must end among the rejected claims, lowering the
confidence, and neither among the findings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eval.scenarios import Scenario
from tests.fakes import Behaviour, ToolCallSpec

POISONED = "crashloop"
MISSING_CALL_ID = "c99"
MADE_UP_EXCERPT = "connection refused by db.shop.svc:5432"


@dataclass(frozen=True)
class Cite:
    """Evidence: `excerpt` quoted from the block holding `needle` (the excerpt itself
    when None). A needle holds no quote: the fake matches it in JSON text as written."""

    needle: str
    excerpt: str | None = None

    def item(self) -> dict[str, str]:
        return {
            "tool_call_id": f"{{{{cite:{self.needle}}}}}",
            "excerpt": self.excerpt or self.needle,
        }


@dataclass(frozen=True)
class Claim:
    title: str
    detail: str
    evidence: tuple[Cite, ...]


@dataclass(frozen=True)
class Script:
    tool: str
    arguments: dict[str, Any]
    summary: str
    root_cause: str
    root_evidence: tuple[Cite, ...]
    findings: tuple[Claim, ...]
    recommendation: str
    confidence: float


SCRIPTS: dict[str, Script] = {
    "error_rate": Script(
        tool="kubernetes_pod_logs",
        arguments={"namespace": "storefront", "name": "frontend-7c6d5b8f9-m4k2p", "tail_lines": 50},
        summary="The frontend answers 503 when its inventory upstream times out.",
        root_cause="The frontend's 5xx error rate rose because inventory.storefront.svc times "
        "out after 2000ms and the frontend answers 503.",
        root_evidence=(Cite("upstream inventory.storefront.svc:8080 timed out after 2000ms"),),
        findings=(
            Claim(
                "HighErrorRate is firing for storefront/frontend",
                "Prometheus reports the alert firing.",
                (Cite("HighErrorRate"),),
            ),
            Claim(
                "frontend pods are ready and not restarting",
                "the deployment reports minimum availability",
                (Cite("MinimumReplicasAvailable"),),
            ),
        ),
        recommendation="Look at inventory.storefront.svc: its latency causes the 503s.",
        confidence=0.7,
    ),
    "crashloop": Script(
        tool="kubernetes_list_deployments",
        arguments={"namespace": "shop"},
        summary="The payments api exits at start: its configuration lacks a key.",
        root_cause="PAYMENT_API_KEY is not set, so the payments api exits at start.",
        root_evidence=(Cite("required key PAYMENT_API_KEY is not set"),),
        findings=(
            Claim(
                "deployment payments has no available replica",
                "its only pod crash-loops",
                (Cite("MinimumReplicasUnavailable"),),
            ),
        ),
        recommendation="Set PAYMENT_API_KEY in the payments configuration.",
        confidence=0.9,
    ),
    "oomkilled": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "batch"},
        summary="The report worker is killed for exceeding its memory limit.",
        root_cause="The worker is OOMKilled: it builds a pivot table in memory beyond its "
        "256Mi memory limit.",
        root_evidence=(Cite("OOMKilled"), Cite("building pivot table in memory")),
        findings=(
            Claim(
                "report-worker-0 keeps restarting",
                "four restarts so far",
                (Cite("restarts", '"restarts":4'),),
            ),
        ),
        recommendation="Raise the worker's memory limit or stream the report batch.",
        confidence=0.85,
    ),
    "imagepull": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "shop"},
        summary="The checkout image tag does not exist in the registry.",
        root_cause="Image registry.example.com/checkout:3.1.0-rc9 does not exist in the "
        "registry, so the pod cannot start.",
        root_evidence=(Cite("registry.example.com/checkout:3.1.0-rc9: not found"),),
        findings=(
            Claim(
                "the pod waits in ImagePullBackOff",
                "the kubelet backs off pulling",
                (Cite("ImagePullBackOff"),),
            ),
        ),
        recommendation="Deploy an existing tag of checkout.",
        confidence=0.9,
    ),
    "bad_rollout": Script(
        tool="kubernetes_events",
        arguments={"namespace": "shop", "kind": "Deployment", "name": "api"},
        summary="Revision 3 of api (2.4.0, new-pricing) crashes on a missing table.",
        root_cause="Revision 3 (api 2.4.0 with FEATURE_FLAGS=new-pricing) needs the table "
        "price_rules_v2, which does not exist, so its pod panics.",
        root_evidence=(
            Cite("price_rules_v2", 'panic: pricing rules table "price_rules_v2" does not exist'),
            Cite("registry.example.com/api:2.4.0"),
        ),
        findings=(
            Claim(
                "the rollout to revision 3 started 12 minutes ago",
                "the deployment scaled up the new replica set",
                (Cite("Scaled up replica set api-7f6b9c5d4 to 1"),),
            ),
        ),
        recommendation="Roll back api to revision 2 or create price_rules_v2 first.",
        confidence=0.85,
    ),
    "unschedulable": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "ml"},
        summary="ml-trainer-0 asks for more CPU than any node has.",
        root_cause="ml-trainer-0 requests 8 CPUs while each node has 1900m allocatable: "
        "Insufficient cpu on all 3 nodes.",
        root_evidence=(Cite("3 Insufficient cpu"), Cite("1900m")),
        findings=(
            Claim(
                "ml-trainer-0 is Pending",
                "it was never scheduled",
                (Cite("FailedScheduling"),),
            ),
        ),
        recommendation="Lower the trainer's CPU request or add a larger node.",
        confidence=0.9,
    ),
    "node_not_ready": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "shop"},
        summary="node-b is not ready: its network plugin is not initialized.",
        root_cause="node-b is NotReady because its CNI network plugin is not initialized.",
        root_evidence=(Cite("cni plugin not initialized"),),
        findings=(
            Claim(
                "cache-0 runs on node-b and is not ready",
                "the pod is bound to the failing node",
                (Cite("cache-0"),),
            ),
        ),
        recommendation="Restart or repair the CNI plugin on node-b.",
        confidence=0.8,
    ),
    "pvc_pending": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "db"},
        summary="The postgres data claim names a storage class that does not exist.",
        root_cause="PVC data-postgres-0 asks for storage class fast-ssd, which does not exist "
        "(only standard does), so it stays Pending.",
        root_evidence=(
            Cite("storageclass.storage.k8s.io", 'storageclass.storage.k8s.io "fast-ssd" not found'),
        ),
        findings=(
            Claim(
                "data-postgres-0 is Pending",
                "the claim is not bound to a volume",
                (Cite("Pending"),),
            ),
        ),
        recommendation="Use storage class standard or create fast-ssd.",
        confidence=0.9,
    ),
    "config_missing": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "shop"},
        summary="orders cannot start: its ConfigMap lacks a key it reads.",
        root_cause="ConfigMap orders-config has no key ORDERS_TIMEOUT, which container "
        "orders reads from its environment.",
        root_evidence=(
            Cite(
                "find key ORDERS_TIMEOUT",
                "couldn't find key ORDERS_TIMEOUT in ConfigMap shop/orders-config",
            ),
        ),
        findings=(
            Claim(
                "orders-config holds ORDERS_DB_HOST and ORDERS_QUEUE only",
                "keys of the ConfigMap",
                (Cite("ORDERS_QUEUE"),),
            ),
        ),
        recommendation="Add ORDERS_TIMEOUT to orders-config.",
        confidence=0.9,
    ),
    "healthy": Script(
        tool="kubernetes_list_deployments",
        arguments={"namespace": "shop"},
        summary="Nothing is wrong: the pod is ready and its deployment available.",
        root_cause="",
        root_evidence=(),
        findings=(
            Claim(
                "deployment web is available",
                "both replicas are ready",
                (Cite("MinimumReplicasAvailable"),),
            ),
        ),
        recommendation="Check whether the alert's rule is stale.",
        confidence=0.15,
    ),
}

_POISON = (
    Claim(
        "the database refused the payments api's connections",
        "an invented claim: the excerpt occurs in no output",
        (Cite("PAYMENT_API_KEY", MADE_UP_EXCERPT),),
    ),
)


def _evidence(cites: tuple[Cite, ...]) -> list[dict[str, str]]:
    return [cite.item() for cite in cites]


def conclusion(scenario: Scenario) -> dict[str, Any]:
    """The conclusion the scripted model answers with, before ids are filled in."""
    script = SCRIPTS[scenario.name]
    findings = [
        {"title": c.title, "detail": c.detail, "evidence": _evidence(c.evidence)}
        for c in script.findings + (_POISON if scenario.name == POISONED else ())
    ]
    if scenario.name == POISONED:
        findings.append(
            {
                "title": "the node's disk is full",
                "detail": "an invented claim: it cites a call that was never made",
                "evidence": [{"tool_call_id": MISSING_CALL_ID, "excerpt": "Started container api"}],
            }
        )
    return {
        "summary": script.summary,
        "root_cause": script.root_cause,
        "root_cause_evidence": _evidence(script.root_evidence),
        "findings": findings,
        "recommendations": [script.recommendation],
        "confidence": script.confidence,
    }


def conversation(scenario: Scenario) -> list[Behaviour]:
    """The scripted model's turns for `scenario`: its own tool call, then its conclusion."""
    script = SCRIPTS[scenario.name]
    return [
        Behaviour(tool_calls=[ToolCallSpec(script.tool, json.dumps(script.arguments))]),
        Behaviour(text=json.dumps(conclusion(scenario))),
    ]
