"""Prompt token counts: cl100k with OpenAI's framing for OpenAI models, the estimate for the
rest, and the estimate again when the tokenizer cannot be loaded."""

from __future__ import annotations

import logging
import threading
from typing import Any, get_args

import orjson
import pytest
import tiktoken
from google.protobuf import struct_pb2
from prometheus_client import REGISTRY

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.gateway_config import ProviderType
from services.router.routing.token_estimate import (
    IMAGE_TOKENS,
    LOW_DETAIL_IMAGE_TOKENS,
    TOOL_OVERHEAD_TOKENS,
    estimate_prompt_tokens,
)
from services.router.tokenizer import (
    CACHED_TEXT_MIN_CHARS,
    ENCODING_NAME,
    TOKENIZER_PROVIDER_TYPES,
    PromptCounter,
)

SYSTEM = common_pb2.ROLE_SYSTEM
USER = common_pb2.ROLE_USER
ASSISTANT = common_pb2.ROLE_ASSISTANT

# The cookbook's tool example ("How to count tokens with tiktoken", section 7).
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {
            "type": "string",
            "description": "The city and state, e.g. San Francisco, CA",
        },
        "unit": {
            "type": "string",
            "description": "The unit of temperature to return",
            "enum": ["celsius", "fahrenheit"],
        },
    },
    "required": ["location"],
}


@pytest.fixture(scope="module")
def counter() -> PromptCounter:
    counter = PromptCounter()
    assert counter.warm()
    return counter


@pytest.fixture(scope="module")
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def _tokens(encoding: tiktoken.Encoding, text: str) -> int:
    return len(encoding.encode_ordinary(text))


def _message(role: int, *texts: str, name: str = "") -> common_pb2.Message:
    parts = [common_pb2.ContentPart(text=text) for text in texts]
    return common_pb2.Message(role=role, content=parts, name=name)  # type: ignore[arg-type]


def _request(
    *messages: common_pb2.Message, model: str = "gpt-4", **fields: Any
) -> provider_pb2.CompleteRequest:
    return provider_pb2.CompleteRequest(model=model, messages=messages, **fields)


def _tool(name: str, description: str, schema: dict[str, Any]) -> common_pb2.ToolDefinition:
    parameters = struct_pb2.Struct()
    parameters.update(schema)
    return common_pb2.ToolDefinition(name=name, description=description, parameters=parameters)


