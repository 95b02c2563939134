"""Reading log lines for their errors, and pods whose current logs are full of them.

An application that fails without crashing (an error rate after a deploy, a pool
exhausted) says why in its log: the error lines repeat. `log_errors` names the most
repeated error of a container's current log (ties: the one with an error word, then
the latest), quoting its latest occurrence. It is a symptom with its words, not a cause
by itself; the change analyzer cites it when a change preceded it.

`last_error_line` picks what ended a crashed instance: the last line that reads like
an error, skipping the generic farewell (`exiting: status 1`, `shutting down`) when a
more specific error precedes it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.calls import ToolCall
from services.investigation.results import mapping, strings, successful, text

_ERROR_WORD = re.compile(r"error|exception|fatal|panic|traceback", re.IGNORECASE)
# An HTTP 5xx answer logged as `status=503`, `status: 500`, `"status":502`.
_SERVER_ERROR = re.compile(r"\bstatus\"?[=: ]+\"?5\d\d\b", re.IGNORECASE)
_GENERIC = re.compile(
    r"\b(exiting|exited|exit (status|code)|shutting down|terminating|stopped)\b", re.IGNORECASE
)
# Error lines a log needs before it is a finding.
MIN_ERROR_LINES = 3
_DIGITS = re.compile(r"\d+")


def is_error(line: str) -> bool:
    return bool(line.strip()) and bool(_ERROR_WORD.search(line) or _SERVER_ERROR.search(line))


def last_error_line(lines: list[str]) -> str:
    """The last line that reads like an error (the last specific one when the last is a
    generic exit line), or ""."""
    errors = [line for line in lines if line.strip() and _ERROR_WORD.search(line)]
    specific = [line for line in errors if not _GENERIC.search(line)]
    return (specific or errors or [""])[-1]


def most_repeated_error(lines: list[str]) -> tuple[str, int, int]:
    """(the latest line of the most repeated error, its repeats, all error lines);
    lines that differ only in numbers (times, ids) are the same error."""
    errors = [line for line in lines if is_error(line)]
    if not errors:
        return "", 0, 0
    shapes = Counter(_DIGITS.sub("#", line) for line in errors)
    latest = {_DIGITS.sub("#", line): index for index, line in enumerate(errors)}
    best = max(
        shapes,
        key=lambda shape: (shapes[shape], bool(_ERROR_WORD.search(shape)), latest[shape]),
    )
    return errors[latest[best]], shapes[best], len(errors)


def current_log_calls(obs: Observations) -> Iterator[tuple[ToolCall, str, str, str]]:
    """(call, namespace, pod, container) of each successful current-log call."""
    for call in successful(obs.calls, "kubernetes_pod_logs"):
        if call.arguments.get("previous") or call.result.get("previous") is True:
            continue
        args = call.arguments
        container = text(args.get("container")) or text(mapping(call.result).get("container"))
        yield call, text(args.get("namespace")), text(args.get("name")), container


def log_errors(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call, namespace, pod, container in current_log_calls(obs):
        lines = strings(call.result.get("lines"))
        line, repeats, errors = most_repeated_error(lines)
        if errors < MIN_ERROR_LINES:
            continue
        where = f"container {container} of pod {namespace}/{pod}"
        yield finding(
            "log_errors",
            title=f"The log of {where} repeats an error",
            detail=(
                f"{errors} of the last {len(lines)} log lines of {where} are errors; "
                f"{repeats} of them read: {clipped(line)}"
            ),
            subject=f"pod/{namespace}/{pod}",
            evidence=[quote(call, line)],
            severity=2,
            recommendations=(f"Find what changed before {where} began logging this error.",),
        )
