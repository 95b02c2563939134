"""Objects of the optional kustomize components: CPU autoscalers and ServiceMonitors.

deploy/k8s/components/autoscaling and components/monitoring hold them (staging and prod
use both); their names and selectors are the workloads' of `k8s_manifests`.
"""

from __future__ import annotations

from services.launcher.k8s_manifests import (
    BASE_REPLICAS,
    ENVOY,
    Manifest,
    meta,
    object_labels,
)
from services.launcher.topology import Topology


def cpu_autoscaler(component: str, minimum: int = BASE_REPLICAS, maximum: int = 10) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(component, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": component},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
            # Scale-down slowly: a replica removed drains streams for minutes.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def autoscalers(topology: Topology) -> list[Manifest]:
    return [cpu_autoscaler(spec.name) for spec in topology.services] + [cpu_autoscaler(ENVOY)]


def service_monitor(component: str, port: str, path: str) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(component, component),
        "spec": {
            # The job label is the Service's name: router, ..., envoy (as the launcher's
            # scrape config names its jobs).
            "selector": {"matchLabels": object_labels(component)},
            "endpoints": [
                {
                    "port": port,
                    "path": path,
                    "interval": "15s",
                    "scheme": "http",
                    # The services label their series with `service` themselves; the
                    # Operator's own `service` target label must not rename it.
                    "honorLabels": True,
                }
            ],
        },
    }


def service_monitors(topology: Topology) -> list[Manifest]:
    monitors = [service_monitor(spec.name, "metrics", "/metrics") for spec in topology.services]
    # Both Envoy Services match; only the edge one has the ops port, so only it is scraped.
    return [*monitors, service_monitor(ENVOY, "ops", "/stats/prometheus")]
