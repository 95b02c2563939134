"""Chat completion chunks -> the Responses API's server-sent events.

The sequence OpenAI sends, each event numbered (`sequence_number`): response.created,
response.in_progress; per output item output_item.added, then for a message
content_part.added, output_text.delta..., output_text.done, content_part.done, and for
a function call function_call_arguments.delta..., .done; output_item.done; finally
response.completed (or response.incomplete when the answer was cut short).

A failure after the first chunk arrives as a chunk carrying its status: it becomes
response.failed, then an `error` event whose data holds an `error` object, which is
what the OpenAI SDK raises on (`_streaming.py`: any event data with an `error`
mapping); the turn's error then propagates and ends the HTTP stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import status_pb2

from llmgw.router.v1 import chat_pb2
from services.common.errors import GatewayError
from services.router.compat import responses_reply as reply
from services.router.compat.bodies import sse_event

# OpenAI's error codes for a failed response, by gRPC status.
_ERROR_CODES = {
    grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]: ("rate_limit_exceeded", "rate_limit_error"),
    grpc.StatusCode.INVALID_ARGUMENT.value[0]: ("invalid_prompt", "invalid_request_error"),
}


@dataclass
class _Item:
    """One output item being streamed."""

    index: int
    item_id: str
    kind: str  # "message" or "function_call"
    text: str = ""
    call_id: str = ""
    name: str = ""


@dataclass
class ResponseStream:
    """The state of one streamed response; `final` is the finished `response` object
    (None until the stream completed)."""

    resp_id: str
    model: str
    echo: dict[str, Any]
    created_at: int = field(default_factory=lambda: int(time.time()))
    final: dict[str, Any] | None = None
    _sequence: int = 0
    _items: list[_Item] = field(default_factory=list)
    _message: _Item | None = None
    _calls: dict[int, _Item] = field(default_factory=dict)
    _finish: str = ""
    _usage: dict[str, Any] | None = None

    def _event(self, name: str, data: dict[str, Any]) -> bytes:
        data = {"type": name, "sequence_number": self._sequence, **data}
        self._sequence += 1
        return sse_event(data, event=name)

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return reply.response_object(
            self.resp_id, self.created_at, self.model, self.echo, status=status, **extra
        )

    def start(self) -> bytes:
        response = self._snapshot("in_progress")
        return self._event("response.created", {"response": response}) + self._event(
            "response.in_progress", {"response": response}
        )

    def _open_message(self) -> tuple[_Item, bytes]:
        item = _Item(len(self._items), reply.item_id("msg"), "message")
        self._items.append(item)
        self._message = item
        added = self._event(
            "response.output_item.added",
            {
                "output_index": item.index,
                "item": reply.message_item(item.item_id, "", status="in_progress"),
            },
        ) + self._event(
            "response.content_part.added",
            {
                "item_id": item.item_id,
                "output_index": item.index,
                "content_index": 0,
                "part": reply.output_text(""),
            },
        )
        return item, added

    def _text(self, delta: str) -> bytes:
        out = b""
        item = self._message
        if item is None:
            item, out = self._open_message()
        item.text += delta
        return out + self._event(
            "response.output_text.delta",
            {
                "item_id": item.item_id,
                "output_index": item.index,
                "content_index": 0,
                "delta": delta,
                "logprobs": [],
            },
        )

    def _call(self, call: chat_pb2.ChatToolCall) -> bytes:
        out = b""
        position = call.index if call.HasField("index") else len(self._calls)
        item = self._calls.get(position)
        if item is None:
            item = _Item(
                len(self._items),
                reply.item_id("fc"),
                "function_call",
                call_id=call.id,
                name=call.function.name,
            )
            self._items.append(item)
            self._calls[position] = item
            out += self._event(
                "response.output_item.added",
                {
                    "output_index": item.index,
                    "item": reply.function_call_item(
                        item.item_id, item.call_id, item.name, "", status="in_progress"
                    ),
                },
            )
        fragment = call.function.arguments
        if fragment:
            item.text += fragment
            out += self._event(
                "response.function_call_arguments.delta",
                {"item_id": item.item_id, "output_index": item.index, "delta": fragment},
            )
        return out

    def chunk(self, chunk: chat_pb2.StreamChatCompletionResponse) -> bytes:
        """The events one chunk makes (possibly none)."""
        if chunk.model:
            self.model = chunk.model
        if chunk.HasField("usage"):
            self._usage = reply.usage(chunk.usage)
        out = b""
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                out += self._text(delta.content)
            if delta.refusal:
                out += self._text(delta.refusal)
            for call in delta.tool_calls:
                out += self._call(call)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        return out

    def _done_items(self) -> tuple[list[dict[str, Any]], bytes]:
        output: list[dict[str, Any]] = []
        out = b""
        for item in self._items:
            if item.kind == "message":
                done = reply.message_item(item.item_id, item.text)
                common = {"item_id": item.item_id, "output_index": item.index, "content_index": 0}
                out += self._event(
                    "response.output_text.done", {**common, "text": item.text, "logprobs": []}
                )
                out += self._event(
                    "response.content_part.done", {**common, "part": reply.output_text(item.text)}
                )
            else:
                arguments = item.text or "{}"
                done = reply.function_call_item(item.item_id, item.call_id, item.name, arguments)
                out += self._event(
                    "response.function_call_arguments.done",
                    {
                        "item_id": item.item_id,
                        "output_index": item.index,
                        "name": item.name,
                        "arguments": arguments,
                    },
                )
            out += self._event(
                "response.output_item.done", {"output_index": item.index, "item": done}
            )
            output.append(done)
        return output, out

    def finish(self) -> bytes:
        """Every item done; `final` is then the finished response (sent by `closed`)."""
        out = b""
        if not self._items:
            _, out = self._open_message()  # An empty answer is still one (empty) message.
        output, done = self._done_items()
        status, reason = reply.status_of(self._finish)
        self.final = self._snapshot(
            status, output=output, usage_value=self._usage, incomplete_reason=reason
        )
        return out + done

    def closed(self) -> bytes:
        """The response's last state: completed, or incomplete when cut short."""
        assert self.final is not None
        status = self.final["status"]
        name = "response.completed" if status == "completed" else "response.incomplete"
        return self._event(name, {"response": self.final})

    def failed(self, status: status_pb2.Status) -> bytes:
        """response.failed, then the `error` event the SDK raises on."""
        code, error_type = _ERROR_CODES.get(status.code, ("server_error", "server_error"))
        message = status.message or "the model call failed"
        failed = self._snapshot("failed", error={"code": code, "message": message})
        return self._event("response.failed", {"response": failed}) + self._event(
            "error",
            {
                "code": code,
                "message": message,
                "param": None,
                "error": {"type": error_type, "code": code, "message": message, "param": None},
            },
        )


async def events(
    stream: ResponseStream,
    chunks: AsyncIterator[chat_pb2.StreamChatCompletionResponse],
    on_final: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The framed events, one piece per chunk. Nothing is produced before the first
    chunk, so an error in admission still becomes the HTTP status. `on_final` (storing
    the response) runs before the closing event: when it fails, the response fails."""
    started = False
    async for chunk in chunks:
        if not started:
            started = True
            if chunk.model:
                stream.model = chunk.model
            yield stream.start()
        if chunk.HasField("error"):
            yield stream.failed(chunk.error)
            continue  # The turn's error follows and propagates.
        out = stream.chunk(chunk)
        if out:
            yield out
    if not started:
        return
    done = stream.finish()
    if on_final is not None:
        assert stream.final is not None
        try:
            await on_final(stream.final)
        except GatewayError as error:
            yield done + stream.failed(error.to_status())
            raise
    yield done + stream.closed()
