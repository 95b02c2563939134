"""Renders the Envoy bootstrap config from the topology and a placement.

The same function produces the local config (the launcher's processes on loopback), and
the static compose and k8s configs (`python -m services.launcher.envoy_config --mode
compose --out PATH`). Routing is by gRPC path: the public listener's transcoder turns REST
calls into gRPC calls first, so one route table serves REST and gRPC clients.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import any_pb2, descriptor_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.common.caller import CLIENT_ADDRESS_HEADER
from services.common.identity.assertion import ASSERTION_HEADER, EDGE_TOKEN_ENV, EDGE_TOKEN_HEADER
from services.common.tracing_config import TracingSettings, tracing_settings
from services.launcher import envoy_tracing
from services.launcher.topology import (
    DEFAULT_TOPOLOGY_PATH,
    ENVOY_DIR,
    LOOPBACK,
    MODES,
    ClusterPolicy,
    Endpoint,
    Limits,
    Mode,
    Placement,
    ServiceSpec,
    Topology,
    compose_placement,
    k8s_placement,
    load_topology,
    local_placement,
)

Config = dict[str, Any]

DEFAULT_DESCRIPTOR = ENVOY_DIR.parent / "gen" / "descriptor" / "llmgw.binpb"
# Where the compose and k8s images mount the descriptor set.
CONTAINER_DESCRIPTOR_PATH = "/etc/envoy/llmgw.binpb"
OPENAI_COMPAT_LUA = ENVOY_DIR / "openai_compat.lua"
ROUTE_HEADERS_LUA = ENVOY_DIR / "route_headers.lua"

# Failures that prove the request never reached a servicer: no connection could be made,
# the replica refused the HTTP/2 stream (REFUSED_STREAM), or the stream was reset before
# Envoy sent it any byte. Only these are retried for methods that may have side effects
# (a paid model call, a session append, a tool run): a reset after the request went out
# may come from a replica that did the work and died before answering.
RETRY_ON_UNSENT = "connect-failure,refused-stream,reset-before-request"
# Methods the proto declares NO_SIDE_EFFECTS or IDEMPOTENT may run again: they are also
# retried after any reset and on gRPC UNAVAILABLE.
RETRY_ON_IDEMPOTENT = "connect-failure,refused-stream,reset,unavailable"
_RETRYABLE_LEVELS = {
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
}

# The catch-all 404's text: gRPC clients get it as grpc-message (status UNIMPLEMENTED),
# REST clients as JSON (openai_compat.lua wraps Envoy's plain-text replies).
NOT_FOUND_BODY = "no such endpoint"

# The ops listener's routes: exactly these admin paths, GET only.
OPS_PATHS = ("/stats/prometheus", "/ready")
ADMIN_CLUSTER = "envoy_admin"

_TYPE = "type.googleapis.com/envoy.extensions"


def _duration(seconds: float) -> str:
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _socket(endpoint: Endpoint) -> Config:
    return {"socket_address": {"address": endpoint.host, "port_value": endpoint.port}}


def retryable_methods(descriptor_file: Path) -> dict[str, list[str]]:
    """Fully-qualified service -> its methods declared NO_SIDE_EFFECTS or IDEMPOTENT.

    Every service in the descriptor set appears (with an empty list when none qualify),
    so a missing key means the service is not in the descriptor set at all.
    """
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(Path(descriptor_file).read_bytes())
    methods: dict[str, list[str]] = {}
    for file in files.file:
        prefix = f"{file.package}." if file.package else ""
        for service in file.service:
            methods[prefix + service.name] = [
                m.name for m in service.method if m.options.idempotency_level in _RETRYABLE_LEVELS
            ]
    return methods


def _retry_policy(policy: ClusterPolicy, retry_on: str) -> Config:
    retry = policy.retry
    return {
        "retry_on": retry_on,
        "num_retries": retry.num_retries,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": f"{_TYPE}.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": retry.host_selection_retry_max_attempts,
        "retry_back_off": {
            "base_interval": _duration(retry.base_interval),
            "max_interval": _duration(retry.max_interval),
        },
    }


# Envoy lets a request run this much past the ceiling: the service ends it first, with a
# DEADLINE_EXCEEDED status of its own instead of a reset stream.
REQUEST_DEADLINE_SLACK = 5.0


def _route(name: str, match: Config, cluster: str, policy: ClusterPolicy, retry_on: str) -> Config:
    return {
        "name": name,
        "match": match,
        "route": {
            "cluster": cluster,
            # Streams outlive any per-request timeout; the request deadline bounds them
            # instead: a client's grpc-timeout up to the ceiling, the ceiling without one.
            "timeout": "0s",
            "max_stream_duration": {
                "max_stream_duration": _duration(policy.request_deadline + REQUEST_DEADLINE_SLACK),
                "grpc_timeout_header_max": _duration(
                    policy.request_deadline + REQUEST_DEADLINE_SLACK
                ),
            },
            "retry_policy": _retry_policy(policy, retry_on),
        },
    }


def _service_routes(
    grpc_service: str, cluster: str, retryable: Sequence[str], policy: ClusterPolicy
) -> list[Config]:
    """Exact routes for retryable methods first, then the service's prefix route."""
    routes = [
        _route(
            f"{grpc_service}/{method}",
            {"path": f"/{grpc_service}/{method}"},
            cluster,
            policy,
            RETRY_ON_IDEMPOTENT,
        )
        for method in retryable
    ]
    routes.append(
        _route(grpc_service, {"prefix": f"/{grpc_service}/"}, cluster, policy, RETRY_ON_UNSENT)
    )
    return routes


