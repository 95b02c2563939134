"""The Kubernetes workloads of the gateway, built from the topology.

Envoy's k8s config (`envoy_config.render` with `k8s_placement`) addresses each service
as `<service>.<namespace>.svc.cluster.local`; the headless Services built here carry
exactly those names, and every port, health service name and drain time below comes
from envoy/topology.yaml and the services' settings, so the manifests and the Envoy
config cannot disagree. `k8s_render` writes the results under deploy/k8s/ (the
kustomize base and components), where a test keeps them equal to a fresh render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.settings import DEFAULT_PORTS
from services.launcher.envoy_config import REQUEST_DEADLINE_SLACK
from services.launcher.k8s_tracing import tracing_env
from services.launcher.topology import ServiceSpec, Topology

Manifest = dict[str, Any]

NAMESPACE = "llm-gateway"
PART_OF = "llm-gateway"
COMPONENT_LABEL = "app.kubernetes.io/component"
# The image deploy/Dockerfile builds; overlays retag it (`kustomize edit set image`).
IMAGE = "llm-gateway:dev"
APP_UID = 10001
ENVOY = "envoy"
ENVOY_INTERNAL_SERVICE = "envoy-internal"
REDIS = "redis"
REDIS_PORT = 6379
# Objects the operator creates (never committed): deploy/k8s/README.md.
SECRET = "llm-gateway-secrets"
PROVIDER_SECRET = "llm-gateway-provider-keys"
SETTINGS = "llm-gateway-settings"
GATEWAY_CONFIG = "llm-gateway-config"
ENVOY_CONFIG = "envoy-config"
GATEWAY_CONFIG_DIR = "/etc/llmgw"
ENVOY_CONFIG_DIR = "/etc/llmgw-envoy"
# Services that keep state in Redis (compose gives the same ones LLMGW_REDIS_URL).
REDIS_USERS = ("router", "session", "tool", "investigation")
# Services that build the catalogue from, or call, the providers: they get the keys.
PROVIDER_KEY_USERS = ("router", "provider")
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
# Envoy re-resolves each service's name this often (envoy_config._cluster, STRICT_DNS).
ENVOY_DNS_REFRESH_SECONDS = 5
# What a process may take after its drain before the kubelet kills it (cleanup hooks).
EXIT_MARGIN_SECONDS = 15


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def manifest(self) -> Manifest:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


RESOURCES: Mapping[str, Resources] = {
    "router": Resources("250m", "256Mi", "2", "1Gi"),
    "provider": Resources("250m", "256Mi", "2", "1Gi"),
    "session": Resources("100m", "128Mi", "1", "512Mi"),
    "tool": Resources("100m", "128Mi", "1", "512Mi"),
    "investigation": Resources("100m", "256Mi", "1", "1Gi"),
    ENVOY: Resources("250m", "128Mi", "2", "512Mi"),
}
BASE_REPLICAS = 2


def labels(component: str) -> dict[str, str]:
    """The selector labels of one component's pods (stable: selectors are immutable)."""
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": PART_OF}


def object_labels(component: str) -> dict[str, str]:
    return {**labels(component), COMPONENT_LABEL: component}


def meta(name: str, component: str) -> Manifest:
    return {"name": name, "labels": object_labels(component)}


def service_dns(name: str, namespace: str = NAMESPACE) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def internal_address(topology: Topology, namespace: str = NAMESPACE) -> str:
    """LLMGW_INTERNAL_ADDR: Envoy's internal listener through its own Service."""
    return f"{service_dns(ENVOY_INTERNAL_SERVICE, namespace)}:{topology.listeners.internal}"


def prestop_seconds(topology: Topology) -> int:
    """How long a service keeps serving after Kubernetes starts removing it.

    Envoy stops sending new requests to a replica once its name no longer resolves to it
    (DNS refresh) or its health checks failed twice; only then does SIGTERM make the
    service refuse new calls, so none is refused while Envoy still routes to it.
    """
    hc = topology.cluster_policy.health_check
    return int(ENVOY_DNS_REFRESH_SECONDS + hc.interval * hc.unhealthy_threshold + 1)


