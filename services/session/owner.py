"""Who is calling: the owner recorded on sessions the caller creates.

Authentication is not built yet, so the owner is empty and every caller sees every
session. The authentication interceptor will set `caller_owner` for each request; the
session code reads it only through `current_owner()`.
"""

from __future__ import annotations

import contextvars

caller_owner: contextvars.ContextVar[str] = contextvars.ContextVar(
    "llmgw_session_caller_owner", default=""
)


def current_owner() -> str:
    """The authenticated consumer of the current request ("" while authentication is off)."""
    return caller_owner.get()
