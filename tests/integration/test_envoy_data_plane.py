"""The real Envoy in front of fake replicas: REST and gRPC on one port, errors, retries.

Every process (Envoy, fake routers, fake provider) is started on free ports by
`envoy_stack` and stopped when its fixture ends. Measured facts are printed (-s).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from openai.types.chat import ChatCompletionMessageParam

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import chat_pb2
from llmgw.router.v1 import router_service_pb2 as router_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc
from services.launcher.envoy_config import REPLICA_LOST_MESSAGE
from tests.integration.envoy_support.fake_services import STREAM_CHUNKS, STREAM_INTERVAL_S
from tests.integration.envoy_support.stack import EnvoyStack, envoy_stack

pytestmark = pytest.mark.integration

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyStack]:
    with envoy_stack(tmp_path_factory.mktemp("envoy")) as running:
        yield running


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, **extra}


def _request(model: str) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model, messages=[chat_pb2.ChatMessage(role="user")]
    )


def _access_log(stack: EnvoyStack, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in stack.access_log.read_text().splitlines():
            entry: dict[str, Any] = json.loads(line)
            if entry["request_id"] == request_id:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no access log entry for {request_id}")


# --- REST -----------------------------------------------------------------------------


async def test_rest_unary_is_snake_case_json(stack: EnvoyStack) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        response = await client.post("/v1/chat/completions", json=_chat("echo"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model"] == "echo"
    assert body["created"] == 1_700_000_000  # uint32: a JSON number, not a string
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 1
    # Envoy made an x-request-id, sent it upstream and returned it to the caller.
    request_id = response.headers["x-request-id"]
    assert response.headers["x-seen-request-id"] == request_id
    entry = _access_log(stack, request_id)
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1/chat/completions"
    assert entry["grpc_path"] == "/llmgw.router.v1.RouterService/CreateChatCompletion"
    assert (entry["status"], entry["grpc_status"]) == (200, 0)
    assert isinstance(entry["duration_ms"], int)


async def test_caller_request_id_is_kept(stack: EnvoyStack) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        response = await client.post(
            "/v1/chat/completions", json=_chat("echo"), headers={"x-request-id": "req-123"}
        )
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-seen-request-id"] == "req-123"


async def test_stream_true_on_the_same_url_streams_sse_incrementally(stack: EnvoyStack) -> None:
    arrivals: list[float] = []
    events: list[dict[str, Any]] = []
    buffer = b""
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        start = time.monotonic()
        async with client.stream(
            "POST", "/v1/chat/completions", json=_chat("echo", stream=True)
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            async for data in response.aiter_raw():
                buffer += data
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    arrivals.append(time.monotonic() - start)
                    assert event.startswith(b"data: ")
                    events.append(json.loads(event.removeprefix(b"data: ")))
    assert buffer == b""
    assert [e["choices"][0]["delta"]["content"] for e in events] == [
        f"tok{i}" for i in range(STREAM_CHUNKS)
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    print(f"\nSSE arrivals (s): {[round(t, 3) for t in arrivals]}")
    # Chunks leave the replica 50 ms apart; buffered delivery would bunch them at the end.
    assert arrivals[-1] - arrivals[0] > STREAM_INTERVAL_S * (STREAM_CHUNKS - 1) * 0.5
    assert sum(gap > STREAM_INTERVAL_S * 0.5 for gap in gaps) >= STREAM_CHUNKS - 2, gaps


@pytest.mark.parametrize(
    ("path", "body", "streams"),
    [
        ("/v1/chat/completions", '{"model":"echo","stream" :  true}', True),
        ("/v1/chat/completions?api-version=1", '{"model":"echo","stream":true}', True),
        ("/v1/chat/completions", '{"model":"echo","stream":false}', False),
        # "stream": true below the top level or inside a string does not switch.
        (
            "/v1/chat/completions",
            '{"model":"echo","tools":[{"type":"function","function":{"name":"f",'
            '"parameters":{"stream":true}}}]}',
            False,
        ),
        (
            "/v1/chat/completions",
            '{"model":"echo","messages":[{"role":"user","content":"\\"stream\\": true"}]}',
            False,
        ),
    ],
)
async def test_streaming_switch(stack: EnvoyStack, path: str, body: str, streams: bool) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text
    expected = "text/event-stream" if streams else "application/json"
    assert response.headers["content-type"] == expected


# gRPC code -> HTTP status through the transcoder (convert_grpc_status).
STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "UNIMPLEMENTED": 501,
}


@pytest.mark.parametrize(("code", "http_status"), STATUS_CODES.items())
async def test_grpc_errors_map_to_http_statuses(
    stack: EnvoyStack, code: str, http_status: int
) -> None:
    model = f"status:{code}"
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        # The gateway-native streaming URL keeps the transcoder's google.rpc.Status JSON
        # (an error before the first chunk is a plain HTTP error).
        native = await client.post("/v1/chat/completions:stream", json=_chat(model))
        # The OpenAI URL wraps the same Status in OpenAI's error envelope.
        wrapped = await client.post("/v1/chat/completions", json=_chat(model))
    assert native.status_code == http_status
    status = native.json()
    assert status["code"] == grpc.StatusCode[code].value[0]
    assert status["message"] == f"canned {code} for {model}"
    assert status["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert status["details"][0]["reason"] == "TEST_REASON"
    assert status["details"][1]["field_violations"][0]["field"] == "model"
    assert wrapped.status_code == http_status
    error = wrapped.json()["error"]
    assert {k: error[k] for k in ("code", "message", "details")} == status
    assert isinstance(error["type"], str)


async def test_unavailable_is_retried_only_for_idempotent_methods(stack: EnvoyStack) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        idempotent = await client.get("/v1/models/status:UNAVAILABLE")
        unary = await client.post("/v1/chat/completions", json=_chat("status:UNAVAILABLE"))
    assert idempotent.status_code == unary.status_code == 503
    retried = _access_log(stack, idempotent.headers["x-request-id"])
    once = _access_log(stack, unary.headers["x-request-id"])
    print(f"\nattempts: GetModel {retried['attempts']}, CreateChatCompletion {once['attempts']}")
    assert retried["attempts"] == 4  # 1 + num_retries
    assert once["attempts"] == 1


async def test_malformed_json_and_unknown_paths(stack: EnvoyStack) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        malformed = await client.post(
            "/v1/chat/completions",
            content=b'{"model": "echo",',
            headers={"content-type": "application/json"},
        )
        unknown = await client.get("/no/such/thing")
        wrong_method = await client.get("/v1/chat/completions")
        unknown_field = await client.post("/v1/chat/completions", json=_chat("echo", bogus=1))
        no_backend = await client.get("/v1/sessions")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == 3
    assert unknown.status_code == 404
    assert unknown.json() == {"code": 5, "message": "no such endpoint", "details": []}
    assert wrong_method.status_code == 404
    assert wrong_method.json()["error"]["type"] == "not_found_error"
    # The transcoder ignores JSON fields the proto lacks.
    assert unknown_field.status_code == 200
    # Envoy's own 503 (nothing listens for the session service) is JSON too.
    assert no_backend.status_code == 503
    assert no_backend.json()["code"] == 14


async def test_print_options(stack: EnvoyStack) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        shape = (await client.post("/v1/chat/completions", json=_chat("shape"))).json()
        models = (await client.get("/v1/models")).json()
    # Unset proto3 `optional` fields and unset messages are absent; plain scalars print
    # their zero value; explicitly set optional zero values print.
    assert shape["created"] == 0
    for absent in ("system_fingerprint", "usage"):
        assert absent not in shape
    choice = shape["choices"][0]
    assert "finish_reason" not in choice
    assert "content" not in choice["message"]
    assert "refusal" not in choice["message"]
    call = choice["message"]["tool_calls"][0]
    assert call["index"] == 0
    assert "type" not in call
    assert call["function"] == {"name": "f", "arguments": ""}
    # Empty repeated fields print as [].
    assert models["data"][0]["aliases"] == []
    assert models["data"][0]["context_window"] == 0


# --- OpenAI SDK -----------------------------------------------------------------------


async def test_openai_sdk(stack: EnvoyStack) -> None:
    client = openai.AsyncOpenAI(base_url=f"{stack.public_url}/v1", api_key="k", max_retries=0)
    async with client:
        completion = await client.chat.completions.create(model="echo", messages=MESSAGES)
        assert completion.choices[0].message.content == "echo:echo"
        assert completion._request_id  # x-request-id
        stream = await client.chat.completions.create(
            model="echo",
            messages=MESSAGES,
            stream=True,
        )
        assert [c.choices[0].delta.content async for c in stream] == [
            f"tok{i}" for i in range(STREAM_CHUNKS)
        ]
        models = await client.models.list()
        assert [m.id for m in models.data] == ["echo"]
        with pytest.raises(openai.NotFoundError) as not_found:
            await client.chat.completions.create(model="status:NOT_FOUND", messages=MESSAGES)
        assert isinstance(not_found.value.body, dict)
        assert not_found.value.body["message"] == "canned NOT_FOUND for status:NOT_FOUND"
        # An error before the first chunk is an HTTP error the SDK raises on create().
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                model="status:RESOURCE_EXHAUSTED",
                messages=MESSAGES,
                stream=True,
            )


def _raw_http11(port: int, path: str, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


async def test_mid_stream_error_is_invisible_to_http11_clients(stack: EnvoyStack) -> None:
    raw = await asyncio.to_thread(
        _raw_http11,
        stack.public_port,
        "/v1/chat/completions",
        json.dumps(_chat("fail-after:2", stream=True)).encode(),
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    print(f"\nmid-stream failure, HTTP/1.1 bytes after the headers:\n{body!r}")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"transfer-encoding: chunked" in head
    # Two SSE events in two chunks, then a clean chunked end: no error event, no
    # trailers, nothing that says the stream failed.
    chunks = re.findall(rb"([0-9a-f]+)\r\n(data: [^\r]*\n\n)\r\n", body)
    assert len(chunks) == 2
    assert body.endswith(b"\r\n0\r\n\r\n")
    assert b"grpc-status" not in raw
    assert b"error" not in body

    client = openai.AsyncOpenAI(base_url=f"{stack.public_url}/v1", api_key="k", max_retries=0)
    async with client:
        stream = await client.chat.completions.create(
            model="fail-after:2",
            messages=MESSAGES,
            stream=True,
        )
        # The SDK ends the iteration normally: a silent truncation.
        contents = [c.choices[0].delta.content async for c in stream]
    assert contents == ["tok0", "tok1"]

    # After response headers but before any message, the transcoder writes the bare
    # Status JSON as the body of a 200 text/event-stream (no `data:` framing).
    raw = await asyncio.to_thread(
        _raw_http11,
        stack.public_port,
        "/v1/chat/completions",
        json.dumps(_chat("fail-after:0", stream=True)).encode(),
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b'{"code":14,"message":"provider failed mid-stream"' in body
    assert b"data:" not in body


# --- gRPC -----------------------------------------------------------------------------


async def test_grpc_through_the_public_port(stack: EnvoyStack) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.public_port}") as channel:
        router = router_grpc.RouterServiceStub(channel)
        reply = await router.CreateChatCompletion(_request("echo"))
        assert reply.model == "echo"
        chunks = [c async for c in router.StreamChatCompletion(_request("echo"))]
        assert len(chunks) == STREAM_CHUNKS
        models = await router.ListModels(router_pb2.ListModelsRequest())
        assert models.data[0].id == "echo"

        call = router.StreamChatCompletion(_request("fail-after:2"))
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            async for chunk in call:
                received.append(chunk)
        assert len(received) == 2
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(failed.value.trailing_metadata() or ())
        assert "grpc-status-details-bin" in trailers

        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="llmgw.router.v1.RouterService")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for r in responses for s in r.list_services_response.service]
        assert "llmgw.router.v1.RouterService" in names


async def test_provider_only_on_the_internal_listener(stack: EnvoyStack) -> None:
    request = provider_pb2.ListProvidersRequest()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.public_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await provider_grpc.ProviderServiceStub(channel).ListProviders(request)
    assert denied.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert denied.value.details() == "no such endpoint"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.internal_port}") as channel:
        reply = await provider_grpc.ProviderServiceStub(channel).ListProviders(request)
    assert reply.providers[0].name == "fake-p"


async def _replica_counts(port: int, calls: int, model: str = "echo") -> Counter[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        router = router_grpc.RouterServiceStub(channel)
        replies = [await router.CreateChatCompletion(_request(model)) for _ in range(calls)]
    return Counter(r.id.removeprefix("chatcmpl-") for r in replies)


# --- health and failover (stacks of their own: they break replicas) -----------------


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[EnvoyStack]:
    with envoy_stack(tmp_path, fast_checks=True) as running:
        yield running


async def test_requests_are_balanced_across_replicas(fresh_stack: EnvoyStack) -> None:
    counts = await _replica_counts(fresh_stack.public_port, 40)
    print(f"\nper-replica counts: {dict(counts)}")
    assert set(counts) == {"a", "b"}
    assert min(counts.values()) >= 15


async def test_relayed_unavailable_does_not_eject_replicas(fresh_stack: EnvoyStack) -> None:
    # A router relaying a provider outage answers UNAVAILABLE (503); that says nothing
    # about the router itself, so outlier detection must keep both replicas in.
    async with httpx.AsyncClient(base_url=fresh_stack.public_url) as client:
        for _ in range(10):
            response = await client.post("/v1/chat/completions", json=_chat("status:UNAVAILABLE"))
            assert response.status_code == 503
    flags = fresh_stack.host_health("router")
    print(f"\nafter 10 UNAVAILABLE answers: {flags}")
    assert sorted(flags.values()) == ["healthy", "healthy"]


async def _wait_for_replica(port: int, replica: str, timeout: float = 5.0) -> None:
    """Calls until `replica` answers (host set updates reach the load balancer within
    Envoy's 1 s update merge window)."""
    deadline = time.monotonic() + timeout
    while (await _replica_counts(port, 4))[replica] == 0:
        assert time.monotonic() < deadline, f"{replica} never received traffic"
        await asyncio.sleep(0.1)


async def test_not_serving_replica_gets_no_traffic(fresh_stack: EnvoyStack) -> None:
    stack = fresh_stack
    b = stack.routers[1]
    b.signal(signal.SIGUSR1)  # health NOT_SERVING
    flags = await asyncio.to_thread(stack.wait_health, "router", b.address, False)
    assert "failed_active_hc" in flags
    counts = await _replica_counts(stack.public_port, 20)
    assert counts == Counter({"a": 20})
    b.signal(signal.SIGUSR2)
    await asyncio.to_thread(stack.wait_health, "router", b.address, True)
    await _wait_for_replica(stack.public_port, "b")


async def test_kill9_of_a_replica_under_load_fails_only_the_calls_it_held(
    fresh_stack: EnvoyStack,
) -> None:
    """Calls in flight on the killed replica may have been carried out: they are not
    repeated and fail with UNAVAILABLE saying so; every other call succeeds (a call
    that could not reach it is retried on the other replica)."""
    stack = fresh_stack
    total, concurrency = 500, 8
    outcomes: list[str] = []
    failures: list[str] = []
    next_call = iter(range(total))

    async def worker(router: router_grpc.RouterServiceStub) -> None:
        for i in next_call:
            if i == 150:
                stack.routers[1].kill9()
            try:
                # 10 ms of work keeps calls in flight on the replica when it dies.
                reply = await router.CreateChatCompletion(_request("slow:10"), timeout=10)
                outcomes.append(reply.id.removeprefix("chatcmpl-"))
            except grpc.aio.AioRpcError as err:
                failures.append(f"{err.code().name}: {err.details()}")

    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.public_port}") as channel:
        router = router_grpc.RouterServiceStub(channel)
        await asyncio.gather(*(worker(router) for _ in range(concurrency)))

    stats = stack.envoy.admin_get(
        "/stats?filter=^cluster\\.router\\.(upstream_rq_retry|upstream_cx_connect_fail|outlier)"
    )
    print(f"\nkill -9 under load: {Counter(outcomes)}, failures {failures}\n{stats}")
    assert len(failures) <= concurrency
    assert set(failures) <= {f"UNAVAILABLE: {REPLICA_LOST_MESSAGE}"}
    assert len(outcomes) + len(failures) == total
    assert Counter(outcomes)["b"] > 0
    flags = await asyncio.to_thread(stack.wait_health, "router", stack.routers[1].address, False)
    assert "failed_active_hc" in flags
