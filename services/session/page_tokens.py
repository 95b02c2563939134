"""Session page tokens: a position in one listing (sessions of an owner, messages of a
session), sealed with the listing's kind and scope so a token only works where it was
issued."""

from __future__ import annotations

from services.common.page_tokens import seal, unseal
from services.common.validation import Violations

_DOMAIN = b"llmgw.session.v1/page-token"
_SEP = "\x1f"


def encode_page_token(kind: str, scope: str, position: int) -> str:
    """A token for `position` in listing `kind` of `scope` (an owner, a session name)."""
    return seal(_DOMAIN, _SEP.join((kind, scope, str(position))))


def decode_page_token(violations: Violations, field: str, token: str, kind: str, scope: str) -> int:
    """The position in `token`; a violation on `field` (and 0) unless the token was issued
    for this very listing."""
    position = _position(token, kind, scope)
    if position is None:
        violations.add(field, "is not a page token issued for this listing; start over")
        return 0
    return position


def _position(token: str, kind: str, scope: str) -> int | None:
    payload = unseal(_DOMAIN, token)
    if payload is None:
        return None
    try:
        token_kind, token_scope, position = payload.split(_SEP)
        value = int(position)
    except ValueError:
        return None
    if (token_kind, token_scope) != (kind, scope) or value < 0:
        return None
    return value
