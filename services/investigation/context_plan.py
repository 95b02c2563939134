"""The context plan: which tool calls to make for an alert before any model is asked.

The first round (`plan`) reads only the alert: the objects its labels name (pod,
deployment, statefulset, node, PVC, job) and the expression behind its Prometheus graph
link. The second round (`followups`) reads what the first returned: the previous logs
of a container that restarts, the worst failing pod of the alert's workload, the current
logs of the workload's running pods (an alert naming only a deployment, a 5xx ratio,
shows its cause in no status field, only in what the pods log), the rollout history and
pods of the deployment that owns the alert's pod (a crash that began with a revision
shows against the previous one), the nodes when a pod is Pending or was evicted (the
node's condition is the cause), the PVCs when a pending pod mounts one, the keys of a
ConfigMap a container cannot start without. The third round (`from_logs`) reads what
the logs said: the NetworkPolicies of a pod whose name lookups fail (DNS egress blocked
shows in no pod field). Every round is bounded and asks only for tools that are
available. Label values come from whoever fired the alert, so every
value that becomes an argument is checked first and a bad one is skipped, never passed
on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from urllib.parse import parse_qs, urlsplit

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.text_checks import has_control_characters
from services.investigation.analyzers.network import dns_failure
from services.investigation.calls import PlannedCall, ToolCall
from services.investigation.results import PodView, pods, text

MAX_PLANNED_CALLS = 12
MAX_FOLLOWUP_CALLS = 8
# Pods whose NetworkPolicies are read when their lookups fail.
MAX_LOG_DRIVEN_CALLS = 2
# Running pods of the alert's workload whose current logs are read (worst first): enough
# to see an error every replica logs, few enough to leave the model room.
MAX_WORKLOAD_LOG_PODS = 2
# Log lines asked for: enough for the error and what led to it, small for the model.
LOG_TAIL_LINES = 200
# Pods listed when only a workload's name is known (filtered by owner afterwards).
WORKLOAD_POD_LIMIT = 200
# A PromQL expression from a graph link longer than this is not evaluated.
MAX_EXPR_CHARS = 2048
MAX_NAME_CHARS = 253

_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# A Deployment's ReplicaSet: `<deployment>-<pod-template-hash>` (the hash has no `-`).
_REPLICASET_OWNER = re.compile(r"ReplicaSet/(.+)-[a-z0-9]{5,10}")
# `configmap "app-config" not found`, `couldn't find key X in ConfigMap ns/app-config`.
_CONFIGMAP_NAMED = (
    re.compile(r'configmaps? "([^"]+)" not found', re.IGNORECASE),
    re.compile(r"in ConfigMap [^/\s]+/([^\s\"']+)", re.IGNORECASE),
)


def valid_name(value: str) -> bool:
    """A Kubernetes object name (DNS-1123 subdomain): lowercase alphanumerics, `-`, `.`."""
    return 0 < len(value) <= MAX_NAME_CHARS and _K8S_NAME.fullmatch(value) is not None


def graph_expression(generator_url: str) -> str:
    """The `g0.expr` of a Prometheus graph link, or "" (none, or not fit to evaluate)."""
    try:
        query = urlsplit(generator_url).query
    except ValueError:
        return ""
    values = parse_qs(query).get("g0.expr", [])
    expr = values[0].strip() if values else ""
    if not expr or len(expr) > MAX_EXPR_CHARS:
        return ""
    # Rules written over several lines keep their newlines; nothing else is allowed.
    if has_control_characters(expr.replace("\n", " ").replace("\t", " ")):
        return ""
    return expr


class _Plan:
    """Calls collected in order, once each, only for available tools, up to a limit."""

    def __init__(self, tools: Collection[str], limit: int, made: Collection[str] = ()) -> None:
        self._tools = tools
        self._limit = limit
        self._keys = set(made)
        self.calls: list[PlannedCall] = []

    def add(self, tool: str, reason: str, **arguments: object) -> None:
        if tool not in self._tools or len(self.calls) >= self._limit:
            return
        call = PlannedCall(tool, dict(arguments), reason)
        if call.key() not in self._keys:
            self._keys.add(call.key())
            self.calls.append(call)


def _name(alert: inv_pb2.Alert, *keys: str) -> str:
    """The first valid object name under `keys` in the labels, then the annotations."""
    for source in (alert.labels, alert.annotations):
        for key in keys:
            value = source.get(key, "")
            if valid_name(value):
                return value
    return ""


def _node_name(alert: inv_pb2.Alert) -> str:
    """The node a node alert is about: `node` label, or a node alert's `instance`
    without its port (node exporters are often scraped by node name)."""
    node = _name(alert, "node", "kubernetes_node")
    if node or "node" not in alert.alert_name.lower():
        return node
    host = alert.labels.get("instance", "").rsplit(":", 1)[0]
    return host if valid_name(host) else ""


def plan(alert: inv_pb2.Alert, tools: Collection[str]) -> list[PlannedCall]:
    """The first calls worth making for `alert`, at most `MAX_PLANNED_CALLS`, only for
    tools in `tools`: the calls about the objects it names first, then the general ones
    (the namespace's events, the alerts firing, the alert's expression), which always
    keep their place."""
    namespace = alert.namespace if valid_name(alert.namespace) else ""
    if not alert.namespace:
        namespace = _name(alert, "namespace")
    general = _Plan(tools, MAX_PLANNED_CALLS)
    if namespace:
        # The tool has no type filter: the analyzers read the warnings among them.
        general.add("kubernetes_events", "recent events of the namespace", namespace=namespace)
    general.add("prometheus_alerts", "alerts firing now")
    expr = graph_expression(alert.generator_url)
    if expr:
        general.add(
            "prometheus_query_range", "the alert's expression over the last hour", query=expr
        )
    made = {call.key() for call in general.calls}
    specific = _Plan(tools, MAX_PLANNED_CALLS - len(general.calls), made)
    _object_calls(specific, alert, namespace)
    return specific.calls + general.calls


def _object_calls(out: _Plan, alert: inv_pb2.Alert, namespace: str) -> None:
    """Calls about the objects the alert's labels name, most specific first."""
    pod = _name(alert, "pod", "pod_name")
    container = _name(alert, "container", "container_name")
    deployment = _name(alert, "deployment")
    job = _name(alert, "job_name")
    pvc = _name(alert, "persistentvolumeclaim")
    node = _node_name(alert)
    if namespace and pod:
        out.add("kubernetes_describe_pod", "the alert's pod", namespace=namespace, name=pod)
        logs: dict[str, object] = {"namespace": namespace, "name": pod}
        if container:
            logs["container"] = container
        out.add(
            "kubernetes_pod_logs",
            "current logs of the alert's pod",
            **logs,
            tail_lines=LOG_TAIL_LINES,
        )
        out.add(
            "kubernetes_events",
            "events of the alert's pod",
            namespace=namespace,
            kind="Pod",
            name=pod,
        )
    if namespace and deployment:
        out.add(
            "kubernetes_rollout_history",
            "the alert's deployment's revisions",
            namespace=namespace,
            name=deployment,
        )
        out.add(
            "kubernetes_list_pods",
            "pods of the alert's namespace (its deployment's among them)",
            namespace=namespace,
            limit=WORKLOAD_POD_LIMIT,
        )
        out.add("kubernetes_list_deployments", "the alert's deployment", namespace=namespace)
    if namespace and job:
        out.add(
            "kubernetes_list_pods",
            "pods of the alert's job",
            namespace=namespace,
            label_selector=f"job-name={job}",
        )
    for key, kind in (("statefulset", "StatefulSet"), ("daemonset", "DaemonSet")):
        workload = _name(alert, key)
        if namespace and workload:
            out.add(
                "kubernetes_list_pods",
                "pods of the alert's namespace (its workload's among them)",
                namespace=namespace,
                limit=WORKLOAD_POD_LIMIT,
            )
            out.add(
                "kubernetes_events",
                f"events of the alert's {key}",
                namespace=namespace,
                kind=kind,
                name=workload,
            )
    if namespace and pvc:
        out.add(
            "kubernetes_list_pvcs", "the alert's PVC and the storage classes", namespace=namespace
        )
    if node:
        out.add("kubernetes_list_nodes", "the alert's node")


