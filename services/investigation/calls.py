"""Tool calls as the investigation sees them: planned, then made, with what they returned.

Every part of the service speaks these two types: the context plan and the analyzers
ask for `PlannedCall`s; the toolbox makes them through the Tool service and records each
as a `ToolCall` (numbered `c1`, `c2`... within the investigation); the analyzers, the
model's prompt and the evidence check read the `ToolCall`s.

`output` is the text the model is shown and that evidence must quote: the result
rendered by `render` (compact JSON, non-ASCII kept), cut at the toolbox's cap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlannedCall:
    """A call someone wants made: a toolset tool and its arguments."""

    # `kubernetes_describe_pod`...
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    # Why (shown in progress events): `the alert's pod`, `previous logs of a crash loop`.
    reason: str = ""

    def key(self) -> str:
        """Identity of the call: the same tool with the same arguments is one call."""
        arguments = plain(self.arguments)
        return self.tool + " " + json.dumps(arguments, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ToolCall:
    """A call made, with its outcome."""

    # `c1`, `c2`... in the order the calls were made.
    id: str
    # `kubernetes`, `prometheus`.
    toolset: str
    tool: str
    arguments: dict[str, Any]
    # The tool's JSON result (None when the call failed).
    result: Any
    # What the model saw: `render(result)` cut at the cap, or the error sentence.
    output: str
    # Whether `output` was cut (by the Tool service or the toolbox).
    truncated: bool
    # True when the call succeeded.
    ok: bool
    # gRPC status code name when it failed (`NOT_FOUND`...), "" when ok.
    error_code: str = ""
    # `context` (gathered before the model) or `model`.
    requested_by: str = "context"
    # The model step that asked for it (0 for context).
    step: int = 0
    duration_s: float = 0.0


def plain(value: Any) -> Any:
    """JSON from a protobuf Value has every number as a float: whole numbers become ints
    again, so `5` is shown as `5`, not `5.0`."""
    if (
        isinstance(value, float)
        and math.isfinite(value)
        and value.is_integer()
        and abs(value) < 2**53
    ):
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def render(result: Any) -> str:
    """The text of a tool result: compact JSON, keys in the tool's order, non-ASCII kept."""
    return json.dumps(plain(result), ensure_ascii=False, separators=(",", ":"))
