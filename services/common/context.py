"""Per-request context carried through async code by contextvars."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass
from typing import Any

REQUEST_ID_HEADER = "x-request-id"

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
rpc_method: contextvars.ContextVar[str] = contextvars.ContextVar("rpc_method", default="")


@dataclass(frozen=True, slots=True)
class Deadline:
    """When the current RPC must be over (`time.monotonic()`): the caller's deadline
    clipped to the service's ceiling, or the ceiling when the caller set none
    (`ceiling_only`). Every call made while serving the RPC gets what is left as its
    timeout (`channels.remaining_timeout`)."""

    at: float
    ceiling_only: bool


deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)
# Fields a handler adds to its RPC's access-log line (the routing decision, ...).
log_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_fields", default=None
)


def annotate(**fields: Any) -> None:
    """Adds fields to the current RPC's access-log line."""
    current = log_fields.get()
    if current is None:
        log_fields.set(dict(fields))
    else:
        current.update(fields)


def new_request_id() -> str:
    return uuid.uuid4().hex
