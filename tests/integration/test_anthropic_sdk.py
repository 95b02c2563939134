"""The official Anthropic SDK pointed at the gateway's `/v1/messages`, unchanged: any
catalogue model, unary and streamed, tools, count_tokens, errors, usage and keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import grpc
import httpx
import pytest
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    ToolParam,
    ToolUseBlock,
)

from llmgw.identity.v1 import identity_pb2
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.identity import create_identity

pytestmark = pytest.mark.integration

WEATHER: ToolParam = {
    "name": "weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello"}]
# A block kind the gateway does not take (typed loosely: the SDK would not build it so).
DOCUMENT: Any = {"role": "user", "content": [{"type": "document"}]}
KIND = {"gpt-4o-mini": "openai", "claude-sonnet": "anthropic", "llama": "ollama"}


def _sdk(gw: Gateway, **auth: str) -> anthropic.AsyncAnthropic:
    if not auth:
        auth = {"api_key": "unused"}
    return anthropic.AsyncAnthropic(base_url=gw.public_url, max_retries=0, **auth)  # type: ignore[arg-type]


@pytest.fixture
async def channel(gw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as opened:
        yield opened


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet", "llama"])
async def test_unary_on_every_provider(gw: Gateway, model: str) -> None:
    async with _sdk(gw) as client:
        message = await client.messages.create(
            model=model, max_tokens=100, system="Be brief.", messages=HELLO
        )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == model
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", DEFAULT_TEXT)]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    with gw.fakes[KIND[model]].control() as control:
        assert len(control.completions()) == 1


async def test_stream_helper_text_and_final_message(gw: Gateway) -> None:
    with gw.fakes["anthropic"].control() as control:
        control.script(Behaviour(chunks=["Str", "eam", "ed."], usage=(12, 3)))
    async with (
        _sdk(gw) as client,
        client.messages.stream(model="claude-sonnet", max_tokens=50, messages=HELLO) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Streamed."
    assert final.content[0].type == "text" and final.content[0].text == "Streamed."
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 3)


async def test_raw_events_come_in_anthropic_order(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                text="Checking.",
                tool_calls=[
                    ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="call_p"),
                    ToolCallSpec(name="weather", arguments='{"city": "Rome"}', id="call_r"),
                ],
            )
        )
    async with _sdk(gw) as client:
        stream = await client.messages.create(
            model="gpt-4o-mini", max_tokens=50, messages=HELLO, tools=[WEATHER], stream=True
        )
        events = [event async for event in stream]
    names: list[str] = []
    for event in events:
        if not names or names[-1] != event.type:
            names.append(event.type)
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    starts = [e for e in events if isinstance(e, RawContentBlockStartEvent)]
    assert [e.content_block.type for e in starts] == ["text", "tool_use", "tool_use"]
    assert [getattr(e.content_block, "id", None) for e in starts[1:]] == ["call_p", "call_r"]
    assert [e.index for e in starts] == [0, 1, 2]
    arguments = "".join(
        e.delta.partial_json
        for e in events
        if isinstance(e, RawContentBlockDeltaEvent)
        and e.index == 2
        and e.delta.type == "input_json_delta"
    )
    assert arguments.replace(" ", "") == '{"city":"Rome"}'
    delta = next(e for e in events if isinstance(e, RawMessageDeltaEvent))
    assert delta.delta.stop_reason == "tool_use"


async def test_tool_round_trip(gw: Gateway) -> None:
    with gw.fakes["anthropic"].control() as control:
        control.script(
            Behaviour(tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Paris"}')])
        )
    question: MessageParam = {"role": "user", "content": "Weather in Paris?"}
    async with _sdk(gw) as client:
        asked = await client.messages.create(
            model="claude-sonnet", max_tokens=100, messages=[question], tools=[WEATHER]
        )
        assert asked.stop_reason == "tool_use"
        call = asked.content[-1]
        assert isinstance(call, ToolUseBlock)
        assert (call.name, call.input) == ("weather", {"city": "Paris"})
        answered = await client.messages.create(
            model="claude-sonnet",
            max_tokens=100,
            tools=[WEATHER],
            messages=[
                question,
                {"role": "assistant", "content": asked.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}
                    ],
                },
            ],
        )
    assert answered.content[0].type == "text" and answered.content[0].text == DEFAULT_TEXT
    assert answered.stop_reason == "end_turn"
    with gw.fakes["anthropic"].control() as control:
        sent = control.completions()[-1].json
    assert sent["messages"][1]["content"][-1]["id"] == call.id
    result = sent["messages"][2]["content"][0]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", call.id)
    assert "sunny, 21 C" in str(result["content"])


async def test_count_tokens_calls_no_model(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        short = await client.messages.count_tokens(model="gpt-4o-mini", messages=HELLO)
        long = await client.messages.count_tokens(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello there, " * 50}],
            tools=[WEATHER],
        )
        claude = await client.messages.count_tokens(model="claude-sonnet", messages=HELLO)
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.count_tokens(model="no-such-model", messages=HELLO)
    assert 0 < short.input_tokens < long.input_tokens
    assert claude.input_tokens > 0
    for kind in ("openai", "anthropic"):
        with gw.fakes[kind].control() as control:
            assert control.completions() == []


async def test_errors_raise_the_sdk_classes(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=429, headers={"retry-after": "1"}))
    async with _sdk(gw) as client:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(model="no-such-model", max_tokens=10, messages=HELLO)
        with pytest.raises(anthropic.BadRequestError) as invalid:
            await client.messages.create(
                model="gpt-4o-mini",
                max_tokens=10,
                messages=[DOCUMENT],
            )
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
    assert "no-such-model" in missing.value.message
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "messages[0].content[0].type" in invalid.value.message
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_a_limit_answers_429_with_retry_after(sgw: Gateway) -> None:
    limit = identity_pb2.RateLimit(
        unit=identity_pb2.RateLimit.UNIT_REQUESTS,
        window=identity_pb2.RateLimit.WINDOW_HOUR,
        limit=1,
    )
    consumer = identity_pb2.Consumer(limits=[limit])
    who = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY, consumer=consumer)
    async with _sdk(sgw, api_key=who.key) as client:
        await client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
    assert int(limited.value.response.headers["retry-after"]) > 0
    assert "1 requests per hour" in limited.value.message


async def test_failure_midstream_raises_while_iterating(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["a ", "b ", "c ", "d "], error_after=3))
    received = ""
    async with _sdk(gw) as client:
        stream = await client.messages.create(
            model="gpt-4o-mini", max_tokens=50, messages=HELLO, stream=True
        )
        with pytest.raises(anthropic.APIStatusError) as failed:
            async for event in stream:
                if (
                    isinstance(event, RawContentBlockDeltaEvent)
                    and event.delta.type == "text_delta"
                ):
                    received += event.delta.text
    assert received == "a b c "
    assert failed.value.body["type"] == "error"  # type: ignore[index]


async def test_usage_is_recorded(gw: Gateway, channel: grpc.aio.Channel) -> None:
    admin = admin_grpc.AdminServiceStub(channel)
    request = admin_pb2.GetUsageRequest(model="claude-sonnet")
    before = (await admin.GetUsage(request, timeout=10)).totals
    with gw.fakes["anthropic"].control() as control:
        control.script(
            Behaviour(text="one", usage=(1000, 200)), Behaviour(chunks=["t", "wo"], usage=(30, 5))
        )
    async with _sdk(gw) as client:
        message = await client.messages.create(
            model="claude-sonnet", max_tokens=300, messages=HELLO
        )
        async with client.messages.stream(
            model="claude-sonnet", max_tokens=300, messages=HELLO
        ) as stream:
            final = await stream.get_final_message()
    assert (message.usage.input_tokens, message.usage.output_tokens) == (1000, 200)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 5)
    after = (await admin.GetUsage(request, timeout=10)).totals
    assert after.requests - before.requests == 2
    assert after.input_tokens - before.input_tokens == 1030
    assert after.output_tokens - before.output_tokens == 205


async def test_keys_by_x_api_key_and_bearer(sgw: Gateway) -> None:
    who = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY)
    async with _sdk(sgw, api_key=who.key) as client:
        by_header = await client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
    async with _sdk(sgw, auth_token=who.key) as client:
        by_bearer = await client.messages.count_tokens(model="gpt-4o-mini", messages=HELLO)
    async with _sdk(sgw, api_key="not-a-key") as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
    assert by_header.content[0].type == "text"
    assert by_bearer.input_tokens > 0


async def test_raw_stream_is_named_sse_with_a_ping(gw: Gateway) -> None:
    body = {"model": "llama", "max_tokens": 20, "messages": HELLO, "stream": True}
    async with (
        httpx.AsyncClient(base_url=gw.public_url, timeout=10) as http,
        http.stream("POST", "/v1/messages", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join([piece async for piece in response.aiter_text()])
    names = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    datas = [line for line in text.splitlines() if line.startswith("data: ")]
    assert len(datas) == len(names)


async def test_stream_helper_assembles_tool_input(gw: Gateway) -> None:
    with gw.fakes["ollama"].control() as control:
        control.script(
            Behaviour(tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Oslo"}')])
        )
    async with (
        _sdk(gw) as client,
        client.messages.stream(
            model="llama", max_tokens=50, messages=HELLO, tools=[WEATHER]
        ) as stream,
    ):
        final = await stream.get_final_message()
    call = final.content[-1]
    assert isinstance(call, ToolUseBlock)
    assert (call.name, call.input) == ("weather", {"city": "Oslo"})
    assert final.stop_reason == "tool_use"


async def test_a_model_outside_the_callers_groups_is_403(sgw: Gateway) -> None:
    group = identity_pb2.Group(allowed_models=["llama"], allowed_services=["router"])
    who = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY, group=group)
    async with _sdk(sgw, api_key=who.key) as client:
        allowed = await client.messages.count_tokens(model="llama", messages=HELLO)
        with pytest.raises(anthropic.PermissionDeniedError):
            await client.messages.count_tokens(model="gpt-4o-mini", messages=HELLO)
        with pytest.raises(anthropic.PermissionDeniedError):
            await client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
    assert allowed.input_tokens > 0


async def test_closing_the_stream_cancels_the_upstream(gw: Gateway) -> None:
    with gw.fakes["anthropic"].control() as control:
        control.script(Behaviour(chunks=[f"w{i} " for i in range(50)], chunk_delay=0.1))
    async with _sdk(gw) as client:
        stream = await client.messages.create(
            model="claude-sonnet", max_tokens=100, messages=HELLO, stream=True
        )
        async for event in stream:
            if isinstance(event, RawContentBlockDeltaEvent):
                break
        await stream.close()
    closed_at = time.time()
    with gw.fakes["anthropic"].control() as control:
        stats = control.stats()
        while (stats.last_cancelled_at is None or stats.in_flight) and time.time() - closed_at < 3:
            await asyncio.sleep(0.02)
            stats = control.stats()
    assert stats.cancelled == 1 and stats.in_flight == 0
