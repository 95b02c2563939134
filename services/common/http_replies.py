"""What an HTTP service said when it failed: its message, quoted safely, and when it
asks to be called again. Shared by the provider adapters and the tool executors."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from services.common.logs import redact

# Longest quote of the other side's message; error bodies can echo whole prompts.
MAX_QUOTED = 300


def quote(message: str) -> str:
    """The other side's message on one line, trimmed and with secrets redacted."""
    text = " ".join(message.split()) or "no details given"
    if len(text) > MAX_QUOTED:
        text = text[: MAX_QUOTED - 1] + "…"
    return redact(text)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """`retry-after-ms`, else `retry-after` as seconds or an HTTP date."""
    if not headers:
        return None
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