def _not_found() -> Config:
    return {
        "name": "not_found",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": NOT_FOUND_BODY}},
    }


def _route_config(name: str, routes: list[Config], *, public: bool = False) -> Config:
    not_found = _not_found()
    config: Config = {
        "name": name,
        "virtual_hosts": [{"name": name, "domains": ["*"], "routes": [*routes, not_found]}],
    }
    if public:
        # The services check IP allow-lists against this header. At the public edge it
        # is always Envoy's own view of the connecting peer: a caller's value is
        # replaced, never trusted (x-forwarded-for can be prefixed by anyone, and
        # x-envoy-external-address is not set for private-network peers). The edge token
        # (from Envoy's environment, replacing a caller's) is what lets the services
        # believe it; a caller's principal assertion never gets past this listener.
        config["request_headers_to_add"] = [
            {
                "header": {
                    "key": CLIENT_ADDRESS_HEADER,
                    "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                },
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
            {
                "header": {"key": EDGE_TOKEN_HEADER, "value": f"%ENVIRONMENT({EDGE_TOKEN_ENV})%"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
        ]
        config["request_headers_to_remove"] = [ASSERTION_HEADER]
    else:
        # Service-to-service calls prove themselves with a principal assertion only: the
        # public edge's headers mean nothing here, whoever sent them.
        config["request_headers_to_remove"] = [CLIENT_ADDRESS_HEADER, EDGE_TOKEN_HEADER]
    return config


def _access_log(listener: str, access_log_path: str | None) -> list[Config]:
    """One JSON object per request, to stdout or a file."""
    log_format = {
        "json_format": {
            "time": "%START_TIME%",
            "listener": listener,
            "request_id": "%REQ(X-REQUEST-ID)%",
            "method": "%REQ(:METHOD)%",
            # The client's path (the transcoder keeps it in x-envoy-original-path) and
            # the gRPC path the request was routed by.
            "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
            "grpc_path": "%REQ(:PATH)%",
            "protocol": "%PROTOCOL%",
            "status": "%RESPONSE_CODE%",
            "grpc_status": "%GRPC_STATUS(NUMBER)%",
            "duration_ms": "%DURATION%",
            "upstream_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
            "upstream_cluster": "%UPSTREAM_CLUSTER%",
            "upstream_host": "%UPSTREAM_HOST%",
            "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
            "response_flags": "%RESPONSE_FLAGS%",
            "bytes_received": "%BYTES_RECEIVED%",
            "bytes_sent": "%BYTES_SENT%",
            "user_agent": "%REQ(USER-AGENT)%",
        }
    }
    if access_log_path is None:
        return [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": f"{_TYPE}.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": log_format,
                },
            }
        ]
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": f"{_TYPE}.access_loggers.file.v3.FileAccessLog",
                "path": access_log_path,
                "log_format": log_format,
            },
        }
    ]


