"""Cost from the price table, usage kept per subject, model and day, and GetUsage."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from services.common.errors import InvalidArgument
from services.common.gateway_config import Deployment
from services.common.redis_store import create_redis
from services.launcher.processes import free_port
from services.router.usage.cost import cost_nanos, to_currency
from services.router.usage.recorder import (
    ANONYMOUS,
    RECORD_FAILURES,
    UsageRecord,
    UsageRecorder,
)
from services.router.usage.report import usage_report

DAY1 = dt.datetime(2026, 3, 30, 12, tzinfo=dt.UTC).timestamp()
DAY2 = DAY1 + 86_400 * 2  # 2026-04-01: another month


def _usage(inp: int, out: int, cached: int = 0) -> common_pb2.Usage:
    return common_pb2.Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached)


def test_cost_is_the_price_table_times_the_usage_exactly() -> None:
    mini = Deployment(
        provider="p", model="m", input_price=0.15, output_price=0.6, cached_input_price=0.075
    )
    assert cost_nanos(mini, _usage(1000, 200)) == 150_000 + 120_000
    # Cached prompt tokens at the cached price, the rest at the input price.
    assert cost_nanos(mini, _usage(1000, 0, cached=400)) == 600 * 150 + 400 * 75
    # A million calls of one token each sum exactly (floats would drift).
    assert sum(cost_nanos(mini, _usage(1, 0)) for _ in range(1000)) * 1000 == 150_000_000
    assert to_currency(cost_nanos(mini, _usage(1_000_000, 1_000_000))) == pytest.approx(0.75)


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    plain = Deployment(provider="p", model="m", input_price=3.0, output_price=15.0)
    assert cost_nanos(plain, _usage(100, 10, cached=50)) == 100 * 3000 + 10 * 15000
    free = Deployment(provider="p", model="m")
    assert cost_nanos(free, _usage(100, 10)) == 0


def _batch_sample(suffix: str) -> float:
    return REGISTRY.get_sample_value(f"llmgw_usage_record_batch_size_{suffix}") or 0.0


@pytest.fixture
def redis(redis_client: aioredis.Redis) -> aioredis.Redis:
    return redis_client


async def test_records_add_up_per_day_model_and_subject(redis: aioredis.Redis) -> None:
    now = [DAY1]
    recorder = UsageRecorder(redis, clock=lambda: now[0])
    subjects = [ANONYMOUS, "groups/team"]
    await asyncio.gather(
        *(recorder.record(subjects, UsageRecord("mini", _usage(10, 2), 1_000)) for _ in range(50))
    )
    await recorder.record(subjects, UsageRecord("big", _usage(0, 0), 0, cache_hit=True))
    now[0] = DAY2
    await recorder.record([ANONYMOUS], UsageRecord("mini", _usage(1, 1), 7))

    report = await usage_report(
        recorder,
        admin_pb2.GetUsageRequest(start_date="2026-03-29", end_date="2026-04-01"),
        DAY2,
    )
    assert [d.date for d in report.daily] == ["2026-03-30", "2026-04-01"]
    assert report.totals.requests == 52
    assert report.totals.input_tokens == 501
    assert report.totals.cache_hits == 1
    assert report.totals.cost == pytest.approx((50 * 1_000 + 7) / 1e9)
    assert {m.model: m.totals.requests for m in report.by_model} == {"big": 1, "mini": 51}
    assert report.spent_today == pytest.approx(7 / 1e9)
    assert report.spent_this_month == pytest.approx(7 / 1e9)  # March is last month

    only_mini = await usage_report(
        recorder,
        admin_pb2.GetUsageRequest(start_date="2026-03-30", end_date="2026-03-30", model="mini"),
        DAY2,
    )
    assert only_mini.totals.requests == 50
    assert [m.model for m in only_mini.by_model] == ["mini"]
    group = await usage_report(
        recorder,
        admin_pb2.GetUsageRequest(subject="groups/team", start_date="2026-03-01"),
        DAY2,
    )
    assert group.totals.requests == 51


async def test_a_batch_of_different_requests_records_and_settles_each_exactly(
    redis: aioredis.Redis,
) -> None:
    """Records that queue behind a call in flight go in one script call: each still
    adds to its own subjects and model and settles its own limit counters."""
    calls_before, sums_before = _batch_sample("count"), _batch_sample("sum")
    recorder = UsageRecorder(redis, clock=lambda: DAY1)
    await redis.set("limits:a", 100, ex=60)
    await redis.set("limits:b", 5, ex=60)
    writes = []
    for n in range(30):
        subjects = [ANONYMOUS] if n % 2 else [ANONYMOUS, "groups/odd-out"]
        adjustments = (["limits:a", "limits:b"], [-2, -1]) if n % 3 == 0 else ([], [])
        model = "mini" if n % 5 else "big"
        writes.append(recorder.record(subjects, UsageRecord(model, _usage(n, 1), n), adjustments))
    assert all(await asyncio.gather(*writes))
    # llmgw_usage_record_batch_size: fewer calls than records, and all 30 in them.
    assert _batch_sample("count") - calls_before < 30
    assert _batch_sample("sum") - sums_before == 30

    report = await usage_report(
        recorder, admin_pb2.GetUsageRequest(start_date="2026-03-30", end_date="2026-03-30"), DAY1
    )
    assert report.totals.requests == 30
    assert report.totals.input_tokens == sum(range(30))
    assert {m.model: m.totals.requests for m in report.by_model} == {"big": 6, "mini": 24}
    group = await usage_report(
        recorder,
        admin_pb2.GetUsageRequest(subject="groups/odd-out", start_date="2026-03-30"),
        DAY1,
    )
    assert group.totals.requests == 15
    # Ten settlements of -2 and -1; the second counter stops at 0, never below.
    assert int(await redis.get("limits:a")) == 80
    assert int(await redis.get("limits:b")) == 0
    assert await redis.ttl("limits:a") > 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subject": "people/bob"}, "subject"),
        ({"start_date": "30/03/2026"}, "start_date"),
        ({"start_date": "2026-04-02", "end_date": "2026-04-01"}, "start_date"),
        ({"start_date": "2024-01-01", "end_date": "2026-01-01"}, "start_date"),
        # Past the range of dates: its default start would be no date at all.
        ({"end_date": "0001-01-01"}, "end_date"),
        ({"start_date": "0001-01-01"}, "start_date"),
        ({"model": "m" * 10_000}, "model"),
    ],
)
async def test_bad_requests_name_the_field(fields: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await usage_report(UsageRecorder(None), admin_pb2.GetUsageRequest(**fields), DAY2)
    assert [v.field for v in caught.value.violations] == [field]


async def test_without_redis_nothing_is_recorded_and_reports_are_empty() -> None:
    recorder = UsageRecorder(None)
    assert not await recorder.record([ANONYMOUS], UsageRecord("m", _usage(1, 1), 1))
    report = await usage_report(recorder, admin_pb2.GetUsageRequest(), DAY2)
    assert report.totals.requests == 0 and not report.daily


async def test_a_redis_failure_is_counted_not_raised() -> None:
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    before = RECORD_FAILURES._value.get()
    try:
        stored = await UsageRecorder(client).record([ANONYMOUS], UsageRecord("m", _usage(1, 1), 1))
    finally:
        await client.aclose()
    assert stored is False
    assert RECORD_FAILURES._value.get() == before + 1
