"""`x-ratelimit-*` headers and metadata."""

from __future__ import annotations

import pytest

from services.common.rate_limits import QuotaStatus, Unit
from services.router.limits.headers import format_reset, quota_headers, quota_metadata


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.2, "1s"),
        (12, "12s"),
        (59.5, "1m0s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (3725, "1h2m5s"),
        (86400, "24h0m0s"),
    ],
)
def test_reset_is_a_go_style_duration_rounded_up(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_headers_per_unit_requests_first() -> None:
    quota: dict[Unit, QuotaStatus] = {
        "tokens": QuotaStatus(1000, 250, 30.5),
        "requests": QuotaStatus(100, 99, 12),
    }
    assert list(quota_headers(quota).items()) == [
        ("x-ratelimit-limit-requests", "100"),
        ("x-ratelimit-remaining-requests", "99"),
        ("x-ratelimit-reset-requests", "12s"),
        ("x-ratelimit-limit-tokens", "1000"),
        ("x-ratelimit-remaining-tokens", "250"),
        ("x-ratelimit-reset-tokens", "31s"),
    ]
    assert quota_metadata(quota) == tuple(quota_headers(quota).items())


def test_a_unit_without_limits_has_no_headers() -> None:
    assert quota_headers({"requests": QuotaStatus(5, 0, 90)}) == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30s",
    }
    assert quota_headers({}) == {}
