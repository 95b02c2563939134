"""What an HTTP service said when it failed: its message, quoted safely, and when it
asks to be called again. Shared by the provider adapters and the tool executors."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from services.common.logs import redact

# Longest quote of the other side's message; error bodies can echo whole prompts.
MAX_QUOTED = 300
STACK_TRACE_OMITTED = "(stack trace omitted)"
PATH_OMITTED = "[path]"

# Where a stack trace starts: Python's header and frames, Java/JS/.NET frames
# (`at pkg.Class.method(File.java:12)`, `at fn (/app/x.js:3:9)`), Go's goroutine dump,
# Ruby's `from file.rb:12:in`, PHP's `#0 /path/x.php(12)`.
_TRACE_START = re.compile(
    r"Traceback \(most recent call last\)"
    r"|^\s*File \"[^\"]+\", line \d+"
    r"|^\s*at \S+ ?\(.*:\d+\)"
    r"|^goroutine \d+ \["
    r"|^\s*from \S+:\d+:in "
    r"|^#\d+ \S+\(\d+\)",
    re.MULTILINE,
)
# A file system path: one under a usual root, one ending in a source file, a Windows one.
_PATH = re.compile(
    r"(?<![\w/:.])(?:"
    r"/(?:usr|home|opt|var|srv|app|root|tmp|etc|lib|workspace|src|code|site-packages)"
    r"(?:/[\w.@+~-]+)+"
    r"|(?:/[\w.@+~-]+)+\.(?:py|pyc|java|kt|go|js|mjs|ts|rb|php|cs|cpp|cc|c|h|rs|scala|ex)\b"
    r"|[A-Za-z]:\\(?:[\w .@+~-]+\\)*[\w .@+~-]*"
    r")"
)


def _without_internals(message: str) -> str:
    """`message` cut before any stack trace, with file paths replaced: the other side's
    internals are none of the caller's business and may name secrets' locations."""
    trace = _TRACE_START.search(message)
    if trace is not None:
        message = f"{message[: trace.start()].rstrip()} {STACK_TRACE_OMITTED}".strip()
    return _PATH.sub(PATH_OMITTED, message)


def quote(message: str) -> str:
    """The other side's message on one line, trimmed, without stack traces or file
    paths, and with secrets redacted."""
    text = " ".join(_without_internals(message).split()) or "no details given"
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
