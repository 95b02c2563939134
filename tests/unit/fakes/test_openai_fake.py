"""FakeOpenAI is indistinguishable from the real API to the official openai SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from tests.fakes import DEFAULT_TEXT, Behaviour, FakeOpenAI, ToolCallSpec
from tests.unit.fakes.conftest import OPENAI_KEY

MODEL = "gpt-4o-mini"
MESSAGES: list = [{"role": "user", "content": "Say hello to the tests"}]

WEATHER = ToolCallSpec(name="get_weather", arguments='{"city": "Paris", "unit": "c"}')
TIME = ToolCallSpec(name="get_time", arguments='{"zone": "Europe/Paris"}')


def function_calls(completion: ChatCompletion) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = completion.choices[0].message.tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageFunctionToolCall) for call in calls)
    return [call for call in calls if isinstance(call, ChatCompletionMessageFunctionToolCall)]


async def test_unary_text(openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI) -> None:
    completion = await openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.content == DEFAULT_TEXT
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 9
    assert openai_fake.hits == 1
    recorded = openai_fake.requests[0]
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert recorded.json["messages"] == MESSAGES


async def test_scripted_usage_and_finish(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(text="cut", usage=(11, 22), finish="length"))
    completion = await openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 22)


async def test_streaming_text_arrives_in_separate_chunks(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(chunks=["Hel", "lo", " world"]))
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert contents == ["Hel", "lo", " world"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


async def test_stream_options_include_usage_adds_a_usage_chunk(
    openai_client: openai.AsyncOpenAI,
) -> None:
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 4)
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_unary_tool_calls(openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI) -> None:
    openai_fake.script(Behaviour(tool_calls=[WEATHER, TIME]))
    completion = await openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = function_calls(completion)
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "unit": "c"}
    assert all(call.type == "function" and call.id.startswith("call_") for call in calls)


async def test_streamed_parallel_tool_calls_assemble_by_index(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(tool_calls=[WEATHER, TIME]))
    async with openai_client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        argument_deltas = [
            event async for event in stream if event.type == "tool_calls.function.arguments.delta"
        ]
        final = await stream.get_final_completion()
    assert {event.index for event in argument_deltas} == {0, 1}
    calls = final.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "unit": "c"}
    assert json.loads(calls[1].function.arguments) == {"zone": "Europe/Paris"}
    assert final.choices[0].finish_reason == "tool_calls"


async def test_streamed_tool_call_deltas_have_openai_shape(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(tool_calls=[WEATHER, TIME]))
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    deltas = [
        call
        async for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    openings = [delta for delta in deltas if delta.id is not None]
    assert [(d.index, d.type, d.function and d.function.name) for d in openings] == [
        (0, "function", "get_weather"),
        (1, "function", "get_time"),
    ]
    assert all(d.function and d.function.arguments == "" for d in openings)
    fragments = [delta for delta in deltas if delta.id is None]
    assert all(d.type is None and d.function and d.function.name is None for d in fragments)
    joined = "".join(d.function.arguments or "" for d in fragments if d.index == 0 and d.function)
    assert joined == WEATHER.arguments


async def test_models_listing(openai_client: openai.AsyncOpenAI) -> None:
    models = [model async for model in openai_client.models.list()]
    assert [model.id for model in models] == ["gpt-4o-mini", "gpt-4o"]
    assert all(model.object == "model" and model.owned_by for model in models)


async def test_wrong_key_is_an_authentication_error(openai_fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=openai_fake.url, api_key="sk-wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as caught:
            await c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"
    assert openai_fake.hits == 1


async def test_rate_limit_exposes_retry_after(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(status=429, headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as caught:
        await openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.request_id is not None


async def test_sdk_retries_after_retry_after_ms(openai_fake: FakeOpenAI) -> None:
    openai_fake.script(
        Behaviour(status=429, headers={"retry-after-ms": "10"}), Behaviour(text="ok")
    )
    async with openai.AsyncOpenAI(base_url=openai_fake.url, api_key=OPENAI_KEY, max_retries=1) as c:
        completion = await c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "ok"
    assert openai_fake.hits == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (409, openai.ConflictError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_status_maps_to_sdk_error(
    openai_client: openai.AsyncOpenAI,
    openai_fake: FakeOpenAI,
    status: int,
    error: type[openai.APIStatusError],
) -> None:
    openai_fake.script(Behaviour(status=status))
    with pytest.raises(error) as caught:
        await openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert set(caught.value.body) == {"message", "type", "param", "code"}


async def test_unknown_model_error_names_the_model(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(status=404, match_model="gpt-9"))
    with pytest.raises(openai.NotFoundError) as caught:
        await openai_client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    assert "gpt-9" in caught.value.message


async def test_missing_fields_are_rejected_like_the_real_api(openai_fake: FakeOpenAI) -> None:
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    async with httpx.AsyncClient(base_url=openai_fake.url, headers=headers) as http:
        no_model = await http.post("/chat/completions", json={"messages": MESSAGES})
        no_messages = await http.post("/chat/completions", json={"model": MODEL})
        not_json = await http.post("/chat/completions", content=b"{nope")
        wrong_url = await http.post("/chat/completion", json={})
    assert no_model.status_code == 400
    assert no_model.json()["error"]["type"] == "invalid_request_error"
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"
    assert not_json.status_code == 400
    assert wrong_url.status_code == 404
    assert wrong_url.json()["error"]["message"] == "Invalid URL (POST /v1/chat/completion)"


async def test_broken_stream_is_a_connection_error(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(break_after=2))
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello from"
    assert openai_fake.cancelled == 0


async def test_broken_unary_is_a_connection_error(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(break_after=0))
    with pytest.raises(openai.APIConnectionError):
        await openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)


async def test_error_in_stream_raises_api_error(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(error_after=1, error_message="boom"))
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.message == "boom"
    assert caught.value.type == "server_error"


async def test_truncated_stream_ends_without_finish_or_done(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(Behaviour(truncate_after=3))
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the"
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks)


async def test_truncated_raw_body_has_no_done_marker(openai_fake: FakeOpenAI) -> None:
    openai_fake.script(Behaviour(truncate_after=10))
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=openai_fake.url, headers=headers) as http:
        truncated = await http.post("/chat/completions", json=body)
        complete = await http.post("/chat/completions", json=body)
    assert truncated.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in truncated.text
    assert '"finish_reason":"stop"' not in truncated.text
    assert complete.text.endswith("data: [DONE]\n\n")
