"""NetworkPolicies of the gateway: deny everything, then allow each path it uses.

The paths follow envoy/topology.yaml: clients reach Envoy's public listener only; Envoy
reaches every service's gRPC port; services call each other through Envoy's internal
listener (only the router and the investigation service do: services/router/app.py and
services/investigation/app.py open the internal channel), so the provider is reached
only from Envoy, and Envoy's internal listener only from those two. The provider alone
leaves the cluster, on 443 to public addresses (its upstream APIs); Redis takes
connections from the services that keep state in it; Prometheus (the monitoring
namespace) scrapes the metrics ports and Envoy's ops listener.
"""

from __future__ import annotations

from services.common.settings import DEFAULT_PORTS
from services.launcher.k8s_manifests import (
    ENVOY,
    REDIS,
    REDIS_PORT,
    REDIS_USERS,
    Manifest,
    labels,
    meta,
)
from services.launcher.topology import Topology

# Services that open a channel to Envoy's internal listener.
INTERNAL_CALLERS = ("router", "investigation")
# The only service that calls out of the cluster.
EGRESS_SERVICE = "provider"
UPSTREAM_PORT = 443
# Where Prometheus runs (patch the label to match yours; deploy/k8s/README.md).
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
# Public addresses only: no pod, node, link-local (cloud metadata) or other private range.
PRIVATE_V4 = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
)
PRIVATE_V6 = ("fc00::/7", "fe80::/10", "::1/128")


def _policy(name: str, component: str, ingress: list[Manifest], egress: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, component),
        "spec": {
            "podSelector": {"matchLabels": labels(component)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def _pods(*components: str) -> list[Manifest]:
    return [{"podSelector": {"matchLabels": labels(c)}} for c in components]


def _tcp(*ports: int) -> list[Manifest]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _monitoring() -> list[Manifest]:
    return [{"namespaceSelector": {"matchLabels": MONITORING_NAMESPACE}}]


def default_deny() -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "default-deny",
            "labels": {"app.kubernetes.io/part-of": "llm-gateway"},
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def dns_egress() -> Manifest:
    """Every pod may resolve names (cluster DNS in kube-system)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-dns", "labels": {"app.kubernetes.io/part-of": "llm-gateway"}},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    }


def upstream_egress() -> Manifest:
    """443 to public addresses: the provider APIs (DNS names, so no narrower rule holds)."""
    return {
        "to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_V4)}},
            {"ipBlock": {"cidr": "::/0", "except": list(PRIVATE_V6)}},
        ],
        "ports": _tcp(UPSTREAM_PORT),
    }


def service_policy(topology: Topology, name: str) -> Manifest:
    port, metrics = DEFAULT_PORTS[name]
    ingress = [
        {"from": _pods(ENVOY), "ports": _tcp(port)},
        {"from": _monitoring(), "ports": _tcp(metrics)},
    ]
    egress: list[Manifest] = []
    if name in INTERNAL_CALLERS:
        egress.append({"to": _pods(ENVOY), "ports": _tcp(topology.listeners.internal)})
    if name in REDIS_USERS:
        egress.append({"to": _pods(REDIS), "ports": _tcp(REDIS_PORT)})
    if name == EGRESS_SERVICE:
        egress.append(upstream_egress())
    return _policy(name, name, ingress, egress)


def envoy_policy(topology: Topology) -> Manifest:
    listeners = topology.listeners
    ingress = [
        # The public edge: any client (an ingress controller, a load balancer, a pod).
        {"ports": _tcp(listeners.public)},
        {"from": _pods(*INTERNAL_CALLERS), "ports": _tcp(listeners.internal)},
        {"from": _monitoring(), "ports": _tcp(listeners.ops)},
    ]
    egress = [{"to": _pods(spec.name), "ports": _tcp(spec.port)} for spec in topology.services]
    return _policy(ENVOY, ENVOY, ingress, egress)


def redis_policy() -> Manifest:
    return _policy(REDIS, REDIS, [{"from": _pods(*REDIS_USERS), "ports": _tcp(REDIS_PORT)}], [])


def network_policies(topology: Topology) -> list[Manifest]:
    return [
        default_deny(),
        dns_egress(),
        *(service_policy(topology, spec.name) for spec in topology.services),
        envoy_policy(topology),
        redis_policy(),
    ]
