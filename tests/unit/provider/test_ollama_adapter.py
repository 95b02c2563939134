"""The Ollama family: `/api/chat` bodies as the fake recorded them, answers parsed."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.common.v1 import chat_pb2
from services.common.errors import InvalidArgument
from services.common.gateway_config import ConfigError
from services.provider.adapters.ollama import ollama_base_url
from tests.fakes import Behaviour, ToolCallSpec
from tests.unit.provider.chat import (
    WEATHER_SCHEMA,
    assembled_calls,
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
    assert (recorded.method, recorded.path) == ("POST", "/api/chat")
    return recorded.json


async def test_messages_options_and_unary_body(ollama_up: Upstream) -> None:
    photo = user("What is this?")
    photo.content.append(image("data:image/png;base64,iVBORw0KGgo="))
    await ollama_up.adapter.complete(
        request(
            ollama_up.model,
            system("Be terse."),
            developer("Answer in French."),
            photo,
            assistant("Un chat."),
            user("Sure?"),
            temperature=0.2,
            top_p=0.9,
            seed=3,
            max_tokens=50,
            stop=["END"],
            frequency_penalty=0.1,
            user="user-42",
        ),
        5,
    )
    body = _sent(ollama_up)
    assert body["stream"] is False
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]},
        {"role": "assistant", "content": "Un chat."},
        {"role": "user", "content": "Sure?"},
    ]
    assert body["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 3,
        "num_predict": 50,
        "frequency_penalty": 0.1,
        "stop": ["END"],
    }
    assert "user" not in body


async def test_image_urls_must_be_inline(ollama_up: Upstream) -> None:
    message = user("What is this?")
    message.content.append(image("https://example.com/cat.png"))
    with pytest.raises(InvalidArgument) as caught:
        await ollama_up.adapter.complete(request(ollama_up.model, message), 5)
    assert [v.field for v in caught.value.violations] == ["messages[0].content[1].image_url.url"]


@pytest.mark.parametrize(
    ("choice", "expected_tools"),
    [
        (Mode(mode=Mode.MODE_AUTO), ["get_weather", "now"]),
        (Mode(mode=Mode.MODE_REQUIRED), ["get_weather", "now"]),
        (Mode(mode=Mode.MODE_NONE), []),
        (Mode(mode=Mode.MODE_TOOL, tool_name="now"), ["now"]),
    ],
)
async def test_tool_choice(
    ollama_up: Upstream, choice: chat_pb2.ToolChoice, expected_tools: list[str]
) -> None:
    await ollama_up.adapter.complete(
        request(
            ollama_up.model,
            tools=[tool("get_weather", "Weather by city", WEATHER_SCHEMA), tool("now")],
            tool_choice=choice,
        ),
        5,
    )
    body = _sent(ollama_up)
    assert [t["function"]["name"] for t in body.get("tools", [])] == expected_tools
    if "get_weather" in expected_tools:
        assert body["tools"][0] == {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": WEATHER_SCHEMA,
            },
        }


async def test_tool_results_round_trip(ollama_up: Upstream) -> None:
    await ollama_up.adapter.complete(
        request(
            ollama_up.model,
            user("Weather?"),
            assistant("", (call("c1", "get_weather", '{"city":"Paris"}'),)),
            tool_result("c1", "18C"),
        ),
        5,
    )
    messages = _sent(ollama_up)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}, "id": "c1"}
        ],
    }
    assert messages[2] == {
        "role": "tool",
        "content": "18C",
        "tool_name": "get_weather",
        "tool_call_id": "c1",
    }


async def test_invalid_tool_call_arguments(ollama_up: Upstream) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await ollama_up.adapter.complete(
            request(ollama_up.model, user("Hi"), assistant("", (call("c1", "f", "{oops"),))), 5
        )
    assert [v.field for v in caught.value.violations] == ["messages[1].tool_calls[0].arguments"]
    assert ollama_up.fake.hits == 0


async def test_minted_tool_call_ids_are_stable_and_unique(ollama_up: Upstream) -> None:
    calls = [ToolCallSpec("f", '{"a": 1}'), ToolCallSpec("g", '{"b": 2}')]
    ollama_up.fake.script(Behaviour(tool_calls=calls), Behaviour(tool_calls=calls))
    unary = await ollama_up.adapter.complete(request(ollama_up.model), 5)
    events = await collect(ollama_up.adapter.stream(request(ollama_up.model), 5))
    unary_ids = [c.id for c in unary.message.tool_calls]
    stream_ids = [c[0] for c in assembled_calls(events)]
    assert unary.id.startswith("ollama-")
    assert unary_ids == [f"call_{unary.id.removeprefix('ollama-')}_{n}" for n in (0, 1)]
    assert stream_ids == [f"call_{events[0].id.removeprefix('ollama-')}_{n}" for n in (0, 1)]
    assert len(set(unary_ids + stream_ids)) == 4
    assert unary.finish_reason == events[-1].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


async def test_stream_body_and_formats(ollama_up: Upstream) -> None:
    json_object = chat_pb2.ResponseFormat(type=chat_pb2.ResponseFormat.TYPE_JSON_OBJECT)
    schema = chat_pb2.ResponseFormat(
        type=chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA, schema=struct(WEATHER_SCHEMA)
    )
    await collect(
        ollama_up.adapter.stream(request(ollama_up.model, response_format=json_object), 5)
    )
    assert _sent(ollama_up)["format"] == "json"
    assert _sent(ollama_up)["stream"] is True
    await ollama_up.adapter.complete(request(ollama_up.model, response_format=schema), 5)
    assert _sent(ollama_up)["format"] == WEATHER_SCHEMA


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("localhost", "http://localhost:11434"),
        ("gpu-box:9000", "http://gpu-box:9000"),
        (":11435", "http://127.0.0.1:11435"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("http://10.0.0.5:11434/", "http://10.0.0.5:11434"),
        ("http://proxy.local/ollama", "http://proxy.local:80/ollama"),
        ("[::1]:11434", "http://[::1]:11434"),
    ],
)
def test_ollama_host_forms(host: str, url: str) -> None:
    assert ollama_base_url(host) == url


def test_bad_ollama_port() -> None:
    with pytest.raises(ConfigError):
        ollama_base_url("host:notaport")
    with pytest.raises(ConfigError):
        ollama_base_url("http://user:pw@host:port/")
