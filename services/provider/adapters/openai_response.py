"""OpenAI Chat Completions answers (a whole body, or stream chunks) as normalised ones."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.conversion import json_text, usage
from services.provider.adapters.openai_errors import from_stream_error
from services.provider.adapters.upstream_errors import malformed

_FINISH = {
    "stop": chat_pb2.FINISH_REASON_STOP,
    "length": chat_pb2.FINISH_REASON_LENGTH,
    "tool_calls": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "function_call": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "content_filter": chat_pb2.FINISH_REASON_CONTENT_FILTER,
}


def finish_reason(value: Any) -> chat_pb2.FinishReason:
    """Unknown values stay UNSPECIFIED rather than being guessed."""
    return _FINISH.get(value, chat_pb2.FINISH_REASON_UNSPECIFIED)


def parse_usage(data: Any) -> chat_pb2.Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens_details") or {}
    completion = data.get("completion_tokens_details") or {}
    return usage(
        data.get("prompt_tokens") or 0,
        data.get("completion_tokens") or 0,
        cached=prompt.get("cached_tokens") or 0,
        reasoning=completion.get("reasoning_tokens") or 0,
    )


def _arguments(function: dict[str, Any]) -> str:
    arguments = function.get("arguments")
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json_text(arguments)


def _text(content: Any) -> str:
    """`content` is a string; a few compatible servers send a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def completion(body: Any, *, provider: str, model: str) -> provider_pb2.CompleteResponse:
    if not isinstance(body, dict):
        raise malformed(provider, "the body is not a JSON object")
    if body.get("error") and not body.get("choices"):
        raise from_stream_error(body["error"], provider=provider, model=model)
    choices = body.get("choices")
    if not choices:
        raise malformed(provider, "the completion has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    response = provider_pb2.CompleteResponse(
        id=body.get("id") or "",
        model=body.get("model") or model,
        finish_reason=finish_reason(choice.get("finish_reason")),
        refusal=message.get("refusal") or "",
        system_fingerprint=body.get("system_fingerprint") or "",
    )
    out = response.message
    out.role = chat_pb2.ROLE_ASSISTANT
    content = _text(message.get("content"))
    if content:
        out.content.add(text=content)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        out.tool_calls.add(
            id=call.get("id") or "", name=function.get("name") or "", arguments=_arguments(function)
        )
    parsed = parse_usage(body.get("usage"))
    if parsed is not None:
        response.usage.CopyFrom(parsed)
    return response


class StreamTranslator:
    """Chat Completions chunks to stream events.

    `feed` takes one server-sent event (name, data); `done` turns true on `[DONE]`, the
    protocol's terminal event. Tool-call deltas are keyed by the provider's `index` and renumbered
    by first appearance; only a call's first delta carries its id and name.
    """

    def __init__(self, provider: str, model: str) -> None:
        self.done = False
        self._provider = provider
        self._id = ""
        self._model = model
        self._finish: chat_pb2.FinishReason = chat_pb2.FINISH_REASON_UNSPECIFIED
        self._usage: chat_pb2.Usage | None = None
        self._calls: dict[int, int] = {}

    def feed(self, frame: tuple[str, bytes]) -> list[provider_pb2.StreamCompleteResponse]:
        data = frame[1]
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed(self._provider, "a stream event is not JSON") from None
        if not isinstance(chunk, dict):
            raise malformed(self._provider, "a stream event is not a JSON object")
        if chunk.get("error"):
            raise from_stream_error(chunk["error"], provider=self._provider, model=self._model)
        if not self._id:
            self._id = chunk.get("id") or ""
            self._model = chunk.get("model") or self._model
        if chunk.get("usage"):
            self._usage = parse_usage(chunk["usage"])
        events: list[provider_pb2.StreamCompleteResponse] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events.append(self._event(text=delta["content"]))
            if delta.get("refusal"):
                events.append(self._event(refusal=delta["refusal"]))
            for call in delta.get("tool_calls") or ():
                events.append(self._event(tool_call=self._tool_delta(call)))
            if choice.get("finish_reason"):
                self._finish = finish_reason(choice["finish_reason"])
        return events

    def _tool_delta(self, call: dict[str, Any]) -> provider_pb2.ToolCallDelta:
        function = call.get("function") or {}
        position = call.get("index", 0)
        ordinal = self._calls.get(position)
        if ordinal is not None:
            return provider_pb2.ToolCallDelta(index=ordinal, arguments=_arguments(function))
        ordinal = self._calls[position] = len(self._calls)
        return provider_pb2.ToolCallDelta(
            index=ordinal,
            id=call.get("id") or "",
            name=function.get("name") or "",
            arguments=_arguments(function),
        )

    def _event(self, **event: Any) -> provider_pb2.StreamCompleteResponse:
        return provider_pb2.StreamCompleteResponse(id=self._id, model=self._model, **event)

    def final(self) -> provider_pb2.StreamCompleteResponse:
        """The last event: finish reason and usage."""
        last = self._event(finish_reason=self._finish)
        if self._usage is not None:
            last.usage.CopyFrom(self._usage)
        return last
