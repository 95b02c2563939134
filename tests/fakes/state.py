"""A fake's mutable state: the script queue, the conversations, the defaults, recorded
requests, counters.

Everything here runs on the fake's event loop thread; no locking is needed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.behaviour import Behaviour
from tests.fakes.conversation import Conversation

_BUILTIN_DEFAULT = Behaviour()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "json": self.json,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedRequest:
        return cls(
            method=data["method"], path=data["path"], headers=data["headers"], json=data["json"]
        )


@dataclass(frozen=True)
class FakeStats:
    """`hits`: completion and embedding requests received; `in_flight`: being answered
    now; `cancelled`: requests whose client went away before the answer ended.

    `hits_by_model`: those requests per requested model, counting every request
    whose body is a JSON object with a string `model` (so its values may sum to less
    than `hits`). `last_cancelled_at`: wall-clock time (`time.time()`) at which the fake
    noticed the latest cancellation, None when nothing was cancelled since the last reset.
    """

    hits: int
    in_flight: int
    cancelled: int
    hits_by_model: dict[str, int] = field(default_factory=dict)
    last_cancelled_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "in_flight": self.in_flight,
            "cancelled": self.cancelled,
            "hits_by_model": dict(self.hits_by_model),
            "last_cancelled_at": self.last_cancelled_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FakeStats:
        return cls(
            hits=data["hits"],
            in_flight=data["in_flight"],
            cancelled=data["cancelled"],
            hits_by_model=dict(data["hits_by_model"]),
            last_cancelled_at=data["last_cancelled_at"],
        )


class Rotation:
    """Default behaviours handed out in turn: the first, the second, ..., then the first
    again. Only requests the rotation answers advance it."""

    def __init__(self, behaviours: Sequence[Behaviour]) -> None:
        if not behaviours:
            raise ValueError("a rotation needs at least one behaviour")
        self.behaviours = tuple(behaviours)
        self._next = 0

    def take(self) -> Behaviour:
        behaviour = self.behaviours[self._next]
        self._next = (self._next + 1) % len(self.behaviours)
        return behaviour


class FakeState:
    def __init__(self, *, record: bool = True) -> None:
        self.record_enabled = record
        self.queue: list[Behaviour] = []
        self.default = Rotation((_BUILTIN_DEFAULT,))
        self.model_defaults: dict[str, Rotation] = {}
        self.conversations: dict[str, Conversation] = {}
        self.requests: list[RecordedRequest] = []
        self.hits = 0
        self.hits_by_model: dict[str, int] = {}
        self.in_flight = 0
        self.cancelled = 0
        self.last_cancelled_at: float | None = None

    def script(self, behaviours: list[Behaviour]) -> None:
        self.queue.extend(behaviours)

    def set_default(self, behaviours: Sequence[Behaviour], model: str | None = None) -> None:
        """Replaces the rotation for `model` (None: the general one), starting it afresh.
        No behaviours drops the model's own default, or restores the built-in one."""
        if model is None:
            self.default = Rotation(behaviours or (_BUILTIN_DEFAULT,))
        elif behaviours:
            self.model_defaults[model] = Rotation(behaviours)
        else:
            self.model_defaults.pop(model, None)

    def set_conversation(self, model: str, turns: Sequence[Behaviour]) -> None:
        """Replaces `model`'s conversation; no turns drops it."""
        if turns:
            self.conversations[model] = Conversation(turns)
        else:
            self.conversations.pop(model, None)

    def take(self, model: str | None, body: Mapping[str, Any] | None = None) -> Behaviour:
        """The first queued behaviour that matches `model` (consumed), else the model's
        conversation turn for `body` (None: an empty conversation), else the next of the
        model's default rotation, else the next of the general one."""
        queue = self.queue
        if queue:
            for index, behaviour in enumerate(queue):
                if behaviour.match_model is None or behaviour.match_model == model:
                    del queue[index]
                    return behaviour
        if model is None:
            return self.default.take()
        conversation = self.conversations.get(model)
        if conversation is not None:
            return conversation.answer(body if body is not None else {})
        return (self.model_defaults.get(model) or self.default).take()

    def count_model(self, model: str) -> None:
        self.hits_by_model[model] = self.hits_by_model.get(model, 0) + 1

    def note_cancelled(self) -> None:
        """Called the moment the fake notices a client went away mid-answer."""
        self.cancelled += 1
        self.last_cancelled_at = time.time()

    def record(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> None:
        if self.record_enabled:
            lowered = {name.lower(): value for name, value in headers.items()}
            self.requests.append(RecordedRequest(method, path, lowered, body))

    def reset(self) -> None:
        """Clears the script, every conversation and default and the recordings; counters
        start again too (except `in_flight`, which counts answers still running)."""
        self.queue.clear()
        self.conversations.clear()
        self.default = Rotation((_BUILTIN_DEFAULT,))
        self.model_defaults.clear()
        self.requests.clear()
        self.hits = 0
        self.hits_by_model.clear()
        self.cancelled = 0
        self.last_cancelled_at = None

    def stats(self) -> FakeStats:
        return FakeStats(
            hits=self.hits,
            in_flight=self.in_flight,
            cancelled=self.cancelled,
            hits_by_model=dict(self.hits_by_model),
            last_cancelled_at=self.last_cancelled_at,
        )
