"""The `/_fake/*` control endpoints, on an in-process fake."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fakes import AsyncFakeControl, Behaviour, FakeAnthropic

HEADERS = {"anthropic-version": "2023-06-01"}
BODY = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


async def test_control_endpoints_script_and_inspect_the_fake() -> None:
    async with (
        FakeAnthropic() as fake,
        AsyncFakeControl(fake.url) as control,
        httpx.AsyncClient(base_url=fake.url, headers=HEADERS) as http,
    ):
        await control.script(Behaviour(text="first"), Behaviour(status=529))
        await control.set_default(Behaviour(text="fallback"))
        first = await http.post("/v1/messages", json=BODY)
        overloaded = await http.post("/v1/messages", json=BODY)
        fallback = await http.post("/v1/messages", json=BODY)
        assert first.json()["content"][0]["text"] == "first"
        assert overloaded.status_code == 529
        assert fallback.json()["content"][0]["text"] == "fallback"
        assert fake.hits == 3
        stats = await control.stats()
        assert (stats.hits, stats.hits_by_model, stats.last_cancelled_at) == (3, {"m": 3}, None)
        recorded = await control.requests()
        assert [r.path for r in recorded] == ["/v1/messages"] * 3
        assert recorded[0].json == BODY


async def test_control_refuses_malformed_behaviours() -> None:
    async with FakeAnthropic() as fake, httpx.AsyncClient(base_url=fake.root_url) as http:
        unknown_field = await http.post("/_fake/script", json=[{"txt": "typo"}])
        not_a_list = await http.post("/_fake/script", json={"text": "x"})
        bad_default = await http.post("/_fake/default", content=b"[1]")
    assert unknown_field.status_code == 400
    assert "unknown behaviour fields" in unknown_field.json()["error"]
    assert not_a_list.status_code == 400
    assert bad_default.status_code == 400
    assert fake.hits == 0


async def test_stats_over_http_carry_the_cancellation_time() -> None:
    async with (
        FakeAnthropic() as fake,
        AsyncFakeControl(fake.url) as control,
        httpx.AsyncClient(base_url=fake.url, headers=HEADERS, timeout=0.05) as http,
    ):
        await control.script(Behaviour(delay=5.0))
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/messages", json=BODY)
        for _ in range(250):
            if fake.last_cancelled_at is not None:
                break
            await asyncio.sleep(0.002)
        stats = await control.stats()
        assert stats.cancelled == 1
        assert stats.last_cancelled_at is not None
        assert stats.last_cancelled_at == fake.last_cancelled_at
