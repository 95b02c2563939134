"""Opaque page tokens: a position in one listing, checked before it is trusted.

A token is base64url(checksum[8] + "<kind>\\x1f<scope>\\x1f<position>"). The checksum is
the first 8 bytes of SHA-256 over a fixed domain string and the payload; it catches
garbage, truncation and edits. Tokens are not secrets: a forged token can only move the
cursor within the same listing (kind and scope must match the request), which the caller
could do by paging anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from services.common.validation import Violations

_DOMAIN = b"llmgw.session.v1/page-token"
_SEP = "\x1f"
_CHECKSUM_BYTES = 8


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + payload).digest()[:_CHECKSUM_BYTES]


def encode_page_token(kind: str, scope: str, position: int) -> str:
    """A token for `position` in listing `kind` of `scope` (an owner, a session name)."""
    payload = _SEP.join((kind, scope, str(position))).encode()
    return base64.urlsafe_b64encode(_checksum(payload) + payload).decode().rstrip("=")


def decode_page_token(violations: Violations, field: str, token: str, kind: str, scope: str) -> int:
    """The position in `token`; a violation on `field` (and 0) unless the token was issued
    for this very listing."""
    position = _position(token, kind, scope)
    if position is None:
        violations.add(field, "is not a page token issued for this listing; start over")
        return 0
    return position


def _position(token: str, kind: str, scope: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    checksum, payload = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
    if not hmac.compare_digest(checksum, _checksum(payload)):
        return None
    try:
        token_kind, token_scope, position = payload.decode().split(_SEP)
        value = int(position)
    except ValueError:
        return None
    if (token_kind, token_scope) != (kind, scope) or value < 0:
        return None
    return value
