"""Scripted conversations: turn chosen by the request's assistant messages, citations of
`[cN]` tool-output blocks, precedence, reset and the control route."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes import (
    DEFAULT_TEXT,
    AsyncFakeControl,
    Behaviour,
    FakeAnthropic,
    FakeControl,
    FakeOllama,
    FakeOpenAI,
    ToolCallSpec,
)
from tests.fakes.conversation import Conversation

GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
LLAMA = "llama3.2"
PODS = ToolCallSpec(name="kubernetes.get_pods", arguments='{"namespace": "shop"}')
TURNS = [Behaviour(tool_calls=[PODS]), Behaviour(text="second"), Behaviour(text="final")]
CONCLUSION = '{"summary": "crash loop", "evidence": [{"id": "{{cite:CrashLoopBackOff}}"}]}'


def history(assistants: int) -> list[Any]:
    """An OpenAI/Ollama conversation holding `assistants` assistant messages, each followed
    by a tool message whose output is block `c<i+1>`."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Why is web-1 failing?"}]
    for index in range(assistants):
        call = {"id": f"call_{index}", "type": "function", "function": PODS.to_dict()}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        output = f"[c{index + 1}] kubernetes.get_pods\nweb-{index + 1} CrashLoopBackOff"
        messages.append({"role": "tool", "tool_call_id": f"call_{index}", "content": output})
    return messages


def answer(body: dict[str, Any], *turns: Behaviour) -> Behaviour:
    return Conversation(turns).answer(body)


# Turn selection, through each protocol.


async def test_openai_unary_turns_follow_the_assistant_count_and_the_last_repeats(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.set_conversation(GPT, TURNS)
    first = await openai_client.chat.completions.create(model=GPT, messages=history(0))
    calls = first.choices[0].message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        (PODS.name, PODS.arguments)
    ]
    assert first.choices[0].finish_reason == "tool_calls"
    texts = []
    for assistants in (1, 2, 5):
        completion = await openai_client.chat.completions.create(
            model=GPT,
            messages=history(assistants),
        )
        texts.append(completion.choices[0].message.content)
    assert texts == ["second", "final", "final"]
    assert openai_fake.hits == 4
    assert openai_fake.hits_by_model == {GPT: 4}
    assert [len(r.json["messages"]) for r in openai_fake.requests] == [1, 3, 5, 11]


async def test_openai_stream_plays_the_turn_and_resolves_its_citation(
    openai_client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.set_conversation(GPT, [TURNS[0], Behaviour(text=CONCLUSION)])
    stream = await openai_client.chat.completions.create(
        model=GPT,
        messages=history(0),
        stream=True,
    )
    names = [
        call.function.name
        async for chunk in stream
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function is not None and call.function.name
    ]
    assert names == [PODS.name]
    stream = await openai_client.chat.completions.create(
        model=GPT,
        messages=history(1),
        stream=True,
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert json.loads(text) == {"summary": "crash loop", "evidence": [{"id": "c1"}]}


async def test_anthropic_turns_read_tool_results_and_cite_in_tool_input(
    anthropic_client: anthropic.AsyncAnthropic, anthropic_fake: FakeAnthropic
) -> None:
    fetch = ToolCallSpec(name="prometheus.query", arguments='{"about": "{{cite:OOMKilled}}"}')
    anthropic_fake.set_conversation(CLAUDE, [TURNS[0], Behaviour(tool_calls=[fetch])])
    opening: list[Any] = [{"role": "user", "content": "Why?"}]
    first = await anthropic_client.messages.create(
        model=CLAUDE,
        max_tokens=64,
        messages=opening,
    )
    assert [(b.type, getattr(b, "name", None)) for b in first.content] == [("tool_use", PODS.name)]
    outputs = "[c4] kubernetes.get_pods\nweb-1 Running\n[c5] kubernetes.get_events\nOOMKilled"
    later: list[Any] = [
        *opening,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "text", "text": outputs}],
                }
            ],
        },
    ]
    second = await anthropic_client.messages.create(
        model=CLAUDE,
        max_tokens=64,
        messages=later,
    )
    assert [getattr(b, "input", None) for b in second.content] == [{"about": "c5"}]


async def test_ollama_turns_stream_and_unary(
    ollama_http: httpx.AsyncClient, ollama_fake: FakeOllama
) -> None:
    ollama_fake.set_conversation(LLAMA, [TURNS[0], Behaviour(text="cites {{cite:web-2}}")])
    first = await ollama_http.post(
        "/api/chat", json={"model": LLAMA, "messages": history(0), "stream": False}
    )
    assert [c["function"]["name"] for c in first.json()["message"]["tool_calls"]] == [PODS.name]
    async with ollama_http.stream(
        "POST", "/api/chat", json={"model": LLAMA, "messages": history(3)}
    ) as response:
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert "".join(line["message"]["content"] for line in lines) == "cites c2"


async def test_concurrent_requests_in_any_order_get_their_own_turns() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url) as http:
        fake.set_conversation(GPT, [Behaviour(text=f"turn {n}", delay=0.05) for n in range(4)])

        async def ask(assistants: int) -> str:
            body = {"model": GPT, "messages": history(assistants)}
            response = await http.post("chat/completions", json=body)
            return str(response.json()["choices"][0]["message"]["content"])

        assert await asyncio.gather(*(ask(n) for n in (3, 1, 0, 2, 3))) == [
            "turn 3",
            "turn 1",
            "turn 0",
            "turn 2",
            "turn 3",
        ]


# Citations.


