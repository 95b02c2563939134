"""Ollama `/api/chat` answers (a whole body, or NDJSON lines) as normalised ones.

Ollama gives a response no id and tool calls usually none: the adapter mints a response
token per answer; the response id is `ollama-<token>` and a call without an id gets
`call_<token>_<n>`, so ids are unique and the same in every event of a stream. Ollama
reports `stop` for an answer that calls tools; that is normalised to TOOL_CALLS.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.provider.adapters.conversion import json_text, usage
from services.provider.adapters.ollama_errors import from_stream_error
from services.provider.adapters.upstream_errors import malformed

_FINISH = {"stop": chat_pb2.FINISH_REASON_STOP, "length": chat_pb2.FINISH_REASON_LENGTH}


def response_id(token: str) -> str:
    return f"ollama-{token}"


def _call_id(call: dict[str, Any], token: str, ordinal: int) -> str:
    return call.get("id") or f"call_{token}_{ordinal}"


def _call_parts(call: dict[str, Any]) -> tuple[str, str]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json_text(arguments if arguments is not None else {})
    return function.get("name") or "", arguments


def _finish(done_reason: Any, called_tools: bool) -> chat_pb2.FinishReason:
    finish = _FINISH.get(done_reason, chat_pb2.FINISH_REASON_STOP)
    if called_tools and finish == chat_pb2.FINISH_REASON_STOP:
        return chat_pb2.FINISH_REASON_TOOL_CALLS
    return finish


def _usage(line: dict[str, Any]) -> chat_pb2.Usage:
    return usage(line.get("prompt_eval_count") or 0, line.get("eval_count") or 0)


def completion(
    body: Any, *, provider: str, model: str, token: str
) -> provider_pb2.CompleteResponse:
    if not isinstance(body, dict):
        raise malformed(provider, "the body is not a JSON object")
    if body.get("error"):
        raise from_stream_error(body["error"], provider=provider, model=model)
    message = body.get("message") or {}
    response = provider_pb2.CompleteResponse(
        id=response_id(token), model=body.get("model") or model
    )
    out = response.message
    out.role = chat_pb2.ROLE_ASSISTANT
    if message.get("content"):
        out.content.add(text=message["content"])
    for ordinal, call in enumerate(message.get("tool_calls") or ()):
        name, arguments = _call_parts(call)
        out.tool_calls.add(id=_call_id(call, token, ordinal), name=name, arguments=arguments)
    response.finish_reason = _finish(body.get("done_reason"), bool(out.tool_calls))
    response.usage.CopyFrom(_usage(body))
    return response


class StreamTranslator:
    """NDJSON lines to stream events; `done` turns true on the line with `done: true`.
    Ollama sends each tool call whole: one delta per call, with its full arguments."""

    def __init__(self, provider: str, model: str, token: str) -> None:
        self.done = False
        self._provider = provider
        self._id = response_id(token)
        self._model = model
        self._token = token
        self._calls = 0
        self._finish: chat_pb2.FinishReason = chat_pb2.FINISH_REASON_UNSPECIFIED
        self._usage = chat_pb2.Usage()

    def feed(self, line: bytes) -> list[provider_pb2.StreamCompleteResponse]:
        try:
            chunk = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise malformed(self._provider, "a stream line is not JSON") from None
        if not isinstance(chunk, dict):
            raise malformed(self._provider, "a stream line is not a JSON object")
        if chunk.get("error"):
            raise from_stream_error(chunk["error"], provider=self._provider, model=self._model)
        message = chunk.get("message") or {}
        events = []
        if message.get("content"):
            events.append(self._event(text=message["content"]))
        for call in message.get("tool_calls") or ():
            name, arguments = _call_parts(call)
            delta = provider_pb2.ToolCallDelta(
                index=self._calls,
                id=_call_id(call, self._token, self._calls),
                name=name,
                arguments=arguments,
            )
            self._calls += 1
            events.append(self._event(tool_call=delta))
        if chunk.get("done"):
            self.done = True
            self._finish = _finish(chunk.get("done_reason"), self._calls > 0)
            self._usage = _usage(chunk)
        return events

    def _event(self, **event: Any) -> provider_pb2.StreamCompleteResponse:
        return provider_pb2.StreamCompleteResponse(id=self._id, model=self._model, **event)

    def final(self) -> provider_pb2.StreamCompleteResponse:
        last = self._event(finish_reason=self._finish)
        last.usage.CopyFrom(self._usage)
        return last
