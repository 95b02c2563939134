"""Native completion chunks -> Anthropic's Messages stream events, in the exact order
the SDK's accumulator expects: `message_start`, `ping`, then per content block
`content_block_start` / `content_block_delta`... / `content_block_stop` (consecutive
indexes, one block open at a time), then `message_delta` (stop reason, usage) and
`message_stop`. A chunk carrying an error becomes an `error` event; the failure itself
then propagates from the chunk source.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from llmgw.router.v1 import chat_pb2
from services.router.compat import anthropic_reply
from services.router.compat.bodies import sse_event

Event = tuple[str, dict[str, Any]]


class MessageStream:
    """The state of one Anthropic stream: which block is open, which native tool call
    (by its index) became which block, and what the message ends with."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._blocks = 0
        # ("text", -1) or ("tool_use", native tool call index) of the open block.
        self._open: tuple[str, int] | None = None
        self._open_index = -1
        self._tool_blocks: dict[int, int] = {}
        self._finish = "stop"
        self._usage = {"input_tokens": 0, "output_tokens": 0}

    def events(self, chunk: chat_pb2.StreamChatCompletionResponse) -> list[Event]:
        """The events one native chunk becomes (possibly none)."""
        out = [] if self._started else self._start(chunk)
        if chunk.HasField("error"):
            out.append(
                ("error", anthropic_reply.error_event(chunk.error.code, chunk.error.message))
            )
            return out
        if chunk.HasField("usage"):
            self._usage = anthropic_reply.usage(chunk.usage)
        for choice in chunk.choices[:1]:
            delta = choice.delta
            for text in (delta.content, delta.refusal):
                if text:
                    out.extend(self._text(text))
            if delta.refusal:
                self._finish = "content_filter"
            for call in delta.tool_calls:
                out.extend(self._tool(call))
            if choice.HasField("finish_reason") and self._finish != "content_filter":
                self._finish = choice.finish_reason
        return out

    def end(self) -> list[Event]:
        """The closing events, after the last chunk."""
        out = [] if self._started else self._start(chat_pb2.StreamChatCompletionResponse())
        out.extend(self._close())
        out.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": anthropic_reply.stop_reason(self._finish),
                        "stop_sequence": None,
                    },
                    "usage": dict(self._usage),
                },
            )
        )
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    def _start(self, chunk: chat_pb2.StreamChatCompletionResponse) -> list[Event]:
        self._started = True
        message: dict[str, Any] = {
            "id": anthropic_reply.message_id(chunk.id),
            "type": "message",
            "role": "assistant",
            "model": chunk.model or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The prompt's count comes with the last chunk (message_delta carries it).
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [
            ("message_start", {"type": "message_start", "message": message}),
            ("ping", {"type": "ping"}),
        ]

    def _open_block(self, key: tuple[str, int], block: dict[str, Any]) -> list[Event]:
        out = self._close()
        self._open, self._open_index = key, self._blocks
        self._blocks += 1
        start = {"type": "content_block_start", "index": self._open_index, "content_block": block}
        return [*out, ("content_block_start", start)]

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._open_index})]

    def _text(self, text: str) -> list[Event]:
        out = []
        if self._open != ("text", -1):
            out = self._open_block(("text", -1), {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        out.append(_delta(self._open_index, delta))
        return out

    def _tool(self, call: chat_pb2.ChatToolCall) -> list[Event]:
        native = call.index if call.HasField("index") else 0
        out: list[Event] = []
        if native not in self._tool_blocks:
            block = {"type": "tool_use", "id": call.id, "name": call.function.name, "input": {}}
            out = self._open_block(("tool_use", native), block)
            self._tool_blocks[native] = self._open_index
        arguments = call.function.arguments
        if arguments:
            # Providers stream calls one after another; a late piece of an earlier call
            # still goes to its own block (the SDK accumulates by index).
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out.append(_delta(self._tool_blocks[native], delta))
        return out


def _delta(index: int, delta: dict[str, Any]) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def framed(events: list[Event]) -> bytes:
    return b"".join(sse_event(data, event=name) for name, data in events)


async def sse(
    chunks: AsyncIterator[chat_pb2.StreamChatCompletionResponse], model: str
) -> AsyncGenerator[bytes, None]:
    """The stream's SSE bytes, one piece per native chunk that produced events."""
    state = MessageStream(model)
    async for chunk in chunks:
        events = state.events(chunk)
        if events:
            yield framed(events)
    yield framed(state.end())