def _focus(calls: Sequence[ToolCall]) -> Callable[[PodView], bool]:
    """Which listed pods concern the alert: those of the deployment whose history was
    asked for, of a workload whose events were asked for, or of a list already narrowed
    by a label selector."""
    deployments = {
        (text(c.arguments.get("namespace")), text(c.arguments.get("name")))
        for c in calls
        if c.tool == "kubernetes_rollout_history"
    }
    owners = {
        (text(c.arguments.get("namespace")), f"{c.arguments.get('kind')}/{c.arguments.get('name')}")
        for c in calls
        if c.tool == "kubernetes_events" and c.arguments.get("kind") not in (None, "Pod")
    }

    def concerns(pod: PodView) -> bool:
        if pod.call.tool == "kubernetes_describe_pod" or pod.call.arguments.get("label_selector"):
            return True
        if (pod.namespace, pod.owner) in owners:
            return True
        return any(
            ns == pod.namespace and pod.owned_by_deployment(name) for ns, name in deployments
        )

    return concerns


def _configmap_named(message: str) -> str:
    for pattern in _CONFIGMAP_NAMED:
        match = pattern.search(message)
        if match and valid_name(match.group(1)):
            return match.group(1)
    return ""


def followups(calls: Sequence[ToolCall], tools: Collection[str]) -> list[PlannedCall]:
    """The second round from what the first returned, at most `MAX_FOLLOWUP_CALLS`,
    never a call already made."""
    made = {PlannedCall(c.tool, c.arguments).key() for c in calls}
    out = _Plan(tools, MAX_FOLLOWUP_CALLS, made)
    concerns = _focus(calls)
    seen = [pod for pod in pods(calls) if concerns(pod) and valid_name(pod.name)]
    described = {
        (pod.namespace, pod.name) for pod in seen if pod.call.tool == "kubernetes_describe_pod"
    }
    failing = sorted(
        (pod for pod in seen if not pod.ready and (pod.namespace, pod.name) not in described),
        key=lambda pod: (tuple(-n for n in pod.badness()), pod.name),
    )
    if failing:
        worst = failing[0]
        out.add(
            "kubernetes_describe_pod",
            "the worst failing pod of the alert's workload",
            namespace=worst.namespace,
            name=worst.name,
        )
    # Worst pods first: their previous logs matter most when the limit cuts.
    by_badness = sorted(seen, key=lambda pod: tuple(-n for n in pod.badness()))
    for pod in by_badness:
        for container in pod.containers:
            if container.restart_count > 0 and valid_name(container.name):
                out.add(
                    "kubernetes_pod_logs",
                    f"previous logs of restarting container {container.name}",
                    namespace=pod.namespace,
                    name=pod.name,
                    container=container.name,
                    previous=True,
                    tail_lines=LOG_TAIL_LINES,
                )
            if container.reason == "CreateContainerConfigError":
                configmap = _configmap_named(container.message)
                if configmap:
                    out.add(
                        "kubernetes_configmap_keys",
                        "the ConfigMap a container cannot start without",
                        namespace=pod.namespace,
                        name=configmap,
                    )
    _workload_logs(out, calls, seen)
    _owning_deployment(out, seen)
    pending = [pod for pod in seen if pod.phase == "Pending"]
    if pending:
        out.add("kubernetes_list_nodes", "nodes a pending pod could run on")
    if any(pod.phase == "Failed" and pod.reason for pod in seen):
        # Evicted, NodeLost, OutOfcpu...: the kubelet failed the pod for its node's sake.
        out.add("kubernetes_list_nodes", "nodes of pods the kubelet failed (evicted...)")
    for pod in pending:
        if any(v.get("kind") == "persistentVolumeClaim" for v in pod.volumes):
            out.add("kubernetes_list_pvcs", "PVCs a pending pod mounts", namespace=pod.namespace)
    return out.calls


