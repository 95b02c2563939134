"""`llmgw chat|models|sessions|usage|keys`: the installed binary in a pseudo-terminal
against a test gateway (fake providers), over gRPC through Envoy's public listener."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import grpc
import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.identity import create_identity
from tests.support.terminal import Terminal, run

pytestmark = pytest.mark.integration

NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def _env(gw: Gateway, **extra: str) -> dict[str, str]:
    return {"LLMGW_TARGET": gw.grpc_target, **extra}


def test_chat_streams_tokens_as_they_arrive(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["first ", "second ", "third"], chunk_delay=0.5))
    terminal = Terminal(["chat", "--model", "gpt-4o-mini", "Hello"], env=_env(gw))
    terminal.read_until("first", timeout=30)
    # The first token is on the screen while the rest is still being generated.
    assert terminal.process.poll() is None
    finished = terminal.finish()
    assert finished.code == 0, finished.terminal
    assert "first second third" in finished.text


def test_chat_reads_stdin_and_sends_the_system_message(gw: Gateway) -> None:
    finished = run(
        ["chat", "--model", "gpt-4o-mini", "--system", "Be brief.", "-"],
        stdin="What is up?",
        env=_env(gw),
    )
    assert finished.code == 0, finished.terminal
    assert DEFAULT_TEXT in finished.text
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert sent["messages"][0]["content"] == "Be brief."
    assert sent["messages"][-1]["content"] == "What is up?"
    assert sent["stream"] is True


def test_chat_json_is_one_object_per_chunk_on_a_clean_stdout(gw: Gateway) -> None:
    finished = run(
        ["chat", "--model", "gpt-4o-mini", "--json", "Hello"], stdout_pipe=True, env=_env(gw)
    )
    assert finished.code == 0, finished.terminal
    chunks = [json.loads(line) for line in finished.stdout.splitlines()]
    text = "".join(
        choice.get("delta", {}).get("content", "")
        for chunk in chunks
        for choice in chunk.get("choices", [])
    )
    assert text == DEFAULT_TEXT
    assert len(chunks) > 2


def test_models_lists_the_catalogue(gw: Gateway) -> None:
    finished = run(["models"], env=_env(gw))
    assert finished.code == 0, finished.terminal
    rows = finished.text.splitlines()
    assert rows[0].split()[0] == "MODEL"
    assert {"gpt-4o-mini", "claude-sonnet", "llama"} <= {r.split()[0] for r in rows[1:] if r}


def test_a_missing_model_exits_with_not_found(gw: Gateway) -> None:
    finished = run(["chat", "--model", "no-such-model", "Hello"], env=_env(gw))
    assert finished.code == NOT_FOUND, finished.terminal
    assert "NOT_FOUND" in finished.text
    assert "no-such-model" in finished.text
    assert "Traceback" not in finished.terminal


def test_an_unreachable_gateway_exits_unavailable_without_a_trace(gw: Gateway) -> None:
    finished = run(["models", "--target", "127.0.0.1:1"])
    assert finished.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "Traceback" not in finished.terminal


def test_sessions_round_trip(gw: Gateway) -> None:
    session = f"cli-{uuid.uuid4().hex[:10]}"
    env = _env(gw)
    chat = run(["chat", "--model", "gpt-4o-mini", "--session", session, "Remember 42"], env=env)
    assert chat.code == 0, chat.terminal

    listed = run(["sessions", "list", "--json", "--page-size", "1000"], stdout_pipe=True, env=env)
    assert listed.code == 0, listed.terminal
    names = [s["name"] for s in json.loads(listed.stdout).get("sessions", [])]
    assert f"sessions/{session}" in names

    shown = run(["sessions", "get", session], env=env)
    assert shown.code == 0, shown.terminal
    assert "user: Remember 42" in shown.text
    assert f"assistant: {DEFAULT_TEXT}" in shown.text

    # A second turn carries the history.
    again = run(["chat", "--model", "gpt-4o-mini", "--session", session, "And?"], env=env)
    assert again.code == 0, again.terminal
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert [m["content"] for m in sent["messages"]][:2] == ["Remember 42", DEFAULT_TEXT]

    deleted = run(["sessions", "delete", f"sessions/{session}"], env=env)
    assert deleted.code == 0, deleted.terminal
    gone = run(["sessions", "get", session], env=env)
    assert gone.code == NOT_FOUND, gone.terminal


def test_usage_prints_a_table(gw: Gateway) -> None:
    who = asyncio.run(create_identity(gw.grpc_target, gw.admin_key, prefix="cli"))
    finished = run(
        ["usage", "--group-by", "day", "--subject", who.consumer, "--api-key", gw.admin_key],
        env=_env(gw),
    )
    assert finished.code == 0, finished.terminal
    assert finished.text.splitlines()[0].split()[:2] == ["DAY", "REQUESTS"]
    assert any(line.startswith("TOTAL") for line in finished.text.splitlines())


def test_keys_create_list_revoke(gw: Gateway) -> None:
    who = asyncio.run(create_identity(gw.grpc_target, gw.admin_key, prefix="cli"))
    env = _env(gw, LLMGW_API_KEY=gw.admin_key)
    created = run(["keys", "create", "--consumer", who.consumer_id], stdout_pipe=True, env=env)
    assert created.code == 0, created.terminal
    name, secret = created.stdout.split()
    assert name.startswith(f"{who.consumer}/keys/") and secret
    listed = run(["keys", "list", "--consumer", who.consumer], env=env)
    assert listed.code == 0, listed.terminal
    assert any(
        line.split()[:3][0] == name and "active" in line for line in listed.text.splitlines()
    )
    revoked = run(["keys", "revoke", name], env=env)
    assert revoked.code == 0, revoked.terminal
    after = run(["keys", "list", "--consumer", who.consumer, "--json"], stdout_pipe=True, env=env)
    states = {k["name"]: k.get("active", False) for k in json.loads(after.stdout)["api_keys"]}
    assert states[name] is False
    # Without the admin key the admin RPC is refused with its status as the exit code.
    refused = run(["keys", "list", "--consumer", who.consumer], env=_env(gw))
    assert refused.code in (
        grpc.StatusCode.UNAUTHENTICATED.value[0],
        grpc.StatusCode.PERMISSION_DENIED.value[0],
    ), refused.terminal


def test_chat_offers_tools_from_a_file_and_prints_the_calls(gw: Gateway, tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    tools.write_text(json.dumps([tool]))
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(tool_calls=[ToolCallSpec(name="get_weather", arguments='{"city": "Oslo"}')])
        )
    finished = run(
        ["chat", "--model", "gpt-4o-mini", "--tools", str(tools), "Weather?"], env=_env(gw)
    )
    assert finished.code == 0, finished.terminal
    assert '-> tool call get_weather({"city": "Oslo"})' in finished.text
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_a_stream_that_fails_midway_keeps_its_text_and_exits_with_its_status(
    gw: Gateway,
) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["partial ", "more ", "never"], error_after=1))
    finished = run(["chat", "--model", "gpt-4o-mini", "Hello"], env=_env(gw))
    assert finished.code not in (0, 2), finished.terminal
    assert "partial" in finished.text
    assert "llmgw: " in finished.text
    assert "Traceback" not in finished.terminal


def test_chat_no_stream_json_is_the_final_response(gw: Gateway) -> None:
    finished = run(
        ["chat", "--model", "gpt-4o-mini", "--no-stream", "--json", "Hello"],
        stdout_pipe=True,
        env=_env(gw),
    )
    assert finished.code == 0, finished.terminal
    reply = json.loads(finished.stdout)
    assert reply["choices"][0]["message"]["content"] == DEFAULT_TEXT
    with gw.fakes["openai"].control() as control:
        assert control.completions()[-1].json.get("stream") in (None, False)
