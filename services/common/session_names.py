"""Resource names `sessions/{session}` and session ids."""

from __future__ import annotations

import re
import secrets

from services.common.validation import Violations

SESSION_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
_SESSION_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_COLLECTION = "sessions/"
RESOURCE_TYPE = "llmgw.session.v1.Session"


def new_session_id() -> str:
    """22 URL-safe characters (128 random bits); matches the session id pattern."""
    return secrets.token_urlsafe(16)


def session_name(session_id: str) -> str:
    return f"{_COLLECTION}{session_id}"


def check_session_id(violations: Violations, field: str, session_id: str) -> None:
    violations.require(
        _SESSION_ID.fullmatch(session_id) is not None, field, f"must match {SESSION_ID_PATTERN}"
    )


def parse_session_name(violations: Violations, field: str, name: str) -> str:
    """The id in `sessions/{id}`; a violation (and "") when the name is not one."""
    if not name:
        violations.add(field, "is required")
        return ""
    session_id = name.removeprefix(_COLLECTION)
    if session_id == name or _SESSION_ID.fullmatch(session_id) is None:
        violations.add(
            field, f"must be sessions/{{session}} with the id matching {SESSION_ID_PATTERN}"
        )
        return ""
    return session_id
