"""Nothing runs twice that must run once: Envoy's retries against a replica killed mid-call.

Two fake routers behind the real Envoy. A `hang-once:<key>` call is recorded by the
replica that receives it and never answered the first time; the test then kills that
replica with SIGKILL, as a crash would. A method with side effects
(CreateChatCompletion) must not reach the other replica: the caller gets UNAVAILABLE
and the call was made exactly once. An idempotent method (GetModel) is retried on the
other replica and answers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from llmgw.router.v1 import chat_pb2
from llmgw.router.v1 import router_service_pb2 as router_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc
from tests.integration.envoy_support.fake_services import HANG_ONCE, recorded_calls
from tests.integration.envoy_support.stack import EnvoyStack, FakeReplica, envoy_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[EnvoyStack]:
    """A stack of its own: each test kills one of its replicas."""
    with envoy_stack(tmp_path, fast_checks=True) as running:
        yield running


async def _first_receiver(stack: EnvoyStack, key: str, timeout: float = 10.0) -> FakeReplica:
    """The replica that received the first call of `key`, once it has."""
    deadline = time.monotonic() + timeout
    while not (calls := recorded_calls(stack.calls_dir, key)):
        assert time.monotonic() < deadline, f"no replica received {key}"
        await asyncio.sleep(0.02)
    return next(r for r in stack.routers if r.name == calls[0])


def _access_log(stack: EnvoyStack, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in stack.access_log.read_text().splitlines():
            entry: dict[str, Any] = json.loads(line)
            if entry["request_id"] == request_id:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no access log entry for {request_id}")


async def test_a_call_with_side_effects_is_not_repeated_after_its_replica_died(
    stack: EnvoyStack,
) -> None:
    key = f"chat-{uuid.uuid4().hex}"
    request = chat_pb2.CreateChatCompletionRequest(model=HANG_ONCE + key)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.public_port}") as channel:
        call = router_grpc.RouterServiceStub(channel).CreateChatCompletion(
            request, timeout=10, metadata=(("x-request-id", key),)
        )
        receiver = await _first_receiver(stack, key)
        receiver.kill9()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call
    await asyncio.sleep(0.5)  # a retry, were there one, would have been recorded by now
    entry = _access_log(stack, key)
    print(f"\nafter kill -9: {failed.value.code().name}: {failed.value.details()!r}; {entry}")
    assert recorded_calls(stack.calls_dir, key) == [receiver.name]
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert entry["attempts"] == 1
    details = failed.value.details() or ""
    assert "may or may not have been carried out" in details


async def test_an_idempotent_call_is_retried_on_another_replica(stack: EnvoyStack) -> None:
    key = f"model-{uuid.uuid4().hex}"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.public_port}") as channel:
        call = router_grpc.RouterServiceStub(channel).GetModel(
            router_pb2.GetModelRequest(model=HANG_ONCE + key), timeout=10
        )
        receiver = await _first_receiver(stack, key)
        receiver.kill9()
        model = await call
    survivor = next(r for r in stack.routers if r is not receiver)
    assert model.id == HANG_ONCE + key
    assert recorded_calls(stack.calls_dir, key) == [receiver.name, survivor.name]


async def test_callers_cannot_ask_envoy_for_more_retries(stack: EnvoyStack) -> None:
    # Envoy honours x-envoy-retry-on / x-envoy-max-retries from trusted peers only; a
    # public caller (loopback here) must not turn them on for a method with side effects.
    async with httpx.AsyncClient(base_url=stack.public_url) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "status:UNAVAILABLE", "messages": [{"role": "user", "content": "x"}]},
            headers={
                "x-envoy-retry-on": "reset,5xx,retriable-status-codes",
                "x-envoy-retry-grpc-on": "unavailable",
                "x-envoy-retriable-status-codes": "503",
                "x-envoy-max-retries": "5",
            },
        )
    assert response.status_code == 503
    assert _access_log(stack, response.headers["x-request-id"])["attempts"] == 1
