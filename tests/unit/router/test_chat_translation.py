"""OpenAI-shaped requests in, normalised requests out; results back in OpenAI's shape."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from services.common.errors import InvalidArgument
from services.common.validation import Violations
from services.router import chat_response
from services.router.chat_request import to_complete_request


def parse(body: dict[str, Any]) -> chat_pb2.CreateChatCompletionRequest:
    """As Envoy's transcoder parses a REST body."""
    return json_format.ParseDict(body, chat_pb2.CreateChatCompletionRequest())


def translate(body: dict[str, Any]) -> provider_pb2.CompleteRequest:
    problems = Violations()
    out = to_complete_request(parse(body), problems)
    problems.raise_if_any()
    return out


def violations(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        translate(body)
    return {v.field: v.description for v in caught.value.violations}


def test_string_and_part_contents_become_parts() -> None:
    out = translate(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    ],
                },
            ],
        }
    )
    assert [m.role for m in out.messages] == [common_pb2.ROLE_SYSTEM, common_pb2.ROLE_USER]
    assert out.messages[0].content[0].text == "be brief"
    assert out.messages[1].content[0].text == "what is this?"
    assert out.messages[1].content[1].image_url.url.startswith("data:image/png")


def test_tool_round_trip_shapes() -> None:
    out = translate(
        {
            "messages": [
                {"role": "user", "content": "weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "description": "Current weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "parallel_tool_calls": True,
        }
    )
    assistant = out.messages[1]
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [
        ("call_1", "weather", '{"city":"Paris"}'),
        ("call_2", "weather", '{"city":"Rome"}'),
    ]
    assert [m.tool_call_id for m in out.messages[2:]] == ["call_1", "call_2"]
    assert out.tools[0].parameters["type"] == "object"
    assert out.tool_choice.mode == common_pb2.ToolChoice.MODE_TOOL
    assert out.tool_choice.tool_name == "weather"
    assert out.parallel_tool_calls is True


def test_sampling_parameters_carry_over() -> None:
    out = translate(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "stop": ["\n", "END"],
            "seed": 7,
            "presence_penalty": 0.5,
            "response_format": {"type": "json_object"},
        }
    )
    assert out.temperature == pytest.approx(0.2)
    assert out.max_tokens == 20  # max_completion_tokens wins over the legacy name
    assert list(out.stop) == ["\n", "END"]
    assert out.seed == 7
    assert out.response_format.type == common_pb2.ResponseFormat.TYPE_JSON_OBJECT
    assert not out.HasField("frequency_penalty")


def test_unset_parameters_stay_unset() -> None:
    out = translate({"messages": [{"role": "user", "content": "hi"}]})
    for name in ("temperature", "top_p", "max_tokens", "seed", "parallel_tool_calls"):
        assert not out.HasField(name), name


def test_every_problem_is_a_field_violation() -> None:
    problems = violations(
        {
            "messages": [
                {"role": "robot", "content": "hi"},
                {"role": "user"},
                {"role": "tool", "content": "x"},
                {"role": "assistant"},
                {"role": "user", "content": [{"type": "audio", "data": "x"}]},
            ],
            "temperature": 3,
            "top_p": 1.5,
            "n": 2,
            "max_tokens": 0,
            "presence_penalty": -3,
            "stop": ["a", "b", "c", "d", "e"],
            "tools": [{"type": "function", "function": {"name": "bad name!"}}],
            "tool_choice": "sometimes",
        }
    )
    assert set(problems) == {
        "messages[0].role",
        "messages[1].content",
        "messages[2].tool_call_id",
        "messages[3].content",
        "messages[4].content[0].type",
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "presence_penalty",
        "stop",
        "tools[0].function.name",
        "tool_choice",
    }
    assert "robot" in problems["messages[0].role"]


def test_empty_messages_is_a_violation() -> None:
    assert "messages" in violations({"model": "m", "messages": []})


def test_tool_choice_must_name_a_given_tool() -> None:
    problems = violations(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tool_choice": {"type": "function", "function": {"name": "missing"}},
        }
    )
    assert "tool_choice.function.name" in problems


