"""ListSessions: newest first, by owner, paginated with validated tokens."""

from __future__ import annotations

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.session import keys
from services.session import store as store_module
from services.session.store import NewSession, SessionStore
from tests.unit.session.helpers import create, violations_of


async def list_all(
    stub: session_grpc.SessionServiceStub, page_size: int, owner: str = ""
) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        reply = await stub.ListSessions(
            session_pb2.ListSessionsRequest(page_size=page_size, page_token=token, owner=owner)
        )
        pages.append([s.name for s in reply.sessions])
        token = reply.next_page_token
        if not token:
            return pages


async def test_newest_first_in_pages(stub: session_grpc.SessionServiceStub) -> None:
    names = [(await create(stub, f"s{i}")).name for i in range(7)]
    pages = await list_all(stub, page_size=3)
    assert pages == [names[6:3:-1], names[3:0:-1], names[:1]]
    everything = await stub.ListSessions(session_pb2.ListSessionsRequest())
    assert [s.name for s in everything.sessions] == names[::-1]
    assert everything.next_page_token == ""
    assert all(s.ttl.seconds == 60 and not s.messages for s in everything.sessions)


async def test_sessions_created_during_paging_do_not_shift_pages(
    stub: session_grpc.SessionServiceStub,
) -> None:
    names = [(await create(stub, f"s{i}")).name for i in range(4)]
    first = await stub.ListSessions(session_pb2.ListSessionsRequest(page_size=2))
    await create(stub, "newer")
    await stub.DeleteSession(session_pb2.DeleteSessionRequest(name=names[3]))
    rest = await stub.ListSessions(
        session_pb2.ListSessionsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [s.name for s in first.sessions] == [names[3], names[2]]
    assert [s.name for s in rest.sessions] == [names[1], names[0]]


async def test_bad_page_tokens_and_sizes(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, "a")
    await create(stub, "b")
    first = await stub.ListSessions(session_pb2.ListSessionsRequest(page_size=1))
    messages = await stub.ListMessages(session_pb2.ListMessagesRequest(parent=session.name))
    assert messages.next_page_token == ""
    tampered = first.next_page_token[:-2] + ("AA" if first.next_page_token[-2:] != "AA" else "BB")
    for token in ("garbage", tampered, first.next_page_token + "x"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListSessions(session_pb2.ListSessionsRequest(page_token=token))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, token
        assert violations_of(caught.value) == ["page_token"]
    # A token is only valid for the listing that issued it (here: another owner).
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.ListSessions(
            session_pb2.ListSessionsRequest(owner="x", page_token=first.next_page_token)
        )
    assert violations_of(foreign.value) == ["page_token"]
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await stub.ListSessions(session_pb2.ListSessionsRequest(page_size=-1, page_token="zz"))
    assert violations_of(both.value) == ["page_size", "page_token"]


async def test_owner_filter(store: SessionStore, stub: session_grpc.SessionServiceStub) -> None:
    for session_id, owner in [("a1", "alice"), ("b1", "bob"), ("a2", "alice"), ("n1", "")]:
        await store.create(NewSession(session_id, owner, 60_000, "", struct_pb2.Struct(), {}))
    alice = await stub.ListSessions(session_pb2.ListSessionsRequest(owner="alice"))
    assert [s.name for s in alice.sessions] == ["sessions/a2", "sessions/a1"]
    assert {s.owner for s in alice.sessions} == {"alice"}
    nobody = await stub.ListSessions(session_pb2.ListSessionsRequest(owner="carol"))
    assert list(nobody.sessions) == []
    everyone = [name for page in await list_all(stub, page_size=2) for name in page]
    assert everyone == ["sessions/n1", "sessions/a2", "sessions/b1", "sessions/a1"]


async def test_members_of_vanished_sessions_are_skipped_and_removed(
    stub: session_grpc.SessionServiceStub, redis_client: aioredis.Redis
) -> None:
    names = [(await create(stub, f"s{i}")).name for i in range(5)]
    # As if s1..s3 had expired and no sweep had run yet.
    await redis_client.delete(*(keys.meta_key(f"s{i}") for i in (1, 2, 3)))
    reply = await stub.ListSessions(session_pb2.ListSessionsRequest(page_size=2))
    assert [s.name for s in reply.sessions] == [names[4], names[0]]
    assert reply.next_page_token == ""
    assert await redis_client.zrange(keys.ALL_INDEX, 0, -1) == [b"s0", b"s4"]


async def test_deleted_sessions_leave_every_index(
    store: SessionStore, stub: session_grpc.SessionServiceStub, redis_client: aioredis.Redis
) -> None:
    await store.create(NewSession("d1", "dora", 60_000, "", struct_pb2.Struct(), {}))
    await stub.DeleteSession(session_pb2.DeleteSessionRequest(name="sessions/d1"))
    assert await redis_client.zcard(keys.ALL_INDEX) == 0
    assert await redis_client.zcard(keys.owner_index("dora")) == 0
    assert await redis_client.zcard(keys.EXPIRY_INDEX) == 0


async def test_a_page_cut_short_by_the_scan_budget_continues(
    stub: session_grpc.SessionServiceStub,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "LIST_SCAN_SLACK", 2)
    names = [(await create(stub, f"s{i}")).name for i in range(6)]
    await redis_client.delete(*(keys.meta_key(f"s{i}") for i in (2, 3, 4, 5)))
    # page_size 1: two live sessions wanted, at most four members examined per call.
    first = await stub.ListSessions(session_pb2.ListSessionsRequest(page_size=1))
    assert list(first.sessions) == [] and first.next_page_token
    second = await stub.ListSessions(
        session_pb2.ListSessionsRequest(page_size=1, page_token=first.next_page_token)
    )
    assert [s.name for s in second.sessions] == [names[1]]
    third = await stub.ListSessions(
        session_pb2.ListSessionsRequest(page_size=1, page_token=second.next_page_token)
    )
    assert [s.name for s in third.sessions] == [names[0]] and third.next_page_token == ""
    # The examined members of vanished sessions are gone from the index.
    assert await list_all(stub, page_size=1) == [[names[1]], [names[0]]]
