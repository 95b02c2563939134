"""What a toolset is: named read-only tools whose `run` returns a JSON value.

A tool's result is what the caller (the model, an analyzer) reads: a JSON object
trimmed to what matters, never a raw API object with managed fields, and never a
Secret's value. Errors are raised as `GatewayError`s (services/common/errors.py) whose
messages say what the caller can change: NOT_FOUND for a missing object,
INVALID_ARGUMENT for an argument the backend refused, FAILED_PRECONDITION for a state
that makes the call meaningless (logs of a container still waiting), UNAVAILABLE or
DEADLINE_EXCEEDED for a backend that did not answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# A tool's run: validated arguments in (the tool service checked them against
# `parameters`), JSON value out.
RunTool = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ToolsetTool:
    """One tool of a toolset."""

    # `<toolset>_<verb>...`, at most 64 characters of [a-z0-9_] (models call it by this).
    name: str
    # What the model reads to decide whether and how to call it.
    description: str
    # JSON Schema (draft 2020-12) of the arguments object, additionalProperties false.
    parameters: dict[str, Any]
    run: RunTool
    # Told to the caller when the result is cut at the cap: how to ask for less
    # (`pass tail_lines or grep`, `narrow label_selector or lower limit`...).
    narrowing_hint: str


class Toolset(Protocol):
    """A configured toolset: its tools, the backend they call, and its resources."""

    @property
    def name(self) -> str:
        """`kubernetes` or `prometheus`."""
        ...

    @property
    def backend(self) -> str:
        """`host:port` of the API it calls: what the circuit breaker and metrics key by."""
        ...

    def tools(self) -> Sequence[ToolsetTool]: ...

    async def close(self) -> None:
        """Closes its HTTP client."""
        ...
