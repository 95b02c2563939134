"""The embedded default model: real llama-server, real SmolLM2 weights, both wire protocols.

The first run builds llama-server from source (minutes); later runs reuse the cache. The model
is tiny, so these tests check the shape of what comes back, never the wording.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
import pytest_asyncio

from llmgw.common.v1 import error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import InvalidArgument
from services.common.gateway_config import ProviderConfig
from services.launcher import local_embeddings as le
from services.launcher import localmodel as lm
from services.provider.adapters.openai import build_openai

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    # The first test pays for the one-off download and build of llama-server.
    pytest.mark.timeout(1800),
]

OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "input_schema": OPENAI_TOOLS[0]["function"]["parameters"],
    }
]
# SmolLM2 never calls a tool by itself. Prefilling the assistant turn with the opening of a
# Hermes-style call (up to the first argument's value) and stopping at the closing tag makes
# it finish a well-formed call that llama-server parses into a real tool call. A bare
# "<tool_call>\n" prefill is not enough: the model then writes malformed JSON and llama-server
# answers HTTP 500 ("does not match the expected peg-native format").
TOOL_CALL_PREFILL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
TOOL_CALL_STOP = ["</tool_call>"]
WEATHER_QUESTION = "What is the weather in Paris?"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local_model() -> AsyncIterator[lm.LocalModelServer]:
    async with lm.LocalModelServer(progress=print, startup_timeout=120) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local_embeddings() -> AsyncIterator[lm.LocalModelServer]:
    async with lm.LocalModelServer(embeddings=True, progress=print, startup_timeout=120) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def http(local_model: lm.LocalModelServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=local_model.base_url, timeout=120, trust_env=False
    ) as client:
        yield client


async def _sse(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> list[tuple[str | None, str]]:
    """POST and collect the (event name, data) pairs of an SSE response."""
    events: list[tuple[str | None, str]] = []
    event: str | None = None
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((event, line.removeprefix("data:").strip()))
                event = None
    return events


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": lm.LOCAL_MODEL_NAME,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def _tool_chat(**extra: Any) -> dict[str, Any]:
    return {
        "model": lm.LOCAL_MODEL_NAME,
        "messages": [
            {"role": "user", "content": WEATHER_QUESTION},
            {"role": "assistant", "content": TOOL_CALL_PREFILL},
        ],
        "tools": OPENAI_TOOLS,
        "stop": TOOL_CALL_STOP,
        "temperature": 0,
        "max_tokens": 64,
        **extra,
    }


def _anthropic_tool_message(**extra: Any) -> dict[str, Any]:
    return {
        "model": lm.LOCAL_MODEL_NAME,
        "max_tokens": 64,
        "temperature": 0,
        "tools": ANTHROPIC_TOOLS,
        "stop_sequences": TOOL_CALL_STOP,
        "messages": [
            {"role": "user", "content": WEATHER_QUESTION},
            {"role": "assistant", "content": TOOL_CALL_PREFILL},
        ],
        **extra,
    }


def _assert_openai_usage(usage: dict[str, Any]) -> None:
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


# --- plumbing ---------------------------------------------------------------------------------


async def test_health_and_model_list(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).status_code == 200
    models = (await http.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == [lm.LOCAL_MODEL_NAME]


# --- OpenAI chat completions -------------------------------------------------------------------


async def test_openai_unary_chat(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/chat/completions", json=_chat("Say hello.", max_tokens=32))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == lm.LOCAL_MODEL_NAME
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in {"stop", "length"}
    _assert_openai_usage(body["usage"])


async def test_openai_stream_ends_with_usage_then_done(http: httpx.AsyncClient) -> None:
    body = _chat(
        "Write one sentence about the sea.",
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = await _sse(http, "/v1/chat/completions", body)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    *generated, usage_chunk = chunks
    assert usage_chunk["choices"] == []
    _assert_openai_usage(usage_chunk["usage"])
    texts = [
        c["choices"][0]["delta"]["content"]
        for c in generated
        if c["choices"][0]["delta"].get("content")
    ]
    assert len(texts) >= 2
    finishes = [c["choices"][0]["finish_reason"] for c in generated]
    assert finishes[-1] in {"stop", "length"}
    assert all(f is None for f in finishes[:-1])


async def test_parallel_requests_are_all_served(http: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(
            http.post("/v1/chat/completions", json=_chat(f"Name a colour. {i}", max_tokens=16))
            for i in range(lm.PARALLEL_SLOTS)
        )
    )
    assert [r.status_code for r in responses] == [200] * lm.PARALLEL_SLOTS
    assert all(r.json()["choices"][0]["message"]["content"] for r in responses)


# --- Anthropic messages ------------------------------------------------------------------------


async def test_anthropic_unary_message(http: httpx.AsyncClient) -> None:
    body = {
        "model": lm.LOCAL_MODEL_NAME,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "Say hi."}],
    }
    response = await http.post("/v1/messages", json=body)
    assert response.status_code == 200
    message = response.json()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["type"] == "text"
    assert isinstance(message["content"][0]["text"], str)
    assert message["stop_reason"] in {"end_turn", "max_tokens"}
    usage = message["usage"]
    # input_tokens counts only the prompt tokens not served from llama-server's prompt cache.
    assert usage["input_tokens"] + usage.get("cache_read_input_tokens", 0) > 0
    assert usage["output_tokens"] > 0


async def test_anthropic_stream(http: httpx.AsyncClient) -> None:
    body = {
        "model": lm.LOCAL_MODEL_NAME,
        "max_tokens": 24,
        "stream": True,
        "messages": [{"role": "user", "content": "Write one sentence about the sea."}],
    }
    events = await _sse(http, "/v1/messages", body)
    payloads = [json.loads(data) for _, data in events]
    assert [name for name, _ in events] == [p["type"] for p in payloads]
    names = [p["type"] for p in payloads]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[2:-3]) == {"content_block_delta"}
    assert payloads[0]["message"]["role"] == "assistant"
    assert payloads[1]["content_block"]["type"] == "text"
    assert all(p["delta"]["type"] == "text_delta" for p in payloads[2:-3])
    message_delta = payloads[-2]
    assert message_delta["delta"]["stop_reason"] in {"end_turn", "max_tokens"}
    assert message_delta["usage"]["output_tokens"] > 0


# --- forced tool calls ----------------------------------------------------------------------


async def test_openai_tool_call_unary(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/chat/completions", json=_tool_chat())
    assert response.status_code == 200, response.text
    body = response.json()
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert not message["content"]
    [call] = message["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
    _assert_openai_usage(body["usage"])


async def test_openai_tool_call_streamed(http: httpx.AsyncClient) -> None:
    body = _tool_chat(stream=True, stream_options={"include_usage": True})
    events = await _sse(http, "/v1/chat/completions", body)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    *generated, usage_chunk = chunks
    _assert_openai_usage(usage_chunk["usage"])
    deltas = [call for c in generated for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas and {d["index"] for d in deltas} == {0}
    assert deltas[0]["id"] and deltas[0]["type"] == "function"
    assert deltas[0]["function"]["name"] == "get_weather"
    arguments = "".join(d["function"].get("arguments", "") for d in deltas)
    assert isinstance(json.loads(arguments), dict)
    assert generated[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_anthropic_tool_use_unary(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/messages", json=_anthropic_tool_message())
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["stop_reason"] == "tool_use"
    [block] = [b for b in message["content"] if b["type"] == "tool_use"]
    assert block["id"] and block["name"] == "get_weather"
    assert isinstance(block["input"], dict)


async def test_anthropic_tool_use_streamed(http: httpx.AsyncClient) -> None:
    events = await _sse(http, "/v1/messages", _anthropic_tool_message(stream=True))
    payloads = [json.loads(data) for _, data in events]
    [start] = [p for p in payloads if p["type"] == "content_block_start"]
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["id"] and start["content_block"]["name"] == "get_weather"
    partial = "".join(
        p["delta"]["partial_json"]
        for p in payloads
        if p["type"] == "content_block_delta" and p["delta"]["type"] == "input_json_delta"
    )
    assert isinstance(json.loads(partial), dict)
    [message_delta] = [p for p in payloads if p["type"] == "message_delta"]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert payloads[-1]["type"] == "message_stop"


# --- the official SDKs parse llama-server's output -------------------------------------------


async def test_openai_sdk(local_model: lm.LocalModelServer) -> None:
    client = openai.AsyncOpenAI(base_url=local_model.base_url + "/v1", api_key="none")
    async with client:
        completion = await client.chat.completions.create(
            model=lm.LOCAL_MODEL_NAME,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=16,
        )
        assert isinstance(completion.choices[0].message.content, str)
        assert completion.usage is not None and completion.usage.completion_tokens > 0

        stream = await client.chat.completions.create(
            model=lm.LOCAL_MODEL_NAME,
            messages=[
                {"role": "user", "content": WEATHER_QUESTION},
                {"role": "assistant", "content": TOOL_CALL_PREFILL},
            ],
            tools=OPENAI_TOOLS,
            stop=TOOL_CALL_STOP,
            temperature=0,
            max_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
        names: list[str] = []
        arguments = ""
        finish_reason = None
        usage = None
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                for call in choice.delta.tool_calls or []:
                    if call.function and call.function.name:
                        names.append(call.function.name)
                    if call.function and call.function.arguments:
                        arguments += call.function.arguments
    assert names == ["get_weather"]
    assert isinstance(json.loads(arguments), dict)
    assert finish_reason == "tool_calls"
    assert usage is not None and usage.prompt_tokens > 0


async def test_anthropic_sdk(local_model: lm.LocalModelServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=local_model.base_url, api_key="none")
    async with client:
        message = await client.messages.create(
            model=lm.LOCAL_MODEL_NAME,
            max_tokens=16,
            messages=[{"role": "user", "content": "Say hi."}],
        )
        assert message.content[0].type == "text"
        assert message.usage.output_tokens > 0

        async with client.messages.stream(
            model=lm.LOCAL_MODEL_NAME,
            max_tokens=64,
            tools=ANTHROPIC_TOOLS,
            stop_sequences=TOOL_CALL_STOP,
            messages=[
                {"role": "user", "content": WEATHER_QUESTION},
                {"role": "assistant", "content": TOOL_CALL_PREFILL},
            ],
            extra_body={"temperature": 0},
        ) as stream:
            final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [tool_use] = [block for block in final.content if block.type == "tool_use"]
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input, dict)


# --- the embeddings server ------------------------------------------------------------------


async def test_embeddings_server_through_the_sdk(local_embeddings: lm.LocalModelServer) -> None:
    client = openai.AsyncOpenAI(base_url=local_embeddings.base_url + "/v1", api_key="none")
    async with client:
        one = await client.embeddings.create(model=le.EMBEDDINGS_MODEL_NAME, input="Hello there")
        three = await client.embeddings.create(
            model=le.EMBEDDINGS_MODEL_NAME,
            input=["first text", "second text", "a third, longer text"],
            encoding_format="float",
        )
    assert len(one.data) == 1
    assert len(one.data[0].embedding) == le.EMBEDDING_DIMENSIONS
    assert [item.index for item in three.data] == [0, 1, 2]
    vectors = [item.embedding for item in three.data]
    assert all(len(vector) == le.EMBEDDING_DIMENSIONS for vector in vectors)
    # Unit length (llama-server normalises), and different texts give different vectors.
    assert sum(value * value for value in vectors[0]) == pytest.approx(1.0, abs=1e-3)
    assert vectors[0] != vectors[1]
    assert three.usage.prompt_tokens > 0


async def test_embeddings_server_through_the_provider_adapter(
    local_embeddings: lm.LocalModelServer,
) -> None:
    """The gateway's OpenAI adapter as the default catalogue configures it: base64 asked
    for and decoded, one vector per text, in order."""
    config = ProviderConfig(type="openai", base_url=local_embeddings.base_url + "/v1")
    adapter = build_openai("local-embeddings", config, {})
    texts = ["alpha", "beta gamma", "delta"]
    try:
        response = await adapter.embed(
            provider_pb2.EmbedRequest(
                provider="local-embeddings", model=le.EMBEDDINGS_MODEL_NAME, input=texts
            ),
            60,
        )
        single = await adapter.embed(
            provider_pb2.EmbedRequest(
                provider="local-embeddings", model=le.EMBEDDINGS_MODEL_NAME, input=["beta gamma"]
            ),
            60,
        )
        # A text longer than the server's batch is the caller's to shorten.
        with pytest.raises(InvalidArgument) as too_long:
            await adapter.embed(
                provider_pb2.EmbedRequest(
                    provider="local-embeddings",
                    model=le.EMBEDDINGS_MODEL_NAME,
                    input=["word " * (le.EMBEDDINGS_CTX + 100)],
                ),
                60,
            )
    finally:
        await adapter.close()
    assert too_long.value.reason == error_reason_pb2.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED
    assert [len(vector.values) for vector in response.embeddings] == [le.EMBEDDING_DIMENSIONS] * 3
    assert list(single.embeddings[0].values) == pytest.approx(
        list(response.embeddings[1].values), abs=1e-4
    )
    assert response.usage.input_tokens > 0
