"""Where a request's id comes from: its `request_id` field, or the `Idempotency-Key`
header (gRPC metadata `idempotency-key`) REST callers send. Both may be given only
when they agree."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from services.common.validation import Violations

HEADER = "idempotency-key"
PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def derived(request_id: str, *parts: str) -> str:
    """The request id of one effect of a request that has `request_id` (its session
    append, one tool execution): a repeat of the request repeats the same ids, so the
    effects are at most once too, even when the first runner died half-way."""
    digest = hashlib.sha256("\x00".join((request_id, *parts)).encode()).hexdigest()
    return f"d.{digest[:40]}"


def request_id_of(
    violations: Violations,
    field: str,
    value: str,
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> str:
    """The request's id ("" when it has none); a violation on `field` when it is not
    1-128 characters of `[A-Za-z0-9._:-]`, or the field and the header disagree."""
    header = ""
    for key, item in metadata or ():
        if key == HEADER and isinstance(item, str):
            header = item.strip()
            break
    if value and header and value != header:
        violations.add(field, "differs from the Idempotency-Key header; send one of them")
        return ""
    chosen = value or header
    if chosen and PATTERN.fullmatch(chosen) is None:
        where = field if value else "Idempotency-Key"
        violations.add(where, "must be 1-128 characters of letters, digits and . _ : -")
        return ""
    return chosen
