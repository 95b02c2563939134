"""API key secrets: their format, generation, salted hash and constant-time check.

A key reads `llmgw_<key id>_<secret>`: the key id (12 characters, `[a-z][a-z0-9]{11}`)
names the record in Redis and is not secret; the secret is 32 random bytes in url-safe
base64 without padding (43 characters, which may contain `_` and `-`, so parsing goes by
position, never by splitting on `_`). The prefix shown in listings is `llmgw_<key id>`.

Only HMAC-SHA256(salt, secret) with a random 16-byte salt per key is stored. A slow
password hash (scrypt, argon2) defends low-entropy passwords against guessing; a
256-bit random secret cannot be guessed, so a fast hash loses nothing and keeps the
check cheap on every request. The salt still makes every stored digest unique.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _random
import string
from dataclasses import dataclass

KEY_PREFIX = "llmgw_"
KEY_ID_LENGTH = 12
SECRET_BYTES = 32
SALT_BYTES = 16
_SECRET_LENGTH = 43  # len(urlsafe_b64encode(32 bytes)) without the "=" padding
_KEY_ID_FIRST = string.ascii_lowercase
_KEY_ID_REST = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
_TOKEN_LENGTH = len(KEY_PREFIX) + KEY_ID_LENGTH + 1 + _SECRET_LENGTH


@dataclass(frozen=True)
class ParsedKey:
    """A well-formed key split into its parts (nothing about whether it is valid)."""

    key_id: str
    secret: str

    @property
    def prefix(self) -> str:
        return display_prefix(self.key_id)


def new_key_id() -> str:
    """A fresh key id; also a valid resource id (`^[a-z][a-z0-9-]{0,62}$`)."""
    return _random.choice(_KEY_ID_FIRST) + "".join(
        _random.choice(_KEY_ID_REST) for _ in range(KEY_ID_LENGTH - 1)
    )


def new_secret() -> str:
    return base64.urlsafe_b64encode(os.urandom(SECRET_BYTES)).decode().rstrip("=")


def format_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secret}"


def display_prefix(key_id: str) -> str:
    """What listings show to recognise a key: `llmgw_<key id>`."""
    return f"{KEY_PREFIX}{key_id}"


def parse_key(token: str) -> ParsedKey | None:
    """The parts of a well-formed key; None for anything else (never raises)."""
    if not isinstance(token, str) or len(token) != _TOKEN_LENGTH:
        return None
    if not token.startswith(KEY_PREFIX):
        return None
    key_id = token[len(KEY_PREFIX) : len(KEY_PREFIX) + KEY_ID_LENGTH]
    separator = token[len(KEY_PREFIX) + KEY_ID_LENGTH]
    secret = token[len(KEY_PREFIX) + KEY_ID_LENGTH + 1 :]
    if separator != "_" or key_id[0] not in _KEY_ID_FIRST:
        return None
    if any(c not in _KEY_ID_REST for c in key_id) or any(c not in _SECRET_ALPHABET for c in secret):
        return None
    return ParsedKey(key_id, secret)


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def matches(salt: bytes, stored_digest: bytes, secret: str) -> bool:
    """Whether `secret` hashes to `stored_digest`, in time independent of where they differ."""
    return hmac.compare_digest(digest(salt, secret), stored_digest)