def shutdown_grace_seconds(topology: Topology) -> int:
    """LLMGW_SHUTDOWN_GRACE: in-flight RPCs may finish; none outlives the request deadline."""
    return int(topology.cluster_policy.request_deadline)


def service_termination_seconds(topology: Topology) -> int:
    return prestop_seconds(topology) + shutdown_grace_seconds(topology) + EXIT_MARGIN_SECONDS


def envoy_drain_seconds(topology: Topology) -> int:
    """The longest a stream through Envoy can last (its own max_stream_duration)."""
    return int(topology.cluster_policy.request_deadline + REQUEST_DEADLINE_SLACK)


def envoy_termination_seconds(topology: Topology) -> int:
    return envoy_drain_seconds(topology) + EXIT_MARGIN_SECONDS


def _pod_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "fsGroup": APP_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Manifest:
    """Unprivileged, no capabilities, read-only root (compose's x-hardening)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def tmp_volume() -> Manifest:
    return {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}


def _secret_env(name: str, secret: str, key: str, *, optional: bool) -> Manifest:
    ref: Manifest = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _settings_env(name: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": SETTINGS, "key": key}}}


def _service_env(topology: Topology, spec: ServiceSpec) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": "LLMGW_SERVICE", "value": spec.name},
        {"name": "LLMGW_INTERNAL_ADDR", "value": internal_address(topology)},
        {"name": "LLMGW_CONFIG", "value": f"{GATEWAY_CONFIG_DIR}/gateway.yaml"},
        # Pods listen on the cluster network: every public RPC needs an API key.
        {"name": "LLMGW_AUTH", "value": "required"},
        {"name": "LLMGW_SHUTDOWN_GRACE", "value": str(shutdown_grace_seconds(topology))},
        _settings_env("LLMGW_LOG_LEVEL", "log-level"),
        _secret_env("LLMGW_INTERNAL_SECRET", SECRET, "internal-secret", optional=False),
        _secret_env("LLMGW_ADMIN_KEY", SECRET, "admin-key", optional=True),
    ]
    if spec.name in REDIS_USERS:
        env.append(_settings_env("LLMGW_REDIS_URL", "redis-url"))
    if spec.name in PROVIDER_KEY_USERS:
        env += [
            _secret_env(key, PROVIDER_SECRET, key.lower().replace("_", "-"), optional=True)
            for key in PROVIDER_KEYS
        ]
    return [*env, *tracing_env(spec.name, SETTINGS)]


def _grpc_probe(port: int, health_service: str, period: int, failures: int) -> Manifest:
    return {
        "grpc": {"port": port, "service": health_service},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _spread(component: str) -> list[Manifest]:
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels(component)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def _deployment(
    name: str, containers: list[Manifest], volumes: list[Manifest], termination: int
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, name),
        "spec": {
            "replicas": BASE_REPLICAS,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": object_labels(name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": _pod_security(),
                    "terminationGracePeriodSeconds": termination,
                    "topologySpreadConstraints": _spread(name),
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }


def service_deployment(topology: Topology, spec: ServiceSpec) -> Manifest:
    """One gRPC service: grpc.health.v1 probes, a drain sized from the topology."""
    port, metrics = DEFAULT_PORTS[spec.name]
    if port != spec.port:
        raise ValueError(f"{spec.name}: topology port {spec.port} is not its default {port}")
    health = spec.health_service
    container = {
        "name": spec.name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": _service_env(topology, spec),
        "ports": [
            {"name": "grpc", "containerPort": port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": metrics, "protocol": "TCP"},
        ],
        # SERVING only once every required dependency answers; a replica whose Redis
        # is gone leaves the endpoints. Liveness waits a minute of that before a restart.
        "startupProbe": _grpc_probe(port, health, 2, 60),
        "readinessProbe": _grpc_probe(port, health, 5, 2),
        "livenessProbe": _grpc_probe(port, health, 10, 6),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(prestop_seconds(topology))]}}},
        "resources": RESOURCES[spec.name].manifest(),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "config", "mountPath": GATEWAY_CONFIG_DIR, "readOnly": True},
        ],
    }
    volumes = [tmp_volume(), {"name": "config", "configMap": {"name": GATEWAY_CONFIG}}]
    return _deployment(spec.name, [container], volumes, service_termination_seconds(topology))


def envoy_deployment(topology: Topology) -> Manifest:
    """Envoy on the config rendered for k8s; its preStop drains open streams first."""
    listeners = topology.listeners
    container = {
        "name": ENVOY,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "LLMGW_SERVICE", "value": ENVOY},
            {"name": "LLMGW_ENVOY_CONFIG", "value": f"{ENVOY_CONFIG_DIR}/envoy.yaml"},
            _settings_env("ENVOY_LOG_LEVEL", "envoy-log-level"),
            # The entrypoint derives the edge token from it and drops it before exec.
            _secret_env("LLMGW_INTERNAL_SECRET", SECRET, "internal-secret", optional=False),
            *tracing_env(ENVOY, SETTINGS),
        ],
        "ports": [
            {"name": "public", "containerPort": listeners.public, "protocol": "TCP"},
            {"name": "internal", "containerPort": listeners.internal, "protocol": "TCP"},
            {"name": "ops", "containerPort": listeners.ops, "protocol": "TCP"},
        ],
        # /ready through the read-only ops listener: LIVE once clusters are initialised,
        # 503 while draining. Liveness only asks whether Envoy still accepts connections.
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "ops"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "tcpSocket": {"port": "ops"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 6,
        },
        "lifecycle": {
            "preStop": {
                "exec": {
                    "command": [
                        "python",
                        "/app/entrypoint.py",
                        "drain",
                        str(envoy_drain_seconds(topology)),
                    ]
                }
            }
        },
        "resources": RESOURCES[ENVOY].manifest(),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "config", "mountPath": ENVOY_CONFIG_DIR, "readOnly": True},
        ],
    }
    volumes = [tmp_volume(), {"name": "config", "configMap": {"name": ENVOY_CONFIG}}]
    return _deployment(ENVOY, [container], volumes, envoy_termination_seconds(topology))


def _port(name: str, port: int, protocol: str) -> Manifest:
    return {
        "name": name,
        "port": port,
        "targetPort": name,
        "protocol": "TCP",
        "appProtocol": protocol,
    }


def service_service(spec: ServiceSpec) -> Manifest:
    """Headless: the name resolves to every ready replica (Envoy's STRICT_DNS cluster)."""
    port, metrics = DEFAULT_PORTS[spec.name]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(spec.name, spec.name),
        "spec": {
            "clusterIP": "None",
            "selector": labels(spec.name),
            "ports": [_port("grpc", port, "grpc"), _port("metrics", metrics, "http")],
        },
    }


def envoy_services(topology: Topology) -> list[Manifest]:
    """The public edge (and ops) Service, and the internal listener's own Service."""
    listeners = topology.listeners
    edge = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(ENVOY, ENVOY),
        "spec": {
            "type": "ClusterIP",
            "selector": labels(ENVOY),
            "ports": [
                _port("public", listeners.public, "http"),
                _port("ops", listeners.ops, "http"),
            ],
        },
    }
    internal = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(ENVOY_INTERNAL_SERVICE, ENVOY),
        "spec": {
            "type": "ClusterIP",
            "selector": labels(ENVOY),
            "ports": [_port("internal", listeners.internal, "grpc")],
        },
    }
    return [edge, internal]


def disruption_budget(component: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(component, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(component)}},
    }


def workloads(topology: Topology) -> list[Manifest]:
    """Deployments, Services and disruption budgets of the services and Envoy."""
    objects: list[Manifest] = []
    for spec in topology.services:
        objects += [service_deployment(topology, spec), service_service(spec)]
        objects.append(disruption_budget(spec.name))
    objects += [envoy_deployment(topology), *envoy_services(topology), disruption_budget(ENVOY)]
    return objects
