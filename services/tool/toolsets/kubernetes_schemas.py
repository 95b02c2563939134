"""Argument schemas, descriptions and narrowing hints of the kubernetes tools.

Every schema is closed (additionalProperties false) and every string and integer
bounded, so what a model sends is checked by the tool service before any request is
made. Names follow Kubernetes' own syntax (DNS labels and subdomains).
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_TAIL_LINES = 200
MAX_TAIL_LINES = 2000
MAX_SINCE_SECONDS = 30 * 86400
MAX_SELECTOR_CHARS = 1024

NAMESPACE = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "description": "The namespace.",
}
NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
}
LABEL_SELECTOR = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_SELECTOR_CHARS,
    "description": "Label selector as kubectl takes it, e.g. 'app=web,tier!=db' or "
    "'env in (prod,staging)'.",
}
LIMIT = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_LIMIT,
    "description": f"At most this many (default {DEFAULT_LIMIT}).",
}


def obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def named(description: str) -> dict[str, Any]:
    return {**NAME, "description": description}


LIST_PODS = obj(
    {
        "namespace": NAMESPACE,
        "label_selector": LABEL_SELECTOR,
        "field_selector": {
            **LABEL_SELECTOR,
            "description": "Field selector, e.g. 'status.phase=Pending' or 'spec.nodeName=node-a'.",
        },
        "limit": LIMIT,
    },
    ["namespace"],
)
DESCRIBE_POD = obj(
    {"namespace": NAMESPACE, "name": named("The pod's name.")}, ["namespace", "name"]
)
EVENTS = obj(
    {
        "namespace": NAMESPACE,
        "kind": {
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "pattern": "^[A-Z][A-Za-z0-9]*$",
            "description": "Kind of the object the events are about, e.g. Pod, Deployment, Node.",
        },
        "name": named("Name of the object the events are about."),
        "limit": LIMIT,
    },
    ["namespace"],
)
POD_LOGS = obj(
    {
        "namespace": NAMESPACE,
        "name": named("The pod's name."),
        "container": {
            **NAME,
            "maxLength": 63,
            "description": "The container (required when the pod has several).",
        },
        "previous": {
            "type": "boolean",
            "description": "The previous instance's logs: why a restarted container died.",
        },
        "tail_lines": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TAIL_LINES,
            "description": f"The last this many lines (default {DEFAULT_TAIL_LINES}).",
        },
        "since_seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SINCE_SECONDS,
            "description": "Only lines written in the last this many seconds.",
        },
        "grep": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "Keep only lines matching this regular expression (or substring).",
        },
    },
    ["namespace", "name"],
)
LIST_DEPLOYMENTS = obj({"namespace": NAMESPACE, "label_selector": LABEL_SELECTOR}, ["namespace"])
ROLLOUT_HISTORY = obj(
    {"namespace": NAMESPACE, "name": named("The deployment's name.")}, ["namespace", "name"]
)
LIST_NODES = obj({}, [])
LIST_PVCS = obj({"namespace": NAMESPACE}, ["namespace"])
CONFIGMAP_KEYS = obj(
    {"namespace": NAMESPACE, "name": named("The ConfigMap's name.")}, ["namespace", "name"]
)
NETWORK_POLICIES = obj(
    {
        "namespace": NAMESPACE,
        "pod": named(
            "A pod's name: only the policies that select it, and whether its egress to DNS "
            "is allowed."
        ),
    },
    ["namespace"],
)

DESCRIPTIONS = {
    "kubernetes_list_pods": "Lists pods of a namespace with phase (and reason, e.g. Evicted), "
    "readiness, restarts, node, owner and each container's state, last termination (reason, "
    "exit code) and resources.",
    "kubernetes_describe_pod": "One pod in detail: containers (with their ports and liveness, "
    "readiness and startup probes), conditions, labels, volumes, environment (Secret values "
    "never shown) and its recent events.",
    "kubernetes_events": "Recent events of a namespace (newest last), optionally about one "
    "object (kind and/or name): scheduling failures, back-offs, image pulls, kills.",
    "kubernetes_pod_logs": "A container's log lines, current or previous instance (why it "
    "crashed), the last N lines or a time window, optionally filtered by grep.",
    "kubernetes_list_deployments": "Deployments of a namespace: replicas (ready, updated, "
    "available), revision, images and conditions.",
    "kubernetes_rollout_history": "A deployment's revisions (ReplicaSets, images, change cause) "
    "and what changed between the newest two: image, env, resources, args, command, ports, "
    "liveness/readiness/startup probes (type, port, path).",
    "kubernetes_list_nodes": "Cluster nodes: readiness, conditions (memory, disk, PID "
    "pressure), taints, capacity and allocatable resources.",
    "kubernetes_list_pvcs": "PersistentVolumeClaims of a namespace (phase, class, size, volume) "
    "and the cluster's storage classes.",
    "kubernetes_configmap_keys": "The keys of a ConfigMap (never its values).",
    "kubernetes_network_policies": "NetworkPolicies of a namespace, one line per ingress and "
    "egress rule (peers, ports) and whether each allows egress to DNS (port 53 UDP/TCP); with "
    "a pod, only the policies selecting it and whether its DNS egress is allowed.",
}
HINTS = {
    "kubernetes_list_pods": "narrow label_selector or field_selector, or lower limit",
    "kubernetes_describe_pod": "list the pod's events with kubernetes_events and a lower limit",
    "kubernetes_events": "pass kind and name, or lower limit",
    "kubernetes_pod_logs": "pass a lower tail_lines, since_seconds or grep",
    "kubernetes_list_deployments": "narrow label_selector",
    "kubernetes_rollout_history": "the diff covers the newest two revisions only",
    "kubernetes_list_nodes": "too many nodes to show; ask about one node's events instead",
    "kubernetes_list_pvcs": "too many claims to show; ask about one claim's events instead",
    "kubernetes_configmap_keys": "too many keys to show",
    "kubernetes_network_policies": "pass pod for only the policies that select it",
}
