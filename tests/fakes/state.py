"""A fake's mutable state: the script queue, the default answer, recorded requests, counters.

Everything here runs on the fake's event loop thread; no locking is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.behaviour import Behaviour

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
    """`hits`: completion requests received; `in_flight`: being answered now;
    `cancelled`: completion requests whose client went away before the answer ended."""

    hits: int
    in_flight: int
    cancelled: int

    def to_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "in_flight": self.in_flight, "cancelled": self.cancelled}


class FakeState:
    def __init__(self, *, record: bool = True) -> None:
        self.record_enabled = record
        self.queue: list[Behaviour] = []
        self.default = _BUILTIN_DEFAULT
        self.requests: list[RecordedRequest] = []
        self.hits = 0
        self.in_flight = 0
        self.cancelled = 0

    def script(self, behaviours: list[Behaviour]) -> None:
        self.queue.extend(behaviours)

    def take(self, model: str | None) -> Behaviour:
        """The first queued behaviour that matches `model` (consumed), else the default."""
        queue = self.queue
        if queue:
            for index, behaviour in enumerate(queue):
                if behaviour.match_model is None or behaviour.match_model == model:
                    del queue[index]
                    return behaviour
        return self.default

    def record(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> None:
        if self.record_enabled:
            lowered = {name.lower(): value for name, value in headers.items()}
            self.requests.append(RecordedRequest(method, path, lowered, body))

    def reset(self) -> None:
        """Clears the script, the default and the recordings; counters start again too."""
        self.queue.clear()
        self.default = _BUILTIN_DEFAULT
        self.requests.clear()
        self.hits = 0
        self.cancelled = 0

    def stats(self) -> FakeStats:
        return FakeStats(hits=self.hits, in_flight=self.in_flight, cancelled=self.cancelled)
