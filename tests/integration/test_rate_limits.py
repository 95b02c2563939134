"""Rate limits and budgets through Envoy, on the secured gateway's three router replicas.

Limits are counted in one Redis, so three replicas admit exactly the configured number,
not three times it; token reservations are reconciled to the real usage, streams
included; a budget refuses the request that would cross it before any provider call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from services.common.errors import find_detail
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.identity import Identity, bearer, create_identity

pytestmark = pytest.mark.integration

RateLimit = identity_pb2.RateLimit
DetailT = TypeVar("DetailT", bound=Message)


@pytest.fixture
async def channel(sgw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(sgw.grpc_target) as opened:
        yield opened


def _chat(text: str, *, max_tokens: int | None = None) -> chat_pb2.CreateChatCompletionRequest:
    request = chat_pb2.CreateChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))],
    )
    if max_tokens is not None:
        request.max_tokens = max_tokens
    return request


async def _limited(
    sgw: Gateway, *limits: identity_pb2.RateLimit, budget: identity_pb2.Budget | None = None
) -> Identity:
    consumer = identity_pb2.Consumer(limits=list(limits))
    if budget is not None:
        consumer.budget.CopyFrom(budget)
    return await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY, consumer=consumer)


async def _away_from_minute_end(margin: float = 12.0) -> None:
    """Fixed windows start afresh on the minute: a burst must fall inside one."""
    left = 60 - time.time() % 60
    if left < margin:
        await asyncio.sleep(left + 0.05)


def _detail(error: grpc.aio.AioRpcError, kind: type[DetailT]) -> DetailT:
    status = rpc_status.from_call(error)
    assert status is not None
    found = find_detail(status, kind)
    assert found is not None, f"no {kind.__name__} in the status"
    return found


def _retry_delay(error: grpc.aio.AioRpcError) -> float:
    delay = _detail(error, error_details_pb2.RetryInfo).retry_delay
    return delay.seconds + delay.nanos / 1e9


def _quota_violations(
    error: grpc.aio.AioRpcError,
) -> list[error_details_pb2.QuotaFailure.Violation]:
    return list(_detail(error, error_details_pb2.QuotaFailure).violations)


async def test_three_replicas_admit_exactly_the_request_limit(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    who = await _limited(
        sgw, RateLimit(unit=RateLimit.UNIT_REQUESTS, window=RateLimit.WINDOW_MINUTE, limit=100)
    )
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    # Every replica knows the key before the burst (its first lookup reads Redis).
    for replica in sgw.stack.replicas["router"]:
        async with grpc.aio.insecure_channel(replica.target) as direct:
            await router_service_pb2_grpc.RouterServiceStub(direct).ListModels(
                router_service_pb2.ListModelsRequest(),
                metadata=(*who.metadata, *sgw.edge_metadata()),
                timeout=10,
            )
    await _away_from_minute_end()

    async def one(i: int) -> grpc.StatusCode | grpc.aio.AioRpcError:
        try:
            await router.CreateChatCompletion(
                _chat(f"burst {i}"), metadata=who.metadata, timeout=30
            )
        except grpc.aio.AioRpcError as error:
            return error
        return grpc.StatusCode.OK

    results = await asyncio.gather(*(one(i) for i in range(300)))
    ok = [r for r in results if r == grpc.StatusCode.OK]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    codes = {r.code() for r in refused}
    assert len(ok) == 100, (len(ok), codes)
    assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    sample = refused[0]
    assert 0 < _retry_delay(sample) <= 60
    violations = _quota_violations(sample)
    assert [(v.subject, v.description) for v in violations] == [
        (who.consumer, "100 requests per minute")
    ]
    # The refusal carries the quota left, as metadata (REST: x-ratelimit-* headers).
    trailers = dict(sample.trailing_metadata() or ())
    assert trailers.get("x-ratelimit-limit-requests") == "100"
    assert trailers.get("x-ratelimit-remaining-requests") == "0"


async def test_rest_responses_carry_the_remaining_quota(sgw: Gateway) -> None:
    who = await _limited(
        sgw, RateLimit(unit=RateLimit.UNIT_REQUESTS, window=RateLimit.WINDOW_HOUR, limit=2)
    )
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=sgw.public_url, timeout=10) as client:
        first = await client.post("/v1/chat/completions", json=body, headers=who.headers)
        second = await client.post("/v1/chat/completions", json=body, headers=who.headers)
        third = await client.post("/v1/chat/completions", json=body, headers=who.headers)
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert third.status_code == 429, third.text
    assert "2 requests per hour" in third.json()["error"]["message"]
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(third.headers["retry-after"]) > 0


async def test_token_limit_reserves_before_and_settles_streams_to_real_usage(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    """Slow streams hold their reservations while the burst arrives: only as many as
    fit the token limit by estimate (prompt + max_tokens) start; afterwards the window
    holds exactly the tokens the streams really used."""
    who = await _limited(
        sgw, RateLimit(unit=RateLimit.UNIT_TOKENS, window=RateLimit.WINDOW_MINUTE, limit=1000)
    )
    with sgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(chunks=["a", "b", "c", "d"], chunk_delay=0.5, usage=(20, 30)))
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    await _away_from_minute_end(20)

    async def one(i: int) -> grpc.StatusCode:
        try:
            stream = router.StreamChatCompletion(
                _chat(f"stream {i}", max_tokens=300), metadata=who.metadata, timeout=30
            )
            async for _chunk in stream:
                pass
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    results = await asyncio.gather(*(one(i) for i in range(20)))
    # Each stream reserves ~300 + a short prompt's tokens: three fit in 1000.
    assert results.count(grpc.StatusCode.OK) == 3, results
    assert set(results) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}

    window = int(time.time() // 60)
    key = f"llmgw:rl:consumer:{who.consumer}:tokens:minute:{window}"
    client = aioredis.Redis.from_url(sgw.stack.redis_url)
    try:
        assert int(await client.get(key) or 0) == 3 * (20 + 30)
    finally:
        await client.aclose()


async def test_a_budget_refuses_the_request_that_would_cross_it(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    """gpt-4o-mini costs 0.15 / 0.6 per million tokens; each answer uses 20 + 30 tokens:
    21,000 nano-units. A 0.0001 budget takes four (84,000); the fifth's reservation
    (its prompt estimate + 30 output tokens, more than 16,000) would cross it."""
    who = await _limited(sgw, budget=identity_pb2.Budget(daily_limit=0.0001, soft_threshold=0.5))
    with sgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(text="paid", usage=(20, 30)))
        calls_before = len(control.completions())
    soft_before = sum(
        sgw.router_metric(
            "llmgw_budget_soft_threshold_crossed_total", scope="consumer", window="day"
        )
    )
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    for i in range(4):
        await router.CreateChatCompletion(
            _chat(f"budget {i}", max_tokens=30), metadata=who.metadata, timeout=10
        )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.CreateChatCompletion(
            _chat("budget 4", max_tokens=30), metadata=who.metadata, timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "budget exceeded" in (refused.value.details() or "")
    assert [v.subject for v in _quota_violations(refused.value)] == [who.consumer]
    with sgw.fakes["openai"].control() as control:
        assert len(control.completions()) - calls_before == 4
    usage = await admin_grpc.AdminServiceStub(channel).GetUsage(
        admin_pb2.GetUsageRequest(), metadata=who.metadata, timeout=10
    )
    assert usage.spent_today == pytest.approx(4 * 21_000 / 1e9, abs=1e-12)
    assert usage.totals.requests == 4
    soft_after = sum(
        sgw.router_metric(
            "llmgw_budget_soft_threshold_crossed_total", scope="consumer", window="day"
        )
    )
    assert soft_after - soft_before == 1


async def test_a_burst_without_max_tokens_cannot_overshoot_a_budget(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    """A request that names no max_tokens reserves (and is sent) its deployment's
    default: the openai instance's default_max_tokens, 4,096 output tokens at 0.6 per
    million = 2,457,600 nano-units, plus its prompt. A 0.005 budget admits two such
    requests of a concurrent burst of ten, even when each really spends all 4,096."""
    who = await _limited(sgw, budget=identity_pb2.Budget(daily_limit=0.005))
    with sgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(text="long", usage=(20, 4096), delay=0.3))
        calls_before = len(control.completions())
    router = router_service_pb2_grpc.RouterServiceStub(channel)

    async def one(i: int) -> grpc.StatusCode:
        try:
            await router.CreateChatCompletion(
                _chat(f"burst {i}", max_tokens=None), metadata=who.metadata, timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(one(i) for i in range(10)))
    assert codes.count(grpc.StatusCode.OK) == 2, codes
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 8
    with sgw.fakes["openai"].control() as control:
        sent = control.completions()[calls_before:]
    assert len(sent) == 2
    assert {request.json["max_tokens"] for request in sent} == {4096}
    usage = await admin_grpc.AdminServiceStub(channel).GetUsage(
        admin_pb2.GetUsageRequest(), metadata=who.metadata, timeout=10
    )
    assert usage.spent_today <= 0.005


async def test_group_limits_are_shared_by_its_members(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    group = identity_pb2.Group(
        allowed_models=["*"],
        allowed_services=["router"],
        limits=[RateLimit(unit=RateLimit.UNIT_REQUESTS, window=RateLimit.WINDOW_HOUR, limit=3)],
    )
    first = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY, group=group)
    metadata = bearer(SECURED_ADMIN_KEY)
    async with grpc.aio.insecure_channel(sgw.grpc_target) as admin_channel:
        admin = identity_grpc.IdentityServiceStub(admin_channel)
        await admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(
                consumer=identity_pb2.Consumer(groups=[first.group]),
                consumer_id=f"{first.consumer_id}-b",
            ),
            metadata=metadata,
        )
        issued = await admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent=f"{first.consumer}-b"),
            metadata=metadata,
        )
    second = bearer(issued.secret)
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    await router.CreateChatCompletion(_chat("a"), metadata=first.metadata, timeout=10)
    await router.CreateChatCompletion(_chat("b"), metadata=second, timeout=10)
    await router.CreateChatCompletion(_chat("c"), metadata=first.metadata, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.CreateChatCompletion(_chat("d"), metadata=second, timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [v.subject for v in _quota_violations(refused.value)] == [first.group]
    # Usage is recorded for the group as well as for each member.
    usage = await admin_grpc.AdminServiceStub(channel).GetUsage(
        admin_pb2.GetUsageRequest(subject=first.group), metadata=first.metadata, timeout=10
    )
    assert usage.totals.requests == 3


async def test_file_configured_consumer_limits_apply(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    """The secured gateway's file limits `file-limited` to 3 requests per minute."""
    metadata = bearer(SECURED_ADMIN_KEY)
    async with grpc.aio.insecure_channel(sgw.grpc_target) as admin_channel:
        admin = identity_grpc.IdentityServiceStub(admin_channel)
        group = await admin.CreateGroup(
            identity_service_pb2.CreateGroupRequest(
                group=identity_pb2.Group(allowed_models=["*"]), group_id="file-limited-g"
            ),
            metadata=metadata,
        )
        await admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(
                consumer=identity_pb2.Consumer(groups=[group.group.name]),
                consumer_id="file-limited",
            ),
            metadata=metadata,
        )
        issued = await admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent="consumers/file-limited"),
            metadata=metadata,
        )
    key = bearer(issued.secret)
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    await _away_from_minute_end()
    codes = []
    for i in range(4):
        try:
            await router.CreateChatCompletion(_chat(f"f{i}"), metadata=key, timeout=10)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
    assert codes == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]


