"""Hostile input through the real Envoy: one caller's huge, deep or unwritable values get
a precise 4xx and never break the gateway for anybody else.

Runs its own gateway (two routers, two providers) whose OpenAI provider abandons a
stream after one second without an event, so an upstream that only sends keep-alives
is seen to end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.errors import find_detail
from tests.fakes import Behaviour
from tests.support.gateway import Gateway, running_gateway

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]
ORDINARY = 60
# Envoy turns a gRPC status into a body; bounded statuses keep it small.
MAX_ERROR_BODY = 4096


def _short_idle_timeout(document: dict[str, Any]) -> None:
    document["providers"]["openai"]["stream_idle_timeout"] = 1
    document["routing"] = {"breaker": {"consecutive_failures": 1000, "min_requests": 100_000}}


@pytest.fixture(scope="module")
def hostile_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("hostile"),
        replicas={"router": 2, "provider": 2},
        configure=_short_idle_timeout,
    ) as running:
        yield running


@pytest.fixture
def hgw(hostile_gateway: Gateway) -> Gateway:
    hostile_gateway.reset_fakes()
    return hostile_gateway


def _client(gw: Gateway) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(base_url=gw.public_url, timeout=60, limits=limits)


def _fields(response: httpx.Response) -> set[str]:
    """The field violations of an error body (`details` of the status as JSON)."""
    body = response.json()
    error = body.get("error", body)
    found: set[str] = set()
    for detail in error.get("details", []):
        for violation in detail.get("fieldViolations", detail.get("field_violations", [])):
            found.add(violation["field"])
    return found


async def test_huge_model_names_leave_other_callers_unharmed(hgw: Gateway) -> None:
    with hgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(delay=1.5))
    async with _client(hgw) as client:

        async def ordinary() -> httpx.Response:
            return await client.post(
                "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO}
            )

        async def hostile(i: int) -> httpx.Response:
            await asyncio.sleep(0.15 * i)  # ten within 1.5 s, all while the 60 are in flight
            if i % 2:
                # About the longest name a gRPC server always takes (Envoy passes the
                # path on in metadata, soft limit 8 KiB); a NOT_FOUND quotes it twice.
                return await client.get("/v1/models/" + "m" * 7_000)
            return await client.post(
                "/v1/chat/completions", json={"model": "x" * 100_000, "messages": HELLO}
            )

        ordinary_calls = [asyncio.create_task(ordinary()) for _ in range(ORDINARY)]
        await asyncio.sleep(0.2)
        hostile_answers = await asyncio.gather(*(hostile(i) for i in range(10)))
        ordinary_answers = await asyncio.gather(*ordinary_calls)

    assert [r.status_code for r in ordinary_answers] == [200] * ORDINARY, [
        r.text[:200] for r in ordinary_answers if r.status_code != 200
    ]
    for answer in hostile_answers:
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
        assert len(answer.content) < MAX_ERROR_BODY
    posted = [a for i, a in enumerate(hostile_answers) if i % 2 == 0]
    assert {a.status_code for a in posted} == {400}
    assert all(_fields(a) == {"model"} for a in posted)
    looked_up = [a for i, a in enumerate(hostile_answers) if i % 2]
    assert {a.status_code for a in looked_up} == {404}


@pytest.mark.parametrize("size", [9_000, 15_000])
async def test_a_long_model_path_is_a_bounded_404_not_a_metadata_refusal(
    hgw: Gateway, size: int
) -> None:
    # Envoy passes the path on in gRPC metadata; between gRPC's default soft and hard
    # metadata limits (8 and 16 KiB) it was refused at random with RESOURCE_EXHAUSTED (429).
    async with _client(hgw) as client:
        for _ in range(5):
            response = await client.get("/v1/models/" + "m" * size)
            assert response.status_code == 404, response.text[:300]
            assert len(response.content) < MAX_ERROR_BODY


async def test_a_session_context_json_cannot_hold_is_refused(hgw: Gateway) -> None:
    context = struct_pb2.Struct()
    context.update({"a": float("nan")})
    async with grpc.aio.insecure_channel(hgw.grpc_target) as channel:
        stub = session_grpc.SessionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateSession(
                session_pb2.CreateSessionRequest(session=session_pb2.Session(context=context))
            )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = find_detail(status, error_details_pb2.BadRequest)
    assert bad is not None and [v.field for v in bad.field_violations] == ["session.context.a"]
    async with _client(hgw) as client:
        listed = await client.get("/v1/sessions")
    assert listed.status_code == 200, listed.text


async def test_huge_labels_are_refused_and_listing_keeps_working(hgw: Gateway) -> None:
    async with _client(hgw) as client:
        refused = await client.post("/v1/sessions", json={"labels": {"big": "v" * 100_000}})
        assert refused.status_code == 400, refused.text
        assert _fields(refused) == {"session.labels[big]"}
        name = f"ok-{uuid.uuid4().hex[:8]}"
        created = await client.post(
            "/v1/sessions", params={"session_id": name}, json={"labels": {"team": "search"}}
        )
        assert created.status_code == 200, created.text
        listed = await client.get("/v1/sessions")
    assert listed.status_code == 200
    assert f"sessions/{name}" in [s["name"] for s in listed.json()["sessions"]]


async def test_listing_many_large_sessions_pages_through_them(hgw: Gateway) -> None:
    owner = f"big-{uuid.uuid4().hex[:6]}"
    prompt = "p" * 250_000  # just under sessions.max_settings_bytes
    async with _client(hgw) as client:
        for i in range(12):
            created = await client.post(
                "/v1/sessions",
                params={"session_id": f"{owner}-{i}"},
                json={"system_prompt": prompt, "labels": {"owner": owner}},
            )
            assert created.status_code == 200, created.text[:300]
        seen: list[str] = []
        token = ""
        for _ in range(100):
            page = await client.get("/v1/sessions", params={"page_token": token})
            assert page.status_code == 200, page.text[:300]
            body = page.json()
            seen += [s["name"] for s in body["sessions"] if s["labels"].get("owner") == owner]
            token = body["next_page_token"]
            if not token:
                break
    assert sorted(seen) == sorted(f"sessions/{owner}-{i}" for i in range(12))


@pytest.mark.parametrize("levels", [25, 32, 40])
async def test_deeply_nested_tool_parameters_are_a_400(hgw: Gateway, levels: int) -> None:
    parameters: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        parameters = {"a": parameters}
    async with _client(hgw) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "messages": HELLO,
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": parameters}}
                ],
            },
        )
    assert response.status_code == 400, response.text
    [field] = _fields(response)
    assert field.startswith("tools[0].function.parameters")


async def test_usage_dates_out_of_range_are_a_400(hgw: Gateway) -> None:
    async with _client(hgw) as client:
        response = await client.get(
            "/v1/usage",
            params={"subject": "consumers/someone", "end_date": "0001-01-01"},
            headers=hgw.admin_headers,
        )
    assert response.status_code == 400, response.text
    assert _fields(response) == {"end_date"}


async def test_identity_values_past_their_bounds_are_a_400(hgw: Gateway) -> None:
    suffix = uuid.uuid4().hex[:8]
    async with _client(hgw) as client:
        client.headers.update(hgw.admin_headers)
        limited = await client.post(
            "/v1/admin/consumers",
            params={"consumer_id": f"limits-{suffix}"},
            json={"limits": [{"unit": 99, "window": 99, "limit": 5}]},
        )
        assert limited.status_code == 400, limited.text
        assert _fields(limited) == {"consumer.limits[0].unit", "consumer.limits[0].window"}
        consumer = await client.post(
            "/v1/admin/consumers", params={"consumer_id": f"ttl-{suffix}"}, json={}
        )
        assert consumer.status_code == 200, consumer.text
        key = await client.post(
            f"/v1/admin/consumers/ttl-{suffix}/keys", json={"ttl": "300000000000s"}
        )
    assert key.status_code == 400, key.text
    assert _fields(key) == {"ttl"}


async def test_an_upstream_sending_only_keepalives_ends_the_stream(hgw: Gateway) -> None:
    with hgw.fakes["openai"].control() as control:
        control.set_default(Behaviour(keepalive_only=0.1))
    async with _client(hgw) as client:
        started = time.monotonic()
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
        )
        elapsed = time.monotonic() - started
    # Nothing was sent yet: the router may still try another deployment, then fails.
    assert response.status_code == 503, response.text
    assert "no stream event" in response.text
    assert elapsed < 20