def _router_filter() -> Config:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": f"{_TYPE}.filters.http.router.v3.Router"},
    }


def lua_limits_prelude(limits: Limits) -> str:
    """The Lua lines openai_compat.lua reads its limits from (prepended when inlined)."""
    return (
        "-- Rendered by services/launcher/envoy_config.py from envoy/topology.yaml `limits`.\n"
        f"local MAX_REQUEST_HEADER_BYTES = {limits.max_request_header_bytes}\n"
    )


def _public_filters(topology: Topology, descriptor_path: str, lua_source: str) -> list[Config]:
    public_services = [g for s in topology.services if s.public for g in s.grpc_services]
    return [
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": f"{_TYPE}.filters.http.lua.v3.Lua",
                "default_source_code": {
                    "inline_string": lua_limits_prelude(topology.limits) + lua_source
                },
            },
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": {
                "@type": f"{_TYPE}.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                "proto_descriptor": descriptor_path,
                "services": public_services,
                "print_options": {
                    "preserve_proto_field_names": True,
                    "always_print_primitive_fields": True,
                    "stream_sse_style_delimited": True,
                },
                "convert_grpc_status": True,
                # Routes match the gRPC path the transcoder produced (it clears the route
                # cache); matching the incoming REST path would miss every route.
                "match_incoming_request_route": False,
                # OpenAI-compatible clients may add query parameters (Azure's api-version);
                # unmapped ones are ignored rather than failing the route match.
                "ignore_unknown_query_parameters": True,
                "max_request_body_size": topology.max_request_body_bytes,
            },
        },
        {
            "name": "llmgw.route_headers",
            "typed_config": {
                "@type": f"{_TYPE}.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": ROUTE_HEADERS_LUA.read_text("utf-8")},
            },
        },
        _router_filter(),
    ]


def overload_message(limits: Limits) -> str:
    """The text of Envoy's reply when a circuit breaker overflows."""
    seconds = limits.overload_retry_after_seconds
    return f"the gateway is at its concurrency limit; retry after {seconds} s"


def overload_status_details(limits: Limits) -> str:
    """grpc-status-details-bin of the overload reply: UNAVAILABLE with a RetryInfo.

    Unpadded base64, as gRPC sends binary metadata; gRPC clients read it with
    `grpc_status.rpc_status.from_call`, and the transcoder turns it into the JSON
    Status's `details` for REST clients.
    """
    retry_info = any_pb2.Any()
    retry_info.Pack(
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=limits.overload_retry_after_seconds)
        )
    )
    status = status_pb2.Status(
        code=code_pb2.UNAVAILABLE, message=overload_message(limits), details=[retry_info]
    )
    return base64.b64encode(status.SerializeToString()).decode("ascii").rstrip("=")


# Envoy's reply when the replica serving a request closed its connection before
# answering (response flag UC): it may have done the work, so a method with side effects
# is not retried and the caller is told the outcome is unknown.
REPLICA_LOST_MESSAGE = (
    "the replica serving this request went away before answering; "
    "the request may or may not have been carried out"
)


def _local_reply_config(limits: Limits) -> Config:
    """Envoy's own replies where its text would not tell the caller what to do.

    Overload (UO: a circuit breaker overflowed) says when to retry: UNAVAILABLE (503)
    with RetryInfo for gRPC clients, 503 JSON with `retry-after` for REST clients. A
    replica lost mid-request (UC) says the outcome is unknown. Other local replies keep
    Envoy's text.
    """
    return {
        "mappers": [
            {
                "filter": {"response_flag_filter": {"flags": ["UC"]}},
                "body": {"inline_string": REPLICA_LOST_MESSAGE},
            },
            {
                "filter": {"response_flag_filter": {"flags": ["UO"]}},
                "headers_to_add": [
                    {
                        "header": {
                            "key": "retry-after",
                            "value": str(limits.overload_retry_after_seconds),
                        },
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    },
                    {
                        "header": {
                            "key": "grpc-status-details-bin",
                            "value": overload_status_details(limits),
                        },
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    },
                ],
                "body": {"inline_string": overload_message(limits)},
            },
        ]
    }


