"""The refusal's status: RESOURCE_EXHAUSTED, ErrorInfo, QuotaFailure, RetryInfo."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.errors import find_detail
from services.common.rate_limits import Limit, QuotaStatus, Refusal
from services.router.limits.errors import RateLimited, limits_unavailable

MINUTE = Limit("consumer", "consumers/alice", "requests", "minute", 100)
HOUR = Limit("group", "groups/eng", "tokens", "hour", 5000)


def test_one_violation_per_refusing_limit_and_retry_when_all_have_reset() -> None:
    error = RateLimited(
        [Refusal(MINUTE, 100, 12.0), Refusal(HOUR, 4990, 1800.0)],
        {"requests": QuotaStatus(100, 0, 12.0)},
    )
    status = error.to_status()
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "consumers/alice: 100 requests per minute" in status.message
    assert "retry in 30m0s" in status.message
    info = find_detail(status, error_details_pb2.ErrorInfo)
    assert info is not None and info.reason == "RATE_LIMITED"
    quota = find_detail(status, error_details_pb2.QuotaFailure)
    assert quota is not None
    assert [(v.subject, v.description) for v in quota.violations] == [
        ("consumers/alice", "100 requests per minute"),
        ("groups/eng", "5000 tokens per hour"),
    ]
    retry = find_detail(status, error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.seconds == 1800
    assert error.quota == {"requests": QuotaStatus(100, 0, 12.0)}


def test_a_refusal_needs_a_refusing_limit() -> None:
    with pytest.raises(ValueError):
        RateLimited([], {})


def test_unavailable_names_the_dependency() -> None:
    status = limits_unavailable().to_status()
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    info = find_detail(status, error_details_pb2.ErrorInfo)
    assert info is not None and info.reason == "DEPENDENCY_UNAVAILABLE"
