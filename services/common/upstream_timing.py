"""How long the upstream model took, as the provider service tells the router.

The provider measures each completion at its adapter (from sending the request upstream
to the last byte, and to the first content event of a stream) and returns both in the
trailing metadata of a successful call. The router subtracts them from its own time to
get `llmgw_gateway_overhead_seconds`: the time a request spent in the gateway itself.

Trust: these are trailers of the *response* to a call the router made to the provider
through Envoy's internal listener; the router never reads them from a request, and never
passes them on to its own caller, so nothing a public client sends can set or see them.
A value that is not a plain finite number of seconds within `MAX_SECONDS` is ignored (the
router then counts the whole call as upstream time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Seconds from sending the completion upstream to its last byte.
DURATION_TRAILER = "x-llmgw-upstream-duration"
# Seconds from sending a streamed completion upstream to its first content event.
FIRST_TOKEN_TRAILER = "x-llmgw-upstream-ttft"
# Longer than any call may run (the request deadline ceiling is at most a day).
MAX_SECONDS = 86_400.0


def trailers(duration: float, first_token: float | None = None) -> tuple[tuple[str, str], ...]:
    """The trailers the provider sends with a successful call."""
    pairs = [(DURATION_TRAILER, f"{duration:.6f}")]
    if first_token is not None:
        pairs.append((FIRST_TOKEN_TRAILER, f"{first_token:.6f}"))
    return tuple(pairs)


@dataclass
class UpstreamTiming:
    """What the provider reported about one call; None where it reported nothing usable."""

    duration: float | None = None
    first_token: float | None = None

    def read(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        """Takes the timing trailers from a finished call's trailing metadata."""
        for key, value in metadata or ():
            if key == DURATION_TRAILER:
                self.duration = _seconds(value)
            elif key == FIRST_TOKEN_TRAILER:
                self.first_token = _seconds(value)


def _seconds(value: str | bytes) -> float | None:
    if not isinstance(value, str) or len(value) > 32:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS else None
