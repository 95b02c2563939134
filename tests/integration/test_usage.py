"""Usage and cost through Envoy: unary and streamed requests cost the price table x the
usage reported, to the cent fraction; GetUsage over gRPC and REST."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from tests.fakes import Behaviour
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

# The shared gateway's gpt-4o-mini prices, per million tokens.
INPUT, OUTPUT = 0.15, 0.6


@pytest.fixture
async def channel(gw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as opened:
        yield opened


def _request(model: str, text: str) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))],
    )


async def _usage(channel: grpc.aio.Channel, model: str) -> admin_pb2.UsageTotals:
    admin = admin_grpc.AdminServiceStub(channel)
    reply = await admin.GetUsage(admin_pb2.GetUsageRequest(model=model), timeout=10)
    return reply.totals


async def test_unary_and_streamed_costs_follow_the_price_table(
    gw: Gateway, channel: grpc.aio.Channel
) -> None:
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    before = await _usage(channel, "gpt-4o-mini")
    metric_before = sum(gw.router_metric("llmgw_chat_cost_total", model="gpt-4o-mini"))
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(text="one", usage=(1000, 200)),
            Behaviour(chunks=["t", "wo"], usage=(3000, 500)),
        )
    unary = router.CreateChatCompletion(_request("gpt-4o-mini", "unary"), timeout=10)
    await unary
    stream = router.StreamChatCompletion(_request("gpt-4o-mini", "stream"), timeout=10)
    async for _chunk in stream:
        pass  # usage comes from the final chunk even when the caller did not ask for it
    # Each answer says what it cost in its trailers (a stream's only once it is over).
    for call, tokens in ((unary, (1000, 200)), (stream, (3000, 500))):
        trailers = dict(await call.trailing_metadata())
        cost = (tokens[0] * INPUT + tokens[1] * OUTPUT) / 1_000_000
        assert float(trailers["x-llmgw-cost"]) == pytest.approx(cost, abs=1e-9)
    assert "x-llmgw-cost" not in dict(await stream.initial_metadata())

    after = await _usage(channel, "gpt-4o-mini")
    expected = (1000 * INPUT + 200 * OUTPUT + 3000 * INPUT + 500 * OUTPUT) / 1_000_000
    assert after.requests - before.requests == 2
    assert after.input_tokens - before.input_tokens == 4000
    assert after.output_tokens - before.output_tokens == 700
    assert after.cost - before.cost == pytest.approx(expected, abs=1e-9)
    assert after.currency == "USD"
    metric_after = sum(gw.router_metric("llmgw_chat_cost_total", model="gpt-4o-mini"))
    assert metric_after - metric_before == pytest.approx(expected, abs=1e-9)


async def test_answers_from_the_cache_count_as_hits_that_cost_nothing(
    gw: Gateway, channel: grpc.aio.Channel
) -> None:
    router = router_service_pb2_grpc.RouterServiceStub(channel)
    before = await _usage(channel, "cached-mini")
    request = _request("cached-mini", f"repeat {uuid.uuid4().hex}")
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text="once", usage=(10, 2)))
    await router.CreateChatCompletion(request, timeout=10)
    await router.CreateChatCompletion(request, timeout=10)
    after = await _usage(channel, "cached-mini")
    assert after.requests - before.requests == 2
    assert after.cache_hits - before.cache_hits == 1
    assert after.input_tokens - before.input_tokens == 10  # the hit spent no tokens


async def test_usage_over_rest_with_days_and_models(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text="x", usage=(5, 1)))
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 200
        response = await client.get("/v1/usage")
        bad = await client.get("/v1/usage", params={"start_date": "yesterday"})
        backwards = await client.get(
            "/v1/usage", params={"start_date": "2026-02-02", "end_date": "2026-02-01"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert int(body["totals"]["requests"]) >= 1
    assert body["daily"] and all(len(day["date"]) == 10 for day in body["daily"])
    assert "gpt-4o-mini" in [m["model"] for m in body["by_model"]]
    assert body["spent_today"] > 0
    assert body["spent_this_month"] >= body["spent_today"]
    assert (bad.status_code, backwards.status_code) == (400, 400)
