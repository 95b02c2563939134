"""A stand-in for grpc.aio's ServicerContext, for handlers called directly in unit tests:
the parts handlers read (metadata, deadline) and write (metadata), recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Metadata = tuple[tuple[str, str], ...]


class FakeContext:
    def __init__(self, metadata: Metadata = (), remaining: float | None = None) -> None:
        self._metadata = metadata
        self._remaining = remaining
        self.initial: Metadata = ()
        self.trailing: Metadata = ()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return self._remaining

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.initial = tuple(metadata)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.trailing = tuple(metadata)


def no_context() -> Any:
    """A context with no metadata and no deadline, typed to pass as any context."""
    return FakeContext()
