"""Request ids (AIP-155) and update semantics (AIP-134/154) through Envoy: a repeat of a
mutating request gets the first outcome and the work runs once; an update changes only
what it names; a stale etag is refused."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import Behaviour
from tests.support.gateway import Gateway
from tests.support.sse import read_events

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]
ADMIN = {"authorization": f"Bearer {SECURED_ADMIN_KEY}"}


def _client(gw: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.public_url, timeout=30)


def _hits(gw: Gateway) -> int:
    with gw.fakes["openai"].control() as control:
        return len(control.completions())


async def test_a_repeated_chat_with_one_idempotency_key_calls_the_model_once(
    gw: Gateway,
) -> None:
    key = {"idempotency-key": f"chat-{uuid.uuid4()}"}
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    async with _client(gw) as client:
        first = await client.post("/v1/chat/completions", json=body, headers=key)
        again = await client.post("/v1/chat/completions", json=body, headers=key)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["x-llmgw-idempotent-replay"] == "true"
    assert "x-llmgw-idempotent-replay" not in first.headers
    # The routing headers of the first answer come back with the replay.
    assert again.headers["x-llmgw-model"] == first.headers["x-llmgw-model"]
    assert _hits(gw) == 1


async def test_concurrent_repeats_wait_for_the_first_and_share_its_answer(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(delay=0.5))
    key = {"idempotency-key": f"burst-{uuid.uuid4()}"}
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    async with _client(gw) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=body, headers=key) for _ in range(10))
        )
    assert [a.status_code for a in answers] == [200] * 10
    assert len({a.json()["id"] for a in answers}) == 1
    assert _hits(gw) == 1


async def test_a_repeated_stream_is_replayed_chunk_for_chunk(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(chunks=["One ", "two ", "three."]))
    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    key = {"idempotency-key": f"stream-{uuid.uuid4()}"}
    runs = []
    async with _client(gw) as client:
        for _ in range(2):
            async with client.stream(
                "POST", "/v1/chat/completions", json=body, headers=key
            ) as response:
                assert response.status_code == 200
                runs.append(([e.data for e in await read_events(response, 0.0)], response))
    (first, _), (again, replay) = runs
    assert first == again
    assert replay.headers["x-llmgw-idempotent-replay"] == "true"
    assert _hits(gw) == 1


async def test_the_same_key_with_another_body_is_a_400(gw: Gateway) -> None:
    key = {"idempotency-key": f"reuse-{uuid.uuid4()}"}
    async with _client(gw) as client:
        first = await client.post("/v1/chat/completions", json={"messages": HELLO}, headers=key)
        other = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Something else"}]},
            headers=key,
        )
        bad = await client.post(
            "/v1/chat/completions", json={"messages": HELLO}, headers={"idempotency-key": "a b"}
        )
    assert first.status_code == 200
    assert other.status_code == 400
    assert "request_id" in other.json()["error"]["message"]
    assert bad.status_code == 400
    assert _hits(gw) == 1


async def test_a_failed_first_request_runs_again_on_a_repeat(gw: Gateway) -> None:
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(status=400, error_message="bad request upstream"))
    key = {"idempotency-key": f"retry-{uuid.uuid4()}"}
    body = {"model": "gpt-4o-mini", "messages": HELLO, "gateway": {"disable_fallbacks": True}}
    async with _client(gw) as client:
        failed = await client.post("/v1/chat/completions", json=body, headers=key)
        retried = await client.post("/v1/chat/completions", json=body, headers=key)
    assert failed.status_code == 400
    assert retried.status_code == 200
    assert "x-llmgw-idempotent-replay" not in retried.headers
    assert _hits(gw) == 2


async def test_a_repeated_append_adds_the_messages_once(gw: Gateway) -> None:
    async with _client(gw) as client:
        session = (await client.post("/v1/sessions", json={})).json()["session"]
        append = {
            "messages": [{"role": "ROLE_USER", "content": [{"text": "hi"}]}],
            "request_id": f"append-{uuid.uuid4()}",
        }
        path = f"/v1/{session['name']}:appendMessages"
        first = await client.post(path, json=append)
        again = await client.post(path, json=append)
        got = (await client.get(f"/v1/{session['name']}")).json()["session"]
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert int(got["message_count"]) == 1


async def test_a_repeated_create_of_a_consumer_or_key_returns_the_first(sgw: Gateway) -> None:
    consumer_id = f"idem-{uuid.uuid4().hex[:10]}"
    request_id = f"create-{uuid.uuid4()}"
    async with _client(sgw) as client:
        created = [
            await client.post(
                "/v1/admin/consumers",
                params={"consumer_id": consumer_id, "request_id": request_id},
                json={"display_name": "I"},
                headers=ADMIN,
            )
            for _ in range(2)
        ]
        # Without a request id the repeat is the ordinary conflict.
        conflict = await client.post(
            "/v1/admin/consumers", params={"consumer_id": consumer_id}, json={}, headers=ADMIN
        )
        key_id = {**ADMIN, "idempotency-key": f"key-{uuid.uuid4()}"}
        keys = [
            await client.post(f"/v1/admin/consumers/{consumer_id}/keys", json={}, headers=key_id)
            for _ in range(2)
        ]
        listed = await client.get(f"/v1/admin/consumers/{consumer_id}/keys", headers=ADMIN)
    assert [c.status_code for c in created] == [200, 200]
    assert created[1].json() == created[0].json()
    assert conflict.status_code == 409
    assert [k.status_code for k in keys] == [200, 200], keys[1].text
    # The same key, secret included, and only one key was issued.
    assert keys[1].json() == keys[0].json()
    assert len(listed.json()["api_keys"]) == 1


async def test_a_patch_changes_only_what_it_sends_and_a_stale_etag_is_409(
    sgw: Gateway,
) -> None:
    consumer_id = f"patch-{uuid.uuid4().hex[:10]}"
    path = f"/v1/admin/consumers/{consumer_id}"
    async with _client(sgw) as client:
        created = await client.post(
            "/v1/admin/consumers",
            params={"consumer_id": consumer_id},
            json={
                "display_name": "P",
                "disabled": True,
                "ip_allowlist": ["10.0.0.0/8"],
                "limits": [{"unit": "UNIT_REQUESTS", "window": "WINDOW_MINUTE", "limit": "5"}],
                "budget": {"daily_limit": 1.5},
            },
            headers=ADMIN,
        )
        assert created.status_code == 200, created.text
        etag = created.json()["consumer"]["etag"]
        patched = await client.patch(path, json={"display_name": "x"}, headers=ADMIN)
        stale = await client.patch(path, json={"display_name": "y", "etag": etag}, headers=ADMIN)
        current = (await client.get(path, headers=ADMIN)).json()["consumer"]
    assert patched.status_code == 200, patched.text
    consumer = patched.json()["consumer"]
    assert consumer["display_name"] == "x"
    assert consumer["disabled"] is True
    assert consumer["ip_allowlist"] == ["10.0.0.0/8"]
    assert consumer["limits"] == created.json()["consumer"]["limits"]
    assert consumer["budget"]["daily_limit"] == 1.5
    assert stale.status_code == 409
    assert current["display_name"] == "x"
