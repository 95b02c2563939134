"""The shared exponential backoff."""

from __future__ import annotations

import random

from services.common.backoff import Backoff


def test_doubles_until_the_cap_without_jitter() -> None:
    backoff = Backoff(initial=0.1, maximum=0.5, multiplier=2.0, jitter=0.0)
    rng = random.Random(1)
    assert [round(backoff.delay(n, None, rng), 6) for n in range(1, 6)] == [
        0.1,
        0.2,
        0.4,
        0.5,
        0.5,
    ]


def test_jitter_stays_within_its_band_and_varies() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0.2)
    rng = random.Random(7)
    delays = [backoff.delay(1, None, rng) for _ in range(200)]
    assert all(0.8 <= d <= 1.2 for d in delays)
    assert max(delays) - min(delays) > 0.2


def test_retry_after_is_a_floor_not_a_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=5.0, jitter=0.0)
    rng = random.Random(0)
    assert backoff.delay(1, 1.5, rng) == 1.5
    assert backoff.delay(3, 0.01, rng) == 0.4