async def test_a_full_deployment_is_skipped_and_the_last_one_refuses(sgw: Gateway) -> None:
    """`two-limited`'s first deployment takes two requests an hour, then its second one
    answers; `one-limited` has only a limited deployment (tests/conftest.py)."""
    who = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY)
    async with httpx.AsyncClient(base_url=sgw.public_url, timeout=10) as client:

        async def ask(model: str) -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            return await client.post("/v1/chat/completions", json=body, headers=who.headers)

        served = [await ask("two-limited") for _ in range(3)]
        assert [r.status_code for r in served] == [200, 200, 200]
        assert [r.headers["x-llmgw-provider"] for r in served] == [
            "openai",
            "openai",
            "anthropic",
        ]
        assert "rate_limited" in served[2].headers["x-llmgw-route-trail"]

        answers = [await ask("one-limited") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    refused = answers[2].json()["error"]
    assert "deployments/ollama/llama3.2: 2 requests per hour" in refused["message"]
    assert int(answers[2].headers["retry-after"]) > 0


async def test_a_stream_the_client_abandons_keeps_its_tokens_reserved(
    sgw: Gateway, channel: grpc.aio.Channel
) -> None:
    """What the provider spent on an abandoned stream is unknown: the reservation
    (prompt + max_tokens) stays counted instead of being given back."""
    who = await _limited(
        sgw, RateLimit(unit=RateLimit.UNIT_TOKENS, window=RateLimit.WINDOW_HOUR, limit=100_000)
    )
    with sgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(chunks=["a", "b", "c", "d"], chunk_delay=1.0, usage=(5, 4)))
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    stream = router.StreamChatCompletion(
        _chat("going away", max_tokens=300), metadata=who.metadata, timeout=30
    )
    async for _chunk in stream:
        break  # the first chunk arrived: the provider call is under way
    stream.cancel()

    key = f"llmgw:rl:consumer:{who.consumer}:tokens:hour:{int(time.time() // 3600)}"
    client = aioredis.Redis.from_url(sgw.stack.redis_url)
    try:
        # Reserved at admission; the router's handling of the cancel must not undo it.
        # Wait until the router has seen the cancellation (its stream gauge drops).
        for _ in range(200):
            if not sum(sgw.router_metric("llmgw_chat_active_streams")):
                break
            await asyncio.sleep(0.05)
        assert sum(sgw.router_metric("llmgw_chat_active_streams")) == 0
        assert int(await client.get(key) or 0) >= 300
    finally:
        await client.aclose()


