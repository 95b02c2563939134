"""A job store on the real Redis fixture, with a clock the test moves."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.jobs import JobStore

RETENTION_S = 3600.0
DEDUP_WINDOW_S = 600.0
# Small, so takeover tests wait a fraction of a second of real (Redis) time.
# Long enough that a loaded 2-core CI machine never lets a live claim look idle.
CLAIM_IDLE_S = 1.0


class Clock:
    """Seconds since the epoch; starts at a fixed instant and moves only when told."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client: aioredis.Redis, clock: Clock) -> JobStore:
    return JobStore(
        redis_client,
        retention_s=RETENTION_S,
        dedup_window_s=DEDUP_WINDOW_S,
        claim_idle_s=CLAIM_IDLE_S,
        clock=clock,
    )


def alert_investigation(
    alert_name: str = "KubePodCrashLooping", fingerprint: str = ""
) -> inv_pb2.Investigation:
    return inv_pb2.Investigation(
        alert=inv_pb2.Alert(alert_name=alert_name, namespace="shop", fingerprint=fingerprint),
        model="none",
    )
