"""The response cache through Envoy: hits without upstream calls, replayed streams,
misses on every answer-relevant change, request controls, never for tool use."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.sse import content_of, read_events

pytestmark = pytest.mark.integration

CACHED = "cached-mini"  # the shared gateway's model with the cache switched on


@pytest.fixture
async def client(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=20) as opened:
        yield opened


def _body(prompt: str, model: str = CACHED, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **fields}


def _prompt() -> str:
    """A prompt no other test sent: cached answers outlive a test."""
    return f"question {uuid.uuid4().hex}"


def _upstream_hits(gw: Gateway) -> int:
    with gw.fakes["openai"].control() as control:
        return control.stats().hits


async def _stream(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[list[str], str]:
    async with client.stream(
        "POST", "/v1/chat/completions", json={**body, "stream": True}
    ) as response:
        assert response.status_code == 200
        events = await read_events(response, 0.0)
        status = response.headers["x-llmgw-cache"]
    pieces = [
        choice["delta"]["content"]
        for event in events
        for choice in event.data.get("choices", [])
        if choice["delta"].get("content")
    ]
    assert content_of(events) == "".join(pieces)
    return pieces, status


async def test_a_repeated_request_is_served_without_calling_the_upstream(
    gw: Gateway, client: httpx.AsyncClient
) -> None:
    body = _body(_prompt(), temperature=0)
    first = await client.post("/v1/chat/completions", json=body)
    second = await client.post("/v1/chat/completions", json=body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["x-llmgw-cache"] == "miss"
    assert second.headers["x-llmgw-cache"] == "hit"
    assert _upstream_hits(gw) == 1
    assert second.json()["choices"] == first.json()["choices"]
    assert second.json()["model"] == CACHED
    assert sum(gw.router_metric("llmgw_cache_requests_total", model=CACHED, status="hit")) >= 1


async def test_a_cached_stream_replays_as_the_same_stream_and_serves_unary(
    gw: Gateway, client: httpx.AsyncClient
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["Str", "eam", "ed ", "once."], chunk_delay=0.05))
    body = _body(_prompt())
    original, status = await _stream(client, body)
    # Pieces that reach the provider in one read are coalesced; the replay must repeat
    # the stream as it was sent, piece for piece.
    assert ("".join(original), status) == ("Streamed once.", "miss")
    replayed, status = await _stream(client, body)
    assert (replayed, status) == (original, "hit")
    unary = await client.post("/v1/chat/completions", json=body)
    assert unary.headers["x-llmgw-cache"] == "hit"
    assert unary.json()["choices"][0]["message"]["content"] == "Streamed once."
    assert _upstream_hits(gw) == 1


async def test_a_cached_unary_answer_serves_a_stream(
    gw: Gateway, client: httpx.AsyncClient
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text="Answered in one piece."))
    body = _body(_prompt())
    unary = await client.post("/v1/chat/completions", json=body)
    assert unary.headers["x-llmgw-cache"] == "miss"
    pieces, status = await _stream(client, body)
    assert status == "hit"
    assert "".join(pieces) == "Answered in one piece."
    assert _upstream_hits(gw) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"top_p": 0.5},
        {"max_tokens": 7},
        {"stop": ["."]},
        {"seed": 3},
        {"presence_penalty": 0.1},
        {"frequency_penalty": 0.1},
        {"logit_bias": {"50256": -100}},
        {"response_format": {"type": "json_object"}},
        {"messages": [{"role": "system", "content": "Be brief."}]},
        {"model": "gpt-4o-mini"},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_any_answer_relevant_change_misses(
    gw: Gateway, client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    prompt = _prompt()
    base = _body(prompt, temperature=0)
    await client.post("/v1/chat/completions", json=base)
    changed = {**base, **change}
    if "messages" in change:
        changed["messages"] = change["messages"] + base["messages"]
    response = await client.post("/v1/chat/completions", json=changed)
    assert response.status_code == 200
    # gpt-4o-mini has no cache: "off"; every other change is looked up and misses.
    assert response.headers["x-llmgw-cache"] == ("off" if "model" in change else "miss")
    assert _upstream_hits(gw) == 2


async def test_bypass_and_refresh(gw: Gateway, client: httpx.AsyncClient) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(text="old"), Behaviour(text="fresh"), Behaviour(text="new"))
    body = _body(_prompt())
    await client.post("/v1/chat/completions", json=body)  # caches "old"
    bypass = await client.post(
        "/v1/chat/completions", json={**body, "gateway": {"cache": "bypass"}}
    )
    assert bypass.headers["x-llmgw-cache"] == "bypass"
    assert bypass.json()["choices"][0]["message"]["content"] == "fresh"
    cached = await client.post("/v1/chat/completions", json=body)
    assert cached.json()["choices"][0]["message"]["content"] == "old"  # bypass wrote nothing
    refresh = await client.post(
        "/v1/chat/completions", json={**body, "gateway": {"cache": "refresh"}}
    )
    assert refresh.headers["x-llmgw-cache"] == "refresh"
    assert refresh.json()["choices"][0]["message"]["content"] == "new"
    after = await client.post("/v1/chat/completions", json=body)
    assert after.headers["x-llmgw-cache"] == "hit"
    assert after.json()["choices"][0]["message"]["content"] == "new"
    assert _upstream_hits(gw) == 3


async def test_tool_use_is_never_cached(gw: Gateway, client: httpx.AsyncClient) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(tool_calls=[ToolCallSpec(name="weather", arguments="{}")]))
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    body = _body(_prompt(), tools=[tool])
    statuses = []
    for _ in range(2):
        response = await client.post("/v1/chat/completions", json=body)
        statuses.append(response.headers["x-llmgw-cache"])
    assert statuses == ["off", "off"]
    assert _upstream_hits(gw) == 2


async def test_models_without_the_cache_are_off(gw: Gateway, client: httpx.AsyncClient) -> None:
    body = _body(_prompt(), model="gpt-4o-mini")
    for _ in range(2):
        response = await client.post("/v1/chat/completions", json=body)
        assert response.headers["x-llmgw-cache"] == "off"
    assert _upstream_hits(gw) == 2


async def test_an_unknown_cache_option_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={**_body(_prompt()), "gateway": {"cache": "sometimes"}}
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert [v["field"] for d in details for v in d.get("field_violations", [])] == ["gateway.cache"]