def _http_connection_manager(
    name: str,
    routes: list[Config],
    filters: list[Config],
    access_log_path: str | None,
    limits: Limits,
    *,
    tracing: TracingSettings | None = None,
    tracing_name: str | None = None,
) -> Config:
    hcm: Config = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": f"{_TYPE}.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name,
            # HTTP/1.1 (REST) and HTTP/2 (gRPC, REST) on the same port.
            "codec_type": "AUTO",
            "use_remote_address": True,
            # Envoy generates x-request-id when absent and forwards it upstream, where
            # services read it from gRPC metadata; a caller's own id is kept.
            "generate_request_id": True,
            "preserve_external_request_id": True,
            "always_set_request_id_in_response": True,
            "stream_idle_timeout": "300s",
            "max_request_headers_kb": limits.codec_max_request_headers_kb,
            "http2_protocol_options": {
                "max_concurrent_streams": limits.http2_max_concurrent_streams
            },
            "local_reply_config": _local_reply_config(limits),
            "access_log": _access_log(name, access_log_path),
            "route_config": _route_config(name, routes, public=name == "public"),
            "http_filters": filters,
        },
    }
    if tracing is not None:
        hcm["typed_config"]["tracing"] = envoy_tracing.hcm_tracing(tracing, name, tracing_name)
        hcm["typed_config"]["request_id_extension"] = envoy_tracing.request_id_extension()
    return hcm


def _ops_connection_manager() -> Config:
    """The read-only ops listener: GET /stats/prometheus and GET /ready, nothing else.

    Exact path matches (the query string is not part of the match, so Prometheus' own
    parameters pass) on the normalised path, GET only; anything else is the 404 of the
    other listeners. No access log: scrapes every few seconds would drown the rest.
    """
    get_only = [{"name": ":method", "string_match": {"exact": "GET"}}]
    routes = [
        {
            "name": f"ops{path.replace('/', '_')}",
            "match": {"path": path, "headers": get_only},
            "route": {"cluster": ADMIN_CLUSTER, "timeout": "10s"},
        }
        for path in OPS_PATHS
    ]
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": f"{_TYPE}.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ops",
            "codec_type": "AUTO",
            "normalize_path": True,
            "merge_slashes": True,
            "path_with_escaped_slashes_action": "REJECT_REQUEST",
            "route_config": {
                "name": "ops",
                "virtual_hosts": [
                    {"name": "ops", "domains": ["*"], "routes": [*routes, _not_found()]}
                ],
            },
            "http_filters": [_router_filter()],
        },
    }


def _admin_cluster(admin: Endpoint, policy: ClusterPolicy) -> Config:
    """Envoy's own admin interface, on loopback, as the ops listener's upstream."""
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": _duration(policy.connect_timeout),
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket(Endpoint(LOOPBACK, admin.port))}}
                    ]
                }
            ],
        },
    }


def _listener(
    name: str,
    endpoint: Endpoint,
    hcm: Config,
    buffer_limit: int | None = None,
    *,
    exclusive: bool = False,
) -> Config:
    listener: Config = {"name": name, "address": _socket(endpoint)}
    if exclusive:
        # Locally, a port another process holds must fail Envoy's start (the launcher
        # then picks other ports) instead of being shared through SO_REUSEPORT.
        listener["enable_reuse_port"] = False
    if buffer_limit is not None:
        listener["per_connection_buffer_limit_bytes"] = buffer_limit
    listener["filter_chains"] = [{"filters": [hcm]}]
    return listener


