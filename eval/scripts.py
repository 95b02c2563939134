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

from eval.scenarios import ERROR_RATE_ALERT, Scenario
from tests.fakes import Behaviour, ToolCallSpec

POISONED = "crashloop_env_removed"
MISSING_CALL_ID = "c99"
MADE_UP_EXCERPT = "connection refused by ledger-db.ledger.svc:5432"


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
    "error_rate_after_deploy": Script(
        tool="kubernetes_describe_pod",
        arguments={"namespace": "billing", "name": "invoice-api-58b7d6c9f4-c4d8s"},
        summary="invoice-api 4.8.0 fails POST /v1/invoices on a column the database lacks.",
        root_cause="Revision 12 of invoice-api (4.8.0, regional tax rules) queries column "
        "tax_region_v3, which the database does not have: POST /v1/invoices answers 500.",
        root_evidence=(
            Cite("tax_region_v3", 'pq: column "tax_region_v3" does not exist'),
            Cite("regional tax rules", "invoice-api 4.8.0: regional tax rules"),
        ),
        findings=(
            Claim(
                f"{ERROR_RATE_ALERT} is firing for billing/invoice-api",
                "Prometheus reports the alert firing.",
                (Cite(ERROR_RATE_ALERT),),
            ),
            Claim(
                "invoice-api pods are ready and not restarting",
                "the deployment reports minimum availability",
                (Cite("MinimumReplicasAvailable"),),
            ),
        ),
        recommendation="Run the tax_region_v3 migration, or roll invoice-api back to 4.7.3.",
        confidence=0.8,
    ),
    "crashloop_env_removed": Script(
        tool="kubernetes_list_deployments",
        arguments={"namespace": "ledger"},
        summary="ledger-api revision 4 exits at start: an environment variable it needs is gone.",
        root_cause="Revision 4 of ledger-api removed the LEDGER_DSN_7Q2 environment variable, "
        "which the api requires: its new pod exits at start.",
        root_evidence=(Cite("LEDGER_DSN_7Q2 is required but not set"),),
        findings=(
            Claim(
                "the rollout of ledger-api is in progress",
                "the new replica set is not ready",
                (Cite("ReplicaSetUpdated"),),
            ),
        ),
        recommendation="Restore LEDGER_DSN_7Q2 in the ledger-api deployment.",
        confidence=0.9,
    ),
    "oomkilled": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "batch"},
        summary="The report worker is killed for exceeding its memory limit.",
        root_cause="The worker is OOMKilled at its 317Mi memory limit.",
        root_evidence=(Cite("OOMKilled"), Cite("317Mi")),
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
    "rollout_bad_tag": Script(
        tool="kubernetes_events",
        arguments={"namespace": "cart", "kind": "Deployment", "name": "cart"},
        summary="Revision 5 of cart points at an image tag that does not exist.",
        root_cause="Revision 5 of cart uses image tag v2.3.9-rc7x, which the registry does not "
        "have: the new pod cannot pull it and the rollout timed out.",
        root_evidence=(
            Cite("v2.3.9-rc7x", "registry.example.com/cart:v2.3.9-rc7x"),
            Cite("ProgressDeadlineExceeded"),
        ),
        findings=(
            Claim(
                "the previous revision's pods keep serving",
                "the deployment reports minimum availability",
                (Cite("MinimumReplicasAvailable"),),
            ),
        ),
        recommendation="Push v2.3.9-rc7x or roll cart back to v2.3.8.",
        confidence=0.9,
    ),
    "dns_egress_blocked": Script(
        tool="kubernetes_list_deployments",
        arguments={"namespace": "shop"},
        summary="payments cannot resolve its database's name: DNS lookups time out.",
        root_cause="payments exits at start because the DNS lookup of "
        "payments-db.shop.svc.cluster.local times out (i/o timeout): DNS egress from the "
        "shop namespace looks blocked.",
        root_evidence=(Cite("lookup payments-db.shop.svc.cluster.local"),),
        findings=(
            Claim(
                "deployment payments has no available replica",
                "both pods crash-loop",
                (Cite("MinimumReplicasUnavailable"),),
            ),
        ),
        recommendation="Check the shop namespace's egress network policies for port 53.",
        confidence=0.75,
    ),
    "pvc_pending": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "db"},
        summary="The postgres data claim names a storage class that does not exist.",
        root_cause="PVC data-postgres-0 asks for storage class fast-ssd-z9, which does not "
        "exist (only standard does), so it stays Pending.",
        root_evidence=(
            Cite(
                "storageclass.storage.k8s.io",
                'storageclass.storage.k8s.io "fast-ssd-z9" not found',
            ),
        ),
        findings=(
            Claim(
                "postgres-0 is Pending",
                "its claim is not bound to a volume",
                (Cite("Pending"),),
            ),
        ),
        recommendation="Use storage class standard or create fast-ssd-z9.",
        confidence=0.9,
    ),
    "node_disk_pressure": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "reports"},
        summary="node-d4k ran low on ephemeral storage and evicted pods.",
        root_cause="Node node-d4k has DiskPressure (ephemeral storage low, a log exporter "
        "filled it): the kubelet evicted the report-api pods on it.",
        root_evidence=(
            Cite("KubeletHasDiskPressure"),
            Cite("node.kubernetes.io/disk-pressure:NoSchedule"),
        ),
        findings=(
            Claim(
                "report-api pods were evicted",
                "two pods failed with reason Evicted",
                (Cite("Evicted"),),
            ),
        ),
        recommendation="Free node-d4k's disk and cap the log exporter's ephemeral storage.",
        confidence=0.85,
    ),
    "unschedulable": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "ml"},
        summary="ml-trainer-0 asks for more CPU than any node has.",
        root_cause="ml-trainer-0 requests 7300m CPU while each node has 1900m allocatable: "
        "Insufficient cpu on all 3 nodes.",
        root_evidence=(Cite("3 Insufficient cpu"), Cite("7300m")),
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
    "liveness_wrong_port": Script(
        tool="kubernetes_list_pods",
        arguments={"namespace": "web"},
        summary="storefront's liveness probe checks a port nothing listens on.",
        root_cause="The liveness probe of storefront checks port 8181 while the server "
        "listens on 8080: every probe is refused and the kubelet restarts the container.",
        root_evidence=(
            Cite("10.244.1.23:8181", "dial tcp 10.244.1.23:8181: connect: connection refused"),
        ),
        findings=(
            Claim(
                "the kubelet restarts web after failed liveness probes",
                "the probe fails, the container is restarted",
                (Cite("failed liveness probe, will be restarted"),),
            ),
        ),
        recommendation="Point the liveness probe at port 8080 (http).",
        confidence=0.85,
    ),
    "pool_exhaustion": Script(
        tool="kubernetes_events",
        arguments={"namespace": "orders", "kind": "Deployment", "name": "orders-api"},
        summary="orders-api revision 7 cut its database pool to 2 connections.",
        root_cause="Revision 7 of orders-api cut DB_POOL_MAX from 50 to 2: requests wait "
        "for one of 2 connections and fail, and readiness answers 503.",
        root_evidence=(
            Cite("DB_POOL_MAX=2"),
            Cite("pool exhausted", "pool exhausted: 2/2 connections in use"),
        ),
        findings=(
            Claim(
                "orders-api readiness fails with 503",
                "one pod is not ready",
                (Cite("statuscode: 503", "Readiness probe failed: HTTP probe failed"),),
            ),
        ),
        recommendation="Set DB_POOL_MAX back to 50 (or roll back to revision 6).",
        confidence=0.85,
    ),
}

_POISON = (
    Claim(
        "the database refused the ledger api's connections",
        "an invented claim: the excerpt occurs in no output",
        (Cite("LEDGER_DSN_7Q2", MADE_UP_EXCERPT),),
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
                "evidence": [{"tool_call_id": MISSING_CALL_ID, "excerpt": "ledger-api"}],
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
