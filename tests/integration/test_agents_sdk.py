"""The OpenAI Agents SDK (`agents`) with its default model, OpenAIResponsesModel, run
against the gateway's Responses API: the agent calls a function tool, the tool really
runs in the test process, and the agent's final answer comes back."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)

from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


async def test_agent_runs_a_function_tool_then_answers(gw: Gateway) -> None:
    calls: list[str] = []

    @function_tool
    def weather(city: str) -> str:
        """Current weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="c1")]
            ),
            Behaviour(text="It is sunny in Paris."),
        )
    paths: list[str] = []

    async def record(request: Any) -> None:
        paths.append(request.url.path)

    client = openai.AsyncOpenAI(
        base_url=gw.public_url + "/v1",
        api_key="unused",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [record]}),
    )
    set_default_openai_client(client, use_for_tracing=False)
    set_tracing_disabled(True)
    agent = Agent(
        name="forecaster",
        instructions="Use the weather tool.",
        model="gpt-4o-mini",
        tools=[weather],
    )
    try:
        result = await Runner.run(agent, "What is the weather in Paris?")
    finally:
        await client.close()
    assert result.final_output == "It is sunny in Paris."
    assert calls == ["Paris"]
    # The SDK's default model speaks the Responses API.
    assert paths == ["/v1/responses", "/v1/responses"]
    with gw.fakes["openai"].control() as control:
        sent = control.completions()[-1].json
    # The second model call carried the tool call and the tool's real output.
    tool_message = sent["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "c1"
    assert "sunny in Paris" in json.dumps(tool_message["content"])
    assert sent["messages"][0]["role"] == "system"