def _compact(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()


def _counted(method: str) -> float:
    labels = {"method": method}
    return REGISTRY.get_sample_value("llmgw_prompt_tokens_counted_total", labels) or 0.0


def test_hello_world_is_two_tokens_inside_nine_of_framing(counter: PromptCounter) -> None:
    # 3 around the message + "user" (1) + "hello world" (2) + 3 priming the reply.
    assert counter.count(_request(_message(USER, "hello world")), "openai") == (9, True)


def test_matches_the_count_the_openai_api_reported(counter: PromptCounter) -> None:
    # The cookbook's example conversation: gpt-4-0613 reported 129 prompt tokens.
    request = _request(
        _message(
            SYSTEM,
            "You are a helpful, pattern-following assistant that translates corporate "
            "jargon into plain English.",
        ),
        _message(SYSTEM, "New synergies will help drive top-line growth.", name="example_user"),
        _message(
            SYSTEM,
            "Things working well together will increase revenue.",
            name="example_assistant",
        ),
        _message(
            SYSTEM,
            "Let's circle back when we have more bandwidth to touch base on opportunities "
            "for increased leverage.",
            name="example_user",
        ),
        _message(
            SYSTEM,
            "Let's talk later when we're less busy about how to do better.",
            name="example_assistant",
        ),
        _message(
            USER,
            "This late pivot means we don't have time to boil the ocean for the client "
            "deliverable.",
        ),
        model="gpt-4-0613",
    )
    assert counter.count(request, "openai") == (129, True)


def test_each_message_adds_three_its_role_and_its_text(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    first = _message(SYSTEM, "Be brief.")
    second = _message(ASSISTANT, "Paris is the capital of France.")
    one, _ = counter.count(_request(first), "openai")
    two, exact = counter.count(_request(first, second), "openai")
    assert two - one == 3 + _tokens(encoding, "assistant") + _tokens(
        encoding, second.content[0].text
    )
    assert exact


def test_a_name_adds_one_and_its_tokens(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    plain, _ = counter.count(_request(_message(USER, "hi")), "openai")
    named, exact = counter.count(_request(_message(USER, "hi", name="ada_lovelace")), "openai")
    assert named - plain == 1 + _tokens(encoding, "ada_lovelace")
    assert exact


def test_text_parts_are_counted_as_the_one_string_sent(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    tokens, _ = counter.count(_request(_message(USER, "hello", " world")), "openai")
    assert tokens == 3 + 1 + _tokens(encoding, "hello world") + 3


def test_tool_definitions_count_name_description_and_compact_schema(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    messages = (_message(USER, "What's the weather like in San Francisco?"),)
    tool = _tool(
        "get_current_weather", "Get the current weather in a given location", WEATHER_SCHEMA
    )
    without, _ = counter.count(_request(*messages), "openai")
    with_tool, exact = counter.count(_request(*messages, tools=[tool]), "openai")
    expected = (
        TOOL_OVERHEAD_TOKENS
        + _tokens(encoding, tool.name)
        + _tokens(encoding, tool.description)
        + _tokens(encoding, _compact(WEATHER_SCHEMA))
    )
    assert with_tool - without == expected
    # The rendering of tools is not published: the count is an approximation.
    assert not exact


def test_tool_definitions_are_not_undercounted_against_the_api(counter: PromptCounter) -> None:
    # The cookbook's tool example: gpt-4 reported 105 prompt tokens.
    request = _request(
        _message(
            SYSTEM,
            "You are a helpful assistant that can answer to questions about the weather.",
        ),
        _message(USER, "What's the weather like in San Francisco?"),
        tools=[
            _tool(
                "get_current_weather",
                "Get the current weather in a given location",
                WEATHER_SCHEMA,
            )
        ],
    )
    tokens, _ = counter.count(request, "openai")
    assert 105 <= tokens <= 115


def test_tool_calls_and_results_are_counted(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    arguments = '{"location": "Paris, France", "unit": "celsius"}'
    call = common_pb2.Message(
        role=ASSISTANT,
        tool_calls=[common_pb2.ToolCall(id="call_1", name="get_weather", arguments=arguments)],
    )
    result = common_pb2.Message(
        role=common_pb2.ROLE_TOOL,
        tool_call_id="call_1",
        name="get_weather",  # not sent to OpenAI for tool messages, so not counted
        content=[common_pb2.ContentPart(text='{"temperature": 21}')],
    )
    question = _message(USER, "Weather in Paris?")
    base, _ = counter.count(_request(question), "openai")
    with_call, call_exact = counter.count(_request(question, call), "openai")
    with_result, result_exact = counter.count(_request(question, call, result), "openai")
    assistant = 3 + _tokens(encoding, "assistant")
    assert with_call - base == (
        assistant + _tokens(encoding, "get_weather") + _tokens(encoding, arguments)
    )
    tool = 3 + _tokens(encoding, "tool")
    assert with_result - with_call == tool + _tokens(encoding, '{"temperature": 21}')
    assert not call_exact
    assert not result_exact


@pytest.mark.parametrize(
    ("detail", "price"), [("low", LOW_DETAIL_IMAGE_TOKENS), ("", IMAGE_TOKENS)]
)
def test_images_cost_the_estimates_fixed_price(
    counter: PromptCounter, encoding: tiktoken.Encoding, detail: str, price: int
) -> None:
    image = common_pb2.ImageUrl(url="data:image/png;base64," + "A" * 10_000, detail=detail)
    message = common_pb2.Message(
        role=USER,
        content=[
            common_pb2.ContentPart(text="What is this?"),
            common_pb2.ContentPart(image_url=image),
        ],
    )
    tokens, exact = counter.count(_request(message), "openai")
    assert tokens == 3 + 1 + _tokens(encoding, "What is this?") + price + 3
    assert not exact


def test_a_json_schema_response_format_is_counted(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    schema = struct_pb2.Struct()
    schema.update(WEATHER_SCHEMA)
    response_format = common_pb2.ResponseFormat(
        type=common_pb2.ResponseFormat.TYPE_JSON_SCHEMA, schema_name="weather", schema=schema
    )
    message = _message(USER, "Weather?")
    plain, _ = counter.count(_request(message), "openai")
    shaped, exact = counter.count(_request(message, response_format=response_format), "openai")
    schema_json = _compact(WEATHER_SCHEMA)
    assert shaped - plain == _tokens(encoding, "weather") + _tokens(encoding, schema_json)
    assert not exact


def test_o200k_models_are_counted_with_cl100k_but_not_exact(counter: PromptCounter) -> None:
    messages = (_message(USER, "hello world"),)
    assert counter.count(_request(*messages, model="gpt-4o-mini"), "openai") == (9, False)


def test_azure_deployment_names_are_openai_models(counter: PromptCounter) -> None:
    request = _request(_message(USER, "hello world"), model="prod-chat-deployment")
    assert counter.count(request, "azure_openai") == (9, False)


def test_unknown_models_at_openai_compatible_endpoints_are_estimated(
    counter: PromptCounter,
) -> None:
    # The local llama server is configured as an `openai`-type provider.
    request = _request(_message(USER, "hello world" * 50), model="smollm2-135m-instruct")
    assert counter.count(request, "openai") == (estimate_prompt_tokens(request), False)


@pytest.mark.parametrize("provider_type", ["anthropic", "ollama"])
def test_other_provider_families_are_estimated(counter: PromptCounter, provider_type: str) -> None:
    request = _request(_message(USER, "hello world" * 50), model="gpt-4")
    assert counter.count(request, provider_type) == (estimate_prompt_tokens(request), False)


def test_every_configured_provider_type_is_decided() -> None:
    # A new provider type must be added to TOKENIZER_PROVIDER_TYPES or here, knowingly.
    estimated = {"anthropic", "ollama"}
    assert set(get_args(ProviderType)) == set(TOKENIZER_PROVIDER_TYPES) | estimated


def test_long_texts_are_counted_each_by_their_own_content(
    counter: PromptCounter, encoding: tiktoken.Encoding
) -> None:
    # Same length, different text: a remembered count must belong to its own text.
    english = "The quick brown fox jumps over the lazy dog. " * 20
    digits = ("1234567890 " * 90)[: len(english)]
    assert len(digits) == len(english) >= CACHED_TEXT_MIN_CHARS
    for _ in range(2):
        for text in (english, digits):
            tokens, _ = counter.count(_request(_message(USER, text)), "openai")
            assert tokens == 3 + 1 + _tokens(encoding, text) + 3
    assert _tokens(encoding, english) != _tokens(encoding, digits)


def test_counts_are_reported_by_method(counter: PromptCounter) -> None:
    request = _request(_message(USER, "hello world"))
    tokenizer, estimate = _counted("tokenizer"), _counted("estimate")
    counter.count(request, "openai")
    counter.count(request, "anthropic")
    assert _counted("tokenizer") == tokenizer + 1
    assert _counted("estimate") == estimate + 1


def test_the_encoding_is_loaded_once_on_first_use_across_threads(
    encoding: tiktoken.Encoding,
) -> None:
    calls: list[int] = []
    release = threading.Event()

    def loader() -> tiktoken.Encoding:
        calls.append(1)
        release.wait(timeout=5)
        return encoding

    counter = PromptCounter(loader)
    assert calls == []
    results: list[tuple[int, bool]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                counter.count(_request(_message(USER, "hello world")), "openai")
            )
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=5)
    assert calls == [1]
    assert results == [(9, True)] * 8


@pytest.mark.parametrize(
    "error",
    [
        ImportError("No module named 'tiktoken'"),
        ValueError("Hash mismatch for data downloaded from cl100k_base.tiktoken"),
        FileNotFoundError("cl100k_base.tiktoken"),
    ],
)
def test_an_unloadable_tokenizer_falls_back_to_the_estimate_with_one_warning(
    caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    calls: list[int] = []

    def loader() -> tiktoken.Encoding:
        calls.append(1)
        raise error

    counter = PromptCounter(loader)
    request = _request(_message(USER, "hello world" * 50))
    with caplog.at_level(logging.WARNING, "llmgw.router.tokenizer"):
        assert not counter.warm()
        for _ in range(3):
            assert counter.count(request, "openai") == (estimate_prompt_tokens(request), False)
    assert calls == [1]
    warnings = [r for r in caplog.records if r.name == "llmgw.router.tokenizer"]
    assert len(warnings) == 1
    assert str(error) in warnings[0].getMessage()
