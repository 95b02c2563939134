"""Page tokens are opaque, bound to one listing, and rejected when garbled."""

from __future__ import annotations

import base64

import pytest

from services.common.validation import Violations
from services.session.page_tokens import decode_page_token, encode_page_token


def decode(token: str, kind: str = "messages", scope: str = "sessions/a") -> tuple[int, list[str]]:
    violations = Violations()
    position = decode_page_token(violations, "page_token", token, kind, scope)
    return position, [v.field for v in violations.items]


def test_round_trip() -> None:
    token = encode_page_token("messages", "sessions/a", 1234)
    assert "1234" not in token
    assert decode(token) == (1234, [])


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!not-base64!!!",
        "",
        encode_page_token("sessions", "sessions/a", 5),  # another listing
        encode_page_token("messages", "sessions/b", 5),  # another scope
        encode_page_token("messages", "sessions/a", -1),
    ],
)
def test_foreign_or_garbled_tokens_are_violations(token: str) -> None:
    assert decode(token) == (0, ["page_token"])


def test_edited_token_is_rejected() -> None:
    token = encode_page_token("messages", "sessions/a", 10)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] = ord("9")  # position 10 -> 19, checksum unchanged
    edited = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert decode(edited) == (0, ["page_token"])
