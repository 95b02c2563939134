"""Waits between repeated calls: exponential, jittered, honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """An exponential backoff: `initial * multiplier ** (n - 1)`, capped at `maximum`,
    scaled by a random factor in [1 - jitter, 1 + jitter] so callers retrying together
    spread out."""

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.2

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before the `retry`-th repeat call (1-based). The upstream's
        Retry-After is a floor: the wait is never shorter than what it asked for."""
        base = min(self.maximum, self.initial * self.multiplier ** (retry - 1))
        delay = base * (1 + self.jitter * (2 * rng.random() - 1))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return max(0.0, delay)
