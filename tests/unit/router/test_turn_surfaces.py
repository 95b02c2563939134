"""The two chat surfaces over one turn runner: the unary fold and the stream's chunks
read the same typed events, and a turn run through either gives the same answer."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest
from google.rpc import code_pb2, status_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from services.common.errors import Unavailable
from services.router.stream_chunks import chunks
from services.router.turn_events import (
    Delta,
    Failed,
    Finished,
    Settled,
    Started,
    ToolStep,
    TurnEvent,
)
from services.router.unary_fold import fold
from tests.support.servicer_context import FakeContext
from tests.unit.router.test_gen_ai_metrics import ScriptedProvider, _request, _servicer

HEAD = (("x-llmgw-route", "primary"),)
TAIL = (("x-llmgw-cost", "0.000001000"),)
TOTAL = common_pb2.Usage(input_tokens=30, output_tokens=7)


def _answer(text: str) -> provider_pb2.CompleteResponse:
    return provider_pb2.CompleteResponse(
        message=common_pb2.Message(
            role=common_pb2.ROLE_ASSISTANT, content=[common_pb2.ContentPart(text=text)]
        ),
        finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS,
        usage=common_pb2.Usage(input_tokens=1, output_tokens=1),
    )


def _turn() -> list[TurnEvent]:
    progress = chat_pb2.ToolProgress(iteration=0, tool_call_id="c1", tool_name="t", state="started")
    return [
        Started("public-model", HEAD),
        Delta(provider_pb2.StreamCompleteResponse(text="Hel")),
        ToolStep(progress),
        Delta(provider_pb2.StreamCompleteResponse(text="lo")),
        Finished("public-model", _answer("Hello"), common_pb2.FINISH_REASON_MAX_ITERATIONS, TOTAL),
        Settled(HEAD, TAIL, TOTAL),
    ]


class Events:
    """A scripted turn that records whether it was closed, and may fail at its end."""

    def __init__(self, events: Sequence[TurnEvent], error: Exception | None = None) -> None:
        self.events = events
        self.error = error
        self.closed = False

    async def run(self) -> AsyncGenerator[TurnEvent, None]:
        try:
            for event in self.events:
                yield event
            if self.error is not None:
                raise self.error
        finally:
            self.closed = True


async def test_the_fold_answers_with_the_turns_finish_and_usage() -> None:
    context = FakeContext()
    reply = await fold(Events(_turn()).run(), context)
    assert reply.model == "public-model"
    assert reply.choices[0].message.content == "Hello"
    # The turn's finish reason and total usage, not the last call's.
    assert reply.choices[0].finish_reason == "max_iterations"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (30, 7)
    # Everything goes out as trailers, headers first; nothing before the answer.
    assert context.trailing == (*HEAD, *TAIL)
    assert context.initial == ()


async def test_the_fold_raises_the_turns_failure_and_closes_it() -> None:
    events = Events(_turn()[:2], Unavailable("upstream down"))
    with pytest.raises(Unavailable):
        await fold(events.run(), FakeContext())
    assert events.closed


async def _chunks(
    events: Events, context: FakeContext, *, include_usage: bool
) -> list[chat_pb2.StreamChatCompletionResponse]:
    stream = chunks(events.run(), context, include_usage=include_usage)
    return [chunk async for chunk in stream]


async def test_the_stream_sends_each_event_as_its_chunk() -> None:
    context = FakeContext()
    sent = await _chunks(Events(_turn()), context, include_usage=True)
    assert context.initial == HEAD
    assert context.trailing == TAIL
    assert [c.choices[0].delta.content for c in sent if c.choices][:2] == ["Hel", "lo"]
    assert sent[1].tool_progress.tool_call_id == "c1"
    assert sent[2].choices[0].delta.content == "lo"
    assert sent[3].choices[0].finish_reason == "max_iterations"
    assert sent[4].usage.completion_tokens == 7
    assert len(sent) == 5
    assert len({c.id for c in sent}) == 1
    assert all(c.model == "public-model" for c in sent)


async def test_the_usage_chunk_only_when_asked() -> None:
    sent = await _chunks(Events(_turn()), FakeContext(), include_usage=False)
    assert not any(c.HasField("usage") for c in sent)
    assert sent[-1].choices[0].finish_reason == "max_iterations"


async def test_a_failure_after_the_start_is_an_error_chunk_then_the_status() -> None:
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="upstream down")
    events = Events([*_turn()[:2], Failed(status)], Unavailable("upstream down"))
    context = FakeContext()
    sent: list[Any] = []
    with pytest.raises(Unavailable):
        stream = chunks(events.run(), context, include_usage=True)
        async for chunk in stream:
            sent.append(chunk)
    assert sent[-1].error.code == code_pb2.UNAVAILABLE
    assert events.closed


async def test_closing_the_stream_closes_the_turn() -> None:
    """A client that goes away closes the chunks; the turn must end then (its
    reservations are settled in its `finally`), not when the collector finds it."""
    events = Events(_turn())
    stream = chunks(events.run(), FakeContext(), include_usage=True)
    await anext(stream)
    await stream.aclose()
    assert events.closed


async def test_unary_and_stream_turns_agree() -> None:
    """One model, one runner: the unary answer and the assembled stream say the same,
    and each surface sends the route and the cost where its shape wants them."""
    unary_context, stream_context = FakeContext(), FakeContext()
    reply = await _servicer(ScriptedProvider(output_tokens=3)).CreateChatCompletion(
        _request(), unary_context
    )
    sent = [
        chunk
        async for chunk in _servicer(ScriptedProvider(output_tokens=3)).StreamChatCompletion(
            _request(), stream_context
        )
    ]
    text = "".join(c.choices[0].delta.content for c in sent if c.choices)
    finish = [c.choices[0].finish_reason for c in sent if c.choices and c.choices[0].finish_reason]
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == ("hello", "stop")
    assert (text, finish) == ("xxx", ["stop"])
    assert reply.model == sent[0].model == "mini"
    unary = dict(unary_context.trailing)
    assert unary["x-llmgw-provider"] == "an"
    assert "x-llmgw-cost" in unary
    assert dict(stream_context.initial)["x-llmgw-provider"] == "an"
    assert "x-llmgw-cost" in dict(stream_context.trailing)
    assert "x-llmgw-cost" not in dict(stream_context.initial)
