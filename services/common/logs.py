"""Structured JSON logs with the request id on every line and secrets redacted.

A line written while a span is current (tracing on, inside an RPC or a traced task)
carries its `trace_id` and `span_id` (hex, as trace backends show them), so a trace
leads to its log lines and back.

One line per record on stderr. Redaction runs on the formatted message and on every
string field, so a provider key pasted into an error text never reaches the log.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson
from opentelemetry import trace

from services.common import context

# Credential shapes we must never write out: provider keys, bearer tokens, our own
# gateway keys, and `key=value` style secrets in URLs or messages.
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-~+/]{8,}=*"),
    re.compile(r"llmgw_[A-Za-z0-9_\-]{8,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&]+"
    ),
]
REDACTED = "[REDACTED]"

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    # Every pattern's match contains one of the words below in any case, casefolded as
    # the patterns' IGNORECASE matching folds (the long s U+017F is an "s", the Kelvin
    # sign U+212A a "k"), so text without them is returned as it is: a few substring
    # checks instead of a substitution per pattern, for the many short strings (method
    # names, codes, model names) of every log line.
    folded = text.casefold()
    if not (
        "key" in folded
        or "token" in folded
        or "secret" in folded
        or "password" in folded
        or "bearer" in folded
        or "sk-" in folded
        or "llmgw_" in folded
    ):
        return text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; extra fields become keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid = context.request_id.get()
        if rid:
            entry["request_id"] = rid
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = trace.format_trace_id(span.trace_id)
            entry["span_id"] = trace.format_span_id(span.span_id)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure(service: str, level: str = "INFO") -> None:
    """Route all logging through the JSON formatter; call once in main()."""
    # The JSON lines carry no source file, line, thread or process name: logging need
    # not look them up for every record (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries log request lines (with URLs) at INFO; keep them quieter.
    for noisy in ("httpx", "httpx2", "openai", "anthropic", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
