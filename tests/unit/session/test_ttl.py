"""TTL: sessions expire after their TTL unless used; every use pushes the expiry out."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from prometheus_client import REGISTRY

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.session import keys
from services.session.store import SessionStore
from services.session.sweeper import Sweeper
from tests.unit.session.helpers import append, create

ONE_SECOND = duration_pb2.Duration(seconds=1)


def seconds_from_now(moment: timestamp_pb2.Timestamp) -> float:
    return moment.ToMicroseconds() / 1e6 - time.time()


async def assert_expiry_refreshed(
    redis_client: aioredis.Redis, session_id: str, expire_time: timestamp_pb2.Timestamp
) -> None:
    """Both keys of the session expire together, a full TTL (1 s) from now."""
    assert seconds_from_now(expire_time) == pytest.approx(1.0, abs=0.2)
    meta_ttl = await redis_client.pttl(keys.meta_key(session_id))
    assert 800 < meta_ttl <= 1000
    messages_ttl = await redis_client.pttl(keys.messages_key(session_id))
    if messages_ttl != -2:  # -2: no history right now (after ClearHistory)
        assert abs(meta_ttl - messages_ttl) < 50


async def test_every_use_pushes_the_expiry_out(
    stub: session_grpc.SessionServiceStub, redis_client: aioredis.Redis
) -> None:
    session = await create(stub, "busy", ttl=ONE_SECOND)
    await append(stub, session.name, "hello")

    async def clear() -> timestamp_pb2.Timestamp:
        reply = await stub.ClearHistory(session_pb2.ClearHistoryRequest(session=session.name))
        return reply.session.expire_time

    async def append_one() -> timestamp_pb2.Timestamp:
        return (await append(stub, session.name, "again")).expire_time

    async def get() -> timestamp_pb2.Timestamp:
        reply = await stub.GetSession(session_pb2.GetSessionRequest(name=session.name))
        return reply.session.expire_time

    async def list_messages() -> timestamp_pb2.Timestamp:
        await stub.ListMessages(session_pb2.ListMessagesRequest(parent=session.name))
        expected = timestamp_pb2.Timestamp()
        expected.FromMicroseconds(int((time.time() + 1) * 1e6))
        return expected

    async def update() -> timestamp_pb2.Timestamp:
        reply = await stub.UpdateSession(
            session_pb2.UpdateSessionRequest(
                session=session_pb2.Session(name=session.name, labels={"k": "v"}),
                update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
            )
        )
        return reply.session.expire_time

    # Five uses 0.4 s apart outlive the 1 s TTL twice over; each one alone refreshes it.
    for use in (clear, append_one, get, list_messages, update):
        await asyncio.sleep(0.4)
        await assert_expiry_refreshed(redis_client, "busy", await use())


async def test_expired_sessions_are_gone_everywhere(
    stub: session_grpc.SessionServiceStub, redis_client: aioredis.Redis, store: SessionStore
) -> None:
    short = await create(stub, "short", ttl=ONE_SECOND)
    await append(stub, short.name, "soon gone")
    long = await create(stub, "long")
    await asyncio.sleep(1.2)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetSession(session_pb2.GetSessionRequest(name=short.name))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as append_gone:
        await append(stub, short.name, "late")
    assert append_gone.value.code() is grpc.StatusCode.NOT_FOUND
    assert await redis_client.exists(keys.meta_key("short"), keys.messages_key("short")) == 0
    listed = await stub.ListSessions(session_pb2.ListSessionsRequest())
    assert [s.name for s in listed.sessions] == [long.name]

    # The sweep removes what the listing did not, and counts the live sessions.
    await Sweeper(store).sweep()
    assert await redis_client.zrange(keys.EXPIRY_INDEX, 0, -1) == [b"long:"]
    assert await redis_client.zrange(keys.ALL_INDEX, 0, -1) == [b"long"]
    assert REGISTRY.get_sample_value("llmgw_session_active_sessions") == 1
