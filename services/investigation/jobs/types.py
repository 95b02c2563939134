"""What a worker holds while it runs an investigation, and how it learns it lost it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.trace_origin import NO_ORIGIN, TraceOrigin


class Fenced(Exception):
    """This worker lost the job (another worker took it over)."""


@dataclass
class Job:
    """One claim of one investigation by one worker.

    Every write the worker makes carries `fence`; a takeover by another worker raises
    the fence, and the old worker's writes are refused (`Fenced`) from then on.
    """

    id: str  # investigation id (no prefix)
    owner: str  # consumer name (`consumers/x`) or "" (auth off)
    key_name: str  # the key the owner used (for calls made on its behalf)
    attempt: int  # 1 on the first claim, +1 per takeover (== Investigation.attempts)
    fence: int  # fencing token of this claim
    investigation: inv_pb2.Investigation  # the record at claim time
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)  # set on a cancel request
    # The queue entry this claim holds and the consumer holding it (heartbeat, finish).
    entry_id: str = ""
    consumer: str = ""
    # Set once `JobStore.finish` stored the final state.
    finished: bool = False
    # The trace context of the request that created the investigation (every attempt
    # links to it).
    origin: TraceOrigin = NO_ORIGIN