def test_unary_completion_in_openai_shape() -> None:
    result = provider_pb2.CompleteResponse(
        id="upstream",
        model="gpt-4o-2024-08-06",
        message=common_pb2.Message(
            role=common_pb2.ROLE_ASSISTANT,
            tool_calls=[common_pb2.ToolCall(id="call_1", name="weather", arguments="{}")],
        ),
        finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS,
        usage=common_pb2.Usage(input_tokens=10, output_tokens=5, cached_input_tokens=4),
    )
    body = json_format.MessageToDict(
        chat_response.completion(result, "gpt-4o"),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o"
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "tool_calls"
    assert "content" not in choice["message"]  # null in OpenAI's terms
    assert choice["message"]["tool_calls"][0] == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": "{}"},
    }
    assert body["usage"]["total_tokens"] == 15
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 4


def test_stream_chunks_follow_openai_delta_rules() -> None:
    builder = chat_response.ChunkBuilder("m")
    events = [
        provider_pb2.StreamCompleteResponse(text="Hel"),
        provider_pb2.StreamCompleteResponse(text="lo"),
        provider_pb2.StreamCompleteResponse(
            tool_call=provider_pb2.ToolCallDelta(index=0, id="c1", name="f", arguments="")
        ),
        provider_pb2.StreamCompleteResponse(
            tool_call=provider_pb2.ToolCallDelta(index=0, arguments='{"a":1}')
        ),
    ]
    chunks = [builder.content(e) for e in events]
    dicts = [json_format.MessageToDict(c, preserving_proto_field_name=True) for c in chunks if c]
    assert dicts[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert dicts[1]["choices"][0]["delta"] == {"content": "lo"}
    assert dicts[2]["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    # Later pieces carry only index and arguments (the SDK concatenates strings).
    assert dicts[3]["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0,
        "function": {"arguments": '{"a":1}'},
    }
    assert len({d["id"] for d in dicts}) == 1
    finish = json_format.MessageToDict(
        builder.finish(common_pb2.FINISH_REASON_STOP), preserving_proto_field_name=True
    )
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    usage = json_format.MessageToDict(
        builder.usage(common_pb2.Usage(input_tokens=3, output_tokens=2)),
        preserving_proto_field_name=True,
    )
    assert "choices" not in usage and usage["usage"]["total_tokens"] == 5


# -- hostile input --------------------------------------------------------------------

USER = [{"role": "user", "content": "hi"}]


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_caller_strings_are_bounded_and_never_quoted_whole() -> None:
    found = violations(
        {
            "model": "m" * 100_000,
            "user": "u" * 10_000,
            "metadata": {"k" * 100: "v", "ok": "v" * 600},
            "messages": [
                {"role": "r" * 100_000, "content": "x"},
                {"role": "user", "name": "n" * 1000, "content": "x"},
                {"role": "tool", "tool_call_id": "c" * 1000, "content": "x"},
            ],
            "logit_bias": {"not-a-token": 1},
        }
    )
    assert set(found) == {
        "model",
        "user",
        "metadata",
        "metadata[ok]",
        "messages[0].role",
        "messages[1].name",
        "messages[2].tool_call_id",
        "logit_bias",
    }
    assert found["model"] == "is 100000 characters long; at most 256 allowed"
    assert all(len(description) < 200 for description in found.values())


def test_json_values_must_be_finite() -> None:
    request = parse(
        {
            "model": "m",
            "messages": USER,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        }
    )
    request.tools[0].function.parameters.update({"type": "object", "maximum": float("nan")})
    request.stop.list_value.values.add(number_value=float("inf"))
    request.tool_choice.struct_value.update({"x": float("-inf")})
    problems = Violations()
    to_complete_request(request, problems)
    fields = {v.field for v in problems.items}
    assert {"tools[0].function.parameters.maximum", "stop[0]", "tool_choice.x"} <= fields


@pytest.mark.parametrize("levels", [21, 25, 31])
def test_tool_parameters_nested_past_the_bound_are_refused(levels: int) -> None:
    found = violations(
        {
            "model": "m",
            "messages": USER,
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": _nested(levels)}}
            ],
        }
    )
    [(field, description)] = found.items()
    assert field.startswith("tools[0].function.parameters.a")
    assert description == "nests deeper than 20 levels of objects and arrays"


def test_parameters_twenty_levels_deep_pass() -> None:
    out = translate(
        {
            "model": "m",
            "messages": USER,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": _nested(20)}}],
        }
    )
    assert out.tools[0].name == "f"
