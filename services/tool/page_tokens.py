"""ListTools page tokens: the last tool id of the previous page, sealed.

Listing resumes after that id in name order, so tools registered or deleted between
pages neither repeat nor shift the rest.
"""

from __future__ import annotations

from services.common.page_tokens import seal, unseal
from services.common.validation import Violations

_DOMAIN = b"llmgw.tool.v1/page-token"


def encode_page_token(last_id: str) -> str:
    return seal(_DOMAIN, last_id)


def decode_page_token(violations: Violations, field: str, token: str) -> str:
    """The id the previous page ended with; a violation (and "") for a forged token."""
    last_id = unseal(_DOMAIN, token)
    if last_id is None:
        violations.add(field, "is not a page token issued by ListTools; start over")
        return ""
    return last_id
