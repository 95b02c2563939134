"""Scripted conversations: a model's answer chosen by how far the request's conversation
has got, so a multi-step model loop plays deterministically however concurrent requests
interleave, and turns that cite tool outputs by ids only known at run time.

Turn N answers a request holding N assistant messages (all three protocols mark them
`"role": "assistant"` in `messages`); past the last turn the last one repeats.

Citations: `{{cite:NEEDLE}}` in a turn's text, chunks or tool-call arguments becomes the
id of the first tool-call block of the request whose text contains NEEDLE (verbatim, as
written in the turn), else `c0`. A block starts at a line beginning `[cN]` and runs to the
next such line or the end of its content; its id is `cN`, so a substitution inside a JSON
string keeps the document valid. A marker must lie within one chunk.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.behaviour import Behaviour, ToolCallSpec

CITE_OPEN = "{{cite:"
FALLBACK_ID = "c0"

_CITE = re.compile(r"\{\{cite:(.*?)\}\}", re.DOTALL)
_BLOCK_START = re.compile(r"^\[(c\d+)\]", re.MULTILINE)


def assistant_turns(body: Mapping[str, Any]) -> int:
    """How many assistant messages the request's conversation already holds."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


def request_texts(body: Mapping[str, Any]) -> Iterator[str]:
    """Every text a request carries, in order, each its own scope for blocks.

    Anthropic's top-level `system` comes first; then each message's content, whatever its
    role: a string (all three protocols), or a list of parts whose `text` counts (OpenAI
    and Anthropic text parts) and whose `content` is read once more the same way (an
    Anthropic `tool_result`, which holds a string or text parts).
    """
    yield from _texts(body.get("system"), nested=True)
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                yield from _texts(message.get("content"), nested=True)


def _texts(content: Any, *, nested: bool) -> Iterator[str]:
    # One level of nesting is all the protocols use; going no deeper bounds the work a
    # deeply nested body can cause.
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                yield text
            if nested:
                yield from _texts(part.get("content"), nested=False)


def tool_blocks(texts: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(id, text) of each `[cN]` block, in request order; a block's text includes its
    opening line."""
    for text in texts:
        starts = list(_BLOCK_START.finditer(text))
        for index, start in enumerate(starts):
            end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
            yield start.group(1), text[start.start() : end]


class _Citations:
    """Resolves needles against one request, reading its blocks only when first needed."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body
        self._blocks: list[tuple[str, str]] | None = None
        self._found: dict[str, str] = {}

    def id_for(self, needle: str) -> str:
        if needle not in self._found:
            if self._blocks is None:
                self._blocks = list(tool_blocks(request_texts(self._body)))
            self._found[needle] = next(
                (block_id for block_id, text in self._blocks if needle in text), FALLBACK_ID
            )
        return self._found[needle]

    def substitute(self, text: str) -> str:
        if CITE_OPEN not in text:
            return text
        return _CITE.sub(lambda match: self.id_for(match.group(1)), text)


def _cites(behaviour: Behaviour) -> bool:
    texts = [behaviour.resolved_text, *(call.arguments for call in behaviour.tool_calls)]
    return any(CITE_OPEN in text for text in texts)


def resolve_citations(behaviour: Behaviour, body: Mapping[str, Any]) -> Behaviour:
    """`behaviour` with every `{{cite:NEEDLE}}` replaced for this request; itself when it
    cites nothing."""
    if not _cites(behaviour):
        return behaviour
    citations = _Citations(body)
    calls = [
        ToolCallSpec(name=call.name, arguments=citations.substitute(call.arguments), id=call.id)
        for call in behaviour.tool_calls
    ]
    if behaviour.chunks is not None:
        # Chunks are substituted one by one; the text is their join again.
        chunks = [citations.substitute(chunk) for chunk in behaviour.chunks]
        return dataclasses.replace(behaviour, text=None, chunks=chunks, tool_calls=calls)
    text = None if behaviour.text is None else citations.substitute(behaviour.text)
    return dataclasses.replace(behaviour, text=text, tool_calls=calls)


@dataclass(frozen=True)
class Conversation:
    """One model's scripted turns. `match_model` on a turn is ignored: the conversation
    already says which model it serves."""

    turns: tuple[Behaviour, ...]

    def __init__(self, turns: Sequence[Behaviour]) -> None:
        if not turns:
            raise ValueError("a conversation needs at least one turn")
        object.__setattr__(self, "turns", tuple(turns))

    def answer(self, body: Mapping[str, Any]) -> Behaviour:
        """The turn for this request, its citations resolved against the request."""
        turn = self.turns[min(assistant_turns(body), len(self.turns) - 1)]
        return resolve_citations(turn, body)
