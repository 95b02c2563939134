"""Sealing outcomes that hold a secret (an issued API key) before they rest in Redis.

AES-256-GCM with a key derived from `LLMGW_INTERNAL_SECRET` for this one purpose, a
random nonce per seal, and the record's Redis key as associated data (a sealed outcome
moved to another record does not open). Redis alone never reveals a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PURPOSE = b"llmgw/idempotency/sealing/v1"
_NONCE_BYTES = 12


class SealingError(Exception):
    """A sealed value that does not open with this key (tampered, or another secret)."""


class Sealer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the sealing secret must be at least 16 bytes")
        self._aead = AESGCM(hmac.new(secret, _PURPOSE, hashlib.sha256).digest())

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, context)
        except (InvalidTag, ValueError) as error:
            raise SealingError("the sealed value does not open") from error
