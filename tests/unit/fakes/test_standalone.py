"""`python -m tests.fakes` runs a fake as its own process, scripted over HTTP."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from tests.fakes import AsyncFakeControl, Behaviour, FakeControl, ToolCallSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
KEY = "sk-standalone"
MESSAGES: list = [{"role": "user", "content": "hi"}]


def _read_port(port_file: Path) -> int | None:
    return int(port_file.read_text()) if port_file.exists() else None


async def _wait_for_port(process: asyncio.subprocess.Process, port_file: Path) -> int:
    for _ in range(500):
        port = await asyncio.to_thread(_read_port, port_file)
        if port is not None:
            return port
        if process.returncode is not None:
            break
        await asyncio.sleep(0.01)
    raise RuntimeError("the fake did not write its port file")


@pytest.fixture
async def standalone_url(tmp_path: Path) -> AsyncIterator[str]:
    port_file = tmp_path / "port"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes",
        "openai",
        "--port",
        "0",
        "--api-key",
        KEY,
        "--port-file",
        str(port_file),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        port = await _wait_for_port(process, port_file)
        assert process.stdout is not None
        assert int(await process.stdout.readline()) == port
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0


async def test_standalone_fake_is_scripted_over_http(standalone_url: str) -> None:
    tool = ToolCallSpec(name="f", arguments='{"a": 1}')
    async with (
        AsyncFakeControl(standalone_url) as control,
        openai.AsyncOpenAI(base_url=standalone_url, api_key=KEY, max_retries=0) as client,
    ):
        await control.script(
            Behaviour(status=429, headers={"retry-after": "1"}),
            Behaviour(tool_calls=[tool], match_model="tools"),
        )
        await control.set_default(Behaviour(text="default answer"))
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
        plain = await client.chat.completions.create(model="m", messages=MESSAGES)
        tools = await client.chat.completions.create(model="tools", messages=MESSAGES)
        assert plain.choices[0].message.content == "default answer"
        (call,) = tools.choices[0].message.tool_calls or []
        assert isinstance(call, ChatCompletionMessageFunctionToolCall)
        assert call.function.arguments == '{"a": 1}'

        stats = await control.stats()
        assert (stats.hits, stats.in_flight, stats.cancelled) == (3, 0, 0)
        assert stats.hits_by_model == {"m": 2, "tools": 1}
        recorded = await control.requests()
        assert [r.json["model"] for r in recorded] == ["m", "m", "tools"]
        assert recorded[0].headers["authorization"] == f"Bearer {KEY}"

        await control.reset()
        assert (await control.stats()).hits == 0
        assert await control.requests() == []
        again = await client.chat.completions.create(model="m", messages=MESSAGES)
        assert again.choices[0].message.content == "Hello from the fake."

        # The blocking client drives the same endpoints (the fake is in another process).
        with FakeControl(standalone_url) as blocking:
            blocking.script(Behaviour(text="scripted"))
            answer = await client.chat.completions.create(model="m", messages=MESSAGES)
            assert answer.choices[0].message.content == "scripted"
            assert blocking.stats().hits == 2
            blocking.reset()
            assert blocking.requests() == []
