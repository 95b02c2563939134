"""What the router's `chat {model}` span (services/common/genai_spans.py) learns of a
chat completion: the provider and model that answered, the turn's usage (every model call
of a tool loop added up) and the finish reasons the caller saw.

Separate from the servicer and the turn runner so that they only say where a completion
begins, is routed and ends; every function returns at once while tracing is off.
"""

from __future__ import annotations

from llmgw.router.v1 import chat_pb2
from services.common.genai_spans import Recorder, family
from services.router.catalog import Catalog
from services.router.routing.decision import RouteDecision
from services.router.turn import Turn


def routed(span: Recorder, catalog: Catalog, decision: RouteDecision, turn: Turn) -> None:
    """The deployment that answered (none for a cache hit) and the turn's usage."""
    if not span.recording:
        return
    if decision.provider:
        config = catalog.config.providers.get(decision.provider)
        span.provider(decision.provider, family(config.type) if config else decision.provider)
    span.response_model(decision.model)
    span.usage(turn.usage.input_tokens, turn.usage.output_tokens)


def answered(span: Recorder, reply: chat_pb2.CreateChatCompletionResponse) -> None:
    """A unary answer's finish reasons."""
    if not span.recording:
        return
    span.response_id(reply.id)
    for choice in reply.choices:
        span.finish_reason(choice.finish_reason)


def streamed(span: Recorder, chunk: chat_pb2.StreamChatCompletionResponse) -> None:
    """A finish reason a streamed chunk carries, if any."""
    if not span.recording:
        return
    for choice in chunk.choices:
        if choice.finish_reason:
            span.finish_reason(choice.finish_reason)
