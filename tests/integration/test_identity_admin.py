"""Consumers, groups and API keys through Envoy: the REST mappings round trip, errors
keep their HTTP codes and field names, and a key's secret shows only when issued.

The shared gateway's Redis lives for the whole session: every test names its own
resources with a fresh suffix.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def client(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    # Authentication is off on this gateway; the admin RPCs still need the admin key.
    async with httpx.AsyncClient(
        base_url=gw.public_url, timeout=10, headers=gw.admin_headers
    ) as opened:
        yield opened


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_group_consumer_and_keys_round_trip_over_rest(
    client: httpx.AsyncClient, suffix: str
) -> None:
    group_id, consumer_id = f"team-{suffix}", f"alice-{suffix}"
    consumer_path = f"/v1/admin/consumers/{consumer_id}"

    group = await client.post(
        "/v1/admin/groups", params={"group_id": group_id}, json={"allowed_models": ["gpt-*"]}
    )
    assert group.status_code == 200, group.text
    assert group.json()["group"]["name"] == f"groups/{group_id}"

    created = await client.post(
        "/v1/admin/consumers",
        params={"consumer_id": consumer_id},
        json={"display_name": "Alice", "groups": [f"groups/{group_id}"]},
    )
    assert created.status_code == 200, created.text
    assert created.json()["consumer"]["groups"] == [f"groups/{group_id}"]

    updated = await client.patch(
        consumer_path, params={"update_mask": "display_name"}, json={"display_name": "Alice A."}
    )
    assert updated.status_code == 200, updated.text
    fetched = await client.get(consumer_path)
    assert fetched.json()["consumer"]["display_name"] == "Alice A."
    assert fetched.json()["consumer"]["groups"] == [f"groups/{group_id}"]
    listed = await client.get("/v1/admin/consumers", params={"page_size": 1000})
    assert f"consumers/{consumer_id}" in [c["name"] for c in listed.json()["consumers"]]

    issued = await client.post(f"{consumer_path}/keys", json={"ttl": "86400s"})
    assert issued.status_code == 200, issued.text
    key, secret = issued.json()["api_key"], issued.json()["secret"]
    assert secret.startswith(key["prefix"] + "_")
    assert key["active"] is True

    keys = await client.get(f"{consumer_path}/keys")
    assert keys.status_code == 200, keys.text
    assert [(k["name"], k["prefix"]) for k in keys.json()["api_keys"]] == [
        (key["name"], key["prefix"])
    ]
    assert secret.removeprefix(key["prefix"] + "_") not in keys.text

    rotated = await client.post(f"/v1/admin/{key['name']}:rotate", json={"overlap": "30s"})
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["previous_api_key"]["name"] == key["name"]
    new_key = body["api_key"]
    assert body["secret"].startswith(new_key["prefix"] + "_")
    overlap = _time(body["previous_api_key"]["expire_time"]) - _time(new_key["create_time"])
    assert overlap.total_seconds() == pytest.approx(30, abs=0.01)

    revoked = await client.post(f"/v1/admin/{new_key['name']}:revoke", json={})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["api_key"].get("active", False) is False
    assert "revoke_time" in revoked.json()["api_key"]

    removed = await client.delete(consumer_path)
    assert removed.status_code == 200, removed.text
    assert (await client.get(consumer_path)).status_code == 404
    dropped = await client.delete(f"/v1/admin/groups/{group_id}")
    assert dropped.status_code == 200, dropped.text


async def test_errors_keep_their_http_codes_and_fields(
    client: httpx.AsyncClient, suffix: str
) -> None:
    group_id, consumer_id = f"busy-{suffix}", f"bob-{suffix}"
    await client.post("/v1/admin/groups", params={"group_id": group_id}, json={})
    first = await client.post(
        "/v1/admin/consumers",
        params={"consumer_id": consumer_id},
        json={"groups": [f"groups/{group_id}"]},
    )
    assert first.status_code == 200, first.text

    again = await client.post("/v1/admin/consumers", params={"consumer_id": consumer_id}, json={})
    assert again.status_code == 409, again.text
    missing = await client.get(f"/v1/admin/consumers/ghost-{suffix}")
    assert missing.status_code == 404, missing.text
    missing_key = await client.post(
        f"/v1/admin/consumers/{consumer_id}/keys/nokey{suffix}:revoke", json={}
    )
    assert missing_key.status_code == 404, missing_key.text

    bad_id = await client.post("/v1/admin/consumers", params={"consumer_id": "Not_Valid"}, json={})
    assert bad_id.status_code == 400, bad_id.text
    assert "consumer_id" in bad_id.text
    key = (await client.post(f"/v1/admin/consumers/{consumer_id}/keys", json={})).json()
    negative = await client.post(
        f"/v1/admin/{key['api_key']['name']}:rotate", json={"overlap": "-5s"}
    )
    assert negative.status_code == 400, negative.text
    assert "overlap" in negative.text

    # FAILED_PRECONDITION: the group still has a member.
    busy = await client.delete(f"/v1/admin/groups/{group_id}")
    assert busy.status_code == 400, busy.text
    assert "member" in busy.text


async def test_field_violations_reach_grpc_callers(gw: Gateway) -> None:
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        admin = identity_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin.CreateConsumer(
                identity_service_pb2.CreateConsumerRequest(
                    consumer=identity_pb2.Consumer(ip_allowlist=["nowhere"]), consumer_id="ok-id"
                ),
                metadata=gw.admin_metadata,
                timeout=10,
            )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    packed = next(d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
    bad = error_details_pb2.BadRequest()
    packed.Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["consumer.ip_allowlist[0]"]
