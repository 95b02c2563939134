"""The shared mapping from a provider's failure to the gateway's error tree."""

from __future__ import annotations

import email.utils
import time

import pytest

from llmgw.common.v1 import error_reason_pb2
from services.common.http_replies import MAX_QUOTED, quote, retry_after_seconds
from services.provider.adapters.upstream_errors import (
    UpstreamFailure,
    status_for_error_type,
    to_gateway_error,
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_seconds({"retry-after": later})
    assert seconds is not None and 28 <= seconds <= 30


def test_quote_is_one_trimmed_redacted_line() -> None:
    quoted = quote("bad key sk-abcdefghijklmnop\n\n" + "x" * 1000)
    assert "\n" not in quoted and "sk-abcdefghijklmnop" not in quoted
    assert len(quoted) <= MAX_QUOTED + len("[REDACTED]")
    assert quote("   ") == "no details given"


def test_in_stream_error_types_imply_statuses() -> None:
    assert status_for_error_type("overloaded_error") == 529
    assert status_for_error_type("rate_limit_error") == 429
    assert status_for_error_type("something_new") == 500


def test_in_stream_error_metadata() -> None:
    failure = UpstreamFailure(429, "slow down", "rate_limit_error", in_stream=True)
    error = to_gateway_error(failure, provider="p", model="m")
    assert error.reason == error_reason_pb2.ERROR_REASON_UPSTREAM_RATE_LIMITED
    assert error.metadata == {"provider": "p", "upstream_error_type": "rate_limit_error"}
    assert "in its stream" in error.message


def test_billing_failure_is_the_gateways() -> None:
    error = to_gateway_error(UpstreamFailure(402, "credit low"), provider="p", model="m")
    assert error.code.name == "UNAVAILABLE"
    assert error.reason == error_reason_pb2.ERROR_REASON_UPSTREAM_AUTH_FAILED