def _cluster(
    spec: ServiceSpec,
    endpoints: Sequence[Endpoint],
    policy: ClusterPolicy,
    dns: bool,
    limits: Limits,
) -> Config:
    hc = policy.health_check
    od = policy.outlier_detection
    cb = policy.circuit_breakers
    cluster: Config = {"name": spec.name}
    if dns:
        # STRICT_DNS: the name resolves to every replica (compose service, k8s headless
        # Service), re-resolved every few seconds.
        cluster["cluster_type"] = {
            "name": "envoy.clusters.dns",
            "typed_config": {
                "@type": f"{_TYPE}.clusters.dns.v3.DnsCluster",
                "dns_refresh_rate": "5s",
                "dns_lookup_family": "V4_PREFERRED",
            },
        }
    else:
        cluster["type"] = "STATIC"
    cluster |= {
        "connect_timeout": _duration(policy.connect_timeout),
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": f"{_TYPE}.upstreams.http.v3.HttpProtocolOptions",
                # gRPC needs HTTP/2 upstream; pings find replicas that vanished without
                # closing their connections.
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "10s"},
                        "max_concurrent_streams": limits.http2_max_concurrent_streams,
                    }
                },
            }
        },
        "load_assignment": {
            "cluster_name": spec.name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket(e)}} for e in endpoints]}
            ],
        },
        "health_checks": [
            {
                "timeout": _duration(hc.timeout),
                "interval": _duration(hc.interval),
                "unhealthy_threshold": hc.unhealthy_threshold,
                "healthy_threshold": hc.healthy_threshold,
                "no_traffic_interval": _duration(hc.no_traffic_interval),
                "grpc_health_check": {"service_name": spec.health_service},
            }
        ],
        "outlier_detection": {
            # Local-origin errors (connect failure, reset, timeout) are counted apart
            # from the statuses replicas answer; only they eject.
            "split_external_local_origin_errors": True,
            "consecutive_local_origin_failure": od.consecutive_local_origin_failure,
            "enforcing_consecutive_local_origin_failure": 100,
            "enforcing_consecutive_5xx": 0,
            "enforcing_consecutive_gateway_failure": 0,
            "interval": _duration(od.interval),
            "base_ejection_time": _duration(od.base_ejection_time),
            "max_ejection_percent": od.max_ejection_percent,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": cb.max_connections,
                    "max_pending_requests": cb.max_pending_requests,
                    "max_requests": cb.max_requests,
                    "max_retries": cb.max_retries,
                }
            ]
        },
    }
    return cluster


def _check_placement(topology: Topology, placement: Placement, mode: Mode) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not ipaddress.ip_address(placement.admin.host).is_loopback:
        # Admin can stop Envoy or fail its health checks: never beyond the machine.
        raise ValueError(f"Envoy admin must bind loopback, not {placement.admin.host!r}")
    for spec in topology.services:
        endpoints = placement.endpoints.get(spec.name)
        if not endpoints:
            raise ValueError(f"placement has no endpoints for service {spec.name!r}")
        if mode == "local":
            for endpoint in endpoints:
                try:
                    ipaddress.ip_address(endpoint.host)
                except ValueError:
                    raise ValueError(
                        f"local mode needs IP addresses; {spec.name} has {endpoint.host!r}"
                    ) from None


def _routes(
    services: Iterable[ServiceSpec], retryable: Mapping[str, list[str]], policy: ClusterPolicy
) -> list[Config]:
    routes: list[Config] = []
    for spec in services:
        for grpc_service in spec.grpc_services:
            if grpc_service not in retryable:
                raise ValueError(f"{grpc_service} is not in the descriptor set")
            routes += _service_routes(grpc_service, spec.name, retryable[grpc_service], policy)
    return routes


