"""FakeAnthropic is indistinguishable from the real API to the official anthropic SDK."""

from __future__ import annotations

import anthropic
import httpx
import httpx2
import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour, FakeAnthropic, ToolCallSpec
from tests.unit.fakes.conftest import ANTHROPIC_KEY

MODEL = "claude-sonnet-4-6"
MESSAGES: list = [{"role": "user", "content": "Say hello to the tests"}]
LOOKUP = ToolCallSpec(
    name="lookup", arguments='{"query": "fake servers", "filters": {"n": [1, 2]}}'
)


async def test_unary_text(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    message = await anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert message.id.startswith("msg_")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 4)
    assert message.usage.cache_read_input_tokens == 0
    recorded = anthropic_fake.requests[0]
    # This SDK version sends the API key as a Bearer token, not as `x-api-key`.
    assert recorded.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"
    assert "anthropic-version" in recorded.headers
    assert recorded.json["max_tokens"] == 64


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("length", "max_tokens"), ("content_filter", "refusal"), ("stop_sequence", "stop_sequence")],
)
async def test_finish_reasons_map_to_stop_reasons(
    anthropic_client: anthropic.AsyncAnthropic,
    anthropic_fake: FakeAnthropic,
    finish: str,
    stop_reason: str,
) -> None:
    anthropic_fake.script(Behaviour(text="x", finish=finish))
    message = await anthropic_client.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, stop_sequences=["END"]
    )
    assert message.stop_reason == stop_reason
    assert message.stop_sequence == ("END" if finish == "stop_sequence" else None)


async def test_unary_tool_use(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script(Behaviour(text="Looking.", tool_calls=[LOOKUP]))
    message = await anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert [block.type for block in message.content] == ["text", "tool_use"]
    tool = message.content[1]
    assert tool.type == "tool_use"
    assert tool.id.startswith("toolu_")
    assert tool.name == "lookup"
    assert tool.input == {"query": "fake servers", "filters": {"n": [1, 2]}}
    assert message.stop_reason == "tool_use"


async def test_streaming_text_events(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script(Behaviour(chunks=["Hel", "lo", " world"], usage=(9, 3)))
    stream = await anthropic_client.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, stream=True
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    texts = [e.delta.text for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert texts == ["Hel", "lo", " world"]
    start, delta = events[0], events[-2]
    assert start.message.usage.input_tokens == 9  # type: ignore[union-attr]
    assert delta.delta.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert delta.usage.output_tokens == 3  # type: ignore[union-attr]


async def test_raw_stream_has_event_lines_and_a_ping(anthropic_fake: FakeAnthropic) -> None:
    headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 8, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=anthropic_fake.url, headers=headers) as http:
        response = await http.post("/v1/messages", json=body)
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]


async def test_stream_helper_assembles_text_and_tool_input(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    second = ToolCallSpec(name="second", arguments='{"ok": true}', id="toolu_fixed")
    anthropic_fake.script(Behaviour(text="Let me look that up.", tool_calls=[LOOKUP, second]))
    async with anthropic_client.messages.stream(
        model=MODEL, max_tokens=64, messages=MESSAGES
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        message = await stream.get_final_message()
    assert text == "Let me look that up."
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[1].input == {"query": "fake servers", "filters": {"n": [1, 2]}}  # type: ignore[union-attr]
    assert message.content[2].input == {"ok": True}  # type: ignore[union-attr]
    assert message.content[2].id == "toolu_fixed"  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens > 0


async def test_models_listing(anthropic_client: anthropic.AsyncAnthropic) -> None:
    models = [model async for model in anthropic_client.models.list()]
    assert [model.id for model in models] == ["claude-sonnet-4-6", "claude-haiku-4-5"]
    assert models[0].display_name == "Claude Sonnet 4.6"
    assert models[0].type == "model"


async def test_wrong_key_is_an_authentication_error(anthropic_fake: FakeAnthropic) -> None:
    client = anthropic.AsyncAnthropic(base_url=anthropic_fake.url, api_key="bad", max_retries=0)
    async with client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert caught.value.type == "authentication_error"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
async def test_status_maps_to_sdk_error(
    anthropic_client: anthropic.AsyncAnthropic,
    anthropic_fake: FakeAnthropic,
    status: int,
    error: type[anthropic.APIStatusError],
) -> None:
    anthropic_fake.script(Behaviour(status=status, headers={"retry-after": "3"}))
    with pytest.raises(error) as caught:
        await anthropic_client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert caught.value.status_code == status
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.request_id is not None
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error"


async def test_overloaded_is_an_internal_server_error_too(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script(Behaviour(status=529))
    with pytest.raises(anthropic.InternalServerError) as caught:
        await anthropic_client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert caught.value.type == "overloaded_error"
    assert caught.value.api_message == "Overloaded"


async def test_missing_fields_and_version_are_rejected(anthropic_fake: FakeAnthropic) -> None:
    versioned = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=anthropic_fake.url) as http:
        no_version = await http.post(
            "/v1/messages",
            headers={"x-api-key": ANTHROPIC_KEY},
            json={"model": MODEL, "max_tokens": 8, "messages": MESSAGES},
        )
        no_max_tokens = await http.post(
            "/v1/messages", headers=versioned, json={"model": MODEL, "messages": MESSAGES}
        )
        no_messages = await http.post(
            "/v1/messages", headers=versioned, json={"model": MODEL, "max_tokens": 8}
        )
    assert no_version.status_code == 400
    assert no_version.json()["error"]["message"] == "anthropic-version: header is required"
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert no_messages.json()["error"]["message"] == "messages: Field required"


async def test_error_event_mid_stream_raises_api_status_error(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script(Behaviour(error_after=1))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with anthropic_client.messages.stream(
            model=MODEL, max_tokens=8, messages=MESSAGES
        ) as stream:
            async for text in stream.text_stream:
                received.append(text)
    assert received == ["Hello"]
    # The HTTP status was 200, so the SDK picks no status-specific subclass.
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"


async def test_broken_stream_surfaces_the_transport_error(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script(Behaviour(break_after=2))
    stream = await anthropic_client.messages.create(
        model=MODEL, max_tokens=8, messages=MESSAGES, stream=True
    )
    # Unlike openai's, this SDK's stream does not wrap transport errors in APIConnectionError.
    with pytest.raises(httpx2.RemoteProtocolError):
        async for _ in stream:
            pass


async def test_truncated_stream_ends_without_message_stop(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script(Behaviour(truncate_after=2))
    stream = await anthropic_client.messages.create(
        model=MODEL, max_tokens=8, messages=MESSAGES, stream=True
    )
    events = [event.type async for event in stream]
    assert events == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
