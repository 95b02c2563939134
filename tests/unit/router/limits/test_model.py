"""Limits: window keys, resets and descriptions."""

from __future__ import annotations

import pytest

from services.common.rate_limits import Limit, subject
from tests.unit.router.limits.conftest import T0


def test_keys_are_per_limit_and_epoch_aligned_window() -> None:
    limit = Limit("consumer", "consumers/alice", "requests", "minute", 100)
    assert limit.key(T0) == f"llmgw:rl:consumer:consumers/alice:requests:minute:{int(T0) // 60}"
    assert limit.key(T0 + 59.9) == limit.key(T0)
    assert limit.key(T0 + 60) != limit.key(T0)
    day = Limit("group", "groups/eng", "tokens", "day", 10)
    assert day.key(T0 + 86399) == day.key(T0) != day.key(T0 + 86400)


def test_reset_after_is_the_time_left_in_the_window() -> None:
    limit = Limit("consumer", "consumers/alice", "requests", "minute", 100)
    assert limit.reset_after(T0) == 60
    assert limit.reset_after(T0 + 48) == 12
    hour = Limit("consumer", "consumers/alice", "tokens", "hour", 100)
    assert hour.reset_after(T0 + 600) == 3000
    assert hour.window_seconds == 3600


def test_description_and_subjects() -> None:
    assert Limit("group", "groups/eng", "tokens", "hour", 5000).describe() == (
        "5000 tokens per hour"
    )
    assert subject("consumer", "alice") == "consumers/alice"
    assert subject("deployment", "openai/gpt-4o") == "deployments/openai/gpt-4o"


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limit("consumer", "consumers/alice", "requests", "minute", 0)
