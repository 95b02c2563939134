"""The OpenAI-shaped REST API through Envoy, as curl or any HTTP client uses it."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.sse import content_of, read_events

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]


def _client(gw: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.public_url, timeout=30)


async def test_unary_completion_is_openai_json(gw: Gateway) -> None:
    async with _client(gw) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "fast",
                "messages": [{"role": "system", "content": "Be brief."}, *HELLO],
            },
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-4o-mini"  # the alias resolves to the canonical name
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["message"] == {"role": "assistant", "content": DEFAULT_TEXT, "tool_calls": []}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_stream_true_answers_sse_incrementally(gw: Gateway) -> None:
    pieces = ["One ", "two ", "three ", "four ", "five."]
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=pieces, chunk_delay=0.15))
    async with _client(gw) as client:
        started = time.perf_counter()
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"messages": HELLO, "stream": True, "stream_options": {"include_usage": True}},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            events = await read_events(response, started)
    assert content_of(events) == "".join(pieces)
    text_events = [
        e for e in events if e.data["choices"] and "content" in e.data["choices"][0]["delta"]
    ]
    # Pieces 150 ms apart upstream arrive spread out, not in one burst at the end.
    assert text_events[-1].at - text_events[0].at > 0.4
    assert events[0].data["choices"][0]["delta"]["role"] == "assistant"
    finishes = [
        e.data["choices"][0]["finish_reason"]
        for e in events
        if e.data["choices"] and "finish_reason" in e.data["choices"][0]
    ]
    assert finishes == ["stop"]
    assert events[-1].data["choices"] == [] and events[-1].data["usage"]["completion_tokens"] > 0
    assert len({e.data["id"] for e in events}) == 1


async def test_tool_calls_come_back_in_openai_shape(gw: Gateway) -> None:
    calls = [
        ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="call_a"),
        ToolCallSpec(name="weather", arguments='{"city": "Rome"}', id="call_b"),
    ]
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(tool_calls=calls))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with _client(gw) as client:
        response = await client.post(
            "/v1/chat/completions", json={"messages": HELLO, "tools": tools, "tool_choice": "auto"}
        )
    body = response.json()
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert "content" not in message
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]
    ] == [
        ("call_a", "weather", '{"city": "Paris"}'),
        ("call_b", "weather", '{"city": "Rome"}'),
    ]
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert sent["tool_choice"] == "auto"


async def test_invalid_request_is_400_with_field_violations(gw: Gateway) -> None:
    async with _client(gw) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "wizard", "content": "hi"}], "temperature": 7},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    violations = next(d for d in error["details"] if "field_violations" in d)["field_violations"]
    assert {v["field"] for v in violations} == {"messages[0].role", "temperature"}
    with gw.fakes["openai"].control() as control:
        assert control.stats().hits == 0  # never reached the provider


async def test_unknown_model_is_404_naming_it(gw: Gateway) -> None:
    async with _client(gw) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "mistral-huge", "messages": HELLO}
        )
    assert response.status_code == 404
    assert "mistral-huge" in response.json()["error"]["message"]


async def test_malformed_json_is_400_not_500(gw: Gateway) -> None:
    async with _client(gw) as client:
        response = await client.post(
            "/v1/chat/completions",
            content=b'{"messages": [',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("upstream", "http_status", "reason"),
    [
        (Behaviour(status=429, headers={"retry-after": "2"}), 429, "UPSTREAM_RATE_LIMITED"),
        (Behaviour(status=500), 503, "UPSTREAM_UNAVAILABLE"),
        (Behaviour(status=401), 503, "UPSTREAM_AUTH_FAILED"),
        (Behaviour(status=400, error_message="bad temperature"), 400, "UPSTREAM_INVALID_REQUEST"),
    ],
)
async def test_failing_upstream_gives_the_right_status(
    gw: Gateway, upstream: Behaviour, http_status: int, reason: str
) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(upstream)
    async with _client(gw) as client:
        response = await client.post("/v1/chat/completions", json={"messages": HELLO})
    assert response.status_code == http_status, response.text
    details = response.json()["error"]["details"]
    info = next(d for d in details if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == reason
    assert info["metadata"]["provider"] == "openai"
    if http_status == 429:
        retry = next(d for d in details if d["@type"].endswith("RetryInfo"))
        assert retry["retry_delay"] == "2s"
    assert "sk-" not in response.text


async def test_stream_failing_before_first_chunk_is_a_plain_http_error(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(status=503))
    async with _client(gw) as client:
        response = await client.post(
            "/v1/chat/completions", json={"messages": HELLO, "stream": True}
        )
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"


async def test_stream_failing_midway_ends_with_an_error_event(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["a ", "b ", "c ", "d "], error_after=3))
    async with _client(gw) as client:
        started = time.perf_counter()
        async with client.stream(
            "POST", "/v1/chat/completions", json={"messages": HELLO, "stream": True}
        ) as response:
            events = await read_events(response, started)
    assert content_of(events) == "a b c "  # three pieces, nothing duplicated or invented
    last = events[-1].data
    assert last["error"]["code"] == 14  # UNAVAILABLE
    assert last["choices"] == []


async def test_models_are_listed_and_fetched_in_openai_shape(gw: Gateway) -> None:
    async with _client(gw) as client:
        listing = (await client.get("/v1/models")).json()
        alias = await client.get("/v1/models/fast")
        missing = await client.get("/v1/models/nothing-like-this")
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert ids[:3] == ["gpt-4o-mini", "claude-sonnet", "llama"]
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in listing["data"])
    # Prefix-routed providers contribute what they list upstream.
    assert any(m["source"] == "provider" and m["id"].startswith("claude-") for m in listing["data"])
    assert alias.status_code == 200 and alias.json()["id"] == "gpt-4o-mini"
    assert missing.status_code == 404 and "nothing-like-this" in missing.json()["error"]["message"]


async def test_an_unknown_investigation_is_a_404_naming_it(gw: Gateway) -> None:
    async with _client(gw) as client:
        missing = await client.get("/v1/investigations/no-such-one")
    assert missing.status_code == 404
    assert "investigations/no-such-one" in missing.json()["message"]
