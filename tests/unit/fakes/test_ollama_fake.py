"""FakeOllama speaks Ollama's native NDJSON protocol."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour, FakeOllama, ToolCallSpec

MODEL = "llama3.2"
MESSAGES: list = [{"role": "user", "content": "Say hello to the tests"}]
DONE_FIELDS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}


async def _lines(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with http.stream("POST", "/api/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) async for line in response.aiter_lines() if line]


async def test_streams_ndjson_by_default(ollama_http: httpx.AsyncClient) -> None:
    lines = await _lines(ollama_http, {"model": MODEL, "messages": MESSAGES})
    *pieces, done = lines
    assert len(pieces) == 4
    assert all(line["done"] is False and line["model"] == MODEL for line in pieces)
    assert all(line["message"]["role"] == "assistant" for line in pieces)
    assert "".join(line["message"]["content"] for line in pieces) == DEFAULT_TEXT
    assert done["done"] is True
    assert done["done_reason"] == "stop"
    assert done["message"] == {"role": "assistant", "content": ""}
    assert set(done) >= DONE_FIELDS
    assert (done["prompt_eval_count"], done["eval_count"]) == (5, 4)
    assert done["created_at"].endswith("Z")


async def test_each_piece_is_one_line_even_when_paced(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(chunks=["a\nb", "{c}"], chunk_delay=0.01))
    async with ollama_http.stream(
        "POST", "/api/chat", json={"model": MODEL, "messages": MESSAGES}
    ) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line)["message"]["content"] for line in lines[:2]] == ["a\nb", "{c}"]


async def test_unary_when_stream_is_false(ollama_http: httpx.AsyncClient) -> None:
    response = await ollama_http.post(
        "/api/chat", json={"model": MODEL, "messages": MESSAGES, "stream": False}
    )
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert body["message"] == {"role": "assistant", "content": DEFAULT_TEXT}
    assert body["done"] is True
    assert body["done_reason"] == "stop"
    assert set(body) >= DONE_FIELDS


async def test_length_finish_and_usage(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(text="cut", finish="length", usage=(7, 8)))
    response = await ollama_http.post(
        "/api/chat", json={"model": MODEL, "messages": MESSAGES, "stream": False}
    )
    body = response.json()
    assert body["done_reason"] == "length"
    assert (body["prompt_eval_count"], body["eval_count"]) == (7, 8)


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_calls_carry_object_arguments(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama, stream: bool
) -> None:
    ollama_fake.script(
        Behaviour(
            tool_calls=[
                ToolCallSpec(name="get_weather", arguments='{"city": "Paris"}'),
                ToolCallSpec(name="get_time", arguments="{}"),
            ]
        )
    )
    body = {"model": MODEL, "messages": MESSAGES, "stream": stream}
    if stream:
        lines = await _lines(ollama_http, body)
        assert len(lines) == 2
        message = lines[0]["message"]
        assert lines[1]["done_reason"] == "stop"
    else:
        message = (await ollama_http.post("/api/chat", json=body)).json()["message"]
    assert message["content"] == ""
    assert message["tool_calls"] == [
        {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"index": 1, "name": "get_time", "arguments": {}}},
    ]


async def test_status_errors_use_the_error_field(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(status=404), Behaviour(status=503, headers={"retry-after": "2"}))
    missing = await ollama_http.post("/api/chat", json={"model": "nope", "messages": MESSAGES})
    busy = await ollama_http.post("/api/chat", json={"model": MODEL, "messages": MESSAGES})
    no_model = await ollama_http.post("/api/chat", json={"messages": MESSAGES})
    assert missing.status_code == 404
    assert missing.json() == {"error": 'model "nope" not found, try pulling it first'}
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert no_model.status_code == 400
    assert no_model.json() == {"error": "model is required"}


async def test_error_mid_stream_is_an_error_line(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(error_after=2, error_message="out of memory"))
    lines = await _lines(ollama_http, {"model": MODEL, "messages": MESSAGES})
    assert [line.get("message", {}).get("content") for line in lines[:2]] == ["Hello", " from"]
    assert lines[2:] == [{"error": "out of memory"}]


async def test_truncated_stream_has_no_done_line(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(truncate_after=3))
    lines = await _lines(ollama_http, {"model": MODEL, "messages": MESSAGES})
    assert len(lines) == 3
    assert not any(line["done"] for line in lines)


async def test_broken_stream_is_a_protocol_error(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.script(Behaviour(break_after=1))
    with pytest.raises(httpx.RemoteProtocolError):
        await _lines(ollama_http, {"model": MODEL, "messages": MESSAGES})


async def test_empty_conversation_only_loads_the_model(ollama_http: httpx.AsyncClient) -> None:
    response = await ollama_http.post("/api/chat", json={"model": MODEL})
    body = response.json()
    assert body["done"] is True
    assert body["done_reason"] == "load"


async def test_tags_and_version(ollama_http: httpx.AsyncClient) -> None:
    tags = (await ollama_http.get("/api/tags")).json()
    version = (await ollama_http.get("/api/version")).json()
    (entry,) = tags["models"]
    assert entry["name"] == entry["model"] == "llama3.2:latest"
    assert {"modified_at", "size", "digest", "details"} <= set(entry)
    assert entry["details"]["format"] == "gguf"
    assert isinstance(version["version"], str)
    assert (await ollama_http.get("/")).text == "Ollama is running"


async def test_api_key_when_configured_is_a_bearer_token() -> None:
    async with FakeOllama(api_key="secret") as fake, httpx.AsyncClient(base_url=fake.url) as http:
        body = {"model": MODEL, "messages": MESSAGES, "stream": False}
        refused = await http.post("/api/chat", json=body)
        accepted = await http.post(
            "/api/chat", json=body, headers={"Authorization": "Bearer secret"}
        )
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthorized"}
    assert accepted.status_code == 200
