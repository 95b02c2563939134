"""Anthropic Messages answers (a whole body, or stream events) as normalised ones."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.anthropic_errors import from_stream_error
from services.provider.adapters.conversion import json_text, usage
from services.provider.adapters.upstream_errors import malformed

_FINISH = {
    "end_turn": chat_pb2.FINISH_REASON_STOP,
    "stop_sequence": chat_pb2.FINISH_REASON_STOP,
    "pause_turn": chat_pb2.FINISH_REASON_STOP,
    "max_tokens": chat_pb2.FINISH_REASON_LENGTH,
    "model_context_window_exceeded": chat_pb2.FINISH_REASON_LENGTH,
    "tool_use": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "refusal": chat_pb2.FINISH_REASON_CONTENT_FILTER,
}


def finish_reason(value: Any) -> chat_pb2.FinishReason:
    """Unknown values stay UNSPECIFIED rather than being guessed."""
    return _FINISH.get(value, chat_pb2.FINISH_REASON_UNSPECIFIED)


class _Counts:
    """Anthropic's usage: `input_tokens` excludes cache reads and writes, which are
    counted apart; the normalised `input_tokens` includes them."""

    __slots__ = ("cache_read", "cache_write", "input", "output")

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = 0

    def update(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        self.input = data.get("input_tokens") or self.input
        self.output = data.get("output_tokens") or self.output
        self.cache_read = data.get("cache_read_input_tokens") or self.cache_read
        self.cache_write = data.get("cache_creation_input_tokens") or self.cache_write

    def usage(self) -> chat_pb2.Usage:
        return usage(
            self.input + self.cache_read + self.cache_write,
            self.output,
            cached=self.cache_read,
            cache_write=self.cache_write,
        )


def completion(body: Any, *, provider: str, model: str) -> provider_pb2.CompleteResponse:
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise malformed(provider, "the body is not a message")
    response = provider_pb2.CompleteResponse(
        id=body.get("id") or "",
        model=body.get("model") or model,
        finish_reason=finish_reason(body.get("stop_reason")),
    )
    out = response.message
    out.role = chat_pb2.ROLE_ASSISTANT
    text = []
    for block in body["content"]:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "tool_use":
            out.tool_calls.add(
                id=block.get("id") or "",
                name=block.get("name") or "",
                arguments=json_text(block.get("input") or {}),
            )
    if any(text):
        out.content.add(text="".join(text))
    counts = _Counts()
    counts.update(body.get("usage"))
    response.usage.CopyFrom(counts.usage())
    return response


class _ToolBlock:
    __slots__ = ("ordinal", "sent")

    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal
        self.sent = False


class StreamTranslator:
    """Messages stream events to stream events; `done` turns true on `message_stop`.

    Tool calls are numbered in order of their `tool_use` blocks. A call whose arguments
    stream as nothing gets `{}`, as a whole message would give it.
    """

    def __init__(self, provider: str, model: str) -> None:
        self.done = False
        self._provider = provider
        self._id = ""
        self._model = model
        self._finish: chat_pb2.FinishReason = chat_pb2.FINISH_REASON_UNSPECIFIED
        self._counts = _Counts()
        self._tools: dict[int, _ToolBlock] = {}

    def feed(self, frame: tuple[str, bytes]) -> list[provider_pb2.StreamCompleteResponse]:
        try:
            event = orjson.loads(frame[1])
        except orjson.JSONDecodeError:
            raise malformed(self._provider, "a stream event is not JSON") from None
        if not isinstance(event, dict):
            raise malformed(self._provider, "a stream event is not a JSON object")
        kind = event.get("type") or frame[0]
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_stop":
            return self._block_stop(event)
        if kind == "message_start":
            message = event.get("message") or {}
            self._id = message.get("id") or ""
            self._model = message.get("model") or self._model
            self._counts.update(message.get("usage"))
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self._finish = finish_reason(delta["stop_reason"])
            self._counts.update(event.get("usage"))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise from_stream_error(event, provider=self._provider, model=self._model)
        return []

    def _delta(self, event: dict[str, Any]) -> list[provider_pb2.StreamCompleteResponse]:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._event(text=delta["text"])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            tool = self._tools.get(event.get("index", -1))
            if tool is not None:
                tool.sent = True
                call = provider_pb2.ToolCallDelta(
                    index=tool.ordinal, arguments=delta["partial_json"]
                )
                return [self._event(tool_call=call)]
        return []

    def _block_start(self, event: dict[str, Any]) -> list[provider_pb2.StreamCompleteResponse]:
        block = event.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._event(text=block["text"])]
        if kind != "tool_use":
            return []
        tool = self._tools[event.get("index", -1)] = _ToolBlock(len(self._tools))
        call = provider_pb2.ToolCallDelta(
            index=tool.ordinal, id=block.get("id") or "", name=block.get("name") or ""
        )
        if block.get("input"):
            tool.sent = True
            call.arguments = json_text(block["input"])
        return [self._event(tool_call=call)]

    def _block_stop(self, event: dict[str, Any]) -> list[provider_pb2.StreamCompleteResponse]:
        tool = self._tools.get(event.get("index", -1))
        if tool is None or tool.sent:
            return []
        tool.sent = True
        empty = provider_pb2.ToolCallDelta(index=tool.ordinal, arguments="{}")
        return [self._event(tool_call=empty)]

    def _event(self, **event: Any) -> provider_pb2.StreamCompleteResponse:
        return provider_pb2.StreamCompleteResponse(id=self._id, model=self._model, **event)

    def final(self) -> provider_pb2.StreamCompleteResponse:
        last = self._event(finish_reason=self._finish)
        last.usage.CopyFrom(self._counts.usage())
        return last
