"""The downstream fake: its contract, scripting, control endpoints and standalone process."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes import (
    FAKES,
    AsyncDownstreamControl,
    DownstreamBehaviour,
    DownstreamControl,
    FakeControl,
    FakeDownstream,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDownstream]:
    async with FakeDownstream() as running:
        yield running


@pytest.fixture
async def http(fake: FakeDownstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5) as client:
        yield client


# --- Contract -------------------------------------------------------------------------


async def test_search_ranks_chunks_by_overlap(http: httpx.AsyncClient) -> None:
    answer = await http.post("/search", json={"query": "circuit breakers and retries"})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0]["chunk_id"] == "routing-1"
    assert set(results[0]) == {"chunk_id", "score", "text", "source"}
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(results))
    one = await http.post("/search", json={"query": "the", "top_k": 1})
    assert len(one.json()["results"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 51},
        {"query": "x", "top_k": "5"},
        {"query": "x", "top_k": True},
        {"query": "x", "extra": 1},
        ["query"],
    ],
)
async def test_search_refuses_bodies_outside_the_contract(
    http: httpx.AsyncClient, body: object
) -> None:
    answer = await http.post("/search", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == 422
    assert answer.json()["error"]["message"]


async def test_a_body_that_is_not_json_is_400(http: httpx.AsyncClient) -> None:
    answer = await http.post("/review", content=b"{not json")
    assert answer.status_code == 400


async def test_chunks(http: httpx.AsyncClient) -> None:
    found = await http.get("/chunks/tools-1")
    assert found.json()["chunk_id"] == "tools-1"
    assert set(found.json()) == {"chunk_id", "text", "source", "metadata"}
    missing = await http.get("/chunks/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "chunk 'nope' not found"


async def test_agents(http: httpx.AsyncClient) -> None:
    code = "def f():\n    return eval(x)  # TODO\n"
    review = (await http.post("/review", json={"code": code, "language": "python"})).json()
    assert {(f["severity"], f["line"]) for f in review["findings"]} == {("high", 2), ("info", 2)}
    assert "python" in review["summary"]
    design = await http.post("/architecture", json={"description": "a shop", "components": ["db"]})
    assert design.json()["recommendations"][0].startswith("Give db")
    docs = await http.post("/documentation", json={"code": code, "format": "rst"})
    assert "``f``" in docs.json()["documentation"]
    wrong = await http.post("/documentation", json={"code": code, "format": "pdf"})
    assert wrong.status_code == 422
    weather = (await http.get("/weather/Oslo")).json()
    assert weather["city"] == "Oslo" and isinstance(weather["temperature_c"], float)


async def test_unknown_paths_and_methods(http: httpx.AsyncClient) -> None:
    assert (await http.get("/nothing")).status_code == 404
    assert (await http.get("/search")).status_code == 405


async def test_api_key(fake: FakeDownstream) -> None:
    async with (
        FakeDownstream(api_key="k") as guarded,
        httpx.AsyncClient(base_url=guarded.url) as client,
    ):
        refused = await client.get("/weather/x")
        accepted = await client.get("/weather/x", headers={"Authorization": "Bearer k"})
    assert (refused.status_code, accepted.status_code) == (401, 200)


# --- Scripting ------------------------------------------------------------------------


async def test_fail_n_times_then_succeed(fake: FakeDownstream, http: httpx.AsyncClient) -> None:
    fake.script(
        DownstreamBehaviour(
            path="/search", status=503, times=2, message="busy", headers={"Retry-After": "1"}
        )
    )
    other = await http.get("/weather/x")
    first = await http.post("/search", json={"query": "x"})
    second = await http.post("/search", json={"query": "x"})
    third = await http.post("/search", json={"query": "x"})
    assert other.status_code == 200
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["retry-after"] == "1"
    assert first.json() == {"error": {"code": 503, "message": "busy"}}
    assert fake.hits_by_path == {"/weather/x": 1, "/search": 3}


async def test_defaults_by_path_and_prefix(fake: FakeDownstream, http: httpx.AsyncClient) -> None:
    fake.set_default(DownstreamBehaviour(status=500), path="/chunks/*")
    fake.set_default(DownstreamBehaviour(status=502))
    assert (await http.get("/chunks/tools-1")).status_code == 500
    assert (await http.get("/weather/x")).status_code == 502
    fake.set_default(None)
    assert (await http.get("/weather/x")).status_code == 200
    assert (await http.get("/chunks/tools-1")).status_code == 500


async def test_bodies_can_be_replaced_padded_or_text(
    fake: FakeDownstream, http: httpx.AsyncClient
) -> None:
    fake.script(
        DownstreamBehaviour(body={"free": "form"}),
        DownstreamBehaviour(pad_to=10_000),
        DownstreamBehaviour(text="<html>oops</html>"),
    )
    assert (await http.get("/weather/x")).json() == {"free": "form"}
    padded = await http.get("/weather/x")
    assert len(padded.content) >= 10_000 and padded.json()["city"] == "x"
    text = await http.get("/weather/x")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == "<html>oops</html>"


async def test_broken_connection(fake: FakeDownstream, http: httpx.AsyncClient) -> None:
    fake.script(DownstreamBehaviour(break_connection=True))
    with pytest.raises(httpx.TransportError):
        await http.post("/search", json={"query": "x"})
    assert (await http.post("/search", json={"query": "x"})).status_code == 200


async def test_a_client_leaving_a_delayed_answer_is_counted(fake: FakeDownstream) -> None:
    fake.script(DownstreamBehaviour(delay=5))
    async with httpx.AsyncClient(base_url=fake.url, timeout=0.05) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/weather/x")
    for _ in range(250):
        if fake.stats().cancelled:
            break
        await asyncio.sleep(0.01)
    assert fake.stats().cancelled == 1
    assert fake.stats().in_flight == 0


def test_behaviours_round_trip_and_refuse_unknown_fields() -> None:
    behaviour = DownstreamBehaviour(path="/x", status=429, headers={"retry-after": "2"}, times=3)
    assert DownstreamBehaviour.from_dict(behaviour.to_dict()) == behaviour
    assert DownstreamBehaviour().to_dict() == {}
    with pytest.raises(ValueError, match="unknown behaviour fields"):
        DownstreamBehaviour.from_dict({"stauts": 500})
    with pytest.raises(ValueError, match="times"):
        DownstreamBehaviour(times=0)


# --- Control --------------------------------------------------------------------------


async def test_control_endpoints(fake: FakeDownstream, http: httpx.AsyncClient) -> None:
    async with AsyncDownstreamControl(fake.url) as control:
        await control.script(DownstreamBehaviour(status=429))
        await control.set_default(DownstreamBehaviour(delay=0.01), path="/weather/*")
        limited = await http.get("/weather/x")
        slow = await http.get("/weather/y?units=metric")
        assert (limited.status_code, slow.status_code) == (429, 200)
        stats = await control.stats()
        assert (stats.hits, stats.hits_by_path) == (2, {"/weather/x": 1, "/weather/y": 1})
        recorded = await control.requests()
        assert [r.path for r in recorded] == ["/weather/x", "/weather/y?units=metric"]
        await control.set_default(None, path="/weather/*")
        await control.reset()
        assert (await control.stats()).hits == 0
    bad = await http.post("/_fake/script", json=[{"nope": 1}])
    assert bad.status_code == 400
    assert (await http.post("/_fake/default", json={"path": 3})).status_code == 400


# --- As a process ---------------------------------------------------------------------


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[str]:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "downstream", "--port-file", str(port_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert process.poll() is None, "the fake exited"
            assert time.monotonic() < deadline, "the fake did not write its port file"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_runs_as_a_process_and_is_scripted_over_http(standalone: str) -> None:
    assert FAKES["downstream"] is FakeDownstream
    with DownstreamControl(standalone) as control, httpx.Client(base_url=standalone) as client:
        control.script(DownstreamBehaviour(path="/chunks/*", status=503))
        assert client.get("/chunks/tools-1").status_code == 503
        assert client.get("/chunks/tools-1").status_code == 200
        assert control.stats().hits_by_path == {"/chunks/tools-1": 2}
    # The harness resets every fake with the provider fakes' client.
    with FakeControl(standalone) as generic:
        assert generic.stats().hits == 2
        generic.reset()
        assert generic.stats().hits == 0
