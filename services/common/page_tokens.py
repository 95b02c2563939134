"""Opaque page tokens: a listing's cursor, checksummed so garbage is refused.

A token is base64url(checksum[8] + payload); the checksum is the first 8 bytes of SHA-256
over a domain string (one per listing family) and the payload. It catches garbage,
truncation and edits. Tokens are not secrets: a forged token can only move the cursor
within a listing, which the caller could do by paging anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_CHECKSUM_BYTES = 8


def _checksum(domain: bytes, payload: bytes) -> bytes:
    return hashlib.sha256(domain + payload).digest()[:_CHECKSUM_BYTES]


def seal(domain: bytes, payload: str) -> str:
    data = payload.encode()
    return base64.urlsafe_b64encode(_checksum(domain, data) + data).decode().rstrip("=")


def unseal(domain: bytes, token: str) -> str | None:
    """The payload of a token sealed for `domain`; None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    checksum, data = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
    if not data or not hmac.compare_digest(checksum, _checksum(domain, data)):
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None
