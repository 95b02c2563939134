"""Where a request's id comes from: its `request_id` field, or the `Idempotency-Key`
header (gRPC metadata `idempotency-key`) REST callers send. Both may be given only
when they agree."""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.common.validation import Violations

HEADER = "idempotency-key"
PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


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
