"""The ten scenarios: an alert as Alertmanager labels it, the fake cluster (and, for one,
the Prometheus history) behind it, and what a correct investigation concludes.

`expected_kinds` are analyzer kinds (the vocabulary of `Finding.kind`) that name the
root cause; `keywords` are words a correct root-cause sentence contains (any one, case
folded). The healthy scenario expects neither: no root cause and a low confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

# What "low" means for the healthy scenario's confidence.
LOW_CONFIDENCE = 0.3
PROMETHEUS_GRAPH = "http://prometheus.monitoring.svc:9090/graph"


def graph_url(expr: str) -> str:
    """A Prometheus graph link as Alertmanager's `generatorURL` carries it."""
    return f"{PROMETHEUS_GRAPH}?g0.expr={quote(expr, safe='')}&g0.tab=1"


@dataclass(frozen=True)
class Alert:
    """The alert: name, namespace, labels (`alertname` and `severity` among them),
    annotations and graph link, as the Investigation API takes them."""

    name: str
    namespace: str
    labels: dict[str, str]
    summary: str
    expr: str = ""

    def request(self) -> dict[str, object]:
        """The `alert` field of an investigation (REST/JSON field names)."""
        labels = {"alertname": self.name, **self.labels}
        if self.namespace:
            labels["namespace"] = self.namespace
        body: dict[str, object] = {
            "alert_name": self.name,
            "labels": labels,
            "annotations": {"summary": self.summary},
            "source": "alertmanager",
        }
        if self.namespace:
            body["namespace"] = self.namespace
        if self.expr:
            body["generator_url"] = graph_url(self.expr)
        return body


@dataclass(frozen=True)
class Scenario:
    name: str
    # The fake Kubernetes API's scenario (tests/fakes/kube_scenarios/<kube>.yaml).
    kube: str
    alert: Alert
    expected_kinds: tuple[str, ...]
    keywords: tuple[str, ...]
    # The Prometheus-led scenario (its series and firing rule are in eval/prometheus.py).
    prometheus: bool = False
    notes: str = field(default="", compare=False)

    @property
    def healthy(self) -> bool:
        return not self.expected_kinds


def _waiting(reason: str, namespace: str) -> str:
    return (
        'max_over_time(kube_pod_container_status_waiting_reason{job="kube-state-metrics",'
        f'namespace="{namespace}",reason="{reason}"}}[5m]) >= 1'
    )


def _not_ready(namespace: str) -> str:
    return (
        'sum by (namespace, pod) (max by (namespace, pod) (kube_pod_status_phase{job="kube-'
        f'state-metrics",namespace="{namespace}",phase=~"Pending|Unknown|Failed"}})) > 0'
    )


# The error-rate alert's rule, which its graph link carries as Prometheus writes it.
ERROR_RATE_EXPR = (
    'sum by (namespace, deployment) (rate(http_requests_total{namespace="storefront",'
    'code=~"5.."}[5m])) / sum by (namespace, deployment) (rate(http_requests_total'
    '{namespace="storefront"}[5m])) > 0.05'
)

