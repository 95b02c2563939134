"""The `kubernetes` toolset: ten read-only tools over the Kubernetes REST API.

It talks to the API through lightkube's `AsyncClient` (typed models, the standard
kubeconfig and in-cluster credentials). What each tool returns is shaped by
kubernetes_pods.py, kubernetes_rollouts.py, kubernetes_cluster.py,
kubernetes_network.py and kubernetes_logs.py; the argument schemas live in
kubernetes_schemas.py.

Events are read as core `v1` Events only, on purpose. `events.k8s.io/v1` is not a
second store but a second view of the same objects: the API server converts each event
between the two (`note` is `message`, `regarding` is `involvedObject`,
`reportingController` is `reportingComponent`, `deprecatedCount`, `deprecatedSource`
and the `deprecated*Timestamp`s are `count`, `source` and the timestamps; `eventTime`,
`series`, `action` and `related` are in both), so every event, and every field of it,
is visible through core `v1`, which every cluster serves (GA, not deprecated). What
differs between events is the recorder, not the view: the kubelet's (count, first and
last timestamps, no eventTime) and the scheduler's (eventTime and series, no count or
timestamps) reach either view in their own shape, and kubernetes_pods.py normalises
both. Reading `events.k8s.io/v1` first, falling back to core on 404, would add a second
path for the same data, and could not use lightkube's typed model there: it declares
`eventTime` required, and the kubelet's events have `eventTime: null` in that view.
tests/unit/fakes checks both views of the fake with kubectl; the toolset's tests read
both recorders' shapes.

No tool reads a Secret: environment variables from Secrets are shown by reference, and
no tool lists or gets the `secrets` resource. Lists are bounded: a tool asks for at
most its limit plus one object (to know whether more exist), and events are scanned up
to MAX_EVENTS_SCANNED.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from lightkube import AsyncClient
from lightkube.config.kubeconfig import SERVICE_ACCOUNT, SingleConfig
from lightkube.config.models import User
from lightkube.core.async_client import ListAsyncIterable
from lightkube.core.client import FieldSelector
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import ConfigMap, Event, Node, PersistentVolumeClaim, Pod
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.storage_v1 import StorageClass

from services.tool.toolsets import kubernetes_schemas as schemas
from services.tool.toolsets.base import RunTool, ToolsetTool
from services.tool.toolsets.kubernetes_cluster import (
    configmap_keys,
    node_summary,
    pvc_summary,
    storage_class_summary,
)
from services.tool.toolsets.kubernetes_config import backend_of, load_cluster_config
from services.tool.toolsets.kubernetes_errors import api_errors
from services.tool.toolsets.kubernetes_logs import line_filter, log_result, pick_container, read_log
from services.tool.toolsets.kubernetes_network import pod_verdict, policy_summary, selects
from services.tool.toolsets.kubernetes_pods import (
    JsonObject,
    events_newest_last,
    pod_details,
    pod_summary,
)
from services.tool.toolsets.kubernetes_rollouts import deployment_summary, history, selector_pairs
from services.tool.toolsets.kubernetes_selectors import (
    field_selector,
    label_selector,
    pod_field_hint,
)

NAME = "kubernetes"
# Events are kept in arbitrary order by the API; the newest are found by reading them
# all, up to this many.
MAX_EVENTS_SCANNED = 2000
MAX_DEPLOYMENTS = 200
MAX_REPLICASETS = 500
MAX_NODES = 1000
MAX_PVCS = 500
MAX_NETWORK_POLICIES = 500
# Per request to the API; the tool service's own timeout bounds a whole call.
REQUEST_TIMEOUT_SECONDS = 15.0

T = TypeVar("T")


async def first(items: ListAsyncIterable[T], limit: int) -> tuple[list[T], bool]:
    """At most `limit` items, and whether more exist (one more is read to know)."""
    kept: list[T] = []
    async for item in items:
        if len(kept) == limit:
            return kept, True
        kept.append(item)
    return kept, False


def _where(kind: str, name: str, namespace: str) -> str:
    return f"{kind} '{name}' in namespace '{namespace}'"


class KubernetesToolset:
    """The toolset over one cluster; its client is opened at construction (lightkube
    connects lazily, on the first request) and closed by `close`."""

    def __init__(
        self, config: SingleConfig, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        if config.user is None:
            # A context without a user (a local http:// API): lightkube wants one.
            config = config._replace(user=User())
        self._client = AsyncClient(
            config,
            timeout=httpx2.Timeout(REQUEST_TIMEOUT_SECONDS),
            # Proxy variables would send the service account's token elsewhere.
            trust_env=False,
        )
        self._backend = backend_of(config)
        self._now = now
        runs: dict[str, RunTool] = {
            "kubernetes_list_pods": self.list_pods,
            "kubernetes_describe_pod": self.describe_pod,
            "kubernetes_events": self.events,
            "kubernetes_pod_logs": self.pod_logs,
            "kubernetes_list_deployments": self.list_deployments,
            "kubernetes_rollout_history": self.rollout_history,
            "kubernetes_list_nodes": self.list_nodes,
            "kubernetes_list_pvcs": self.list_pvcs,
            "kubernetes_configmap_keys": self.configmap_keys,
            "kubernetes_network_policies": self.network_policies,
        }
        parameters = {
            "kubernetes_list_pods": schemas.LIST_PODS,
            "kubernetes_describe_pod": schemas.DESCRIBE_POD,
            "kubernetes_events": schemas.EVENTS,
            "kubernetes_pod_logs": schemas.POD_LOGS,
            "kubernetes_list_deployments": schemas.LIST_DEPLOYMENTS,
            "kubernetes_rollout_history": schemas.ROLLOUT_HISTORY,
            "kubernetes_list_nodes": schemas.LIST_NODES,
            "kubernetes_list_pvcs": schemas.LIST_PVCS,
            "kubernetes_configmap_keys": schemas.CONFIGMAP_KEYS,
            "kubernetes_network_policies": schemas.NETWORK_POLICIES,
        }
        self._tools = tuple(
            ToolsetTool(
                name=name,
                description=schemas.DESCRIPTIONS[name],
                parameters=parameters[name],
                run=run,
                narrowing_hint=schemas.HINTS[name],
            )
            for name, run in runs.items()
        )

    @property
    def name(self) -> str:
        return NAME

    @property
    def backend(self) -> str:
        return self._backend

    def tools(self) -> Sequence[ToolsetTool]:
        return self._tools

    async def close(self) -> None:
        await self._client.close()

    # --- Pods -------------------------------------------------------------------------

    async def list_pods(self, arguments: dict[str, Any]) -> JsonObject:
        namespace = arguments["namespace"]
        limit = arguments.get("limit", schemas.DEFAULT_LIMIT)
        labels = label_selector("label_selector", arguments.get("label_selector"))
        fields = field_selector("field_selector", arguments.get("field_selector"))
        async with api_errors(f"the pods of namespace '{namespace}'", hint=pod_field_hint):
            listing = self._client.list(
                Pod, namespace=namespace, labels=labels, fields=fields, chunk_size=limit + 1
            )
            pods, truncated = await first(listing, limit)
        now = self._now()
        return {
            "namespace": namespace,
            "pods": [pod_summary(pod, now) for pod in pods],
            "truncated": truncated,
        }

    async def _pod(self, namespace: str, name: str) -> Pod:
        async with api_errors(_where("pod", name, namespace)):
            return await self._client.get(Pod, name, namespace=namespace)

    async def _events(
        self, namespace: str, fields: FieldSelector, limit: int
    ) -> tuple[list[JsonObject], bool]:
        async with api_errors(f"the events of namespace '{namespace}'"):
            listing = self._client.list(Event, namespace=namespace, fields=fields, chunk_size=500)
            events, cut = await first(listing, MAX_EVENTS_SCANNED)
        shown, older = events_newest_last(events, limit)
        return shown, cut or older

    async def describe_pod(self, arguments: dict[str, Any]) -> JsonObject:
        namespace, name = arguments["namespace"], arguments["name"]
        pod = await self._pod(namespace, name)
        fields: FieldSelector = {
            "involvedObject.name": name,
            "involvedObject.namespace": namespace,
        }
        uid = pod.metadata.uid if pod.metadata is not None else None
        if uid:
            # As kubectl describe does: not the events of an earlier pod of that name.
            fields["involvedObject.uid"] = uid
        events, _ = await self._events(namespace, fields, schemas.DEFAULT_LIMIT)
        return {"pod": pod_details(pod, self._now()), "events": events}

    async def events(self, arguments: dict[str, Any]) -> JsonObject:
        namespace = arguments["namespace"]
        fields: FieldSelector = {
            f"involvedObject.{key}": arguments[key] for key in ("kind", "name") if key in arguments
        }
        limit = arguments.get("limit", schemas.DEFAULT_LIMIT)
        events, truncated = await self._events(namespace, fields, limit)
        return {"events": events, "truncated": truncated}

    async def pod_logs(self, arguments: dict[str, Any]) -> JsonObject:
        namespace, name = arguments["namespace"], arguments["name"]
        pattern = line_filter(arguments.get("grep"))
        pod = await self._pod(namespace, name)
        container = pick_container(pod, arguments.get("container"), _where("pod", name, namespace))
        previous = bool(arguments.get("previous", False))
        tail = arguments.get("tail_lines", schemas.DEFAULT_TAIL_LINES)
        lines = await read_log(
            self._client,
            namespace,
            name,
            container,
            previous=previous,
            tail_lines=tail,
            since_seconds=arguments.get("since_seconds"),
        )
        return log_result(
            name, container, previous=previous, lines=lines, tail_lines=tail, pattern=pattern
        )

    # --- Deployments ------------------------------------------------------------------

    async def list_deployments(self, arguments: dict[str, Any]) -> JsonObject:
        namespace = arguments["namespace"]
        labels = label_selector("label_selector", arguments.get("label_selector"))
        async with api_errors(f"the deployments of namespace '{namespace}'"):
            listing = self._client.list(
                Deployment, namespace=namespace, labels=labels, chunk_size=MAX_DEPLOYMENTS + 1
            )
            deployments, truncated = await first(listing, MAX_DEPLOYMENTS)
        return {
            "deployments": [deployment_summary(d) for d in deployments],
            "truncated": truncated,
        }

    async def rollout_history(self, arguments: dict[str, Any]) -> JsonObject:
        namespace, name = arguments["namespace"], arguments["name"]
        async with api_errors(_where("deployment", name, namespace)):
            deployment = await self._client.get(Deployment, name, namespace=namespace)
        async with api_errors(f"the replica sets of deployment '{name}'"):
            listing = self._client.list(
                ReplicaSet,
                namespace=namespace,
                labels=selector_pairs(deployment.spec),
                chunk_size=MAX_REPLICASETS,
            )
            replica_sets, _ = await first(listing, MAX_REPLICASETS)
        return history(deployment, replica_sets)

    # --- Cluster ----------------------------------------------------------------------

    async def list_nodes(self, arguments: dict[str, Any]) -> JsonObject:
        async with api_errors("the nodes"):
            nodes, truncated = await first(self._client.list(Node, chunk_size=500), MAX_NODES)
        return {"nodes": [node_summary(node) for node in nodes], "truncated": truncated}

    async def list_pvcs(self, arguments: dict[str, Any]) -> JsonObject:
        namespace = arguments["namespace"]
        async with api_errors(f"the persistent volume claims of namespace '{namespace}'"):
            listing = self._client.list(PersistentVolumeClaim, namespace=namespace, chunk_size=500)
            claims, truncated = await first(listing, MAX_PVCS)
        async with api_errors("the storage classes"):
            classes, _ = await first(self._client.list(StorageClass, chunk_size=500), MAX_PVCS)
        return {
            "pvcs": [pvc_summary(claim) for claim in claims],
            "storage_classes": [storage_class_summary(item) for item in classes],
            "truncated": truncated,
        }

    async def configmap_keys(self, arguments: dict[str, Any]) -> JsonObject:
        namespace, name = arguments["namespace"], arguments["name"]
        async with api_errors(_where("configmap", name, namespace)):
            item = await self._client.get(ConfigMap, name, namespace=namespace)
        return configmap_keys(item)

    async def network_policies(self, arguments: dict[str, Any]) -> JsonObject:
        """The namespace's policies; with a pod, those selecting it and their sum."""
        namespace, name = arguments["namespace"], arguments.get("pod")
        labels: dict[str, str] = {}
        if name is not None:
            pod = await self._pod(namespace, name)
            labels = dict((pod.metadata.labels if pod.metadata is not None else None) or {})
        async with api_errors(f"the network policies of namespace '{namespace}'"):
            listing = self._client.list(NetworkPolicy, namespace=namespace, chunk_size=500)
            policies, truncated = await first(listing, MAX_NETWORK_POLICIES)
        result: JsonObject = {"namespace": namespace}
        if name is not None:
            policies = [
                p for p in policies if selects(p.spec.podSelector if p.spec else None, labels)
            ]
            result.update({"pod": name, "pod_labels": labels, **pod_verdict(policies)})
        result["policies"] = [policy_summary(policy) for policy in policies]
        result["truncated"] = truncated
        return result


def from_env(
    environ: Mapping[str, str], service_account: Path = Path(SERVICE_ACCOUNT)
) -> KubernetesToolset | None:
    """The toolset over the cluster the environment configures (KUBECONFIG, else the
    in-cluster service account); None when it configures none. Raises
    KubernetesConfigError for a configuration that cannot be used."""
    config = load_cluster_config(environ, service_account)
    return KubernetesToolset(config) if config is not None else None
