"""The headers each Envoy listener adds or removes for the trust boundary: the public
listener adds the edge token from Envoy's environment (replacing a caller's) and removes a
caller's principal assertion; the internal listener removes the client address and the
edge token, so only an assertion vouches for a service-to-service call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.common.identity.assertion import EDGE_TOKEN_ENV
from services.launcher import envoy_config
from services.launcher.stack import DESCRIPTOR, Stack, StackOptions


def _route_configs(tmp_path: Path) -> dict[str, Any]:
    stack = Stack(StackOptions(run_dir=tmp_path, dynamic_ports=True), progress=lambda _: None)
    stack._plan()
    for replicas in stack.replicas.values():
        for number, replica in enumerate(replicas):
            replica.port = 20000 + number
    config = envoy_config.render(stack.topology, stack._place(), "local", DESCRIPTOR)
    return {
        listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
        for listener in config["static_resources"]["listeners"]
    }


def test_the_public_listener_adds_the_edge_token_and_drops_a_callers_assertion(
    tmp_path: Path,
) -> None:
    public = _route_configs(tmp_path)["public"]
    assert public["request_headers_to_remove"] == ["x-llmgw-principal"]
    added = {h["header"]["key"]: h for h in public["request_headers_to_add"]}
    assert added["x-llmgw-edge-token"]["header"]["value"] == f"%ENVIRONMENT({EDGE_TOKEN_ENV})%"
    assert added["x-llmgw-edge-token"]["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"
    assert added["x-llmgw-client-address"]["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"


def test_the_internal_listener_drops_the_edge_headers(tmp_path: Path) -> None:
    internal = _route_configs(tmp_path)["internal"]
    assert internal["request_headers_to_remove"] == [
        "x-llmgw-client-address",
        "x-llmgw-edge-token",
    ]
    assert "request_headers_to_add" not in internal
