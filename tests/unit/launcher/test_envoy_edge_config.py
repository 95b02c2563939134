"""The rendered config's edge: retry policy per method, admin and ops listeners, limits."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.common.server import MAX_METADATA_BYTES, MAX_PENDING_CALLS, SERVER_OPTIONS
from services.launcher.envoy_config import (
    DEFAULT_DESCRIPTOR,
    OPS_PATHS,
    REPLICA_LOST_MESSAGE,
    overload_message,
    overload_status_details,
    render,
)
from services.launcher.topology import (
    MODES,
    Mode,
    Placement,
    Topology,
    compose_placement,
    k8s_placement,
    load_topology,
    local_placement,
)

UNSENT_ONLY = {"connect-failure", "refused-stream", "reset-before-request"}
IDEMPOTENT = {"connect-failure", "refused-stream", "reset", "unavailable"}
# Methods whose work must never run twice, by service (each checked on every listener
# that routes it).
SIDE_EFFECTS = {
    "llmgw.router.v1.RouterService": ["CreateChatCompletion", "StreamChatCompletion"],
    "llmgw.session.v1.SessionService": ["AppendMessages", "CreateSession"],
    "llmgw.tool.v1.ToolService": ["ExecuteTool", "BatchExecuteTools"],
    "llmgw.provider.v1.ProviderService": ["Complete", "StreamComplete"],
}


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology()


def _placement(topology: Topology, mode: Mode) -> Placement:
    if mode == "local":
        return local_placement(topology, host="0.0.0.0")
    return compose_placement(topology) if mode == "compose" else k8s_placement(topology)


@pytest.fixture(scope="module")
def configs(topology: Topology) -> dict[str, dict[str, Any]]:
    return {
        mode: render(topology, _placement(topology, mode), mode, DEFAULT_DESCRIPTOR)
        for mode in MODES
    }


def _hcm(config: dict[str, Any], name: str) -> dict[str, Any]:
    for listener in config["static_resources"]["listeners"]:
        if listener["name"] == name:
            hcm: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
            return hcm
    raise KeyError(name)


def _listener_address(config: dict[str, Any], name: str) -> dict[str, Any]:
    for listener in config["static_resources"]["listeners"]:
        if listener["name"] == name:
            address: dict[str, Any] = listener["address"]["socket_address"]
            return address
    raise KeyError(name)


def _routes(config: dict[str, Any], listener: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = _hcm(config, listener)["route_config"]["virtual_hosts"][0][
        "routes"
    ]
    return routes


def _route_for(routes: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The route Envoy picks for `path`: the first whose match accepts it."""
    for route in routes:
        match = route["match"]
        if match.get("path") == path or path.startswith(match.get("prefix", "\0")):
            return route
    raise AssertionError(f"no route for {path}")


def _methods() -> dict[str, dict[str, int]]:
    """Every service in the descriptor set: method -> idempotency level."""
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(DEFAULT_DESCRIPTOR.read_bytes())
    return {
        f"{file.package}.{service.name}": {
            m.name: m.options.idempotency_level for m in service.method
        }
        for file in files.file
        for service in file.service
    }


# --- retries --------------------------------------------------------------------------


@pytest.mark.parametrize("listener", ["public", "internal"])
def test_each_method_retries_by_its_idempotency_level(
    configs: dict[str, dict[str, Any]], listener: str
) -> None:
    routes = _routes(configs["local"], listener)
    retryable_levels = {
        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
        descriptor_pb2.MethodOptions.IDEMPOTENT,
    }
    checked = 0
    for service, methods in _methods().items():
        for method, level in methods.items():
            route = _route_for(routes, f"/{service}/{method}")
            if "direct_response" in route:
                continue  # not routed on this listener
            retry_on = set(route["route"]["retry_policy"]["retry_on"].split(","))
            expected = IDEMPOTENT if level in retryable_levels else UNSENT_ONLY
            assert retry_on == expected, f"{listener} {service}/{method}: {retry_on}"
            checked += 1
    assert checked > 20


def test_work_that_must_run_once_is_never_retried_after_it_was_sent(
    configs: dict[str, dict[str, Any]],
) -> None:
    for listener in ("public", "internal"):
        routes = _routes(configs["local"], listener)
        for service, methods in SIDE_EFFECTS.items():
            for method in methods:
                route = _route_for(routes, f"/{service}/{method}")
                if "direct_response" in route:
                    continue
                retry_on = route["route"]["retry_policy"]["retry_on"].split(",")
                assert "reset" not in retry_on and "unavailable" not in retry_on, (
                    f"{listener} {service}/{method}: {retry_on}"
                )
                assert "reset-before-request" in retry_on


