"""Token estimates of representative requests: close enough to rank by cost, and cheap."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.router.routing.token_estimate import (
    estimate_output_tokens,
    estimate_prompt_tokens,
)

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}


def _text(role: int, *texts: str) -> common_pb2.Message:
    parts = [common_pb2.ContentPart(text=t) for t in texts]
    return common_pb2.Message(role=role, content=parts)  # type: ignore[arg-type]


def _request(*messages: common_pb2.Message, **fields: Any) -> provider_pb2.CompleteRequest:
    return provider_pb2.CompleteRequest(model="m", messages=messages, **fields)


def _tool(name: str, description: str, schema: dict[str, Any]) -> common_pb2.ToolDefinition:
    parameters = struct_pb2.Struct()
    parameters.update(schema)
    return common_pb2.ToolDefinition(name=name, description=description, parameters=parameters)


def test_text_is_about_four_characters_a_token() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 100  # 4,500 characters
    tokens = estimate_prompt_tokens(_request(_text(common_pb2.ROLE_USER, text)))
    assert 1125 <= tokens <= 1125 * 1.05


def test_every_message_adds_its_text_and_a_small_overhead() -> None:
    one = _request(_text(common_pb2.ROLE_USER, "hello there"))
    three = _request(
        _text(common_pb2.ROLE_SYSTEM, "Be brief."),
        _text(common_pb2.ROLE_USER, "hello there"),
        _text(common_pb2.ROLE_ASSISTANT, "Hi."),
    )
    small = estimate_prompt_tokens(one)
    assert 3 <= small <= 15
    assert 6 <= estimate_prompt_tokens(three) - small <= 20


def test_multi_part_content_counts_every_text_part() -> None:
    part = "x" * 400
    single = estimate_prompt_tokens(_request(_text(common_pb2.ROLE_USER, part)))
    multi = estimate_prompt_tokens(_request(_text(common_pb2.ROLE_USER, part, part, part)))
    assert 195 <= multi - single <= 210


def test_an_image_counts_as_an_image_not_as_its_url() -> None:
    huge = "data:image/png;base64," + "A" * 2_000_000

    def with_image(url: str, detail: str = "") -> provider_pb2.CompleteRequest:
        image = common_pb2.ContentPart(image_url=common_pb2.ImageUrl(url=url, detail=detail))
        text = common_pb2.ContentPart(text="What is in this picture?")
        message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[text, image])
        return _request(message)

    text_only = estimate_prompt_tokens(
        _request(_text(common_pb2.ROLE_USER, "What is in this picture?"))
    )
    inline = estimate_prompt_tokens(with_image(huge)) - text_only
    linked = estimate_prompt_tokens(with_image("https://example.com/cat.png")) - text_only
    low = estimate_prompt_tokens(with_image(huge, "low")) - text_only
    assert abs(inline - linked) <= 2  # only the framing of the URL's length differs
    assert 500 <= inline <= 1500
    assert 50 <= low <= 150


def test_tool_calls_count_their_names_and_arguments() -> None:
    arguments = json.dumps({"location": "Paris, France", "notes": "y" * 800})
    call = common_pb2.ToolCall(id="call_1", name="get_weather", arguments=arguments)
    bare = common_pb2.Message(role=common_pb2.ROLE_ASSISTANT)
    calling = common_pb2.Message(role=common_pb2.ROLE_ASSISTANT, tool_calls=[call])
    result = _text(common_pb2.ROLE_TOOL, '{"temperature": 21}')
    result.tool_call_id = "call_1"
    added = estimate_prompt_tokens(_request(calling, result)) - estimate_prompt_tokens(
        _request(bare, result)
    )
    expected = (len(arguments) + len("get_weather")) / 4
    assert expected <= added <= expected * 1.1 + 5


def test_tool_definitions_count_their_description_and_schema() -> None:
    message = _text(common_pb2.ROLE_USER, "What's the weather in Paris?")
    description = "Current weather for a location."
    tool = _tool("get_weather", description, WEATHER_SCHEMA)
    plain = estimate_prompt_tokens(_request(message))
    with_tool = estimate_prompt_tokens(_request(message, tools=[tool]))
    json_chars = len("get_weather") + len(description) + len(json.dumps(WEATHER_SCHEMA))
    added = with_tool - plain
    assert json_chars / 4 <= added <= json_chars / 4 * 1.3 + 10
    two = estimate_prompt_tokens(_request(message, tools=[tool, tool]))
    assert two - with_tool == added


def test_a_response_schema_counts() -> None:
    schema = struct_pb2.Struct()
    schema.update(WEATHER_SCHEMA)
    response_format = common_pb2.ResponseFormat(
        type=common_pb2.ResponseFormat.TYPE_JSON_SCHEMA, schema_name="weather", schema=schema
    )
    message = _text(common_pb2.ROLE_USER, "Weather in Paris as JSON.")
    added = estimate_prompt_tokens(
        _request(message, response_format=response_format)
    ) - estimate_prompt_tokens(_request(message))
    assert added >= len(json.dumps(WEATHER_SCHEMA)) / 4


def test_output_is_max_tokens_when_set_else_the_configured_default() -> None:
    assert estimate_output_tokens(_request(max_tokens=1000), 256) == 1000
    assert estimate_output_tokens(_request(), 256) == 256
    assert estimate_output_tokens(_request(max_tokens=0), 300) == 300