def render(
    topology: Topology,
    placement: Placement,
    mode: Mode,
    descriptor_path: Path | str,
    *,
    access_log_path: str | None = None,
    descriptor_file: Path | None = None,
    lua_file: Path = OPENAI_COMPAT_LUA,
    tracing: TracingSettings | None = None,
    tracing_name: str | None = None,
) -> Config:
    """The Envoy bootstrap config as a dict (write it with `write_config`).

    `descriptor_path` is where Envoy reads the descriptor set (a container path in
    compose and k8s); `descriptor_file` is the local copy read now for the methods'
    idempotency levels (default: the repository's gen/descriptor/llmgw.binpb, or
    `descriptor_path` in local mode). Access logs go to stdout unless `access_log_path`
    is given. With `tracing`, both request listeners trace (services/launcher/
    envoy_tracing.py), their spans named `tracing_name` (default: OTEL_SERVICE_NAME, else
    "envoy").
    """
    _check_placement(topology, placement, mode)
    if mode == "local":
        descriptor_path = Path(descriptor_path).resolve()
        descriptor_file = descriptor_file or descriptor_path
    retryable = retryable_methods(descriptor_file or DEFAULT_DESCRIPTOR)
    policy = topology.cluster_policy

    public_routes = _routes([s for s in topology.services if s.public], retryable, policy)
    for grpc_service, service in topology.public_extra_routes:
        public_routes += _service_routes(grpc_service, service, (), policy)
    internal_routes = _routes([s for s in topology.services if s.internal], retryable, policy)

    limits = topology.limits
    public = _http_connection_manager(
        "public",
        public_routes,
        _public_filters(topology, str(descriptor_path), Path(lua_file).read_text("utf-8")),
        access_log_path,
        limits,
        tracing=tracing,
        tracing_name=tracing_name,
    )
    internal = _http_connection_manager(
        "internal",
        internal_routes,
        [_router_filter()],
        access_log_path,
        limits,
        tracing=tracing,
        tracing_name=tracing_name,
    )
    exclusive = mode == "local"
    return {
        "node": {"id": f"llmgw-{mode}", "cluster": "llmgw"},
        "admin": {"address": _socket(placement.admin)},
        "static_resources": {
            "listeners": [
                _listener(
                    "public",
                    placement.public,
                    public,
                    topology.max_request_body_bytes,
                    exclusive=exclusive,
                ),
                _listener("internal", placement.internal, internal, exclusive=exclusive),
                _listener("ops", placement.ops, _ops_connection_manager(), exclusive=exclusive),
            ],
            "clusters": [
                *(
                    _cluster(spec, placement.endpoints[spec.name], policy, mode != "local", limits)
                    for spec in topology.services
                ),
                _admin_cluster(placement.admin, policy),
                *(
                    [envoy_tracing.collector_cluster(tracing, _duration(policy.connect_timeout))]
                    if tracing is not None
                    else []
                ),
            ],
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": f"{_TYPE}.resource_monitors.downstream_connections.v3."
                        "DownstreamConnectionsConfig",
                        "max_active_downstream_connections": limits.max_downstream_connections,
                    },
                }
            ]
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings (the inlined Lua) as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)

_HEADER = (
    "# Generated by services/launcher/envoy_config.py from envoy/topology.yaml and\n"
    "# envoy/openai_compat.lua. Do not edit: change those and re-render.\n"
)


def dump_config(config: Config) -> str:
    return _HEADER + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=100)


def write_config(config: Config, path: Path | str) -> Path:
    """Writes the config as YAML (atomically: Envoy may be reading the old file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_config(config), encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.launcher.envoy_config",
        description="Render the Envoy config for one deployment mode.",
    )
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--out", type=Path, required=True, help="YAML file to write")
    parser.add_argument("--topology", type=Path, default=DEFAULT_TOPOLOGY_PATH)
    parser.add_argument(
        "--descriptor-path",
        help=f"descriptor set path as Envoy sees it (compose/k8s: {CONTAINER_DESCRIPTOR_PATH})",
    )
    parser.add_argument("--namespace", default="llm-gateway", help="k8s namespace")
    parser.add_argument("--access-log", help="access log file (default: stdout)")
    args = parser.parse_args(argv)

    topology = load_topology(args.topology)
    mode: Mode = args.mode
    if mode == "local":
        placement = local_placement(topology)
        descriptor = args.descriptor_path or str(DEFAULT_DESCRIPTOR)
    else:
        placement = (
            compose_placement(topology)
            if mode == "compose"
            else k8s_placement(topology, args.namespace)
        )
        descriptor = args.descriptor_path or CONTAINER_DESCRIPTOR_PATH
    # Tracing when the OTEL_* variables of the rendering environment ask for it.
    config = render(
        topology,
        placement,
        mode,
        descriptor,
        access_log_path=args.access_log,
        tracing=tracing_settings(),
    )
    write_config(config, args.out)
    print(f"wrote {args.out} ({mode})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
