"""Waits between calls to the same deployment: exponential, jittered, honouring Retry-After."""

from __future__ import annotations

import random

from services.common.gateway_config import RetryConfig


def backoff_delay(
    retry: int, config: RetryConfig, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before the `retry`-th repeat call (1-based) to one deployment.

    The exponential wait is scaled by a random factor in [1 - jitter, 1 + jitter] so
    replicas retrying together spread out. A provider's Retry-After is a floor: the wait
    is never shorter than what the provider asked for.
    """
    base = min(
        config.backoff_max, config.backoff_initial * config.backoff_multiplier ** (retry - 1)
    )
    delay = base * (1 + config.jitter * (2 * rng.random() - 1))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return max(0.0, delay)
