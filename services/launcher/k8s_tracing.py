"""Tracing on Kubernetes: the OTEL_* variables of every Deployment, and the egress that
lets the pods reach an OpenTelemetry collector.

Tracing is off until the `llm-gateway-settings` ConfigMap has an
`otel-exporter-otlp-endpoint` (deploy/k8s/base/kustomization.yaml shows the keys): each
variable is read from an optional key, so an absent key leaves it unset. Envoy reads the
same variables; its entrypoint adds tracing to the rendered config at start
(deploy/entrypoint.py), so the committed render never names a collector. Each
Deployment names its spans as `make up` names that process (`stack.tracing_names`).

The base's NetworkPolicies deny every egress they do not list; the `tracing` component
adds the one to the collector (`otlp-egress`): OTLP's ports in the namespace labelled
`COLLECTOR_NAMESPACE` (patch the label to match yours).
"""

from __future__ import annotations

from typing import Any

from services.common.tracing_config import (
    ENDPOINT_ENV,
    PROTOCOL_ENV,
    SAMPLER_ARG_ENV,
    SAMPLER_ENV,
    SERVICE_NAME_ENV,
)

# (k8s_manifests imports this module, so its names are passed in, not imported.)
Manifest = dict[str, Any]
ENVOY = "envoy"

# Variable -> key of the settings ConfigMap.
SETTINGS_KEYS = {
    ENDPOINT_ENV: "otel-exporter-otlp-endpoint",
    PROTOCOL_ENV: "otel-exporter-otlp-protocol",
    SAMPLER_ENV: "otel-traces-sampler",
    SAMPLER_ARG_ENV: "otel-traces-sampler-arg",
}
# OTLP/gRPC and OTLP/HTTP.
OTLP_PORTS = (4317, 4318)
COLLECTOR_NAMESPACE = {"kubernetes.io/metadata.name": "observability"}
EGRESS_POLICY = "otlp-egress"


def span_service_name(component: str) -> str:
    """`llmgw-<service>`, and `envoy` for Envoy (the launcher's names)."""
    return ENVOY if component == ENVOY else f"llmgw-{component}"


def tracing_env(component: str, settings: str) -> list[Manifest]:
    """The tracing variables of one component's container (`settings`: the ConfigMap)."""
    env: list[Manifest] = [{"name": SERVICE_NAME_ENV, "value": span_service_name(component)}]
    for variable, key in SETTINGS_KEYS.items():
        ref = {"name": settings, "key": key, "optional": True}
        env.append({"name": variable, "valueFrom": {"configMapKeyRef": ref}})
    return env


def collector_egress(components: list[str], part_of: str) -> Manifest:
    """Egress from the components' pods to the collector's OTLP ports."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": EGRESS_POLICY, "labels": {"app.kubernetes.io/part-of": part_of}},
        "spec": {
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": components}
                ]
            },
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": COLLECTOR_NAMESPACE}}],
                    "ports": [{"protocol": "TCP", "port": port} for port in OTLP_PORTS],
                }
            ],
        },
    }
