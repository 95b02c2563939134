"""One chat request's turn beyond a single model call: its session and its tool loop.

The turn knows what to append to the session when the completion succeeds: the request's
new messages, every assistant tool-call turn and tool result of the gateway-side loop,
and the final answer — in one atomic append, so a failed completion appends nothing and
a reader never sees half a turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.router.tool_loop import ToolLoop
from services.router.usage.cost import to_currency

# What the request's model calls cost, in the gateway's currency (a trailer; the
# investigation service adds it to an investigation's cost).
COST_TRAILER = "x-llmgw-cost"


def add_usage(total: common_pb2.Usage, part: common_pb2.Usage) -> None:
    total.input_tokens += part.input_tokens
    total.output_tokens += part.output_tokens
    total.total_tokens += part.total_tokens or part.input_tokens + part.output_tokens
    total.cached_input_tokens += part.cached_input_tokens
    total.cache_write_input_tokens += part.cache_write_input_tokens
    total.reasoning_tokens += part.reasoning_tokens


@dataclass
class Turn:
    # `sessions/{session}`, or "" when the request names none.
    session: str = ""
    # The request's id (AIP-155; "" without one): its effects derive theirs from it.
    request_id: str = ""
    # The request's messages other than its instructions.
    new_turn: list[common_pb2.Message] = field(default_factory=list)
    history_used: int = 0
    loop: ToolLoop | None = None
    # Usage of every model call of the turn, and what the calls cost (nano-units).
    usage: common_pb2.Usage = field(default_factory=common_pb2.Usage)
    cost_nanos: int = 0

    def runs_tools(self, message: common_pb2.Message, finish_reason: int) -> bool:
        """Whether the gateway runs this answer's tool calls itself."""
        return (
            self.loop is not None
            and finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
            and self.loop.owns(message.tool_calls)
        )

    def to_append(self, final: common_pb2.Message, finish_reason: int) -> list[common_pb2.Message]:
        """The session's record of the turn. An answer stopped by the iteration limit is
        kept without its unrun tool calls: a stored tool call with no result would make
        every later request on the session invalid for the providers."""
        record = common_pb2.Message()
        record.CopyFrom(final)
        if finish_reason == common_pb2.FINISH_REASON_MAX_ITERATIONS:
            del record.tool_calls[:]
        transcript = self.loop.transcript if self.loop is not None else []
        return [*self.new_turn, *transcript, record]

    def cost_metadata(self) -> tuple[str, str]:
        """The cost trailer: sent once the turn's model calls are all done (a stream's
        trailers, a unary answer's), never with a stream's first chunk."""
        return (COST_TRAILER, f"{to_currency(self.cost_nanos):.9f}")

    def metadata(self) -> list[tuple[str, str]]:
        pairs = []
        if self.session:
            pairs.append(("x-llmgw-session", self.session))
            pairs.append(("x-llmgw-history-messages", str(self.history_used)))
        if self.loop is not None:
            pairs.append(("x-llmgw-tool-iterations", str(self.loop.iteration)))
        return pairs
