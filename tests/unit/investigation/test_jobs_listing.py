"""ListInvestigations: newest first, paged, filtered, owner-scoped, without tool outputs."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import InvalidArgument
from services.investigation.jobs import JobStore
from tests.unit.investigation.conftest import Clock, alert_investigation


async def _page(
    store: JobStore,
    owner: str | None,
    page_size: int,
    token: str = "",
    *,
    state: int = 0,
    alert_name: str = "",
    fingerprint: str = "",
) -> tuple[list[inv_pb2.Investigation], str]:
    return await store.list(
        owner,
        page_size=page_size,
        page_token=token,
        state=state,
        alert_name=alert_name,
        fingerprint=fingerprint,
    )


async def _all_pages(
    store: JobStore,
    owner: str | None,
    page_size: int,
    *,
    state: int = 0,
    alert_name: str = "",
    fingerprint: str = "",
) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        found, token = await _page(
            store,
            owner,
            page_size,
            token,
            state=state,
            alert_name=alert_name,
            fingerprint=fingerprint,
        )
        pages.append([inv.name.removeprefix("investigations/") for inv in found])
        if not token:
            return pages


async def test_pages_newest_first_including_creates_in_one_millisecond(
    store: JobStore, clock: Clock
) -> None:
    for n in range(7):
        await store.create(alert_investigation(), investigation_id=f"i{n}", owner="o", key_name="")
        if n % 3 == 2:
            clock.advance(1)  # i0..i2 share a millisecond, so do i3..i5

    pages = await _all_pages(store, "o", 2)

    assert pages == [["i6", "i5"], ["i4", "i3"], ["i2", "i1"], ["i0"]]


async def test_owners_see_only_theirs_and_none_sees_all(store: JobStore, clock: Clock) -> None:
    for n, owner in enumerate(["a", "b", "a"]):
        clock.advance(1)
        await store.create(
            alert_investigation(), investigation_id=f"i{n}", owner=owner, key_name=""
        )

    assert await _all_pages(store, "a", 10) == [["i2", "i0"]]
    assert await _all_pages(store, "b", 10) == [["i1"]]
    assert await _all_pages(store, None, 10) == [["i2", "i1", "i0"]]


async def test_filters_by_state_alert_name_and_fingerprint(store: JobStore, clock: Clock) -> None:
    await store.create(
        alert_investigation("Crash", "fp1"), investigation_id="crash", owner="", key_name=""
    )
    clock.advance(1)
    await store.create(
        alert_investigation("Disk", "fp2"), investigation_id="disk", owner="", key_name=""
    )
    clock.advance(1)
    await store.create(
        alert_investigation("Crash", "fp3"), investigation_id="crash2", owner="", key_name=""
    )
    await store.cancel("crash2", None)

    assert await _all_pages(store, None, 10, alert_name="Crash") == [["crash2", "crash"]]
    assert await _all_pages(store, None, 10, fingerprint="fp2") == [["disk"]]
    cancelled = inv_pb2.INVESTIGATION_STATE_CANCELLED
    assert await _all_pages(store, None, 10, state=cancelled) == [["crash2"]]
    queued = inv_pb2.INVESTIGATION_STATE_QUEUED
    assert await _all_pages(store, None, 1, state=queued, alert_name="Crash") == [["crash"]]


async def test_results_come_without_tool_call_outputs(
    store: JobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    result = inv_pb2.InvestigationResult(
        summary="crash loop",
        tool_calls=[inv_pb2.ToolInvocation(id="c1", tool="kubernetes_pod_logs", output="x" * 500)],
    )
    await store.finish(
        job, inv_pb2.INVESTIGATION_STATE_SUCCEEDED, result=result, error=None, usage=None, cost=0.0
    )

    (listed,), _ = await _page(store, None, 10)

    assert listed.result.summary == "crash loop"
    assert listed.result.tool_calls[0].id == "c1"
    assert listed.result.tool_calls[0].output == ""
    assert (await store.get("i", None)).result.tool_calls[0].output == "x" * 500


async def test_members_whose_record_is_gone_are_skipped_and_removed(
    store: JobStore, redis_client: aioredis.Redis, clock: Clock
) -> None:
    for n in range(3):
        clock.advance(1)
        await store.create(alert_investigation(), investigation_id=f"i{n}", owner="o", key_name="")
    await redis_client.delete("inv:{i1}:rec")  # as retention expiry does

    assert await _all_pages(store, "o", 10) == [["i2", "i0"]]
    assert await redis_client.zscore("inv:idx:owner:o", "i1") is None


async def test_a_token_works_only_for_its_listing(store: JobStore, clock: Clock) -> None:
    for n in range(3):
        clock.advance(1)
        await store.create(alert_investigation(), investigation_id=f"i{n}", owner="o", key_name="")
    _, token = await _page(store, "o", 1)
    assert token

    for owner, alert_name, bad in [
        ("other", "", token),
        ("o", "Disk", token),
        ("o", "", token[:-2]),
        ("o", "", "garbage"),
    ]:
        with pytest.raises(InvalidArgument) as refused:
            await _page(store, owner, 1, bad, alert_name=alert_name)
        assert refused.value.violations[0].field == "page_token"
