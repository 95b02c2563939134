"""Edge findings from fuzzing the public listener, each through the real Envoy.

Fake routers stand behind Envoy (tests/integration/envoy_support); they run with the
services' own gRPC server options, so the limits met here are the gateway's.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import grpc
import httpx
import pytest

from llmgw.router.v1 import router_service_pb2 as router_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc
from services.launcher.topology import load_topology
from tests.integration.envoy_support.stack import EnvoyStack, envoy_stack

pytestmark = pytest.mark.integration

HEADER_LIMIT = load_topology().limits.max_request_header_bytes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyStack]:
    with envoy_stack(tmp_path_factory.mktemp("edge")) as running:
        yield running


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response's status line and headers, and whatever bytes came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


# --- HEAD -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/no/such/thing", "/v1/models/x/y", "/v1/chat/completions"])
def test_head_gets_no_body_and_keeps_the_connection_usable(stack: EnvoyStack, path: str) -> None:
    with socket.create_connection(("127.0.0.1", stack.public_port), timeout=5) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode())
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 404"), head
        # Whatever follows the HEAD's headers belongs to the next response.
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        following = rest
        while chunk := sock.recv(65536):
            following += chunk
    assert following.startswith(b"HTTP/1.1 200 OK"), following[:200]
    assert following.endswith(b"}")


# --- request headers ------------------------------------------------------------------


# Just under the limit once Envoy's own headers are counted too.
NEAR_LIMIT = HEADER_LIMIT - 1_400


def test_headers_up_to_the_limit_reach_the_service(stack: EnvoyStack) -> None:
    # Between gRPC's default metadata limits (8 and 16 KiB), which refused such requests
    # at random (here almost always) with RESOURCE_EXHAUSTED (HTTP 429) listing every
    # header name.
    with httpx.Client(base_url=stack.public_url) as client:
        for _ in range(10):
            response = client.get("/v1/models", headers={"x-big": "a" * NEAR_LIMIT})
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("size", [HEADER_LIMIT + 1, 70_000])
def test_headers_over_the_limit_are_431_naming_no_header(stack: EnvoyStack, size: int) -> None:
    response = httpx.get(f"{stack.public_url}/v1/models", headers={"x-secret-name": "a" * size})
    assert response.status_code == 431
    assert "x-secret-name" not in response.text
    if size < 64 * 1024:
        # Below Envoy's codec limit the answer is the gateway's JSON error.
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert f"the limit is {HEADER_LIMIT} bytes" in error["message"]


def test_grpc_headers_over_the_limit_are_invalid_argument(stack: EnvoyStack) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{stack.public_port}") as channel:
        stub = router_grpc.RouterServiceStub(channel)
        for _ in range(10):
            assert stub.ListModels(
                router_pb2.ListModelsRequest(), metadata=[("x-big", "a" * NEAR_LIMIT)], timeout=5
            ).data
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListModels(
                router_pb2.ListModelsRequest(),
                metadata=[("x-secret-name", "a" * (HEADER_LIMIT + 1))],
                timeout=5,
            )
    error = refused.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "x-secret-name" not in (error.details() or "")


# --- grpc-timeout ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["bogus", "5", "123456789S", "-1S", "1.5S"])
def test_a_malformed_grpc_timeout_is_400(stack: EnvoyStack, value: str) -> None:
    response = httpx.get(f"{stack.public_url}/v1/models", headers={"grpc-timeout": value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert error["message"].startswith("grpc-timeout: ")


def test_a_valid_grpc_timeout_passes(stack: EnvoyStack) -> None:
    response = httpx.get(f"{stack.public_url}/v1/models", headers={"grpc-timeout": "5S"})
    assert response.status_code == 200, response.text


# --- duplicated "stream" --------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "rpc", "content_type"),
    [
        ('"stream":true,"stream":false', "unary", "application/json"),
        ('"stream":false,"stream":true', "stream", "text/event-stream"),
    ],
)
def test_a_duplicated_stream_member_counts_by_its_last_value(
    stack: EnvoyStack, members: str, rpc: str, content_type: str
) -> None:
    # The fake reports which RPC answered and the request's `stream` field, as the
    # transcoder filled it: both must follow the same (last) value.
    body = '{"model":"flags",' + members + "}"
    response = httpx.post(
        f"{stack.public_url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    last = "true" if members.endswith("true") else "false"
    if rpc == "unary":
        content = response.json()["choices"][0]["message"]["content"]
    else:
        first = response.text.split("\n\n")[0].removeprefix("data: ")
        content = json.loads(first)["choices"][0]["delta"]["content"]
    assert content == f"{rpc} stream={last}"


# --- URLs that are not UTF-8 ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/models/%FF", "/v1/models?page_token=%FF", "/v1/sessions/%ED%A0%80"]
)
def test_a_url_that_is_not_utf8_is_400(stack: EnvoyStack, path: str) -> None:
    response = httpx.get(f"{stack.public_url}{path}")
    assert response.status_code == 400, response.text
    body = response.json()
    status = body.get("error", body)
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "not valid UTF-8" in status["message"]


def test_a_percent_encoded_utf8_url_passes(stack: EnvoyStack) -> None:
    response = httpx.get(f"{stack.public_url}/v1/models/caf%C3%A9")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "café"


def test_head_of_a_refused_request_has_no_body(stack: EnvoyStack) -> None:
    response = httpx.head(f"{stack.public_url}/v1/models/%FF")
    assert response.status_code == 400
    assert response.content == b""


# --- long paths -----------------------------------------------------------------------


def test_a_path_over_the_header_limit_is_431(stack: EnvoyStack) -> None:
    response = httpx.get(f"{stack.public_url}/v1/models/{'m' * (HEADER_LIMIT + 1)}")
    assert response.status_code == 431