def _workload_logs(out: _Plan, calls: Sequence[ToolCall], seen: Sequence[PodView]) -> None:
    """Current logs of the listed workload pods that run, worst first, for pods whose
    current logs were not asked for yet (the alert's own pod has them from the plan)."""
    logged = {
        (text(c.arguments.get("namespace")), text(c.arguments.get("name")))
        for c in calls
        if c.tool == "kubernetes_pod_logs" and not c.arguments.get("previous")
    }
    running = [
        pod
        for pod in seen
        if pod.call.tool == "kubernetes_list_pods"
        and pod.phase == "Running"
        and (pod.namespace, pod.name) not in logged
    ]
    running.sort(key=lambda pod: (tuple(-n for n in pod.badness()), pod.name))
    for pod in running[:MAX_WORKLOAD_LOG_PODS]:
        for container in pod.containers:
            if container.state == "running" and valid_name(container.name):
                out.add(
                    "kubernetes_pod_logs",
                    f"current logs of the workload's container {container.name}",
                    namespace=pod.namespace,
                    name=pod.name,
                    container=container.name,
                    tail_lines=LOG_TAIL_LINES,
                )


def _owning_deployment(out: _Plan, seen: Sequence[PodView]) -> None:
    """The rollout history and the pods of the deployment that owns a described (the
    alert's) pod, when no deployment of the alert was read: a failure that began with a
    revision shows as that revision's change and its pods against the previous one's."""
    for pod in seen:
        match = _REPLICASET_OWNER.fullmatch(pod.owner)
        if pod.call.tool != "kubernetes_describe_pod" or match is None:
            continue
        deployment = match.group(1)
        if not valid_name(deployment):
            continue
        out.add(
            "kubernetes_rollout_history",
            "revisions of the deployment that owns the alert's pod",
            namespace=pod.namespace,
            name=deployment,
        )
        out.add(
            "kubernetes_list_pods",
            "pods of the alert's namespace (its deployment's among them)",
            namespace=pod.namespace,
            limit=WORKLOAD_POD_LIMIT,
        )


def from_logs(calls: Sequence[ToolCall], tools: Collection[str]) -> list[PlannedCall]:
    """The third round: the NetworkPolicies selecting each pod (at most
    `MAX_LOG_DRIVEN_CALLS`) whose logs show a failed name lookup."""
    made = {PlannedCall(c.tool, c.arguments).key() for c in calls}
    out = _Plan(tools, MAX_LOG_DRIVEN_CALLS, made)
    for call in calls:
        if call.tool != "kubernetes_pod_logs" or not call.ok:
            continue
        namespace = text(call.arguments.get("namespace"))
        pod = text(call.arguments.get("name"))
        lines = call.result.get("lines")
        if not (valid_name(namespace) and valid_name(pod) and isinstance(lines, list)):
            continue
        if dns_failure([line for line in lines if isinstance(line, str)]):
            out.add(
                "kubernetes_network_policies",
                f"NetworkPolicies of pod {pod}, whose name lookups fail",
                namespace=namespace,
                pod=pod,
            )
    return out.calls
