"""The real local model through the whole gateway, by the OpenAI and the Anthropic adapter.

The model (SmolLM2-135M) is small and not clever: these tests assert on structure, never
on wording.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from tests.fakes.downstream_fake import DownstreamControl
from tests.support.gateway import Gateway

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# SmolLM2 never calls a tool on its own; ending the conversation with the start of a
# tool call (and stopping at its end) makes it emit a real one, which llama-server parses.
TOOL_PREFILL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
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


@pytest.mark.parametrize("model", ["local", "local-anthropic"])
async def test_unary_completion(local_gateway: Gateway, model: str) -> None:
    async with _sdk(local_gateway) as client:
        reply = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": "You answer in one short sentence."},
                {"role": "user", "content": "Say hello."},
            ],
            max_tokens=24,
        )
    choice = reply.choices[0]
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0 and 0 < reply.usage.completion_tokens <= 24


@pytest.mark.parametrize("model", ["local", "local-anthropic"])
async def test_streamed_completion_with_usage(local_gateway: Gateway, model: str) -> None:
    async with _sdk(local_gateway) as client:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Count from one to five."}],
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, finishes, usage = [], [], None
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
            usage = chunk.usage or usage
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert len(finishes) == 1 and finishes[0] in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["local", "local-anthropic"])
async def test_tool_call_from_the_real_model(local_gateway: Gateway, model: str) -> None:
    async with _sdk(local_gateway) as client:
        reply = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "user", "content": "What is the weather in Paris?"},
                {"role": "assistant", "content": TOOL_PREFILL},
            ],
            tools=[WEATHER],
            stop=["</tool_call>"],
            temperature=0,
            max_tokens=48,
        )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments), dict)


@pytest.mark.parametrize("model", ["local", "local-anthropic"])
async def test_gateway_side_tool_loop_with_the_real_model(
    local_gateway: Gateway, model: str
) -> None:
    """The model calls `weather` (started by the prefill), the gateway runs it through the
    Tool service against the downstream fake and calls the model again with the result."""
    prefill = '<tool_call>\n{"name": "weather", "arguments": {"city": "'
    async with httpx.AsyncClient(base_url=local_gateway.public_url, timeout=120) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": model,
                "messages": [
                    {"role": "user", "content": "What is the weather in Paris?"},
                    {"role": "assistant", "content": prefill},
                ],
                "stop": ["</tool_call>"],
                "temperature": 0,
                "max_tokens": 48,
                "gateway": {"tools": ["weather"], "max_iterations": 2},
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    assert body["object"] == "chat.completion"
    assert choice["finish_reason"] in ("stop", "length", "max_iterations")
    assert choice["message"]["role"] == "assistant"
    assert response.headers["x-llmgw-tool-iterations"] == "2"
    # Two model calls' usage, added up.
    assert body["usage"]["completion_tokens"] > 0
    with DownstreamControl(local_gateway.fakes["downstream"].root_url) as downstream:
        weather_calls = [r for r in downstream.requests() if r.path.startswith("/weather/")]
    assert weather_calls, "the gateway never ran the model's tool call"


@pytest.mark.parametrize("model", ["local", "local-anthropic"])
async def test_anthropic_sdk_through_the_messages_drop_in(
    local_gateway: Gateway, model: str
) -> None:
    """The Anthropic SDK reaches the real model through `/v1/messages`, whichever adapter
    (OpenAI's or Anthropic's wire format) the catalogue entry uses behind it."""
    hello = [{"role": "user", "content": "Say hello"}]
    async with anthropic.AsyncAnthropic(
        base_url=local_gateway.public_url, api_key="unused", max_retries=0
    ) as client:
        message = await client.messages.create(model=model, max_tokens=8, messages=hello)
        # `model` is the upstream's name for what answered, as in the chat shape.
        assert message.role == "assistant" and message.model
        assert message.content and message.content[0].type == "text"
        assert message.stop_reason in ("end_turn", "max_tokens")
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
        async with client.messages.stream(model=model, max_tokens=8, messages=hello) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        assert final.content[0].type == "text"
        assert "".join(pieces) == final.content[0].text
        assert final.usage.output_tokens > 0
