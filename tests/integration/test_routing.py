"""Routing, retries, fallbacks and shared circuit breakers through the real stack.

Two router replicas share breaker state through the stack's Redis; the fakes inject the
faults. Every figure of the routing issue is asserted on the fakes' hit counts and the
routers' own metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.router.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    router_service_pb2_grpc,
)
from tests.fakes import Behaviour
from tests.support.gateway import Gateway, running_gateway

pytestmark = pytest.mark.integration

OPEN_SECONDS = 2.0


def _models(doc: dict[str, Any]) -> None:
    doc["routing"] = {
        "retries": {"backoff_initial": 0.05, "jitter": 0.1},
        "breaker": {
            "consecutive_failures": 3,
            "failure_rate": 0.95,
            "min_requests": 1000,
            "open_seconds": OPEN_SECONDS,
            "probe_timeout": 5,
            "sync_interval": 0.1,
        },
        "health": {"interval_seconds": 5},
    }

    def model(name: str, *deployments: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "deployments": list(deployments), **extra}

    doc["models"] += [
        model(
            "flaky",
            {"provider": "openai", "model": "flaky-primary"},
            {"provider": "anthropic", "model": "flaky-backup"},
        ),
        model("limited", {"provider": "openai", "model": "limited-1"}),
        model("guarded", {"provider": "openai", "model": "guarded-1"}),
        model(
            "weighted",
            {"provider": "openai", "model": "w-heavy", "weight": 3},
            {"provider": "openai", "model": "w-light", "weight": 1},
            routing="weighted",
        ),
        model(
            "fastest",
            {"provider": "anthropic", "model": "lat-slow"},
            {"provider": "openai", "model": "lat-fast"},
            routing="least_latency",
        ),
        model(
            "cheapest",
            {"provider": "openai", "model": "cost-high", "input_price": 10, "output_price": 30},
            {"provider": "anthropic", "model": "cost-low", "input_price": 1, "output_price": 2},
            {"provider": "openai", "model": "cost-mid", "input_price": 3, "output_price": 6},
            routing="lowest_cost",
        ),
        model(
            "streamer",
            {"provider": "openai", "model": "stream-primary"},
            {"provider": "anthropic", "model": "stream-backup"},
        ),
        model(
            "claude-first",
            {"provider": "anthropic", "model": "claude-x"},
            fallbacks=["gpt-4o-mini"],
        ),
        model(
            "short",
            {"provider": "openai", "model": "short-ctx", "context_window": 4096},
            fallbacks=["long"],
        ),
        model("long", {"provider": "anthropic", "model": "long-ctx", "context_window": 200_000}),
    ]


@pytest.fixture(scope="module")
def routing_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        Path(tmp_path_factory.mktemp("routing")),
        replicas={"router": 2, "provider": 1},
        configure=_models,
    ) as running:
        yield running


@pytest.fixture
def rgw(routing_gateway: Gateway) -> Gateway:
    routing_gateway.reset_fakes()
    return routing_gateway


@pytest.fixture
async def router(rgw: Gateway) -> AsyncIterator[router_service_pb2_grpc.RouterServiceStub]:
    async with grpc.aio.insecure_channel(rgw.grpc_target) as channel:
        yield router_service_pb2_grpc.RouterServiceStub(channel)


def _request(model: str, text: str = "Hello") -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))],
    )


def _hits(gw: Gateway, kind: str) -> dict[str, int]:
    with gw.fakes[kind].control() as control:
        return dict(control.stats().hits_by_model)


def _per_replica(gw: Gateway, name: str, **labels: str) -> list[float]:
    return gw.router_metric(name, **labels)


def _metric(gw: Gateway, name: str, **labels: str) -> float:
    return sum(gw.router_metric(name, **labels))


async def _many(
    router: router_service_pb2_grpc.RouterServiceStub, model: str, count: int, concurrency: int
) -> list[grpc.StatusCode]:
    codes: list[grpc.StatusCode] = []
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            try:
                await router.CreateChatCompletion(_request(model), timeout=20)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return codes


async def test_half_the_primary_failing_costs_clients_nothing(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with rgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=500), Behaviour(text="ok"), model="flaky-primary")
    before = _metric(
        rgw, "llmgw_routing_decisions_total", requested_model="flaky", route="fallback"
    )
    codes = await _many(router, "flaky", 1000, 16)
    assert codes.count(grpc.StatusCode.OK) == 1000
    fallbacks = (
        _metric(rgw, "llmgw_routing_decisions_total", requested_model="flaky", route="fallback")
        - before
    )
    primary = _hits(rgw, "openai")["flaky-primary"]
    backup = _hits(rgw, "anthropic")["flaky-backup"]
    # The primary answered every other call it got (fail, ok, fail, ...); the backup
    # answered every other request, and the metric counts exactly those.
    assert backup == 1000 - primary // 2
    assert fallbacks == backup
    assert backup >= 500


async def test_retry_after_is_honoured_and_bounded_by_the_deadline(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    limited = Behaviour(status=429, headers={"retry-after": "1"}, match_model="limited-1")
    with rgw.fakes["openai"].control() as control:
        control.script(limited)
    started = time.monotonic()
    reply = await router.CreateChatCompletion(_request("limited"), timeout=10)
    assert reply.choices[0].message.content
    assert time.monotonic() - started >= 1.0
    assert _hits(rgw, "openai")["limited-1"] == 2

    with rgw.fakes["openai"].control() as control:
        control.script(limited)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.CreateChatCompletion(_request("limited"), timeout=0.6)
    elapsed = time.monotonic() - started
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert elapsed < 0.6  # at the deadline at the latest: nothing waits past it
    status = rpc_status.from_call(caught.value)
    assert status is not None
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert retry, "RetryInfo carries the provider's Retry-After"
    assert _hits(rgw, "openai")["limited-1"] == 3


async def _routing_state(gw: Gateway, model: str) -> admin_service_pb2.DeploymentState:
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        reply = await admin.GetRoutingState(
            admin_service_pb2.GetRoutingStateRequest(model=model),
            metadata=gw.admin_metadata,
            timeout=5,
        )
    (state,) = reply.deployments
    return state


async def test_breaker_opens_short_circuits_half_opens_and_closes_across_replicas(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with rgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=500), model="guarded-1")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await router.CreateChatCompletion(_request("guarded"), timeout=10)
    opened_at = time.monotonic()
    # Request 1 called twice (one retry), request 2 once: the third failure opened it.
    assert _hits(rgw, "openai")["guarded-1"] == 3
    state = await _routing_state(rgw, "guarded")
    assert state.breaker_state == admin_service_pb2.BREAKER_STATE_OPEN
    assert state.reopen_time.seconds > 0

    await asyncio.sleep(0.3)  # > sync_interval: every replica has seen it
    shorted = _per_replica(rgw, "llmgw_routing_skips_total", model="guarded", reason="circuit_open")
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.CreateChatCompletion(_request("guarded"), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        status = rpc_status.from_call(caught.value)
        assert status is not None
        assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
    assert _hits(rgw, "openai")["guarded-1"] == 3  # short-circuited: upstream never called
    after = _per_replica(rgw, "llmgw_routing_skips_total", model="guarded", reason="circuit_open")
    assert all(b > a for a, b in zip(shorted, after, strict=True)), "both replicas short-circuit"

    # Half-open: after the interval exactly one probe reaches the upstream.
    with rgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(text="back", delay=0.5), model="guarded-1")
    await asyncio.sleep(max(0.0, OPEN_SECONDS + 0.1 - (time.monotonic() - opened_at)))
    results = await asyncio.gather(
        *(router.CreateChatCompletion(_request("guarded"), timeout=10) for _ in range(10)),
        return_exceptions=True,
    )
    answered = [r for r in results if isinstance(r, chat_pb2.CreateChatCompletionResponse)]
    assert len(answered) == 1
    assert _hits(rgw, "openai")["guarded-1"] == 4
    # The probe succeeded: closed again, every request reaches the upstream.
    await asyncio.sleep(0.3)
    codes = await _many(router, "guarded", 10, 5)
    assert codes == [grpc.StatusCode.OK] * 10
    assert _hits(rgw, "openai")["guarded-1"] == 14
    state = await _routing_state(rgw, "guarded")
    assert state.breaker_state == admin_service_pb2.BREAKER_STATE_CLOSED


async def test_weighted_round_robin_keeps_the_ratio(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    codes = await _many(router, "weighted", 4000, 32)
    assert codes.count(grpc.StatusCode.OK) == 4000
    hits = _hits(rgw, "openai")
    share = hits["w-heavy"] / (hits["w-heavy"] + hits["w-light"])
    assert abs(share - 0.75) <= 0.03


async def test_least_latency_prefers_the_fast_deployment(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with rgw.fakes["anthropic"].control() as control:
        control.set_default(Behaviour(delay=0.08), model="lat-slow")
    await _many(router, "fastest", 20, 1)  # warm up both replicas' averages
    before = {**_hits(rgw, "openai"), **_hits(rgw, "anthropic")}
    await _many(router, "fastest", 200, 4)
    fast = _hits(rgw, "openai").get("lat-fast", 0) - before.get("lat-fast", 0)
    slow = _hits(rgw, "anthropic").get("lat-slow", 0) - before.get("lat-slow", 0)
    assert fast + slow == 200
    assert fast / 200 >= 0.9


async def test_lowest_cost_picks_the_cheapest_healthy_deployment(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    await _many(router, "cheapest", 30, 4)
    assert _hits(rgw, "anthropic").get("cost-low") == 30
    assert "cost-high" not in _hits(rgw, "openai") and "cost-mid" not in _hits(rgw, "openai")
    # The cheapest fails: its breaker opens, the next cheapest takes over, never the dearest.
    with rgw.fakes["anthropic"].control() as control:
        control.set_default(Behaviour(status=503), model="cost-low")
    codes = await _many(router, "cheapest", 30, 4)
    assert codes == [grpc.StatusCode.OK] * 30
    assert _hits(rgw, "openai").get("cost-mid") == 30
    assert "cost-high" not in _hits(rgw, "openai")


async def _stream_text(
    router: router_service_pb2_grpc.RouterServiceStub, model: str
) -> tuple[list[str], grpc.StatusCode, dict[str, str]]:
    call = router.StreamChatCompletion(_request(model), timeout=10)
    pieces: list[str] = []
    code = grpc.StatusCode.OK
    try:
        async for chunk in call:
            for choice in chunk.choices:
                if choice.delta.HasField("content"):
                    pieces.append(choice.delta.content)
    except grpc.aio.AioRpcError as error:
        code = error.code()
    headers = {k: v for k, v in (await call.initial_metadata()) or () if isinstance(v, str)}
    return pieces, code, headers


@pytest.mark.parametrize(
    "failure", [Behaviour(status=500), Behaviour(break_after=0)], ids=["http-500", "reset"]
)
async def test_a_stream_failing_before_its_first_token_falls_back(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub, failure: Behaviour
) -> None:
    with rgw.fakes["openai"].control() as control:
        control.set_default(failure, model="stream-primary")
    with rgw.fakes["anthropic"].control() as control:
        control.set_default(Behaviour(chunks=["Backup ", "answer."]), model="stream-backup")
    pieces, code, headers = await _stream_text(router, "streamer")
    assert code is grpc.StatusCode.OK
    assert "".join(pieces) == "Backup answer."
    assert headers["x-llmgw-route"] == "fallback"
    assert headers["x-llmgw-deployment"] == "anthropic/stream-backup"
    assert "openai/stream-primary=" in headers["x-llmgw-route-trail"]


async def test_a_stream_failing_after_three_chunks_never_switches_provider(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with rgw.fakes["openai"].control() as control:
        control.set_default(
            Behaviour(chunks=["one", " two", " three", " four"], error_after=3),
            model="stream-primary",
        )
    pieces, code, _ = await _stream_text(router, "streamer")
    # The pieces may come coalesced (they reach the provider together): the text counts.
    assert "".join(pieces) == "one two three"
    assert code is grpc.StatusCode.UNAVAILABLE
    assert "stream-backup" not in _hits(rgw, "anthropic")


async def test_cross_provider_fallback_is_visible_in_rest_headers(rgw: Gateway) -> None:
    with rgw.fakes["anthropic"].control() as control:
        control.set_default(Behaviour(status=529), model="claude-x")
    async with httpx.AsyncClient(base_url=rgw.public_url, timeout=10) as client:
        reply = await client.post(
            "/v1/chat/completions",
            json={"model": "claude-first", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert reply.status_code == 200
    assert reply.json()["model"] == "gpt-4o-mini"
    assert reply.headers["x-llmgw-route"] == "fallback_model"
    assert reply.headers["x-llmgw-model"] == "gpt-4o-mini"
    assert reply.headers["x-llmgw-provider"] == "openai"
    assert reply.headers["x-llmgw-route-trail"].startswith("anthropic/claude-x=UPSTREAM_OVERLOADED")


async def test_context_overflow_falls_back_to_a_larger_window_but_policy_never_does(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    with rgw.fakes["openai"].control() as control:
        control.set_default(
            Behaviour(
                status=400,
                error_code="context_length_exceeded",
                error_message="This model's maximum context length is 4096 tokens.",
            ),
            model="short-ctx",
        )
    reply = await router.CreateChatCompletion(_request("short"), timeout=10)
    assert reply.model == "long"
    assert _hits(rgw, "anthropic")["long-ctx"] == 1

    with rgw.fakes["openai"].control() as control:
        control.set_default(
            Behaviour(
                status=400,
                error_code="content_policy_violation",
                error_message="Your request was rejected by the safety system.",
            ),
            model="short-ctx",
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.CreateChatCompletion(_request("short"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _hits(rgw, "anthropic")["long-ctx"] == 1  # no silent fallback


async def test_routing_state_over_rest_lists_every_deployment(rgw: Gateway) -> None:
    async with httpx.AsyncClient(
        base_url=rgw.public_url, timeout=10, headers=rgw.admin_headers
    ) as client:
        reply = await client.get("/v1/admin/routing", params={"model": "cheapest"})
        missing = await client.get("/v1/admin/routing", params={"model": "nope"})
    assert reply.status_code == 200
    deployments = reply.json()["deployments"]
    assert [d["deployment"] for d in deployments] == [
        "openai/cost-high",
        "anthropic/cost-low",
        "openai/cost-mid",
    ]
    assert all(d["breaker_state"].startswith("BREAKER_STATE_") for d in deployments)
    assert missing.status_code == 404


async def test_per_request_strategy_override_and_disabled_fallbacks(
    rgw: Gateway, router: router_service_pb2_grpc.RouterServiceStub
) -> None:
    pinned = _request("weighted")
    pinned.gateway.routing_strategy = "priority"
    for _ in range(8):
        await router.CreateChatCompletion(pinned, timeout=10)
    assert _hits(rgw, "openai") == {"w-heavy": 8}

    with rgw.fakes["anthropic"].control() as control:
        control.set_default(Behaviour(status=529), model="claude-x")
    alone = _request("claude-first")
    alone.gateway.disable_fallbacks = True
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.CreateChatCompletion(alone, timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "gpt-4o-mini" not in _hits(rgw, "openai")

    bogus = _request("weighted")
    bogus.gateway.routing_strategy = "fastest-please"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.CreateChatCompletion(bogus, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert [v.field for v in bad.field_violations] == ["gateway.routing_strategy"]
