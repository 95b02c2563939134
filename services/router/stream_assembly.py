"""One provider stream gathered into the message it carries.

The router relays a stream chunk by chunk, but also needs it whole: to append the reply
to a session, and to run the tool calls of a gateway-side tool loop. Tool calls are
assembled by their index: the first piece brings the id and name, later pieces append
to the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class StreamAssembly:
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    finish_reason: int = common_pb2.FINISH_REASON_UNSPECIFIED
    usage: common_pb2.Usage | None = None
    # The tool-call pieces as they came (a relay may hold them back and send them later).
    tool_events: list[provider_pb2.StreamCompleteResponse] = field(default_factory=list)
    _calls: dict[int, _Call] = field(default_factory=dict)

    def add(self, event: provider_pb2.StreamCompleteResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "text":
            self.text.append(event.text)
        elif kind == "refusal":
            self.refusal.append(event.refusal)
        elif kind == "tool_call":
            self.tool_events.append(event)
            piece = event.tool_call
            call = self._calls.setdefault(piece.index, _Call())
            call.id = call.id or piece.id
            call.name = call.name or piece.name
            call.arguments.append(piece.arguments)
        if event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
            self.finish_reason = event.finish_reason
        if event.HasField("usage"):
            self.usage = event.usage

    def message(self) -> common_pb2.Message:
        """The assistant message the stream carried."""
        message = common_pb2.Message(role=common_pb2.ROLE_ASSISTANT)
        text = "".join(self.text)
        if text:
            message.content.add(text=text)
        for index in sorted(self._calls):
            call = self._calls[index]
            message.tool_calls.add(id=call.id, name=call.name, arguments="".join(call.arguments))
        return message
