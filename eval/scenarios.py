"""The issue's ten incidents: an alert as Alertmanager labels it, the fake cluster (and,
for the error-rate one, the Prometheus history) behind it, and the unique token its
true cause carries.

Each fake scenario (tests/fakes/kube_scenarios/) hides one cause among distractors (a
healthy neighbour, an old restart, an unrelated warning) and writes that cause with a
token nothing else in the cluster contains (`LEDGER_DSN_7Q2`, `317Mi`...): a root cause
holding the token was read from the evidence, one without it was not, however plausible
it sounds. `covered` says whether an analyzer handles the incident's class at all (the
analyzers alone are expected to find the token exactly where it is true).

Alerts carry what Alertmanager sends: the rule's name, its labels (the kube-state-metrics
ones for Kubernetes alerts), a summary, the graph link of the rule's expression, and the
start (`starts_ago` seconds before the request, placed in each scenario's timeline:
after the change that caused it, as long after its first sign as the rule's `for`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from urllib.parse import quote

PROMETHEUS_GRAPH = "http://prometheus.monitoring.svc:9090/graph"
KSM = 'job="kube-state-metrics"'


def graph_url(expr: str) -> str:
    """A Prometheus graph link as Alertmanager's `generatorURL` carries it."""
    return f"{PROMETHEUS_GRAPH}?g0.expr={quote(expr, safe='')}&g0.tab=1"


