"""The topology loader and the rendered Envoy config's structure; Envoy validates it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.launcher import envoy_config, envoy_process
from services.launcher.envoy_config import (
    DEFAULT_DESCRIPTOR,
    RETRY_ON_IDEMPOTENT,
    RETRY_ON_UNSENT,
    dump_config,
    lua_limits_prelude,
    render,
    retryable_methods,
)
from services.launcher.topology import (
    DEFAULT_TOPOLOGY_PATH,
    Topology,
    TopologyError,
    compose_placement,
    k8s_placement,
    load_topology,
    local_placement,
)
from tests.integration.envoy_support.descriptor import read_descriptor, unsupported_rules

PUBLIC_SERVICES = {
    "llmgw.router.v1.RouterService",
    "llmgw.router.v1.CompatService",
    "llmgw.router.v1.EmbeddingsService",
    "llmgw.router.v1.AdminService",
    "llmgw.identity.v1.IdentityService",
    "llmgw.session.v1.SessionService",
    "llmgw.tool.v1.ToolService",
    "llmgw.investigation.v1.InvestigationService",
}
PROVIDER = "llmgw.provider.v1.ProviderService"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology()


@pytest.fixture(scope="module")
def descriptor() -> Path:
    return DEFAULT_DESCRIPTOR


@pytest.fixture(scope="module")
def local(topology: Topology, descriptor: Path) -> dict[str, Any]:
    return render(topology, local_placement(topology, {"router": 2}), "local", descriptor)


def _listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    for listener in config["static_resources"]["listeners"]:
        if listener["name"] == name:
            hcm: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
            return hcm
    raise KeyError(name)


def _routes(config: dict[str, Any], listener: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = _listener(config, listener)["route_config"]["virtual_hosts"][0][
        "routes"
    ]
    return routes


def _match(route: dict[str, Any]) -> str:
    match: dict[str, str] = route["match"]
    return match.get("path") or match["prefix"]


def _clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


# --- topology -------------------------------------------------------------------------


def test_topology_describes_every_service(topology: Topology) -> None:
    assert [s.name for s in topology.services] == [
        "router",
        "provider",
        "session",
        "tool",
        "investigation",
    ]
    assert (topology.listeners.public, topology.listeners.internal) == (8080, 8081)
    assert (topology.listeners.ops, topology.listeners.admin) == (9902, 9901)
    provider = topology.service("provider")
    assert (provider.public, provider.internal, provider.port) == (False, True, 50052)
    assert topology.service("router").health_service == "llmgw.router.v1.RouterService"
    assert dict(topology.public_extra_routes) == {
        "grpc.reflection.v1.ServerReflection": "router",
        "grpc.reflection.v1alpha.ServerReflection": "router",
        "grpc.health.v1.Health": "router",
    }


def _write_variant(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load(DEFAULT_TOPOLOGY_PATH.read_text())
    edit(data)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["services"]["router"].pop("port"), "services.router.port: missing"),
        (
            lambda d: d["services"]["tool"].update(port=70000),
            "services.tool.port: expected an integer in [1, 65535]",
        ),
        (
            lambda d: d["services"]["session"].update(public="yes"),
            "services.session.public: expected true or false",
        ),
        (
            lambda d: d["services"]["router"].update(grpc_services=["Router"]),
            "'Router' is not a fully-qualified gRPC service name",
        ),
        (
            lambda d: d["public_extra_routes"].update({"grpc.health.v1.Health": "nobody"}),
            "no service 'nobody'",
        ),
        (
            lambda d: d["services"]["tool"].update(grpc_services=[PROVIDER]),
            "gRPC services routed twice",
        ),
        (
            lambda d: d["cluster_policy"]["health_check"].update(interval=0),
            "cluster_policy.health_check.interval: expected a positive number of seconds",
        ),
        (lambda d: d["listeners"].pop("ops"), "listeners.ops: missing"),
        (
            lambda d: d["limits"].update(codec_max_request_headers_kb=16),
            "limits.codec_max_request_headers_kb: must lie above max_request_header_bytes",
        ),
    ],
)
def test_bad_topology_names_the_key(tmp_path: Path, edit: Any, message: str) -> None:
    path = _write_variant(tmp_path, edit)
    with pytest.raises(TopologyError, match=r"topology\.yaml: ") as err:
        load_topology(path)
    assert message in str(err.value)


def test_unreadable_or_invalid_yaml_is_a_topology_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [unclosed")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(bad)


def test_placements(topology: Topology) -> None:
    local = local_placement(topology, {"router": 2, "provider": 3})
    assert [(e.host, e.port) for e in local.endpoints["router"]] == [
        ("127.0.0.1", 50051),
        ("127.0.0.1", 50151),
    ]
    assert [e.port for e in local.endpoints["provider"]] == [50052, 50152, 50252]
    assert local.admin.host == "127.0.0.1"
    exposed = local_placement(topology, host="0.0.0.0")
    assert exposed.public.host == exposed.ops.host == "0.0.0.0"
    assert exposed.internal.host == exposed.admin.host == "127.0.0.1"
    assert exposed.endpoints["router"][0].host == "127.0.0.1"
    compose = compose_placement(topology)
    assert compose.endpoints["session"][0].host == "session"
    k8s = k8s_placement(topology, "gw")
    assert k8s.endpoints["tool"][0].host == "tool.gw.svc.cluster.local"
    assert k8s.endpoints["tool"][0].port == 50054
    with pytest.raises(KeyError, match="nope"):
        local_placement(topology, {"nope": 1})


# --- routes ---------------------------------------------------------------------------


def test_retryable_methods_come_from_idempotency_levels() -> None:
    methods = retryable_methods(DEFAULT_DESCRIPTOR)
    assert methods["llmgw.router.v1.RouterService"] == ["ListModels", "GetModel"]
    assert "ListProviders" in methods[PROVIDER]
    assert "Complete" not in methods[PROVIDER]
    assert methods["llmgw.tool.v1.ToolService"] == ["ListTools", "GetTool"]


def test_public_routes_retry_idempotent_methods_on_unavailable(local: dict[str, Any]) -> None:
    routes = _routes(local, "public")
    matches = [_match(r) for r in routes]
    retryable = retryable_methods(DEFAULT_DESCRIPTOR)
    for service in PUBLIC_SERVICES:
        prefix = matches.index(f"/{service}/")
        prefix_route = routes[prefix]
        assert prefix_route["route"]["retry_policy"]["retry_on"] == RETRY_ON_UNSENT
        for method in retryable[service]:
            exact = matches.index(f"/{service}/{method}")
            assert exact < prefix, "exact method routes must precede the prefix route"
            assert routes[exact]["route"]["retry_policy"]["retry_on"] == RETRY_ON_IDEMPOTENT
    assert "/llmgw.router.v1.RouterService/CreateChatCompletion" not in matches
    assert "/llmgw.router.v1.RouterService/ListModels" in matches


def test_every_route_retries_on_other_hosts_within_the_request_deadline(
    local: dict[str, Any],
) -> None:
    for listener in ("public", "internal"):
        for route in _routes(local, listener):
            if "direct_response" in route:
                continue
            action = route["route"]
            assert action["timeout"] == "0s"
            # No per-try timeout (streams); the request deadline (600 s + the slack in
            # which the service answers DEADLINE_EXCEEDED itself) bounds every request,
            # with or without a grpc-timeout of the client's.
            assert action["max_stream_duration"] == {
                "max_stream_duration": "605s",
                "grpc_timeout_header_max": "605s",
            }
            policy = action["retry_policy"]
            assert {"connect-failure", "refused-stream"} <= set(policy["retry_on"].split(","))
            assert policy["retry_host_predicate"][0]["name"] == (
                "envoy.retry_host_predicates.previous_hosts"
            )
            assert policy["host_selection_retry_max_attempts"] >= 2


def test_provider_is_not_routable_from_public(local: dict[str, Any]) -> None:
    public_routes = _routes(local, "public")
    assert all(r.get("route", {}).get("cluster") != "provider" for r in public_routes)
    assert not any(PROVIDER in _match(r) for r in public_routes)
    filters = _listener(local, "public")["http_filters"]
    transcoder = filters[1]["typed_config"]
    assert set(transcoder["services"]) == PUBLIC_SERVICES


def test_public_listener_chain_and_fallback(local: dict[str, Any]) -> None:
    hcm = _listener(local, "public")
    assert hcm["codec_type"] == "AUTO"
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == [
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        "llmgw.route_headers",
        "envoy.filters.http.router",
    ]
    lua = hcm["http_filters"][0]["typed_config"]["default_source_code"]["inline_string"]
    prelude = lua_limits_prelude(load_topology().limits)
    assert lua == prelude + envoy_config.OPENAI_COMPAT_LUA.read_text()
    assert "local MAX_REQUEST_HEADER_BYTES = 16384\n" in prelude
    # After the transcoder: it sees the router's gRPC trailers on the way back.
    after = hcm["http_filters"][2]["typed_config"]["default_source_code"]["inline_string"]
    assert after == envoy_config.ROUTE_HEADERS_LUA.read_text()
    transcoder = hcm["http_filters"][1]["typed_config"]
    assert transcoder["print_options"] == {
        "preserve_proto_field_names": True,
        "always_print_primitive_fields": True,
        "stream_sse_style_delimited": True,
    }
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["match_incoming_request_route"] is False
    routes = _routes(local, "public")
    assert routes[-1]["match"] == {"prefix": "/"}
    assert routes[-1]["direct_response"]["status"] == 404
    extras = {_match(r): r["route"]["cluster"] for r in routes if "route" in r}
    assert extras["/grpc.reflection.v1.ServerReflection/"] == "router"
    assert extras["/grpc.health.v1.Health/"] == "router"
    assert hcm["generate_request_id"] is True
    log = hcm["access_log"][0]["typed_config"]["log_format"]["json_format"]
    assert {"request_id", "method", "path", "status", "grpc_status", "duration_ms"} <= set(log)


def test_internal_listener_routes_internal_services_only(local: dict[str, Any]) -> None:
    hcm = _listener(local, "internal")
    assert [f["name"] for f in hcm["http_filters"]] == ["envoy.filters.http.router"]
    clusters = {r["route"]["cluster"] for r in _routes(local, "internal") if "route" in r}
    assert clusters == {"router", "provider", "session", "tool"}


# --- clusters, modes ------------------------------------------------------------------


def test_clusters_are_http2_health_checked_and_guarded(
    local: dict[str, Any], topology: Topology
) -> None:
    clusters = _clusters(local)
    assert set(clusters) == {s.name for s in topology.services} | {"envoy_admin"}
    router = clusters["router"]
    assert router["type"] == "STATIC"
    assert router["lb_policy"] == "ROUND_ROBIN"
    options = router["typed_extension_protocol_options"]
    http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in http["explicit_http_config"]
    ports = [
        e["endpoint"]["address"]["socket_address"]["port_value"]
        for e in router["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]
    assert ports == [50051, 50151]
    check = router["health_checks"][0]
    assert check["grpc_health_check"] == {"service_name": "llmgw.router.v1.RouterService"}
    assert check["no_traffic_interval"] == "5s"
    outlier = router["outlier_detection"]
    assert outlier["split_external_local_origin_errors"] is True
    assert outlier["consecutive_local_origin_failure"] >= 1
    assert outlier["enforcing_consecutive_local_origin_failure"] == 100
    # Answers relayed from upstream (503 for UNAVAILABLE) never eject a replica.
    assert outlier["enforcing_consecutive_5xx"] == 0
    assert outlier["enforcing_consecutive_gateway_failure"] == 0
    assert router["circuit_breakers"]["thresholds"][0]["max_retries"] > 3
    assert clusters["provider"]["health_checks"][0]["grpc_health_check"] == {
        "service_name": PROVIDER
    }
    assert local["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_dns_modes_use_strict_dns(topology: Topology) -> None:
    config = render(topology, k8s_placement(topology), "k8s", "/etc/envoy/llmgw.binpb")
    session = _clusters(config)["session"]
    assert "type" not in session
    assert session["cluster_type"]["name"] == "envoy.clusters.dns"
    address = session["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert address["address"]["socket_address"] == {
        "address": "session.llm-gateway.svc.cluster.local",
        "port_value": 50053,
    }
    transcoder = _listener(config, "public")["http_filters"][1]["typed_config"]
    assert transcoder["proto_descriptor"] == "/etc/envoy/llmgw.binpb"


def test_local_mode_needs_ip_addresses(topology: Topology, descriptor: Path) -> None:
    placement = local_placement(topology, endpoints={"router": [("localhost", 1)]})
    with pytest.raises(ValueError, match="IP addresses"):
        render(topology, placement, "local", descriptor)


def test_yaml_dump_round_trips(local: dict[str, Any]) -> None:
    text = dump_config(local)
    assert text.startswith("# Generated by")
    assert yaml.safe_load(text) == local


# --- Envoy accepts it -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["local", "compose", "k8s"])
def test_envoy_validates_rendered_config(
    mode: str, topology: Topology, descriptor: Path, tmp_path: Path
) -> None:
    out = tmp_path / f"{mode}.yaml"
    args = ["--mode", mode, "--out", str(out), "--descriptor-path", str(descriptor)]
    assert envoy_config.main(args) == 0
    envoy_process.validate_config(out)


def test_validate_reports_envoys_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("static_resources: {clusters: [{name: x, type: NOPE}]}\n")
    with pytest.raises(envoy_process.EnvoyError, match="invalid Envoy config"):
        envoy_process.validate_config(bad)


def test_repository_descriptor_loads_in_envoy(topology: Topology, tmp_path: Path) -> None:
    assert unsupported_rules(read_descriptor()) == []
    config = render(topology, local_placement(topology), "local", DEFAULT_DESCRIPTOR)
    envoy_process.validate_config(envoy_config.write_config(config, tmp_path / "envoy.yaml"))