def _loop_body() -> dict[str, object]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "max_tokens": 100,
        "gateway": {"tools": ["weather"]},
    }


def _script_loop(sgw: Gateway) -> None:
    with sgw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="c1")],
                usage=(10, 4),
            ),
            Behaviour(text="Mild.", usage=(30, 8)),
        )


async def test_every_call_of_a_tool_loop_is_reserved_and_settled(sgw: Gateway) -> None:
    """A loop of two model calls reserves each before it runs and, finished, holds
    exactly the tokens both used; when the second call no longer fits the limit, the
    request is refused after the first, which is still recorded and counted."""
    roomy = await _limited(
        sgw, RateLimit(unit=RateLimit.UNIT_TOKENS, window=RateLimit.WINDOW_HOUR, limit=100_000)
    )
    _script_loop(sgw)
    async with httpx.AsyncClient(base_url=sgw.public_url, timeout=15) as client:
        answered = await client.post(
            "/v1/chat/completions", json=_loop_body(), headers=roomy.headers
        )
        assert answered.status_code == 200, answered.text
        assert answered.headers["x-llmgw-tool-iterations"] == "2"
        # What the first call reserved (its prompt, with the tool's definition, + 100).
        first_reservation = 100_000 - int(answered.headers["x-ratelimit-remaining-tokens"])
        assert first_reservation > 100
        hour = int(time.time() // 3600)
        client_redis = aioredis.Redis.from_url(sgw.stack.redis_url)
        try:
            key = f"llmgw:rl:consumer:{roomy.consumer}:tokens:hour:{hour}"
            assert int(await client_redis.get(key) or 0) == (10 + 4) + (30 + 8)

            # Room for the first call's reservation and half another: the second call,
            # whose prompt is longer (it carries the tool's result), cannot fit.
            tight = await _limited(
                sgw,
                RateLimit(
                    unit=RateLimit.UNIT_TOKENS,
                    window=RateLimit.WINDOW_HOUR,
                    limit=first_reservation + first_reservation // 2,
                ),
            )
            _script_loop(sgw)
            with sgw.fakes["openai"].control() as control:
                calls_before = len(control.completions())
            refused = await client.post(
                "/v1/chat/completions", json=_loop_body(), headers=tight.headers
            )
            assert refused.status_code == 429, refused.text
            with sgw.fakes["openai"].control() as control:
                assert len(control.completions()) - calls_before == 1
            key = f"llmgw:rl:consumer:{tight.consumer}:tokens:hour:{hour}"
            assert int(await client_redis.get(key) or 0) == 10 + 4
        finally:
            await client_redis.aclose()
        usage = await client.get("/v1/usage", headers=tight.headers)
    totals = usage.json()["totals"]
    assert (totals["requests"], totals["input_tokens"], totals["output_tokens"]) == (
        "1",
        "10",
        "4",
    )
