"""Per-request context carried through async code by contextvars."""

from __future__ import annotations

import contextvars
import uuid

REQUEST_ID_HEADER = "x-request-id"

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
rpc_method: contextvars.ContextVar[str] = contextvars.ContextVar("rpc_method", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex
