"""What every adapter does the same way, against each family's fake through its SDK."""

from __future__ import annotations

import orjson
import pytest

from llmgw.common.v1 import chat_pb2
from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.unit.provider.chat import (
    assembled_calls,
    check_stream_contract,
    collect,
    request,
    streamed_text,
)
from tests.unit.provider.conftest import KEY, Upstream


async def test_unary_text(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(text="Paris is the capital.", usage=(12, 5)))
    response = await upstream.adapter.complete(request(upstream.model), 5)
    assert response.id
    assert response.model == upstream.model
    assert response.message.role == chat_pb2.ROLE_ASSISTANT
    assert [part.text for part in response.message.content] == ["Paris is the capital."]
    assert response.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 5)
    assert response.usage.total_tokens == 17


async def test_credential_reaches_the_provider_and_nowhere_else(upstream: Upstream) -> None:
    await upstream.adapter.complete(request(upstream.model), 5)
    headers = upstream.fake.requests[-1].headers
    assert KEY in headers.get("authorization", "") + headers.get("x-api-key", "")
    info = upstream.adapter.info
    assert info.has_credentials
    assert KEY not in str(info)


async def test_stream_text_and_usage(upstream: Upstream) -> None:
    upstream.fake.script(Behaviour(chunks=["Hel", "lo ", "world"], usage=(7, 3)))
    events = await collect(upstream.adapter.stream(request(upstream.model), 5))
    check_stream_contract(events)
    assert streamed_text(events) == "Hello world"
    last = events[-1]
    assert last.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert (last.usage.input_tokens, last.usage.output_tokens, last.usage.total_tokens) == (
        7,
        3,
        10,
    )


async def test_two_parallel_tool_calls_unary(upstream: Upstream) -> None:
    upstream.fake.script(
        Behaviour(
            tool_calls=[
                ToolCallSpec("get_weather", '{"city": "Paris"}', id="call_a"),
                ToolCallSpec("get_time", '{"zone": "CET", "precise": true}', id="call_b"),
            ]
        )
    )
    response = await upstream.adapter.complete(request(upstream.model), 5)
    calls = [(c.id, c.name, orjson.loads(c.arguments)) for c in response.message.tool_calls]
    assert calls == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"zone": "CET", "precise": True}),
    ]
    assert response.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


async def test_two_parallel_tool_calls_streamed(upstream: Upstream) -> None:
    upstream.fake.script(
        Behaviour(
            text="Checking.",
            tool_calls=[
                ToolCallSpec("get_weather", '{"city": "Paris", "days": [1, 2]}', id="call_a"),
                ToolCallSpec("get_time", '{"zone": "CET"}', id="call_b"),
            ],
        )
    )
    events = await collect(upstream.adapter.stream(request(upstream.model), 5))
    check_stream_contract(events)
    assert streamed_text(events) == "Checking."
    calls = [(i, n, orjson.loads(a)) for i, n, a in assembled_calls(events)]
    assert calls == [
        ("call_a", "get_weather", {"city": "Paris", "days": [1, 2]}),
        ("call_b", "get_time", {"zone": "CET"}),
    ]
    assert events[-1].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


@pytest.mark.parametrize("stream", [False, True])
async def test_length_finish(upstream: Upstream, stream: bool) -> None:
    upstream.fake.script(Behaviour(text="Cut sh", finish="length"))
    if stream:
        events = await collect(upstream.adapter.stream(request(upstream.model), 5))
        finish = events[-1].finish_reason
    else:
        finish = (await upstream.adapter.complete(request(upstream.model), 5)).finish_reason
    assert finish == chat_pb2.FINISH_REASON_LENGTH


async def test_list_models_and_check(upstream: Upstream) -> None:
    models = await upstream.adapter.list_models(5)
    assert upstream.model in [model.id for model in models]
    assert all(model.HasField("create_time") for model in models)
    await upstream.adapter.check(5)


async def test_default_answer_without_script(upstream: Upstream) -> None:
    response = await upstream.adapter.complete(request(upstream.model), 5)
    assert response.message.content[0].text == DEFAULT_TEXT
