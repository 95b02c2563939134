"""Envoy's tracing as rendered: nothing without an endpoint; with one, both request
listeners trace to the collector cluster at the configured ratio, with request ids that
neither carry nor decide the sampling. Envoy itself validates the rendered configs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.tracing_config import TracingSettings, tracing_settings
from services.launcher import envoy_config, envoy_process
from services.launcher.envoy_tracing import LISTENER_TAG, OTEL_CLUSTER, with_tracing
from services.launcher.stack import REPO_ROOT, tracing_names
from services.launcher.topology import (
    compose_placement,
    k8s_placement,
    load_topology,
    local_placement,
)


def _settings(endpoint: str, **env: str) -> TracingSettings:
    settings = tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **env})
    assert settings is not None
    return settings


def _render(tracing: TracingSettings | None, name: str | None = None) -> dict[str, Any]:
    topology = load_topology()
    return envoy_config.render(
        topology,
        local_placement(topology),
        "local",
        envoy_config.DEFAULT_DESCRIPTOR,
        tracing=tracing,
        tracing_name=name,
    )


def _hcms(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]
        for listener in config["static_resources"]["listeners"]
    }


def _cluster(config: dict[str, Any]) -> dict[str, Any] | None:
    clusters = config["static_resources"]["clusters"]
    return next((c for c in clusters if c["name"] == OTEL_CLUSTER), None)


def test_without_an_endpoint_envoy_does_not_trace() -> None:
    config = _render(None)
    for hcm in _hcms(config).values():
        assert "tracing" not in hcm
        assert "request_id_extension" not in hcm
    assert _cluster(config) is None


def test_both_request_listeners_trace_over_otlp_grpc(tmp_path: Path) -> None:
    settings = _settings(
        "http://127.0.0.1:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.05",
    )
    config = _render(settings)
    hcms = _hcms(config)
    assert "tracing" not in hcms["ops"]
    for name in ("public", "internal"):
        tracing = hcms[name]["tracing"]
        assert tracing["random_sampling"] == {"value": 5.0}
        assert tracing["spawn_upstream_span"] is False
        assert tracing["custom_tags"] == [{"tag": LISTENER_TAG, "literal": {"value": name}}]
        provider = tracing["provider"]["typed_config"]
        assert provider["service_name"] == "envoy"
        assert provider["grpc_service"]["envoy_grpc"] == {"cluster_name": OTEL_CLUSTER}
        request_ids = hcms[name]["request_id_extension"]["typed_config"]
        assert request_ids["pack_trace_reason"] is False
        assert request_ids["use_request_id_for_trace_sampling"] is False
    cluster = _cluster(config)
    assert cluster is not None and cluster["type"] == "STATIC"
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4317}
    assert "http2_protocol_options" in str(cluster["typed_extension_protocol_options"])
    envoy_process.validate_config(envoy_config.write_config(config, tmp_path / "envoy.yaml"))


def test_otlp_http_to_a_named_tls_collector(tmp_path: Path) -> None:
    settings = _settings("https://otel.example.com", OTEL_SERVICE_NAME="edge")
    config = _render(settings, "shop-envoy")
    provider = _hcms(config)["public"]["tracing"]["provider"]["typed_config"]
    assert provider["service_name"] == "shop-envoy"
    assert provider["http_service"]["http_uri"]["uri"] == "https://otel.example.com:443/v1/traces"
    cluster = _cluster(config)
    assert cluster is not None and cluster["type"] == "STRICT_DNS"
    assert cluster["transport_socket"]["typed_config"]["sni"] == "otel.example.com"
    envoy_process.validate_config(envoy_config.write_config(config, tmp_path / "envoy.yaml"))


@pytest.mark.parametrize(
    ("given", "router", "envoy"),
    [("", "llmgw-router", "envoy"), ("shop", "shop-router", "shop-envoy")],
)
def test_the_launcher_names_every_process(given: str, router: str, envoy: str) -> None:
    names = tracing_names(_settings("http://127.0.0.1:4317", OTEL_SERVICE_NAME=given))
    assert (names["router"], names["envoy"]) == (router, envoy)
    assert len(set(names.values())) == len(names) == 6


@pytest.mark.parametrize(
    ("committed", "mode"),
    [("deploy/compose/envoy.yaml", "compose"), ("deploy/k8s/base/generated/envoy.yaml", "k8s")],
)
def test_the_entrypoint_adds_to_a_committed_config_what_a_traced_render_has(
    committed: str, mode: envoy_config.Mode
) -> None:
    settings = _settings("http://otel-collector:4317", OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    topology = load_topology()
    placement = compose_placement(topology) if mode == "compose" else k8s_placement(topology)
    rendered = envoy_config.render(
        topology, placement, mode, envoy_config.CONTAINER_DESCRIPTOR_PATH, tracing=settings
    )
    config = yaml.safe_load((REPO_ROOT / committed).read_text(encoding="utf-8"))
    assert _cluster(config) is None

    traced = with_tracing(config, settings)

    assert traced == rendered
    # Once is enough: a config that traces already is left as it is.
    assert with_tracing(copy.deepcopy(traced), _settings("http://elsewhere:4317")) == rendered
