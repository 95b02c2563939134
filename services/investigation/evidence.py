"""Evidence: a tool call named by its id and an excerpt quoted from what it returned.

Every finding the investigation stores rests on evidence a reader can check: the
excerpt occurs in the output of the call it names, so a claim cannot cite a call that
was never made or text the call never returned. The rule (the investigation contract):
an excerpt of at least `MIN_EXCERPT_NONSPACE` non-space characters and at most
`MAX_EXCERPT_CHARS` characters is valid when, with every whitespace run made one space
on both sides, it occurs in the call's `output` or in one of the string leaves of its
`result`. The leaves count because `output` is JSON: a log line with quotes reads
`\\"` there, and a model or an analyzer quotes the line as it was logged. Only
successful calls are quoted; a failed call's output is our own error sentence, not
something the cluster said.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.status_bounds import clip_chars
from services.common.text_checks import shown
from services.investigation.calls import ToolCall

# Fewer non-space characters match almost anywhere and prove nothing.
MIN_EXCERPT_NONSPACE = 3
# A quote, not a copy of the output; also bounds the work of one check.
MAX_EXCERPT_CHARS = 500
# Characters of a caller's call id quoted back in a reason.
_ID_QUOTE_CHARS = 32
# Nesting followed into a result; tool results are a few levels deep.
_MAX_DEPTH = 32


@dataclass(frozen=True)
class EvidenceRef:
    """One evidence item: the call (`c3`) and the text quoted from its output."""

    tool_call_id: str
    excerpt: str


def normalise(text: str) -> str:
    """`text` with every whitespace run one space and no space at either end."""
    return " ".join(text.split())


def string_leaves(value: Any, depth: int = 0) -> Iterator[str]:
    """The strings of a JSON value (object values and array items, not object keys)."""
    if isinstance(value, str):
        yield value
    elif depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            for item in value.values():
                yield from string_leaves(item, depth + 1)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from string_leaves(item, depth + 1)


def excerpt_problem(excerpt: str) -> str:
    """Why `excerpt` can never be evidence (too short, too long), or "" when its size
    is acceptable."""
    if len(excerpt) > MAX_EXCERPT_CHARS:
        return f"excerpt is {len(excerpt)} characters long; at most {MAX_EXCERPT_CHARS} allowed"
    if sum(1 for ch in excerpt if not ch.isspace()) < MIN_EXCERPT_NONSPACE:
        return (
            f"excerpt {shown(excerpt)} has fewer than {MIN_EXCERPT_NONSPACE} non-space characters"
        )
    return ""


def _texts(call: ToolCall) -> Iterator[str]:
    """What an excerpt may occur in, normalised: the output, then each string leaf."""
    yield normalise(call.output)
    for leaf in string_leaves(call.result):
        yield normalise(leaf)


def occurs(excerpt: str, call: ToolCall) -> bool:
    """Whether `excerpt` is valid evidence from `call` (the contract's rule above)."""
    if not call.ok or excerpt_problem(excerpt):
        return False
    needle = normalise(excerpt)
    return any(needle in haystack for haystack in _texts(call))


def check(
    refs: Sequence[EvidenceRef], calls_by_id: Mapping[str, ToolCall]
) -> tuple[list[EvidenceRef], list[str]]:
    """The valid items of `refs` (in order, each once) and one reason per invalid one:
    `c7 does not exist`, `c2 failed; evidence must come from a successful call`,
    `excerpt '...' not found in c3's output`, or the excerpt's size problem."""
    valid: list[EvidenceRef] = []
    reasons: list[str] = []
    seen: set[tuple[str, str]] = set()
    # Normalised once per call: a model may cite one large output many times.
    texts: dict[str, tuple[str, ...]] = {}
    for ref in refs:
        call_id = clip_chars(ref.tool_call_id, _ID_QUOTE_CHARS)
        call = calls_by_id.get(ref.tool_call_id)
        problem = excerpt_problem(ref.excerpt)
        if call is None:
            reasons.append(f"{call_id} does not exist")
        elif not call.ok:
            reasons.append(f"{call_id} failed; evidence must come from a successful call")
        elif problem:
            reasons.append(f"{problem} (citing {call_id})")
        elif not any(
            normalise(ref.excerpt) in haystack
            for haystack in texts.setdefault(ref.tool_call_id, tuple(_texts(call)))
        ):
            reasons.append(f"excerpt {shown(ref.excerpt)} not found in {call_id}'s output")
        else:
            key = (ref.tool_call_id, normalise(ref.excerpt))
            if key not in seen:
                seen.add(key)
                valid.append(ref)
    return valid, reasons
