"""Opaque ListTools page tokens: the last tool id of the previous page, checksummed.

A token is base64url(checksum[8] + id); the checksum (SHA-256 over a fixed domain and
the id) catches garbage, truncation and edits. Listing resumes after that id in name
order, so tools registered or deleted between pages neither repeat nor shift the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from services.common.validation import Violations

_DOMAIN = b"llmgw.tool.v1/page-token"
_CHECKSUM_BYTES = 8


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + payload).digest()[:_CHECKSUM_BYTES]


def encode_page_token(last_id: str) -> str:
    payload = last_id.encode()
    return base64.urlsafe_b64encode(_checksum(payload) + payload).decode().rstrip("=")


def decode_page_token(violations: Violations, field: str, token: str) -> str:
    """The id the previous page ended with; a violation (and "") for a forged token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    checksum, payload = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
    if not payload or not hmac.compare_digest(checksum, _checksum(payload)):
        violations.add(field, "is not a page token issued by ListTools; start over")
        return ""
    return payload.decode(errors="replace")