@dataclass(frozen=True)
class Alert:
    """The alert: name, namespace ("" for a cluster-wide one such as a node's), labels
    (`alertname` and `severity` among them), summary, the rule's expression and when it
    started, as the Investigation API takes them."""

    name: str
    namespace: str
    labels: dict[str, str]
    summary: str
    expr: str
    starts_ago: int

    def request(self, now: datetime.datetime | None = None) -> dict[str, object]:
        """The `alert` field of an investigation (REST/JSON field names)."""
        labels = {"alertname": self.name, **self.labels}
        if self.namespace:
            labels["namespace"] = self.namespace
        started = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(
            seconds=self.starts_ago
        )
        body: dict[str, object] = {
            "alert_name": self.name,
            "labels": labels,
            "annotations": {"summary": self.summary},
            "source": "alertmanager",
            "generator_url": graph_url(self.expr),
            "starts_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.namespace:
            body["namespace"] = self.namespace
        return body


@dataclass(frozen=True)
class Scenario:
    name: str
    # The fake Kubernetes API's scenario (tests/fakes/kube_scenarios/<kube>.yaml).
    kube: str
    alert: Alert
    # The unique token of the true cause (matched case-insensitively).
    token: str
    # Whether an analyzer covers the incident's class.
    covered: bool = True
    # The Prometheus-led scenario (its series and firing rule are in eval/prometheus.py).
    prometheus: bool = False
    notes: str = field(default="", compare=False)


def _crash_looping(namespace: str, pod: str, container: str, starts_ago: int) -> Alert:
    return Alert(
        "KubePodCrashLooping",
        namespace,
        {"pod": pod, "container": container, "severity": "warning"},
        f"Pod {namespace}/{pod} ({container}) is in waiting state (reason: CrashLoopBackOff).",
        f'max_over_time(kube_pod_container_status_waiting_reason{{reason="CrashLoopBackOff", '
        f'{KSM}, namespace="{namespace}"}}[5m]) >= 1',
        starts_ago,
    )


def _replicas_mismatch(namespace: str, deployment: str, starts_ago: int) -> Alert:
    return Alert(
        "KubeDeploymentReplicasMismatch",
        namespace,
        {"deployment": deployment, "severity": "warning"},
        f"Deployment {namespace}/{deployment} has not matched the expected number of "
        "replicas for longer than 15 minutes.",
        f'kube_deployment_spec_replicas{{{KSM}, namespace="{namespace}", '
        f'deployment="{deployment}"}} > kube_deployment_status_replicas_available'
        f'{{{KSM}, namespace="{namespace}", deployment="{deployment}"}}',
        starts_ago,
    )


# The error-rate alert's rule (eval/prometheus.py loads it), which its graph link carries.
ERROR_RATE_EXPR = (
    'sum by (namespace, deployment) (rate(http_requests_total{namespace="billing", '
    'code=~"5.."}[5m])) / sum by (namespace, deployment) (rate(http_requests_total'
    '{namespace="billing"}[5m])) > 0.05'
)
ERROR_RATE_ALERT = "HTTPHighErrorRatio"

SCENARIOS: tuple[Scenario, ...] = (
    # First: its series are freshest at the start of a run (see eval/prometheus.py).
    Scenario(
        name="error_rate_after_deploy",
        kube="error_rate_after_deploy",
        alert=Alert(
            ERROR_RATE_ALERT,
            "billing",
            {"deployment": "invoice-api", "severity": "page"},
            "invoice-api answers more than 5% of requests with 5xx",
            ERROR_RATE_EXPR,
            240,
        ),
        token="tax_region_v3",
        prometheus=True,
        notes="every pod is ready: only the pods' logs show the failing query",
    ),
    Scenario(
        name="crashloop_env_removed",
        kube="crashloop_env_removed",
        alert=_crash_looping("ledger", "ledger-api-6d8e7f9c5-k2m4p", "api", 12 * 60),
        token="LEDGER_DSN_7Q2",
    ),
    Scenario(
        name="oomkilled",
        kube="oomkilled",
        alert=_crash_looping("batch", "report-worker-0", "worker", 12 * 60),
        token="317Mi",
    ),
    Scenario(
        name="rollout_bad_tag",
        kube="rollout_bad_tag",
        alert=Alert(
            "KubeDeploymentRolloutStuck",
            "cart",
            {"deployment": "cart", "severity": "warning"},
            "Rollout of deployment cart/cart is not progressing for longer than 15 minutes.",
            f'kube_deployment_status_condition{{condition="Progressing", status="false", '
            f'{KSM}, namespace="cart", deployment="cart"}} != 0',
            8 * 60,
        ),
        token="v2.3.9-rc7x",
    ),
    Scenario(
        name="dns_egress_blocked",
        kube="dns_egress_blocked",
        alert=_crash_looping("shop", "payments-84f6d9c7b5-6xq2v", "payments", 10 * 60),
        token="payments-db.shop.svc.cluster.local",
        notes="the NetworkPolicy behind it is read once the logs show the failed lookup",
    ),
    Scenario(
        name="pvc_pending",
        kube="pvc_pending",
        alert=Alert(
            "KubePersistentVolumeClaimPending",
            "db",
            {"persistentvolumeclaim": "data-postgres-0", "severity": "warning"},
            "PersistentVolumeClaim db/data-postgres-0 has been Pending for more than 15 minutes.",
            f'kube_persistentvolumeclaim_status_phase{{{KSM}, namespace="db", '
            'phase="Pending"} == 1',
            15 * 60,
        ),
        token="fast-ssd-z9",
    ),
    Scenario(
        name="node_disk_pressure",
        kube="node_disk_pressure",
        alert=Alert(
            "KubeNodePressure",
            "",
            {"node": "node-d4k", "condition": "DiskPressure", "severity": "info"},
            "node-d4k has active Condition DiskPressure. This is caused by resource usage "
            "exceeding eviction thresholds.",
            f'kube_node_status_condition{{{KSM}, condition=~"(MemoryPressure|DiskPressure|'
            'PIDPressure)", status="true"} == 1',
            12 * 60,
        ),
        token="node-d4k",
    ),
    Scenario(
        name="unschedulable",
        kube="unschedulable",
        alert=Alert(
            "KubePodNotReady",
            "ml",
            {"pod": "ml-trainer-0", "severity": "warning"},
            "Pod ml/ml-trainer-0 has been in a non-ready state for longer than 15 minutes.",
            f"sum by (namespace, pod) (max by (namespace, pod) (kube_pod_status_phase{{{KSM}, "
            'namespace="ml", phase=~"Pending|Unknown|Failed"})) > 0',
            10 * 60,
        ),
        token="Insufficient cpu",
    ),
    Scenario(
        name="liveness_wrong_port",
        kube="liveness_wrong_port",
        alert=_crash_looping("web", "storefront-6f8d9b7c4-j5k2l", "web", 10 * 60),
        token="8181",
    ),
    Scenario(
        name="pool_exhaustion",
        kube="pool_exhaustion",
        alert=_replicas_mismatch("orders", "orders-api", 7 * 60),
        token="DB_POOL_MAX",
    ),
)


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)
