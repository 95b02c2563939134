"""The Anthropic family: Messages API bodies as the fake recorded them, answers parsed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmgw.common.v1 import chat_pb2
from services.common.errors import InvalidArgument
from services.common.gateway_config import ProviderConfig
from services.provider.adapters.anthropic import build_anthropic
from services.provider.adapters.anthropic_request import JSON_OBJECT_INSTRUCTION
from services.provider.adapters.anthropic_response import StreamTranslator, completion
from services.provider.adapters.endpoints import NO_KEY
from tests.fakes import Behaviour, FakeAnthropic
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
from tests.unit.provider.conftest import Upstream, upstream_for

Mode = chat_pb2.ToolChoice


def _sent(up: Upstream) -> Any:
    recorded = up.fake.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["anthropic-version"]
    return recorded.json


async def test_system_prompts_go_top_level(anthropic_up: Upstream) -> None:
    await anthropic_up.adapter.complete(
        request(
            anthropic_up.model,
            system("Be terse."),
            user("Hi"),
            assistant("Hello."),
            developer("Answer in French."),
            user("Capital of Italy?"),
        ),
        5,
    )
    body = _sent(anthropic_up)
    assert body["system"] == [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Capital of Italy?"},
    ]
    assert body["max_tokens"] == 4096


async def test_single_system_prompt_and_options(anthropic_up: Upstream) -> None:
    await anthropic_up.adapter.complete(
        request(
            anthropic_up.model,
            system("Be terse."),
            user("Hi"),
            max_tokens=256,
            temperature=0.3,
            top_p=0.8,
            stop=["END"],
            seed=7,
            presence_penalty=0.5,
            user="user-42",
        ),
        5,
    )
    body = _sent(anthropic_up)
    assert body["system"] == "Be terse."
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (256, 0.3, 0.8)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert "seed" not in body and "presence_penalty" not in body


async def test_keyless_messages_api_server() -> None:
    async with FakeAnthropic() as fake:
        config = ProviderConfig(type="anthropic", base_url=fake.url)
        adapter = build_anthropic("local", config, {"ANTHROPIC_API_KEY": "sk-ant-only-0000"})
        try:
            answer = await adapter.complete(request(fake.models[0]), 5)
        finally:
            await adapter.close()
    assert answer.message.content[0].text
    assert fake.requests[-1].headers["authorization"] == f"Bearer {NO_KEY}"
    assert not adapter.info.has_credentials


async def test_configured_default_max_tokens() -> None:
    async with upstream_for("anthropic", default_max_tokens=1234) as up:
        await up.adapter.complete(request(up.model), 5)
        assert _sent(up)["max_tokens"] == 1234


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (Mode(mode=Mode.MODE_UNSPECIFIED), None, None),
        (Mode(mode=Mode.MODE_AUTO), None, {"type": "auto"}),
        (Mode(mode=Mode.MODE_NONE), None, {"type": "none"}),
        (Mode(mode=Mode.MODE_REQUIRED), None, {"type": "any"}),
        (
            Mode(mode=Mode.MODE_TOOL, tool_name="get_weather"),
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (
            Mode(mode=Mode.MODE_UNSPECIFIED),
            False,
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
        (
            Mode(mode=Mode.MODE_REQUIRED),
            False,
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        (Mode(mode=Mode.MODE_AUTO), True, {"type": "auto"}),
    ],
)
async def test_tools_and_tool_choice(
    anthropic_up: Upstream,
    choice: chat_pb2.ToolChoice,
    parallel: bool | None,
    expected: object,
) -> None:
    fields: dict[str, Any] = {"tool_choice": choice}
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    await anthropic_up.adapter.complete(
        request(
            anthropic_up.model,
            tools=[tool("get_weather", "Weather by city", WEATHER_SCHEMA), tool("now")],
            **fields,
        ),
        5,
    )
    body = _sent(anthropic_up)
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather by city", "input_schema": WEATHER_SCHEMA},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body.get("tool_choice") == expected


async def test_tool_results_of_parallel_calls_share_one_user_turn(anthropic_up: Upstream) -> None:
    await anthropic_up.adapter.complete(
        request(
            anthropic_up.model,
            user("Weather in Paris and Rome?"),
            assistant(
                "Let me check.",
                (
                    call("toolu_1", "get_weather", '{"city":"Paris"}'),
                    call("toolu_2", "get_weather", '{"city":"Rome"}'),
                ),
            ),
            tool_result("toolu_1", "18C"),
            tool_result("toolu_2", "24C"),
            user("And tomorrow?"),
        ),
        5,
    )
    assert _sent(anthropic_up)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


async def test_invalid_tool_call_arguments_are_the_callers_error(anthropic_up: Upstream) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await anthropic_up.adapter.complete(
            request(
                anthropic_up.model,
                user("Hi"),
                assistant("", (call("t1", "f", '{"a": 1}'), call("t2", "f", "{not json"))),
                tool_result("t1", "ok"),
                tool_result("t2", "ok"),
                assistant("", (call("t3", "f", "[1, 2]"),)),
                tool_result("t3", "ok"),
            ),
            5,
        )
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("messages[1].tool_calls[1].arguments", "must be valid JSON"),
        ("messages[4].tool_calls[0].arguments", "must be a JSON object"),
    ]
    assert anthropic_up.fake.hits == 0


async def test_images(anthropic_up: Upstream) -> None:
    message = user("Compare")
    message.content.extend(
        [image("data:image/png;base64,iVBORw0KGgo="), image("https://example.com/a.jpg")]
    )
    await anthropic_up.adapter.complete(request(anthropic_up.model, message), 5)
    assert _sent(anthropic_up)["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
    ]


async def test_response_formats(anthropic_up: Upstream) -> None:
    json_object = chat_pb2.ResponseFormat(type=chat_pb2.ResponseFormat.TYPE_JSON_OBJECT)
    schema = chat_pb2.ResponseFormat(
        type=chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA, schema=struct(WEATHER_SCHEMA)
    )
    await anthropic_up.adapter.complete(
        request(anthropic_up.model, system("Be terse."), user("Hi"), response_format=json_object),
        5,
    )
    body = _sent(anthropic_up)
    assert body["system"][-1] == {"type": "text", "text": JSON_OBJECT_INSTRUCTION}
    assert "output_config" not in body
    await anthropic_up.adapter.complete(request(anthropic_up.model, response_format=schema), 5)
    assert _sent(anthropic_up)["output_config"] == {
        "format": {"type": "json_schema", "schema": WEATHER_SCHEMA}
    }


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", chat_pb2.FINISH_REASON_STOP),
        ("stop_sequence", chat_pb2.FINISH_REASON_STOP),
        ("length", chat_pb2.FINISH_REASON_LENGTH),
        ("content_filter", chat_pb2.FINISH_REASON_CONTENT_FILTER),
    ],
)
async def test_finish_reasons(anthropic_up: Upstream, finish: str, expected: int) -> None:
    anthropic_up.fake.script(Behaviour(text="x", finish=finish), Behaviour(text="x", finish=finish))
    ask = request(anthropic_up.model, stop=["END"])
    unary = await anthropic_up.adapter.complete(ask, 5)
    streamed = await collect(anthropic_up.adapter.stream(ask, 5))
    assert unary.finish_reason == expected == streamed[-1].finish_reason


def test_cache_usage_counts_in_the_input() -> None:
    answer = completion(
        {
            "id": "msg_1",
            "model": "claude",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
        },
        provider="p",
        model="claude",
    )
    assert answer.usage == chat_pb2.Usage(
        input_tokens=130,
        output_tokens=5,
        total_tokens=135,
        cached_input_tokens=100,
        cache_write_input_tokens=20,
    )


def _events(translator: StreamTranslator, *events: dict[str, Any]) -> list[Any]:
    out = []
    for event in events:
        out.extend(translator.feed((event["type"], orjson.dumps(event))))
    return out


def test_stream_usage_and_argumentless_tool_call() -> None:
    translator = StreamTranslator("p", "claude")
    message = {
        "id": "msg_1",
        "model": "claude",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1},
    }
    block = {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}
    events = _events(
        translator,
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": block},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    )
    assert translator.done
    events.append(translator.final())
    assert assembled_calls(events) == [("toolu_1", "now", "{}")]
    assert events[-1].usage == chat_pb2.Usage(
        input_tokens=100, output_tokens=9, total_tokens=109, cached_input_tokens=90
    )
    assert events[-1].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


async def test_model_list(anthropic_up: Upstream) -> None:
    models = await anthropic_up.adapter.list_models(5)
    assert [model.id for model in models] == list(anthropic_up.fake.models)
    assert all(model.display_name for model in models)
