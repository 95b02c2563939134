"""The official OpenAI SDK pointed at the gateway, unchanged: unary, streams, tools, errors."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _sdk(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.public_url + "/v1", api_key="unused", max_retries=0)


async def test_unary(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
        )
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


async def test_stream_with_usage(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["Str", "eam", "ed."]))
    async with _sdk(gw) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = "", None, None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
    assert text == "Streamed."
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet", "llama"])
async def test_parallel_tool_calls_stream_and_assemble(gw: Gateway, model: str) -> None:
    kind = {"gpt-4o-mini": "openai", "claude-sonnet": "anthropic", "llama": "ollama"}[model]
    with gw.fakes[kind].control() as control:
        control.script(
            Behaviour(
                tool_calls=[
                    ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="call_p"),
                    ToolCallSpec(name="weather", arguments='{"city": "Rome"}', id="call_r"),
                ]
            )
        )
    async with (
        _sdk(gw) as client,
        client.chat.completions.stream(
            model=model,
            messages=[{"role": "user", "content": "Weather in Paris and Rome?"}],
            tools=[WEATHER],
        ) as stream,
    ):
        async for _event in stream:
            pass
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    # Ollama sends arguments as JSON objects, so compare their meaning, not their spacing.
    calls = [
        (c.type, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls
    ]
    assert calls == [
        ("function", "weather", {"city": "Paris"}),
        ("function", "weather", {"city": "Rome"}),
    ]
    assert all(c.id for c in message.tool_calls)


async def test_tool_results_round_trip(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        completion = await client.chat.completions.create(
            model="claude-sonnet",
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21 C"},
            ],
            tools=[WEATHER],
        )
    assert completion.choices[0].message.content == DEFAULT_TEXT
    with gw.fakes["anthropic"].control() as control:
        sent = control.completions()[-1].json
    assistant, result = sent["messages"][1], sent["messages"][2]
    assert assistant["content"][0] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "weather",
        "input": {"city": "Paris"},
    }
    assert result["role"] == "user"
    assert result["content"][0]["type"] == "tool_result"
    assert result["content"][0]["tool_use_id"] == "toolu_1"


async def test_errors_raise_the_sdk_classes(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=429, headers={"retry-after": "1"}))
    async with _sdk(gw) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.BadRequestError) as invalid:
            await client.chat.completions.create(model="gpt-4o-mini", messages=[])
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
    assert "no-such-model" in missing.value.message
    assert "messages" in invalid.value.message


async def test_error_midstream_raises_instead_of_truncating(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["a ", "b ", "c ", "d "], error_after=3))
    received = ""
    async with _sdk(gw) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError):
            async for chunk in stream:
                if chunk.choices:
                    received += chunk.choices[0].delta.content or ""
    assert received == "a b c "


async def test_models_list(gw: Gateway) -> None:
    async with _sdk(gw) as client:
        models = [m.id async for m in client.models.list()]
        one = await client.models.retrieve("fast")
    assert {"gpt-4o-mini", "claude-sonnet", "llama"} <= set(models)
    assert one.id == "gpt-4o-mini"