# --- admin and ops --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_admin_binds_loopback_and_ops_is_read_only(
    configs: dict[str, dict[str, Any]], topology: Topology, mode: str
) -> None:
    config = configs[mode]
    admin = config["admin"]["address"]["socket_address"]
    assert admin == {"address": "127.0.0.1", "port_value": topology.listeners.admin}
    ops = _listener_address(config, "ops")
    # Bound like the public listener (this local placement faces the network too).
    assert ops == {"address": "0.0.0.0", "port_value": topology.listeners.ops}
    assert _listener_address(config, "public")["address"] == "0.0.0.0"
    routes = _routes(config, "ops")
    proxied = [r for r in routes if "route" in r]
    assert [r["match"]["path"] for r in proxied] == list(OPS_PATHS)
    for route in proxied:
        assert route["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
        assert route["route"]["cluster"] == "envoy_admin"
    assert routes[-1]["match"] == {"prefix": "/"}
    assert routes[-1]["direct_response"]["status"] == 404
    hcm = _hcm(config, "ops")
    assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == "envoy_admin")
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == admin


def test_admin_beyond_loopback_is_refused(topology: Topology) -> None:
    placement = local_placement(topology)
    exposed = Placement(
        public=placement.public,
        internal=placement.internal,
        ops=placement.ops,
        admin=placement.admin.__class__("0.0.0.0", 9901),
        endpoints=placement.endpoints,
    )
    with pytest.raises(ValueError, match="admin must bind loopback"):
        render(topology, exposed, "local", DEFAULT_DESCRIPTOR)


# --- limits ---------------------------------------------------------------------------


def test_listeners_carry_the_topology_limits(
    configs: dict[str, dict[str, Any]], topology: Topology
) -> None:
    limits = topology.limits
    for listener in ("public", "internal"):
        hcm = _hcm(configs["compose"], listener)
        assert hcm["max_request_headers_kb"] == limits.codec_max_request_headers_kb
        assert hcm["http2_protocol_options"]["max_concurrent_streams"] == (
            limits.http2_max_concurrent_streams
        )
        lost, mapper = hcm["local_reply_config"]["mappers"]
        assert lost["filter"] == {"response_flag_filter": {"flags": ["UC"]}}
        assert lost["body"]["inline_string"] == REPLICA_LOST_MESSAGE
        assert mapper["filter"] == {"response_flag_filter": {"flags": ["UO"]}}
        added = {h["header"]["key"]: h["header"]["value"] for h in mapper["headers_to_add"]}
        assert added["retry-after"] == str(limits.overload_retry_after_seconds)
        assert mapper["body"]["inline_string"] == overload_message(limits)
    monitors = configs["compose"]["overload_manager"]["resource_monitors"]
    assert monitors[0]["typed_config"]["max_active_downstream_connections"] == (
        limits.max_downstream_connections
    )


def test_overload_details_are_unavailable_with_retry_info(topology: Topology) -> None:
    encoded = overload_status_details(topology.limits)
    assert "=" not in encoded
    status = status_pb2.Status.FromString(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert status.code == code_pb2.UNAVAILABLE
    assert status.message == overload_message(topology.limits)
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == topology.limits.overload_retry_after_seconds


def test_services_accept_what_envoy_lets_through(topology: Topology) -> None:
    options = dict(SERVER_OPTIONS)
    # Envoy adds its own headers (x-request-id, x-forwarded-for, ...) to a request at the
    # limit; a few KiB of room keeps gRPC's refusal (RESOURCE_EXHAUSTED) out of reach.
    assert options["grpc.max_metadata_size"] == MAX_METADATA_BYTES
    assert options["grpc.absolute_max_metadata_size"] == MAX_METADATA_BYTES
    assert topology.limits.max_request_header_bytes + 8192 <= MAX_METADATA_BYTES
    # Calls Envoy admits are never refused while they wait for the event loop.
    max_requests = topology.cluster_policy.circuit_breakers.max_requests
    assert options["grpc.server.max_pending_requests"] == MAX_PENDING_CALLS
    assert options["grpc.server.max_pending_requests_hard_limit"] == MAX_PENDING_CALLS
    assert 10 * max_requests <= MAX_PENDING_CALLS
