"""The OpenAI family: request bodies as the fake recorded them, and answers parsed."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import GatewayError
from services.common.gateway_config import ProviderConfig
from services.provider.adapters.endpoints import NO_KEY
from services.provider.adapters.openai import build_azure, build_openai
from services.provider.adapters.openai_request import build_body
from services.provider.adapters.openai_response import completion, parse_usage
from services.provider.adapters.unconfigured import UnconfiguredAdapter
from tests.fakes import Behaviour, FakeOpenAI
from tests.unit.provider.chat import (
    WEATHER_SCHEMA,
    assistant,
    call,
    collect,
    developer,
    image,
    request,
    struct,
    system,
    tool,
    tool_result,
    user,
)
from tests.unit.provider.conftest import Upstream

Mode = chat_pb2.ToolChoice


def _sent(up: Upstream) -> Any:
    recorded = up.fake.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    return recorded.json


async def test_system_and_multi_turn(openai_up: Upstream) -> None:
    await openai_up.adapter.complete(
        request(
            openai_up.model,
            system("Be terse."),
            developer("Answer in French."),
            user("Hi", name="alice"),
            assistant("Bonjour."),
            user("Capital of Italy?"),
        ),
        5,
    )
    assert _sent(openai_up)["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi", "name": "alice"},
        {"role": "assistant", "content": "Bonjour."},
        {"role": "user", "content": "Capital of Italy?"},
    ]


async def test_image_parts(openai_up: Upstream) -> None:
    message = user("What is this?")
    message.content.append(image("https://example.com/cat.png", "low"))
    await openai_up.adapter.complete(request(openai_up.model, message), 5)
    assert _sent(openai_up)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (Mode(mode=Mode.MODE_UNSPECIFIED), None),
        (Mode(mode=Mode.MODE_AUTO), "auto"),
        (Mode(mode=Mode.MODE_NONE), "none"),
        (Mode(mode=Mode.MODE_REQUIRED), "required"),
        (
            Mode(mode=Mode.MODE_TOOL, tool_name="get_weather"),
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_tools_and_tool_choice(
    openai_up: Upstream, choice: chat_pb2.ToolChoice, expected: object
) -> None:
    await openai_up.adapter.complete(
        request(
            openai_up.model,
            tools=[tool("get_weather", "Weather by city", WEATHER_SCHEMA), tool("now")],
            tool_choice=choice,
            parallel_tool_calls=False,
        ),
        5,
    )
    body = _sent(openai_up)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    assert body.get("tool_choice") == expected
    assert body["parallel_tool_calls"] is False


async def test_tool_results_round_trip(openai_up: Upstream) -> None:
    await openai_up.adapter.complete(
        request(
            openai_up.model,
            user("Weather in Paris and Rome?"),
            assistant(
                "",
                (
                    call("call_1", "get_weather", '{"city":"Paris"}'),
                    call("call_2", "get_weather", '{"city":"Rome"}'),
                ),
            ),
            tool_result("call_1", "18C"),
            tool_result("call_2", "24C"),
        ),
        5,
    )
    messages = _sent(openai_up)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
            },
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "24C"},
    ]


async def test_sampling_options_and_formats(openai_up: Upstream) -> None:
    await openai_up.adapter.complete(
        request(
            openai_up.model,
            temperature=0.5,
            top_p=0.9,
            max_tokens=64,
            stop=["END"],
            presence_penalty=0.1,
            frequency_penalty=0.2,
            seed=7,
            user="user-42",
            logit_bias={"50256": -100.0, "11": 1.5},
            response_format=chat_pb2.ResponseFormat(
                type=chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA,
                schema_name="weather",
                schema=struct(WEATHER_SCHEMA),
                strict=True,
            ),
        ),
        5,
    )
    body = _sent(openai_up)
    assert {key: body[key] for key in ("temperature", "top_p", "stop", "seed", "user")} == {
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "user": "user-42",
    }
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.1, 0.2)
    # A compatible server (not api.openai.com) gets `max_tokens`.
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert body["logit_bias"] == {"50256": -100, "11": 1.5}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
    }
    assert "stream" not in body


async def test_json_object_and_stream_usage_option(openai_up: Upstream) -> None:
    json_object = chat_pb2.ResponseFormat(type=chat_pb2.ResponseFormat.TYPE_JSON_OBJECT)
    await collect(
        openai_up.adapter.stream(request(openai_up.model, response_format=json_object), 5)
    )
    body = _sent(openai_up)
    assert body["response_format"] == {"type": "json_object"}
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", chat_pb2.FINISH_REASON_STOP),
        ("stop_sequence", chat_pb2.FINISH_REASON_STOP),
        ("content_filter", chat_pb2.FINISH_REASON_CONTENT_FILTER),
        ("tool_calls", chat_pb2.FINISH_REASON_TOOL_CALLS),
    ],
)
async def test_finish_reasons(openai_up: Upstream, finish: str, expected: int) -> None:
    openai_up.fake.script(Behaviour(text="x", finish=finish), Behaviour(text="x", finish=finish))
    unary = await openai_up.adapter.complete(request(openai_up.model), 5)
    streamed = await collect(openai_up.adapter.stream(request(openai_up.model), 5))
    assert unary.finish_reason == expected == streamed[-1].finish_reason


def test_usage_details() -> None:
    usage = parse_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 30},
        }
    )
    assert usage == chat_pb2.Usage(
        input_tokens=100,
        output_tokens=40,
        total_tokens=140,
        cached_input_tokens=64,
        reasoning_tokens=30,
    )


def test_refusal_and_error_bodies() -> None:
    answer = completion(
        {
            "id": "chatcmpl-1",
            "model": "m",
            "choices": [
                {
                    "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                    "finish_reason": "stop",
                }
            ],
        },
        provider="p",
        model="m",
    )
    assert answer.refusal == "I can't." and not answer.message.content
    with pytest.raises(GatewayError) as caught:
        completion({"error": {"message": "busy", "type": "server_error"}}, provider="p", model="m")
    assert caught.value.code.name == "UNAVAILABLE"


async def test_keyless_compatible_server() -> None:
    async with FakeOpenAI() as fake:
        config = ProviderConfig(type="openai", base_url=fake.url)
        # OpenAI's key stays with OpenAI: not sent to an endpoint named in the file.
        adapter = build_openai("local", config, {"OPENAI_API_KEY": "sk-openai-only-000"})
        try:
            await adapter.complete(request(fake.models[0]), 5)
        finally:
            await adapter.close()
        assert fake.requests[-1].headers["authorization"] == f"Bearer {NO_KEY}"
        assert adapter.info == provider_pb2.ProviderInfo(
            name="local",
            type=provider_pb2.PROVIDER_TYPE_OPENAI,
            base_url=fake.url,
            has_credentials=False,
        )


async def test_official_endpoint_needs_a_key() -> None:
    adapter = build_openai("openai", ProviderConfig(type="openai"), {})
    assert isinstance(adapter, UnconfiguredAdapter)
    with pytest.raises(GatewayError) as caught:
        await adapter.complete(request("gpt-4o"), 5)
    assert caught.value.code.name == "UNAVAILABLE"
    assert "OPENAI_API_KEY" in caught.value.message
    assert adapter.info.base_url == "https://api.openai.com/v1"


def test_max_tokens_field_for_openai_itself() -> None:
    body = build_body(
        request("o3", max_tokens=10), stream=False, max_tokens_field="max_completion_tokens"
    )
    assert body["max_completion_tokens"] == 10 and "max_tokens" not in body


async def test_azure_deployment_path_and_version() -> None:
    async with FakeOpenAI() as fake:
        config = ProviderConfig(
            type="azure_openai", base_url=fake.root_url, api_version="2024-10-21"
        )
        adapter = build_azure("azure", config, {"AZURE_OPENAI_API_KEY": "azure-key-1"})
        try:
            with pytest.raises(GatewayError) as caught:
                await adapter.complete(request("my-gpt4o"), 5)
        finally:
            await adapter.close()
    # The fake serves OpenAI's paths only; its 404 names the Azure path the SDK used.
    assert "POST /openai/deployments/my-gpt4o/chat/completions" in caught.value.message
    assert adapter.info.type == provider_pb2.PROVIDER_TYPE_AZURE_OPENAI
