"""Every status stays small, whatever the caller sent and the error quotes."""

from __future__ import annotations

from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    RemoteError,
    Unavailable,
    find_detail,
)
from services.common.status_bounds import (
    MAX_DETAIL_ENTRIES,
    MAX_DETAIL_STRING_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_STATUS_BYTES,
    clip_utf8,
)

HUGE = "x" * 100_000
# Three bytes in UTF-8, nine once percent-encoded in `grpc-message`.
HUGE_WIDE = "€" * 50_000


def _wire_size(status: status_pb2.Status) -> int:
    """Bytes of the two trailers the status becomes (message percent-encoded at worst)."""
    return 3 * len(status.message.encode()) + (status.ByteSize() * 4 + 2) // 3


def test_clip_keeps_short_text_and_never_breaks_a_character() -> None:
    assert clip_utf8("model", 16) == "model"
    clipped = clip_utf8(HUGE_WIDE, 100)
    assert len(clipped.encode()) <= 100
    assert clipped.endswith("…")
    assert set(clipped[:-1]) == {"€"}


def test_a_not_found_quoting_a_huge_name_is_bounded() -> None:
    error = NotFound(f"model '{HUGE}' not found", resource_type="model", resource_name=HUGE)
    status = error.to_status()
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
    assert status.message.startswith("model 'xxx")
    assert status.ByteSize() <= MAX_STATUS_BYTES
    info = find_detail(status, error_details_pb2.ResourceInfo)
    assert info is not None
    assert len(info.resource_name.encode()) <= MAX_DETAIL_STRING_BYTES
    assert find_detail(status, error_details_pb2.ErrorInfo) is not None
    assert _wire_size(status) < 8 * 1024


def test_wide_characters_cannot_inflate_the_trailers() -> None:
    status = NotFound(HUGE_WIDE, resource_type="model", resource_name=HUGE_WIDE).to_status()
    assert _wire_size(status) < 5 * 1024


def test_violations_are_clipped_and_capped() -> None:
    error = InvalidArgument.from_violations(
        [FieldViolation(f"labels[{HUGE}]", HUGE) for _ in range(500)]
    )
    status = error.to_status()
    assert status.ByteSize() <= MAX_STATUS_BYTES
    bad = find_detail(status, error_details_pb2.BadRequest)
    assert bad is not None
    assert 0 < len(bad.field_violations) <= MAX_DETAIL_ENTRIES
    for violation in bad.field_violations:
        assert len(violation.field.encode()) <= MAX_DETAIL_STRING_BYTES
        assert len(violation.description.encode()) <= MAX_DETAIL_STRING_BYTES


def test_error_info_metadata_is_clipped_and_retry_info_kept() -> None:
    error = Unavailable(
        "down",
        metadata={f"k{i}-{HUGE}": HUGE for i in range(100)},
        retry_after=2.0,
    )
    status = error.to_status()
    assert status.ByteSize() <= MAX_STATUS_BYTES
    retry = find_detail(status, error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.seconds == 2
    info = find_detail(status, error_details_pb2.ErrorInfo)
    if info is not None:
        assert len(info.metadata) <= MAX_DETAIL_ENTRIES


def test_a_relayed_status_is_bounded_too() -> None:
    original = NotFound("short", resource_type="model", resource_name="m").to_status()
    original.message = HUGE
    status = RemoteError(original).to_status()
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
    assert find_detail(status, error_details_pb2.ResourceInfo) is not None
    # What the interceptor sends: the trailers as grpc builds them.
    grpc_status = rpc_status.to_status(status)
    assert len(grpc_status.details.encode()) <= MAX_MESSAGE_BYTES


def test_an_ordinary_status_is_unchanged() -> None:
    status = NotFound("model 'x' not found", resource_type="model", resource_name="x").to_status()
    assert status.message == "model 'x' not found"
    assert RemoteError(status).to_status() == status


def test_a_huge_retry_delay_is_capped() -> None:
    status = Unavailable("later", retry_after=1e300).to_status()
    retry = find_detail(status, error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.seconds <= 366 * 86_400
