"""The official OpenAI SDK's Responses API (`client.responses`) pointed at the gateway,
unchanged: unary and streamed answers, function tools, previous_response_id,
structured output, and errors as the SDK's own exception classes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import openai
import pytest
from openai.types.responses import FunctionToolParam, ResponseInputItemParam

from llmgw.identity.v1 import identity_pb2
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.identity import create_identity

pytestmark = pytest.mark.integration

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": False,
}


def _sdk(gw: Gateway, api_key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.public_url + "/v1", api_key=api_key, max_retries=0)


def _unique(text: str) -> str:
    """A prompt no earlier test sent (the shared gateway caches answers)."""
    return f"{text} [{uuid.uuid4().hex[:8]}]"


@pytest.fixture
async def channel(gw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as opened:
        yield opened


async def test_unary_string_input_on_gpt(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        response = await client.responses.create(model="gpt-4o-mini", input=_unique("Hello"))
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == DEFAULT_TEXT
    [item] = response.output
    assert item.type == "message" and item.id.startswith("msg_")
    assert response.usage is not None and response.usage.total_tokens > 0
    assert response.model == "gpt-4o-mini"


async def test_unary_item_input_on_claude(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        response = await client.responses.create(
            model="claude-sonnet",
            instructions="Answer briefly.",
            input=[
                {"role": "user", "content": "First question"},
                {"type": "message", "role": "assistant", "content": "First answer"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": _unique("Second")}],
                },
            ],
            max_output_tokens=50,
        )
    assert response.output_text == DEFAULT_TEXT
    with gw.fakes["anthropic"].control() as control:
        sent = control.completions()[-1].json
    assert "Answer briefly." in json.dumps(sent["system"])
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["max_tokens"] == 50


async def test_raw_stream_events_in_order(gw: Gateway) -> None:
    # Apart in time, so the pieces normally stay apart; pieces that still reach the
    # provider in one read are coalesced (one delta), which the checks allow.
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["Str", "eam", "ed."], chunk_delay=0.05))
    async with _sdk(gw) as client:
        stream = await client.responses.create(
            model="gpt-4o-mini", input=_unique("Hello"), stream=True
        )
        events = [event async for event in stream]
    types = [event.type for event in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert 1 <= len(deltas) <= 3
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(deltas) == "Streamed."
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "Streamed."
    assert completed.response.usage is not None and completed.response.usage.output_tokens > 0


async def test_stream_helper_final_response(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["Hel", "lo"], chunk_delay=0.05))
    async with (
        _sdk(gw) as client,
        client.responses.stream(model="gpt-4o-mini", input=_unique("Hi")) as stream,
    ):
        texts = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert "".join(texts) == "Hello"
    assert final.output_text == "Hello"
    assert final.status == "completed"


async def test_function_tool_round_trip(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="c1")]
            ),
            Behaviour(text="Sunny in Paris."),
        )
    question = _unique("Weather in Paris?")
    async with _sdk(gw) as client:
        first = await client.responses.create(
            model="gpt-4o-mini", input=question, tools=[WEATHER], store=False
        )
        [call] = first.output
        assert call.type == "function_call"
        assert (call.name, json.loads(call.arguments), call.call_id) == (
            "weather",
            {"city": "Paris"},
            "c1",
        )
        second = await client.responses.create(
            model="gpt-4o-mini",
            input=[
                {"role": "user", "content": question},
                cast("ResponseInputItemParam", call.model_dump(exclude_none=True)),
                {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
            ],
            tools=[WEATHER],
            store=False,
        )
    assert second.output_text == "Sunny in Paris."
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert sent["tools"][0]["function"]["name"] == "weather"
    assistant, result = sent["messages"][1], sent["messages"][2]
    assert assistant["tool_calls"][0]["id"] == "c1"
    assert assistant["tool_calls"][0]["function"]["name"] == "weather"
    assert result["role"] == "tool" and result["tool_call_id"] == "c1"
    assert result["content"] in ("sunny", [{"type": "text", "text": "sunny"}])


async def test_previous_response_id_continues_the_conversation(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text="Hi Ada."), Behaviour(text="Your name is Ada."))
    first_question = _unique("My name is Ada.")
    async with _sdk(gw) as client:
        first = await client.responses.create(model="gpt-4o-mini", input=first_question)
        second = await client.responses.create(
            model="gpt-4o-mini", input="What is my name?", previous_response_id=first.id
        )
    assert second.output_text == "Your name is Ada."
    assert second.previous_response_id == first.id
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", first_question),
        ("assistant", "Hi Ada."),
        ("user", "What is my name?"),
    ]


async def test_a_streamed_response_is_stored_before_it_completes(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["Hi ", "Bo."]), Behaviour(text="Bo."))
    question = _unique("I am Bo.")
    async with _sdk(gw) as client:
        stream = await client.responses.create(model="gpt-4o-mini", input=question, stream=True)
        completed = [e async for e in stream if e.type == "response.completed"]
        [event] = completed
        await client.responses.create(
            model="gpt-4o-mini", input="Who am I?", previous_response_id=event.response.id
        )
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", question),
        ("assistant", "Hi Bo."),
        ("user", "Who am I?"),
    ]


async def test_unknown_previous_response_is_404(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.responses.create(
                model="gpt-4o-mini", input="hi", previous_response_id="resp_" + "0" * 32
            )
    assert "previous_response_id" in missing.value.message


async def test_json_schema_reaches_the_provider(gw: Gateway) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text='{"n": 3}'))
    async with _sdk(gw) as client:
        response = await client.responses.create(
            model="gpt-4o-mini",
            input=_unique("Count"),
            text={
                "format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}
            },
        )
    assert json.loads(response.output_text) == {"n": 3}
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "count"
    assert sent["response_format"]["json_schema"]["schema"] == schema


async def test_hosted_tool_is_a_bad_request_naming_it(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(
                model="gpt-4o-mini", input="hi", tools=[WEATHER, {"type": "web_search"}]
            )
    assert "tools[1].type" in refused.value.message
    assert "web_search" in refused.value.message


async def test_unknown_model_is_404(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.responses.create(model="no-such-model", input="hi")
    assert "no-such-model" in missing.value.message


async def test_rate_limit_is_429_with_retry_after(sgw: Gateway) -> None:
    who = await create_identity(
        sgw.grpc_target,
        SECURED_ADMIN_KEY,
        consumer=identity_pb2.Consumer(
            limits=[
                identity_pb2.RateLimit(
                    unit=identity_pb2.RateLimit.UNIT_REQUESTS,
                    window=identity_pb2.RateLimit.WINDOW_HOUR,
                    limit=1,
                )
            ]
        ),
    )
    async with _sdk(sgw, api_key=who.key) as client:
        await client.responses.create(model="gpt-4o-mini", input="hi", store=False)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="gpt-4o-mini", input="hi", store=False)
    assert int(limited.value.response.headers["retry-after"]) > 0
    assert "1 requests per hour" in limited.value.message


async def test_error_midstream_is_raised_by_the_sdk(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["a ", "b ", "c ", "d "], error_after=2))
    seen: list[str] = []
    async with _sdk(gw) as client:
        stream = await client.responses.create(
            model="gpt-4o-mini", input=_unique("hi"), stream=True
        )
        with pytest.raises(openai.APIError):
            async for event in stream:
                seen.append(event.type)
    assert "response.output_text.delta" in seen
    assert seen[-1] == "response.failed"
    assert "response.completed" not in seen


async def test_usage_is_recorded(gw: Gateway, channel: grpc.aio.Channel) -> None:
    admin = admin_grpc.AdminServiceStub(channel)

    async def totals() -> admin_pb2.UsageTotals:
        reply = await admin.GetUsage(admin_pb2.GetUsageRequest(model="gpt-4o-mini"), timeout=10)
        return reply.totals

    before = await totals()
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text="counted", usage=(120, 30)))
    async with _sdk(gw) as client:
        response = await client.responses.create(model="gpt-4o-mini", input=_unique("count me"))
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (120, 30)
    after = await totals()
    assert after.requests - before.requests == 1
    assert after.input_tokens - before.input_tokens == 120
    assert after.output_tokens - before.output_tokens == 30


async def test_secured_gateway_without_a_key_is_401(sgw: Gateway) -> None:
    async with _sdk(sgw, api_key="not-a-key") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.responses.create(model="gpt-4o-mini", input="hi")


async def test_stored_responses_belong_to_their_consumer(sgw: Gateway) -> None:
    owner = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY)
    other = await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY)
    async with _sdk(sgw, api_key=owner.key) as mine, _sdk(sgw, api_key=other.key) as theirs:
        first = await mine.responses.create(model="gpt-4o-mini", input="hi")
        assert first.to_dict()["store"] is True
        again = await mine.responses.create(
            model="gpt-4o-mini", input="and then?", previous_response_id=first.id
        )
        assert again.status == "completed"
        with pytest.raises(openai.NotFoundError) as hidden:
            await theirs.responses.create(
                model="gpt-4o-mini", input="hi", previous_response_id=first.id
            )
    assert "previous_response_id" in hidden.value.message


async def test_storing_needs_the_session_service(sgw: Gateway) -> None:
    router_only = await create_identity(
        sgw.grpc_target,
        SECURED_ADMIN_KEY,
        group=identity_pb2.Group(allowed_models=["*"], allowed_services=["router"]),
    )
    async with _sdk(sgw, api_key=router_only.key) as client:
        unstored = await client.responses.create(model="gpt-4o-mini", input="hi")
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await client.responses.create(model="gpt-4o-mini", input="hi", store=True)
    assert unstored.to_dict()["store"] is False
    assert unstored.status == "completed"
    assert "store" in refused.value.message
