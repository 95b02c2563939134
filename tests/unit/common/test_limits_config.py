"""The `rate_limits:` section: validation and the limits it yields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.limits_config import RateLimitConfig, RateLimitsConfig
from services.common.rate_limits import Limit


def test_every_set_field_is_one_limit() -> None:
    config = RateLimitConfig(requests_per_minute=100, tokens_per_hour=50_000, tokens_per_day=10**6)
    assert config.limits("consumer", "consumers/alice") == [
        Limit("consumer", "consumers/alice", "requests", "minute", 100),
        Limit("consumer", "consumers/alice", "tokens", "hour", 50_000),
        Limit("consumer", "consumers/alice", "tokens", "day", 10**6),
    ]
    assert RateLimitConfig().limits("group", "groups/eng") == []


def test_a_consumer_gets_its_own_and_its_groups_limits() -> None:
    config = RateLimitsConfig.model_validate(
        {
            "consumers": {"alice": {"requests_per_minute": 10}},
            "groups": {"eng": {"tokens_per_day": 1000}},
        }
    )
    assert config.fail_open is False
    assert config.limits_for("alice", "eng") == [
        Limit("consumer", "consumers/alice", "requests", "minute", 10),
        Limit("group", "groups/eng", "tokens", "day", 1000),
    ]
    assert config.limits_for("bob", None) == []
    assert config.limits_for("bob", "eng") == [Limit("group", "groups/eng", "tokens", "day", 1000)]


@pytest.mark.parametrize(
    "document",
    [
        {"consumers": {"alice": {"requests_per_minute": 0}}},
        {"consumers": {"alice": {"tokens_per_hour": -5}}},
        {"consumers": {"alice": {"requests_per_second": 5}}},
        {"failopen": True},
    ],
)
def test_bad_values_and_unknown_keys_are_errors(document: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimitsConfig.model_validate(document)
