"""Envoy's part of the gateway's traces: OpenTelemetry tracing on the public and internal
listeners, exported over OTLP to the collector the services use.

Rendered only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (services/common/tracing_config.py
reads it for Envoy and the services alike). Each listener's connection manager opens one
span per request (`spawn_upstream_span` off: the service behind answers with its own server
span, a child of Envoy's) and sends `traceparent` upstream, so a chat is one tree: Envoy
(public) -> router -> Envoy (internal) -> provider -> upstream HTTP.

Sampling, and what a caller can do with it. A request without a `traceparent` is sampled
at the configured ratio (`random_sampling`, from the sampler's argument). A request with
one continues the caller's trace (same trace id, the caller's span as parent) and, as
every standard parent-based sampler does, keeps the caller's sampled flag: callers that
trace their own requests get one trace across their system and ours. A caller can so
have its own requests sampled, no one else's; each is authenticated and rate limited
like any other, costs a handful of spans, and every exporter on the way has a bounded
queue that drops spans rather than slowing requests. What a caller can NOT do: pick the
sampling through `x-request-id` (Envoy's default derives the decision from it; here it is
random) or have its request id rewritten (Envoy's default packs the decision into a
UUID request id, which would change the id that idempotency and logs use).
"""

from __future__ import annotations

from typing import Any

from services.common.tracing_config import TracingSettings

Config = dict[str, Any]

OTEL_CLUSTER = "otel_collector"
DEFAULT_SERVICE_NAME = "envoy"
# Seconds one export from Envoy may take.
EXPORT_TIMEOUT = "2s"
# Debian's (and the Envoy images') CA bundle, for an https:// collector.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The tag that tells the two listeners' spans apart.
LISTENER_TAG = "llmgw.listener"

_TYPE = "type.googleapis.com/envoy"


def service_name(settings: TracingSettings) -> str:
    return settings.service_name or DEFAULT_SERVICE_NAME


def _exporter(settings: TracingSettings) -> Config:
    if settings.protocol == "grpc":
        return {
            "grpc_service": {
                "envoy_grpc": {"cluster_name": OTEL_CLUSTER},
                "timeout": EXPORT_TIMEOUT,
            }
        }
    return {
        "http_service": {
            "http_uri": {
                "uri": settings.collector.url + "/v1/traces",
                "cluster": OTEL_CLUSTER,
                "timeout": EXPORT_TIMEOUT,
            }
        }
    }


def hcm_tracing(settings: TracingSettings, listener: str, name: str | None = None) -> Config:
    """The `tracing` block of one listener's HTTP connection manager.

    `name`: the spans' service name (default: OTEL_SERVICE_NAME, else "envoy").
    """
    return {
        "random_sampling": {"value": settings.sampling_percent},
        "spawn_upstream_span": False,
        "custom_tags": [{"tag": LISTENER_TAG, "literal": {"value": listener}}],
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": f"{_TYPE}.config.trace.v3.OpenTelemetryConfig",
                "service_name": name or service_name(settings),
                **_exporter(settings),
            },
        },
    }


def request_id_extension() -> Config:
    """UUID request ids that neither carry nor decide the trace decision (module doc)."""
    return {
        "typed_config": {
            "@type": f"{_TYPE}.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            "pack_trace_reason": False,
            "use_request_id_for_trace_sampling": False,
        }
    }


def collector_cluster(settings: TracingSettings, connect_timeout: str) -> Config:
    """The cluster Envoy exports spans to (HTTP/2 for OTLP/gRPC, TLS for https)."""
    collector = settings.collector
    cluster: Config = {"name": OTEL_CLUSTER, "connect_timeout": connect_timeout}
    if collector.is_ip:
        cluster["type"] = "STATIC"
    else:
        cluster["type"] = "STRICT_DNS"
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    cluster["load_assignment"] = {
        "cluster_name": OTEL_CLUSTER,
        "endpoints": [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socket_address": {
                                    "address": collector.host,
                                    "port_value": collector.port,
                                }
                            }
                        }
                    }
                ]
            }
        ],
    }
    if settings.protocol == "grpc":
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": f"{_TYPE}.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    if collector.scheme == "https":
        # The collector's certificate is checked against the system's CAs and its name.
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": f"{_TYPE}.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": collector.host,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": {"filename": SYSTEM_CA_BUNDLE},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": collector.host}}
                        ],
                    }
                },
            },
        }
    return cluster


# The listeners whose requests are traced (the ops listener's scrapes are not).
TRACED_LISTENERS = ("public", "internal")
_HCM = "envoy.filters.network.http_connection_manager"


def with_tracing(config: Config, settings: TracingSettings) -> Config:
    """A rendered config (`envoy_config.render` without tracing) with the tracing the
    render would have given it: what the container entrypoint does when Envoy starts
    with OTEL_EXPORTER_OTLP_ENDPOINT set, so the committed compose and Kubernetes configs
    stay free of any collector address. The collector cluster takes the connect timeout
    of the rendered clusters. A config that already traces is returned unchanged."""
    resources = config["static_resources"]
    clusters: list[Config] = resources["clusters"]
    if any(cluster["name"] == OTEL_CLUSTER for cluster in clusters):
        return config
    for listener in resources["listeners"]:
        if listener["name"] not in TRACED_LISTENERS:
            continue
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["name"] == _HCM:
                    hcm = network_filter["typed_config"]
                    hcm["tracing"] = hcm_tracing(settings, listener["name"])
                    hcm["request_id_extension"] = request_id_extension()
    clusters.append(collector_cluster(settings, clusters[0]["connect_timeout"]))
    return config
