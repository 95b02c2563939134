"""Resource names `sessions/{session}` and session ids."""

from __future__ import annotations

import secrets

from services.common.resource_names import ResourceNames
from services.common.validation import Violations

SESSION_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
RESOURCE_TYPE = "llmgw.session.v1.Session"
SESSIONS = ResourceNames("sessions", "session", SESSION_ID_PATTERN)


def new_session_id() -> str:
    """22 URL-safe characters (128 random bits); matches the session id pattern."""
    return secrets.token_urlsafe(16)


def session_name(session_id: str) -> str:
    return SESSIONS.name(session_id)


def check_session_id(violations: Violations, field: str, session_id: str) -> None:
    SESSIONS.check_id(violations, field, session_id)


def parse_session_name(violations: Violations, field: str, name: str) -> str:
    """The id in `sessions/{id}`; a violation (and "") when the name is not one."""
    return SESSIONS.parse(violations, field, name)
