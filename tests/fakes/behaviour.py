"""How a fake answers one request: the scripting contract shared by every protocol.

A `Behaviour` is immutable, so one instance may serve many concurrent requests, and it
round-trips through plain JSON (`to_dict` / `from_dict`) for the HTTP control endpoints.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "Hello from the fake."

# Normalised finish reasons; each protocol maps these to its own wire value and passes
# anything else through verbatim, so tests can also send a provider's raw value.
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"
FINISH_CONTENT_FILTER = "content_filter"
FINISH_STOP_SEQUENCE = "stop_sequence"

_WORDS = re.compile(r"\s*\S+|\s+$")
# JSON punctuation, whole strings, bare literals, whitespace; `.` keeps malformed text whole.
_JSON_TOKENS = re.compile(r'[{}\[\],:]|"(?:[^"\\]|\\.)*"|[^{}\[\],:"\s]+|\s+|.', re.DOTALL)


def split_words(text: str) -> tuple[str, ...]:
    """Word-ish stream pieces, each word with its leading spaces; they join back to `text`."""
    return tuple(_WORDS.findall(text))


def split_json(text: str) -> tuple[str, ...]:
    """Token-sized fragments of JSON text, as providers stream tool arguments."""
    return tuple(_JSON_TOKENS.findall(text))


@dataclass(frozen=True)
class ToolCallSpec:
    """One tool call the fake model makes. `arguments` is JSON text, as OpenAI sends it.

    `id` None lets each protocol mint its own (`call_…`, `toolu_…`).
    """

    name: str
    arguments: str = "{}"
    id: str | None = None
    # Derived once here: answers read them on every request.
    fragments: tuple[str, ...] = field(init=False, repr=False, compare=False)
    arguments_object: Any = field(init=False, repr=False, compare=False)
    """The arguments decoded, for protocols that send an object; malformed text stays the
    raw string so adapters' handling of bad arguments can be tested."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fragments", split_json(self.arguments))
        try:
            decoded = json.loads(self.arguments)
        except ValueError:
            decoded = self.arguments
        object.__setattr__(self, "arguments_object", decoded)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.id is not None:
            out["id"] = self.id
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallSpec:
        if not isinstance(data, Mapping):
            raise ValueError("a tool call is a JSON object")
        unknown = set(data) - {"name", "arguments", "id"}
        if unknown:
            raise ValueError(f"unknown tool call fields: {sorted(unknown)}")
        arguments = data.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return cls(name=str(data["name"]), arguments=arguments, id=data.get("id"))


@dataclass(frozen=True)
class Behaviour:
    """The answer to one request.

    Text: `text` None means `DEFAULT_TEXT`, or no text when `tool_calls` are given.
    `chunks` are the stream pieces (default: `text` split into words); when only
    `chunks` is given the text is their concatenation.

    Errors: `status` other than 200 answers with the protocol's own error body; the
    protocol picks a realistic type, code and message for the status unless
    `error_type` / `error_code` / `error_message` say otherwise. `headers` are added to
    every response (e.g. `retry-after`).

    Stream faults count content pieces (text pieces, then tool-call fragments):
    `break_after` aborts the TCP connection, `truncate_after` ends the body cleanly
    without the terminal events, `error_after` sends the protocol's in-stream error and
    ends. A fault whose count exceeds the pieces fires just before the terminal events.
    On a non-streaming request only `break_after` applies: the connection is aborted
    before any response is sent.

    Pacing: `delay` holds the whole answer, status line and headers included, on
    unary and streaming requests alike, so a stream's first chunk comes no sooner;
    `chunk_delay` is the pause before each content piece after the first. A client
    closing its connection during either is noticed at once (see `FakeStats`).

    `match_model` restricts a scripted behaviour to requests for that model; defaults
    ignore it, as `set_default(..., model=...)` says which model they serve.

    `keepalive_only` (seconds) makes a streaming answer send nothing but keep-alives at
    that interval (SSE comments `: ping`, blank NDJSON lines for Ollama), never an
    event, until the client goes away: an upstream that holds a stream open idle.
    """

    text: str | None = None
    chunks: Sequence[str] | None = None
    tool_calls: Sequence[ToolCallSpec] = ()
    finish: str | None = None
    usage: tuple[int, int] | None = None
    status: int = 200
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    break_after: int | None = None
    truncate_after: int | None = None
    error_after: int | None = None
    match_model: str | None = None
    keepalive_only: float | None = None
    # Derived once here, as answers read them on every request.
    resolved_text: str = field(init=False, repr=False, compare=False)
    pieces: tuple[str, ...] = field(init=False, repr=False, compare=False)
    resolved_finish: str = field(init=False, repr=False, compare=False)
    default_output_tokens: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.chunks, str):
            raise TypeError("chunks is a list of strings, not one string")
        if self.chunks is not None:
            object.__setattr__(self, "chunks", tuple(self.chunks))
            if self.text is not None and "".join(self.chunks) != self.text:
                raise ValueError("chunks must join to text when both are given")
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        if self.usage is not None:
            object.__setattr__(self, "usage", (int(self.usage[0]), int(self.usage[1])))
        for name in ("break_after", "truncate_after", "error_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        self._derive()

    def _derive(self) -> None:
        if self.text is not None:
            text = self.text
        elif self.chunks is not None:
            text = "".join(self.chunks)
        else:
            text = "" if self.tool_calls else DEFAULT_TEXT
        pieces = tuple(self.chunks) if self.chunks is not None else split_words(text)
        if self.finish is not None:
            finish = self.finish
        else:
            finish = FINISH_TOOL_CALLS if self.tool_calls else FINISH_STOP
        fragments = sum(len(call.fragments) for call in self.tool_calls)
        object.__setattr__(self, "resolved_text", text)
        object.__setattr__(self, "pieces", pieces)
        object.__setattr__(self, "resolved_finish", finish)
        object.__setattr__(self, "default_output_tokens", max(len(pieces) + fragments, 1))

    @property
    def is_error(self) -> bool:
        return self.status != 200

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults, as plain JSON values."""
        out: dict[str, Any] = {}
        for spec in dataclasses.fields(self):
            if not spec.init:
                continue
            value = getattr(self, spec.name)
            default = spec.default_factory() if callable(spec.default_factory) else spec.default
            if value == default:
                continue
            if spec.name == "tool_calls":
                value = [call.to_dict() for call in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[spec.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Behaviour:
        if not isinstance(data, Mapping):
            raise ValueError("a behaviour is a JSON object")
        names = {spec.name for spec in dataclasses.fields(cls) if spec.init}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown behaviour fields: {sorted(unknown)}")
        kwargs = dict(data)
        if "tool_calls" in kwargs:
            kwargs["tool_calls"] = [ToolCallSpec.from_dict(call) for call in kwargs["tool_calls"]]
        if kwargs.get("usage") is not None:
            kwargs["usage"] = tuple(kwargs["usage"])
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> Behaviour:
        return cls.from_dict(json.loads(text))


_NOT_PROSE = frozenset({"role", "type", "id", "tool_call_id", "tool_use_id"})


def count_words(value: Any) -> int:
    """Rough token estimate of a request's prompt: words in every string it contains."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        total = 0
        for item in value:
            # Fast path for the common `{"role": ..., "content": "text"}` message.
            content = item.get("content") if isinstance(item, dict) and len(item) == 2 else None
            total += len(content.split()) if isinstance(content, str) else count_words(item)
        return total
    if isinstance(value, Mapping):
        return sum(count_words(item) for key, item in value.items() if key not in _NOT_PROSE)
    return 0
