"""Provider results in OpenAI's shape: `chat.completion` and `chat.completion.chunk`."""

from __future__ import annotations

import time
import uuid

from google.rpc import status_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2

FINISH_REASONS: dict[int, str] = {
    common_pb2.FINISH_REASON_UNSPECIFIED: "stop",
    common_pb2.FINISH_REASON_STOP: "stop",
    common_pb2.FINISH_REASON_LENGTH: "length",
    common_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
    common_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    common_pb2.FINISH_REASON_MAX_ITERATIONS: "max_iterations",
}


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def usage(value: common_pb2.Usage) -> chat_pb2.CompletionUsage:
    return chat_pb2.CompletionUsage(
        prompt_tokens=value.input_tokens,
        completion_tokens=value.output_tokens,
        total_tokens=value.total_tokens or value.input_tokens + value.output_tokens,
        prompt_tokens_details=chat_pb2.PromptTokensDetails(cached_tokens=value.cached_input_tokens),
        completion_tokens_details=chat_pb2.CompletionTokensDetails(
            reasoning_tokens=value.reasoning_tokens
        ),
    )


def completion(
    result: provider_pb2.CompleteResponse,
    model: str,
    *,
    finish_reason: int | None = None,
    total_usage: common_pb2.Usage | None = None,
) -> chat_pb2.CreateChatCompletionResponse:
    """The answer; `finish_reason` and `total_usage` override the last call's when a
    tool loop made several."""
    message = chat_pb2.ChatCompletionMessage(role="assistant")
    text = "".join(p.text for p in result.message.content if p.WhichOneof("part") == "text")
    if text or not result.message.tool_calls:
        message.content = text
    for call in result.message.tool_calls:
        message.tool_calls.append(
            chat_pb2.ChatToolCall(
                id=call.id,
                type="function",
                function=chat_pb2.ChatFunctionCall(name=call.name, arguments=call.arguments),
            )
        )
    if result.refusal:
        message.refusal = result.refusal
    response = chat_pb2.CreateChatCompletionResponse(
        id=completion_id(),
        object="chat.completion",
        created=int(time.time()),
        model=model,
        choices=[
            chat_pb2.ChatCompletionChoice(
                index=0,
                message=message,
                finish_reason=FINISH_REASONS[
                    result.finish_reason if finish_reason is None else finish_reason
                ],
            )
        ],
        usage=usage(result.usage if total_usage is None else total_usage),
    )
    if result.system_fingerprint:
        response.system_fingerprint = result.system_fingerprint
    return response


class ChunkBuilder:
    """Turns one provider stream into OpenAI chunks sharing an id and creation time."""

    def __init__(self, model: str) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self._role_sent = False

    def _chunk(self) -> chat_pb2.StreamChatCompletionResponse:
        return chat_pb2.StreamChatCompletionResponse(
            id=self.id, object="chat.completion.chunk", created=self.created, model=self.model
        )

    def _delta_chunk(
        self,
    ) -> tuple[chat_pb2.StreamChatCompletionResponse, chat_pb2.ChatCompletionDelta]:
        chunk = self._chunk()
        choice = chunk.choices.add(index=0)
        choice.delta.SetInParent()  # OpenAI always sends `delta`, `{}` when empty
        if not self._role_sent:
            choice.delta.role = "assistant"
            self._role_sent = True
        return chunk, choice.delta

    def content(
        self, event: provider_pb2.StreamCompleteResponse
    ) -> chat_pb2.StreamChatCompletionResponse | None:
        """The chunk for an event's payload (text, tool-call piece, refusal), if any."""
        kind = event.WhichOneof("event")
        if kind is None:
            return None
        chunk, delta = self._delta_chunk()
        if kind == "text":
            delta.content = event.text
        elif kind == "refusal":
            delta.refusal = event.refusal
        else:
            piece = event.tool_call
            call = delta.tool_calls.add(index=piece.index)
            if piece.id:
                call.id = piece.id
                call.type = "function"
            if piece.name:
                call.function.name = piece.name
            call.function.arguments = piece.arguments
        return chunk

    def finish(self, reason: int) -> chat_pb2.StreamChatCompletionResponse:
        chunk, _delta = self._delta_chunk()
        chunk.choices[0].finish_reason = FINISH_REASONS[reason]
        return chunk

    def progress(self, progress: chat_pb2.ToolProgress) -> chat_pb2.StreamChatCompletionResponse:
        """A gateway-side tool loop event between the model's chunks (no choices)."""
        chunk = self._chunk()
        chunk.tool_progress.CopyFrom(progress)
        return chunk

    def error(self, status: status_pb2.Status) -> chat_pb2.StreamChatCompletionResponse:
        """The last chunk of a stream that fails after its first chunk."""
        chunk = self._chunk()
        chunk.error.CopyFrom(status)
        return chunk

    def usage(self, value: common_pb2.Usage) -> chat_pb2.StreamChatCompletionResponse:
        chunk = self._chunk()
        chunk.usage.CopyFrom(usage(value))
        return chunk
