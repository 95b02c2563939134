"""The analyzers alone over each incident scenario, fed by the real kubernetes toolset
reading the fake API in process: the top finding is the true cause and quotes the
scenario's unique token, the distractors (a healthy neighbour, an old restart, an
unrelated warning) make no finding, and every evidence item passes `occurs`.

The calls are those a thorough reader makes: the namespace's pods, events, deployments
and claims, the nodes, each deployment's rollout history, and every pod's description,
NetworkPolicies and current and previous logs (a refused log is recorded as a failed
call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import GatewayError
from services.investigation.analyzers import AnalyzerFinding, analyze
from services.investigation.evidence import occurs
from services.tool.toolsets import kubernetes
from tests.fakes.kubernetes_fake import FakeKubernetes
from tests.support.kube import write_kubeconfig
from tests.unit.investigation.toolcalls import Calls

Investigate = Callable[..., Awaitable[list[AnalyzerFinding]]]


@pytest.fixture
async def investigate(tmp_path: Path) -> AsyncIterator[Investigate]:
    opened: list[Any] = []

    async def run(
        scenario: str, namespace: str, alert_started: datetime | None = None
    ) -> list[AnalyzerFinding]:
        fake = FakeKubernetes(scenario)
        await fake.start()
        opened.append(fake)
        config = write_kubeconfig(tmp_path / f"kc-{scenario}", fake.url)
        toolset = kubernetes.from_env({"KUBECONFIG": str(config)})
        assert toolset is not None
        opened.append(toolset)
        tools = {t.name: t for t in toolset.tools()}
        calls = Calls()

        async def call(tool: str, **arguments: Any) -> Any:
            name = f"kubernetes_{tool}"
            try:
                result = await tools[name].run(arguments)
            except GatewayError as error:
                calls.failed(name, arguments, type(error).__name__, error.message)
                return None
            calls.ok(name, arguments, result)
            return result

        pods = await call("list_pods", namespace=namespace)
        await call("events", namespace=namespace)
        deployments = await call("list_deployments", namespace=namespace)
        await call("list_nodes")
        await call("list_pvcs", namespace=namespace)
        for deployment in deployments["deployments"]:
            await call("rollout_history", namespace=namespace, name=deployment["name"])
        for pod in pods["pods"]:
            await call("describe_pod", namespace=namespace, name=pod["name"])
            await call("network_policies", namespace=namespace, pod=pod["name"])
            for container in pod["containers"]:
                for previous in (False, True):
                    await call(
                        "pod_logs",
                        namespace=namespace,
                        name=pod["name"],
                        container=container["name"],
                        previous=previous,
                    )
        findings = analyze(calls.made, alert_started=alert_started)
        by_id = {c.id: c for c in calls.made}
        for found in findings:
            for ref in found.evidence:
                assert occurs(ref.excerpt, by_id[ref.tool_call_id]), (found.analyzer, ref)
        return findings

    yield run
    for item in reversed(opened):
        await (item.stop() if isinstance(item, FakeKubernetes) else item.close())


def _quoted(found: AnalyzerFinding, token: str) -> bool:
    return any(token in ref.excerpt for ref in found.evidence)


def _subjects(findings: list[AnalyzerFinding]) -> set[str]:
    return {f.subject for f in findings}


async def test_crash_loop_from_a_removed_env_var(investigate: Investigate) -> None:
    findings = await investigate("crashloop_env_removed", "ledger")
    top = findings[0]
    assert (top.analyzer, top.subject) == ("bad_rollout", "deployment/ledger/ledger-api")
    assert "LEDGER_DSN_7Q2" in top.root_cause and _quoted(top, "LEDGER_DSN_7Q2")
    crash = next(f for f in findings if f.analyzer == "crash_loop")
    assert "environment variable LEDGER_DSN_7Q2 is required but not set" in crash.root_cause
    assert _quoted(crash, "LEDGER_DSN_7Q2 is required")
    # Distractors: the worker, the revision-3 pod that restarted once days ago.
    assert not {"pod/ledger/ledger-worker-0", "pod/ledger/ledger-api-5f7c9d8b4-h8w2n"} & (
        _subjects(findings)
    )


async def test_bad_image_tag_in_a_rollout(investigate: Investigate) -> None:
    findings = await investigate("rollout_bad_tag", "cart")
    assert findings[0].severity == 4 and "v2.3.9-rc7x" in findings[0].root_cause
    pull = next(f for f in findings if f.analyzer == "image_pull")
    assert "registry.example.com/cart:v2.3.9-rc7x: not found" in pull.root_cause
    assert _quoted(pull, "v2.3.9-rc7x")
    stuck = next(f for f in findings if f.analyzer == "stuck_rollout")
    assert _quoted(stuck, "ProgressDeadlineExceeded")
    assert 'ReplicaSet "cart-7d4b8c9f6" has timed out progressing.' in stuck.detail
    assert "pod/cart/cart-redis-0" not in _subjects(findings)
    assert not any("FailedGetResourceMetric" in ref.excerpt for f in findings for ref in f.evidence)


async def test_dns_egress_blocked(investigate: Investigate) -> None:
    findings = await investigate("dns_egress_blocked", "shop")
    top = findings[0]
    # The cause, not the crash loop it makes: the policy that blocks port 53.
    assert (top.analyzer, top.severity) == ("dns_egress_blocked", 4)
    assert top.root_cause.startswith("NetworkPolicy shop-egress-lockdown blocks DNS egress")
    assert "lookup payments-db.shop.svc.cluster.local" in top.root_cause
    assert _quoted(top, "payments-db.shop.svc.cluster.local")
    assert _quoted(top, "blocked: no egress rule allows port 53 (UDP or TCP)")
    assert "crash_loop" in {f.analyzer for f in findings}
    # Both payments pods fail their lookups; the neighbour is locked down too, but its own
    # policy allows DNS: no finding.
    blocked = {f.subject for f in findings if f.analyzer == "dns_egress_blocked"}
    assert blocked == {"pod/shop/payments-84f6d9c7b5-6xq2v", "pod/shop/payments-84f6d9c7b5-m9t4d"}
    # One revision: no change to blame.
    assert not [f for f in findings if f.analyzer in ("recent_change", "bad_rollout")]
    assert "pod/shop/shop-frontend-5b9d8c7f6-qw2er" not in _subjects(findings)


async def test_node_disk_pressure_and_evictions(investigate: Investigate) -> None:
    findings = await investigate("node_disk_pressure", "reports")
    top = findings[0]
    assert (top.analyzer, top.subject, top.severity) == ("node_pressure", "node/node-d4k", 4)
    assert "node-d4k has DiskPressure" in top.root_cause
    assert "evicted 2 pods" in top.root_cause
    assert _quoted(top, "The node was low on resource: ephemeral-storage.")
    assert _quoted(top, "node.kubernetes.io/disk-pressure:NoSchedule")
    assert [f.subject for f in findings if f.analyzer == "node_pressure"] == ["node/node-d4k"]
    assert "pod/reports/report-scheduler-0" not in _subjects(findings)


async def test_liveness_probe_on_the_wrong_port(investigate: Investigate) -> None:
    findings = await investigate("liveness_wrong_port", "web")
    top = findings[0]
    assert (top.analyzer, top.severity) == ("probe_failure", 4)
    assert top.subject == "pod/web/storefront-6f8d9b7c4-j5k2l"
    assert "checks port 8181, but the container listens on http:8080/TCP" in top.root_cause
    assert _quoted(top, "dial tcp 10.244.1.23:8181: connect: connection refused")
    assert _quoted(top, "8181") and _quoted(top, "http:8080/TCP")
    crash = next(f for f in findings if f.analyzer == "crash_loop")
    assert crash.root_cause == ""  # the application logged no error
    assert "pod/web/catalog-5d7c6b9f8-p3q4r" not in _subjects(findings)


async def test_connection_pool_exhaustion_after_a_config_change(investigate: Investigate) -> None:
    findings = await investigate("pool_exhaustion", "orders")
    top = findings[0]
    assert (top.analyzer, top.subject) == ("recent_change", "deployment/orders/orders-api")
    assert "from DB_POOL_MAX=50 to DB_POOL_MAX=2" in top.root_cause
    assert "pool exhausted: 2/2 connections in use" in top.root_cause
    assert _quoted(top, "DB_POOL_MAX=50") and _quoted(top, "DB_POOL_MAX=2")
    assert _quoted(top, "Readiness probe failed: HTTP probe failed with statuscode: 503")
    assert "4 minutes before the failure began" in top.root_cause
    logged = [f for f in findings if f.analyzer == "log_errors"]
    assert logged and all(_quoted(f, "pool exhausted: 2/2 connections in use") for f in logged)
    assert "pod/orders/orders-worker-0" not in _subjects(findings)


async def test_error_rate_after_a_deploy(investigate: Investigate) -> None:
    started = datetime.now(UTC) - timedelta(minutes=10)
    findings = await investigate("error_rate_after_deploy", "billing", alert_started=started)
    top = findings[0]
    assert (top.analyzer, top.subject) == ("recent_change", "deployment/billing/invoice-api")
    assert "invoice-api:4.7.3 to registry.example.com/invoice-api:4.8.0" in top.root_cause
    assert 'err="pq: column \\"tax_region_v3\\" does not exist"' in top.root_cause
    assert _quoted(top, "registry.example.com/invoice-api:4.8.0")
    assert _quoted(top, "tax_region_v3")
    assert "pod/billing/billing-cron-28461720-xk2vd" not in _subjects(findings)
    # Without the alert's start nothing dates the failure: the errors are still found.
    findings = await investigate("error_rate_after_deploy", "billing")
    assert {f.analyzer for f in findings} == {"log_errors"}
    assert all(_quoted(f, "tax_region_v3") for f in findings)


async def test_a_rollout_long_before_the_alert_is_not_the_change(
    investigate: Investigate,
) -> None:
    started = datetime.now(UTC) + timedelta(hours=3)
    findings = await investigate("error_rate_after_deploy", "billing", alert_started=started)
    assert "recent_change" not in {f.analyzer for f in findings}


@pytest.mark.parametrize(
    ("scenario", "namespace", "analyzer", "token"),
    [
        ("crashloop", "shop", "crash_loop", "PAYMENT_API_KEY"),
        ("oomkilled", "batch", "oom_killed", "317Mi"),
        ("imagepull", "shop", "image_pull", "3.1.0-rc9"),
        ("bad_rollout", "shop", "bad_rollout", "registry.example.com/api:2.4.0"),
        ("unschedulable", "ml", "unschedulable", "Insufficient cpu"),
        ("pvc_pending", "db", "pvc_pending", "fast-ssd-z9"),
        ("config_missing", "shop", "config_error", "ORDERS_TIMEOUT"),
        ("node_not_ready", "shop", "node_not_ready", "cni plugin not initialized"),
    ],
)
async def test_the_first_scenarios_top_finding_quotes_their_token(
    investigate: Investigate, scenario: str, namespace: str, analyzer: str, token: str
) -> None:
    findings = await investigate(scenario, namespace)
    top = findings[0]
    assert top.analyzer == analyzer
    assert token in top.root_cause and _quoted(top, token)


async def test_healthy_cluster_has_no_findings(investigate: Investigate) -> None:
    assert await investigate("healthy", "shop") == []