SCENARIOS: tuple[Scenario, ...] = (
    # First: its series are freshest at the start of a run (see eval/prometheus.py).
    Scenario(
        name="error_rate",
        kube="error_rate",
        alert=Alert(
            "HighErrorRate",
            "storefront",
            {"deployment": "frontend", "severity": "page"},
            "frontend answers more than 5% of requests with 5xx",
            ERROR_RATE_EXPR,
        ),
        expected_kinds=("metric_spike", "prometheus_alert"),
        keywords=("5xx", "error rate", "503"),
        prometheus=True,
    ),
    Scenario(
        name="crashloop",
        kube="crashloop",
        alert=Alert(
            "KubePodCrashLooping",
            "shop",
            {"pod": "payments-5c8d7f9b6-x2x7q", "container": "api", "severity": "warning"},
            "Pod shop/payments-5c8d7f9b6-x2x7q (api) is in waiting state (CrashLoopBackOff).",
            _waiting("CrashLoopBackOff", "shop"),
        ),
        expected_kinds=("crash_loop", "config_error"),
        keywords=("PAYMENT_API_KEY",),
    ),
    Scenario(
        name="oomkilled",
        kube="oomkilled",
        alert=Alert(
            "KubePodCrashLooping",
            "batch",
            {"pod": "report-worker-0", "container": "worker", "severity": "warning"},
            "Pod batch/report-worker-0 (worker) is in waiting state (CrashLoopBackOff).",
            _waiting("CrashLoopBackOff", "batch"),
        ),
        expected_kinds=("oom_killed",),
        keywords=("OOMKilled", "memory limit", "out of memory"),
    ),
    Scenario(
        name="imagepull",
        kube="imagepull",
        alert=Alert(
            "KubePodNotReady",
            "shop",
            {"pod": "checkout-7b9c8d-qq2lm", "severity": "warning"},
            "Pod shop/checkout-7b9c8d-qq2lm has been in a non-ready state for longer than 15m.",
            _not_ready("shop"),
        ),
        expected_kinds=("image_pull",),
        keywords=("3.1.0-rc9",),
    ),
    Scenario(
        name="bad_rollout",
        kube="bad_rollout",
        alert=Alert(
            "KubeDeploymentReplicasMismatch",
            "shop",
            {"deployment": "api", "severity": "warning"},
            "Deployment shop/api has not matched the expected number of replicas for 15m.",
            'kube_deployment_spec_replicas{job="kube-state-metrics",namespace="shop",'
            'deployment="api"} > kube_deployment_status_replicas_available{job="kube-state-'
            'metrics",namespace="shop",deployment="api"}',
        ),
        expected_kinds=("bad_rollout",),
        keywords=("2.4.0", "revision 3", "price_rules_v2"),
    ),
    Scenario(
        name="unschedulable",
        kube="unschedulable",
        alert=Alert(
            "KubePodNotReady",
            "ml",
            {"pod": "ml-trainer-0", "severity": "warning"},
            "Pod ml/ml-trainer-0 has been in a non-ready state for longer than 15m.",
            _not_ready("ml"),
        ),
        expected_kinds=("unschedulable",),
        keywords=("Insufficient cpu", "cpu"),
    ),
    Scenario(
        name="node_not_ready",
        kube="node_not_ready",
        alert=Alert(
            "KubeNodeNotReady",
            "",
            {"node": "node-b", "severity": "warning"},
            "node-b has been unready for more than 15 minutes.",
            'kube_node_status_condition{job="kube-state-metrics",condition="Ready",'
            'status="true"} == 0',
        ),
        expected_kinds=("node_not_ready",),
        keywords=("cni", "network plugin", "NetworkPluginNotReady"),
    ),
    Scenario(
        name="pvc_pending",
        kube="pvc_pending",
        alert=Alert(
            "KubePersistentVolumeClaimPending",
            "db",
            {"persistentvolumeclaim": "data-postgres-0", "severity": "warning"},
            "PersistentVolumeClaim db/data-postgres-0 has been Pending for more than 15m.",
            'kube_persistentvolumeclaim_status_phase{job="kube-state-metrics",'
            'namespace="db",phase="Pending"} == 1',
        ),
        expected_kinds=("pvc_pending",),
        keywords=("fast-ssd",),
    ),
    Scenario(
        name="config_missing",
        kube="config_missing",
        alert=Alert(
            "KubePodNotReady",
            "shop",
            {"pod": "orders-6f7d9-k8s2n", "container": "orders", "severity": "warning"},
            "Pod shop/orders-6f7d9-k8s2n has been in a non-ready state for longer than 15m.",
            _not_ready("shop"),
        ),
        expected_kinds=("config_error",),
        keywords=("ORDERS_TIMEOUT",),
    ),
    Scenario(
        name="healthy",
        kube="healthy",
        alert=Alert(
            "KubePodNotReady",
            "shop",
            {"pod": "web-6d4cf56db6-abcde", "severity": "warning"},
            "Pod shop/web-6d4cf56db6-abcde has been in a non-ready state for longer than 15m.",
            _not_ready("shop"),
        ),
        expected_kinds=(),
        keywords=(),
        notes="a stale alert: the pod is ready and nothing in the cluster is wrong",
    ),
)


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)
