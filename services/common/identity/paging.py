"""Page sizes and sealed page tokens of the identity listings.

A token is the last id of the previous page; listings resume after it in id order, so
records created or deleted between pages neither repeat nor shift the rest.
"""

from __future__ import annotations

from services.common.page_tokens import seal, unseal
from services.common.validation import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(violations: Violations, requested: int, field: str = "page_size") -> int:
    """0 means the default; above the maximum is lowered to it (AIP-158)."""
    if requested < 0:
        violations.add(field, "must not be negative")
        return DEFAULT_PAGE_SIZE
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(listing: str, last_id: str) -> str:
    return seal(_domain(listing), last_id)


def decode_token(
    violations: Violations, listing: str, token: str, field: str = "page_token"
) -> str:
    """The id the previous page ended with ("" for the first page)."""
    if not token:
        return ""
    last_id = unseal(_domain(listing), token)
    if last_id is None:
        violations.add(field, "is not a page token of this listing; start over")
        return ""
    return last_id


def _domain(listing: str) -> bytes:
    # The listing (including a consumer for its keys) is part of the checksum, so a
    # token of one listing is refused by every other.
    return f"llmgw.identity/{listing}".encode()
