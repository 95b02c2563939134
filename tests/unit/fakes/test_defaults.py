"""Default behaviours: cycling, per-model defaults, and per-model hit counts."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.fakes import AsyncFakeControl, Behaviour, FakeControl, FakeOpenAI
from tests.fakes.state import FakeState

MESSAGES: list = [{"role": "user", "content": "hi"}]


def _body(model: str, *, stream: bool = False) -> dict:
    return {"model": model, "messages": MESSAGES, "stream": stream}


async def _answers(http: httpx.AsyncClient, model: str, count: int) -> list[str | int]:
    """Each answer's text, or its status when it failed."""
    out: list[str | int] = []
    for _ in range(count):
        response = await http.post("chat/completions", json=_body(model))
        ok = response.status_code == 200
        out.append(
            response.json()["choices"][0]["message"]["content"] if ok else response.status_code
        )
    return out


def test_rotation_cycles_and_only_advances_on_the_requests_it_answers() -> None:
    state = FakeState()
    fail, ok = Behaviour(status=500), Behaviour(text="ok")
    state.set_default([fail, ok])
    scripted = Behaviour(text="scripted")
    assert state.take("m") is fail
    state.script([scripted])
    assert state.take("m") is scripted
    assert [state.take("m") for _ in range(4)] == [ok, fail, ok, fail]


def test_model_default_wins_for_its_model_only_and_can_be_dropped() -> None:
    state = FakeState()
    general, slow = Behaviour(text="general"), Behaviour(delay=0.5)
    state.set_default([general])
    state.set_default([slow], model="x")
    assert (state.take("x"), state.take("y"), state.take(None)) == (slow, general, general)
    state.set_default([], model="x")
    assert state.take("x") is general
    state.set_default([])
    assert state.take("y") == Behaviour()


def test_scripted_behaviours_still_come_before_a_model_default() -> None:
    state = FakeState()
    state.set_default([Behaviour(text="x default")], model="x")
    scripted = Behaviour(text="scripted", match_model="x")
    state.script([scripted])
    assert state.take("x") is scripted
    assert state.take("x").resolved_text == "x default"


async def test_cycling_default_fails_exactly_every_other_request() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url) as http:
        fake.set_default(Behaviour(status=500), Behaviour(text="ok"))
        assert await _answers(http, "m", 5) == [500, "ok", 500, "ok", 500]


async def test_set_default_restarts_the_rotation() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url) as http:
        rotation = (Behaviour(text="a"), Behaviour(text="b"))
        fake.set_default(*rotation)
        assert await _answers(http, "m", 1) == ["a"]
        fake.set_default(*rotation)
        assert await _answers(http, "m", 2) == ["a", "b"]


async def test_per_model_rotation_and_hit_counts() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url) as http:
        fake.set_default(Behaviour(text="general"))
        fake.set_default(Behaviour(text="x1"), Behaviour(status=503), model="x")
        assert await _answers(http, "x", 3) == ["x1", 503, "x1"]
        assert await _answers(http, "y", 2) == ["general", "general"]
        # Requests without a readable model count in `hits` only.
        assert (await http.post("chat/completions", content=b"not json")).status_code == 400
        assert (await http.post("chat/completions", json={"messages": MESSAGES})).status_code == 400
        assert fake.hits_by_model == {"x": 3, "y": 2}
        assert fake.stats().hits_by_model == {"x": 3, "y": 2}
        assert fake.hits == 7

        fake.reset()
        assert fake.hits_by_model == {}
        assert await _answers(http, "x", 1) == ["Hello from the fake."]


async def test_delay_per_model_holds_streams_before_the_first_chunk() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.url) as http:
        fake.set_default(Behaviour(delay=0.2), model="slow")
        for model, low, high in (("slow", 0.2, 1.0), ("fast", 0.0, 0.15)):
            started = time.monotonic()
            async with http.stream("POST", "chat/completions", json=_body(model, stream=True)):
                first_byte = time.monotonic() - started
            assert low <= first_byte < high, model


async def test_control_default_accepts_both_body_shapes() -> None:
    async with (
        FakeOpenAI() as fake,
        httpx.AsyncClient(base_url=fake.root_url) as control,
        httpx.AsyncClient(base_url=fake.url) as http,
    ):
        old_shape = await control.post("/_fake/default", json={"text": "bare"})
        assert old_shape.status_code == 200
        assert await _answers(http, "m", 1) == ["bare"]
        new_shape = await control.post(
            "/_fake/default",
            json={"behaviours": [{"text": "x1"}, {"text": "x2"}], "model": "x"},
        )
        assert new_shape.status_code == 200
        assert await _answers(http, "x", 3) == ["x1", "x2", "x1"]
        assert await _answers(http, "m", 1) == ["bare"]


@pytest.mark.parametrize(
    "body",
    [
        {"behaviours": {"text": "x"}},
        {"behaviours": [], "model": 3},
        {"behaviours": [], "modle": "x"},
        {"behaviours": [{"txt": "typo"}]},
    ],
)
async def test_control_default_refuses_malformed_bodies(body: dict) -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.root_url) as control:
        response = await control.post("/_fake/default", json=body)
        assert response.status_code == 400
        assert response.json()["error"]


async def test_control_clients_set_model_defaults_and_read_model_hits() -> None:
    async with (
        FakeOpenAI() as fake,
        AsyncFakeControl(fake.url) as control,
        httpx.AsyncClient(base_url=fake.url) as http,
    ):
        await control.set_default(Behaviour(text="a"), Behaviour(text="b"), model="x")
        await control.set_default(Behaviour(text="general"))
        assert await _answers(http, "x", 3) == ["a", "b", "a"]
        assert await _answers(http, "y", 1) == ["general"]
        assert (await control.stats()).hits_by_model == {"x": 3, "y": 1}

        def drive_blocking_client() -> None:
            with FakeControl(fake.url) as blocking:
                blocking.set_default(Behaviour(status=429), model="y")
                assert blocking.stats().hits_by_model == {"x": 3, "y": 1}

        # The blocking client must not run on the loop that serves the fake.
        await asyncio.to_thread(drive_blocking_client)
        assert await _answers(http, "y", 2) == [429, 429]

        await control.reset()
        assert await _answers(http, "x", 1) == ["Hello from the fake."]
        assert (await control.stats()).hits_by_model == {"x": 1}