def test_cite_picks_the_block_whose_text_holds_the_needle_across_roles_and_parts() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "[c1] cluster summary\nnodes 3 Ready"},
            {"role": "user", "content": [{"type": "text", "text": "[c2] alert\nHighLatency"}]},
            {"role": "tool", "content": "[c3] logs\nGET /a 200\n[c4] events\nBackOff pulling"},
        ]
    }
    turn = Behaviour(
        text="{{cite:nodes 3}} {{cite:HighLatency}} {{cite:GET /a}} {{cite:BackOff}} "
        "{{cite:[c4]}} {{cite:absent}}"
    )
    assert answer(body, turn).resolved_text == "c1 c2 c3 c4 c4 c0"


def test_cite_takes_the_first_match_and_blocks_start_only_at_line_start() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "intro mentions Evicted, see [c9] inline"},
            {"role": "tool", "content": "[c7] a\nEvicted\n"},
            {"role": "tool", "content": "[c8] b\nEvicted\n"},
        ]
    }
    # Text before the first `[cN]` line, and an inline `[c9]`, belong to no block.
    assert answer(body, Behaviour(text="{{cite:Evicted}} {{cite:inline}}")).resolved_text == (
        "c7 c0"
    )


def test_cite_reads_anthropic_system_and_keeps_json_valid() -> None:
    body = {
        "system": [{"type": "text", "text": "[c2] pods\nweb-1 CrashLoopBackOff"}],
        "messages": [{"role": "user", "content": "go"}],
    }
    resolved = answer(body, Behaviour(text=CONCLUSION))
    assert json.loads(resolved.resolved_text)["evidence"] == [{"id": "c2"}]
    assert "".join(resolved.pieces) == resolved.resolved_text


def test_cite_in_chunks_and_tool_arguments() -> None:
    body = {"messages": history(2)}
    turn = Behaviour(
        chunks=["see ", "{{cite:web-2}}", " and {{cite:web-1}}"],
        tool_calls=[ToolCallSpec(name="f", arguments='{"ref": "{{cite:web-2}}"}', id="x")],
    )
    resolved = answer(body, turn)
    assert resolved.pieces == ("see ", "c2", " and c1")
    assert resolved.resolved_text == "see c2 and c1"
    assert resolved.tool_calls[0].arguments_object == {"ref": "c2"}
    assert resolved.tool_calls[0].id == "x"


def test_a_turn_without_citations_is_served_as_scripted() -> None:
    turn = Behaviour(text="plain")
    assert answer({"messages": history(0)}, turn) is turn


# Precedence, reset and the control route.


async def test_script_beats_conversation_which_beats_defaults() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url) as http:

        async def text(model: str) -> str | int:
            response = await http.post(
                "chat/completions", json={"model": model, "messages": history(0)}
            )
            if response.status_code != 200:
                return response.status_code
            return str(response.json()["choices"][0]["message"]["content"])

        fake.set_default(Behaviour(text="general"))
        fake.set_default(Behaviour(text="model default"), model=GPT)
        fake.set_conversation(GPT, [Behaviour(status=503)])
        fake.script(Behaviour(text="scripted"), Behaviour(text="other", match_model="other"))
        assert [await text(GPT), await text(GPT), await text(GPT)] == ["scripted", 503, 503]
        assert await text("gpt-4o") == "general"
        assert await text("other") == "other"
        fake.set_conversation(GPT, [])
        assert await text(GPT) == "model default"
        fake.set_conversation(GPT, [Behaviour(text="again")])
        fake.reset()
        assert await text(GPT) == DEFAULT_TEXT


async def test_control_route_round_trip_and_refusals() -> None:
    async with (
        FakeAnthropic() as fake,
        AsyncFakeControl(fake.url) as control,
        httpx.AsyncClient(base_url=fake.root_url) as raw,
    ):
        await control.set_conversation(CLAUDE, [Behaviour(text="one"), Behaviour(text="two")])

        def drive_blocking_client() -> None:
            with FakeControl(fake.url) as blocking:
                blocking.set_conversation("claude-haiku-4-5", [Behaviour(text="haiku")])

        await asyncio.to_thread(drive_blocking_client)
        headers = {"anthropic-version": "2023-06-01"}
        reply = await raw.post(
            "/v1/messages",
            headers=headers,
            json={
                "model": CLAUDE,
                "max_tokens": 8,
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "one"},
                    {"role": "user", "content": "b"},
                ],
            },
        )
        assert reply.json()["content"][0]["text"] == "two"
        haiku_body = {
            "model": "claude-haiku-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "a"}],
        }
        haiku = await raw.post("/v1/messages", headers=headers, json=haiku_body)
        assert haiku.json()["content"][0]["text"] == "haiku"
        await control.reset()
        again = await raw.post("/v1/messages", headers=headers, json=haiku_body)
        assert again.json()["content"][0]["text"] == DEFAULT_TEXT


@pytest.mark.parametrize(
    "body",
    [
        [{"text": "x"}],
        {"model": "", "turns": []},
        {"model": 3, "turns": []},
        {"model": "m", "turns": {"text": "x"}},
        {"model": "m", "turns": [{"txt": "typo"}]},
        {"model": "m", "turns": [], "extra": 1},
    ],
)
async def test_control_route_refuses_malformed_bodies(body: Any) -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.root_url) as raw:
        response = await raw.post("/_fake/conversation", json=body)
        assert response.status_code == 400
        assert response.json()["error"]
        answered = await raw.post(
            "/v1/chat/completions", json={"model": "m", "messages": history(1)}
        )
        assert answered.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
