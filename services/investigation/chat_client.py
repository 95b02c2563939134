"""Model calls of an investigation: unary chat completions through the Router, via
Envoy's internal listener, under the investigation owner's identity (the caller set by
the worker), so routing, fallbacks, limits, budgets and usage apply as to any chat."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import grpc

from llmgw.router.v1 import chat_pb2 as router_chat_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc
from services.common.caller import INVESTIGATION_HEADER
from services.common.channels import InternalChannel
from services.common.errors import GatewayError
from services.common.remote import translate_rpc_error

# The router's trailer with what the request's model calls cost (services/router/turn.py).
COST_TRAILER = "x-llmgw-cost"


@dataclass(frozen=True)
class ModelToolCall:
    """A tool call the model asked for."""

    id: str
    name: str
    # The arguments as the model wrote them (JSON text, possibly invalid).
    arguments: str


@dataclass
class ModelAnswer:
    """One model call's answer."""

    content: str
    tool_calls: list[ModelToolCall]
    finish_reason: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


def _cost(trailers: Any) -> float:
    for key, value in trailers or ():
        if key == COST_TRAILER:
            try:
                return float(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                return 0.0
    return 0.0


def message(role: str, content: str, **extra: Any) -> router_chat_pb2.ChatMessage:
    """A chat message with text content."""
    out = router_chat_pb2.ChatMessage(role=role, **extra)
    out.content.string_value = content
    return out


class ChatClient:
    """RouterService.CreateChatCompletion on a service's internal channel."""

    def __init__(self, internal: InternalChannel) -> None:
        self._stub = router_grpc.RouterServiceStub(internal.channel)
        self._metadata = internal.metadata

    async def complete(
        self,
        request: router_chat_pb2.CreateChatCompletionRequest,
        timeout: float | None,
        *,
        investigation: str = "",
    ) -> ModelAnswer:
        """The answer of one model call for `investigation` (its name); the router's
        refusal or failure is raised as the GatewayError it reported."""
        metadata = self._metadata(timeout)
        if investigation:
            metadata = (*metadata, (INVESTIGATION_HEADER, investigation))
        call = self._stub.CreateChatCompletion(request, timeout=timeout, metadata=metadata)
        try:
            reply = await call
            trailers = await call.trailing_metadata()
        except grpc.aio.AioRpcError as error:
            raise translate_rpc_error(error, "router") from None
        return _answer(reply, _cost(trailers))


def _answer(reply: router_chat_pb2.CreateChatCompletionResponse, cost: float) -> ModelAnswer:
    if not reply.choices:
        raise GatewayError("the model returned no choice")
    choice = reply.choices[0]
    calls = [
        ModelToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
        for c in choice.message.tool_calls
    ]
    return ModelAnswer(
        content=choice.message.content,
        tool_calls=calls,
        finish_reason=choice.finish_reason,
        model=reply.model,
        input_tokens=reply.usage.prompt_tokens,
        output_tokens=reply.usage.completion_tokens,
        cost=cost,
    )
