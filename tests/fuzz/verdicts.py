"""What every answer to a caller's input must be, whatever the input: never a server
fault for the caller's mistake, never a leak of the gateway's internals, never a hang."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

# 5xx answers that are the world's state, not the caller's mistake nor the gateway's
# fault: an upstream or downstream that is down, slow or overloaded (the fuzzed tools may
# point at hosts that do not answer).
OUTAGE_REASONS = frozenset(
    {
        "UPSTREAM_OVERLOADED",
        "UPSTREAM_UNAVAILABLE",
        "UPSTREAM_CONNECTION_FAILED",
        "UPSTREAM_TIMEOUT",
        "CIRCUIT_OPEN",
        "TOOL_TIMEOUT",
        "TOOL_FAILED",
    }
)
# Statuses never acceptable as an answer to what a caller sent.
SERVER_FAULTS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
# Services whose RPCs may answer UNIMPLEMENTED (none: every public RPC is built).
UNBUILT_SERVICES: frozenset[str] = frozenset()

# Internals that must never reach a caller: tracebacks and this machine's paths.
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"/|site-packages|/work/|/root/|/home/|"
    r"\.py\", line \d+"
)


@dataclass
class Tally:
    """Inputs sent and answers seen, per surface (printed at the end of the tier)."""

    inputs: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)

    def count(self, surface: str, answer: str) -> None:
        self.inputs[surface] += 1
        self.answers[f"{surface} {answer}"] += 1


TALLY = Tally()


def reason_of(status: status_pb2.Status | None) -> str:
    if status is None:
        return ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def check_grpc(
    service: str,
    code: grpc.StatusCode,
    message: str,
    status: status_pb2.Status | None,
    *,
    elapsed: float,
    deadline: float,
) -> None:
    assert elapsed < deadline + 2.0, f"answered after {elapsed:.1f} s (deadline {deadline} s)"
    assert code is not grpc.StatusCode.DEADLINE_EXCEEDED or reason_of(status) in OUTAGE_REASONS, (
        f"hung until its deadline: {message[:200]}"
    )
    assert code not in SERVER_FAULTS, f"{code.name}: {message[:300]}"
    if code is grpc.StatusCode.UNIMPLEMENTED:
        assert service in UNBUILT_SERVICES, f"UNIMPLEMENTED: {message[:200]}"
    if code is grpc.StatusCode.UNAVAILABLE:
        assert reason_of(status) in OUTAGE_REASONS, f"UNAVAILABLE: {message[:300]}"
    assert not LEAKS.search(message), f"internals in the message: {message[:300]}"
    if status is not None:
        assert not LEAKS.search(str(status)), "internals in the status details"


def check_rest(
    service: str, status: int, body: bytes, method: str, *, elapsed: float, deadline: float
) -> None:
    text = body.decode("utf-8", "replace")
    assert elapsed < deadline + 2.0, f"answered after {elapsed:.1f} s"
    if method == "HEAD":
        assert body == b"", "a HEAD answer carries a body"
    if status >= 500:
        allowed = (status == 501 and service in UNBUILT_SERVICES) or (
            status in (503, 504) and any(reason in text for reason in OUTAGE_REASONS)
        )
        assert allowed, f"HTTP {status}: {text[:300]}"
    assert not LEAKS.search(text), f"internals in the body: {text[:300]}"
