"""What one chat turn reports as it runs (`turn_runner.run_turn`), in order.

The turn runner knows nothing of the shape an answer goes out in: a unary answer folds
these events into one `chat.completion` (`unary_fold`), a stream turns them into chunks
as they come (`stream_chunks`). Every turn, answered live or from the response cache,
yields them in the same order:

    Started, (Delta | ToolStep)*, Finished, Settled

and a turn that fails after `Started` yields `Failed` before it raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.rpc import status_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2

Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Started:
    """The answer's first output is ready. `metadata`: the response's routing, cache,
    quota and turn headers as known now (a stream sends them as its headers, before
    its first chunk); `model`: the public model its chunks name."""

    model: str
    metadata: Metadata


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the answer as the model streamed it (a stream or a cache replay; a
    unary model call has none). Tool-call pieces the gateway might run itself come
    only once the model's last call shows it did not."""

    event: provider_pb2.StreamCompleteResponse


@dataclass(frozen=True, slots=True)
class ToolStep:
    """A gateway-side tool call started or ended, between two model calls."""

    progress: chat_pb2.ToolProgress


@dataclass(frozen=True, slots=True)
class Failed:
    """The turn fails after its output started: the status that ends its stream (a
    client of HTTP/1.1 server-sent events cannot see the RPC's own). The runner raises
    the error right after."""

    status: status_pb2.Status


@dataclass(frozen=True, slots=True)
class Finished:
    """The answer is complete. `answer` is its last model call's result (or the cached
    answer as one); `finish_reason` and `usage` are the turn's (a tool loop's limit,
    every call added up), which override the last call's."""

    model: str
    answer: provider_pb2.CompleteResponse
    finish_reason: int
    usage: common_pb2.Usage


@dataclass(frozen=True, slots=True)
class Settled:
    """The turn was accounted and saved to its session. `metadata`: the headers as of
    now (a unary answer's trailers begin with them); `trailers`: what only the end
    knows (cost, session saved); `usage`: what a stream's usage chunk reports (None:
    no usage chunk)."""

    metadata: Metadata
    trailers: Metadata
    usage: common_pb2.Usage | None


TurnEvent = Started | Delta | ToolStep | Failed | Finished | Settled
