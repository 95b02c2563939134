"""Session ownership: a non-admin consumer uses and lists only its own sessions.

The servicer is called directly with the caller set, as the authentication interceptor
sets it; the store is the real one on a real Redis. A refused call must leave the
session exactly as it was, so these tests compare the stored keys byte for byte.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
import redis.asyncio as aioredis
from google.protobuf import field_mask_pb2
from google.rpc import status_pb2

from llmgw.identity.v1 import identity_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.gateway_config import SessionConfig
from services.common.identity.gate import BOOTSTRAP_ADMIN
from services.common.identity.principal import Principal
from services.session import keys
from services.session.servicer import SessionServicer
from services.session.store import SessionStore
from tests.unit.session.helpers import NO_CONTEXT, user


def consumer(consumer_id: str, *, admin: bool = False) -> Principal:
    group = identity_pb2.Group(name=f"groups/{consumer_id}-g", admin=admin, allowed_tools=["*"])
    return Principal(
        consumer=identity_pb2.Consumer(name=f"consumers/{consumer_id}", groups=[group.name]),
        groups=(group,),
        key_name=f"consumers/{consumer_id}/keys/k1",
    )


ALICE = consumer("alice")
BOB = consumer("bob")
ADMIN = consumer("root", admin=True)


@contextmanager
def calling_as(principal: Principal | None) -> Iterator[None]:
    """`principal` None: authentication off."""
    token = set_caller(Caller(principal=principal))
    try:
        yield
    finally:
        reset_caller(token)


@pytest.fixture
def servicer(store: SessionStore) -> SessionServicer:
    return SessionServicer(store, SessionConfig(default_ttl_seconds=60))


async def create(
    servicer: SessionServicer, principal: Principal | None, session_id: str
) -> session_pb2.Session:
    with calling_as(principal):
        reply = await servicer.CreateSession(
            session_pb2.CreateSessionRequest(
                session_id=session_id, session=session_pb2.Session(system_prompt="original")
            ),
            NO_CONTEXT,
        )
    return reply.session


def per_session_calls(
    servicer: SessionServicer, name: str
) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of every RPC on one session, by RPC name."""
    return {
        "GetSession": lambda: servicer.GetSession(
            session_pb2.GetSessionRequest(name=name, view=session_pb2.SESSION_VIEW_FULL),
            NO_CONTEXT,
        ),
        "UpdateSession": lambda: servicer.UpdateSession(
            session_pb2.UpdateSessionRequest(
                session=session_pb2.Session(name=name, system_prompt="changed"),
                update_mask=field_mask_pb2.FieldMask(paths=["system_prompt"]),
            ),
            NO_CONTEXT,
        ),
        "AppendMessages": lambda: servicer.AppendMessages(
            session_pb2.AppendMessagesRequest(session=name, messages=[user("intruder")]),
            NO_CONTEXT,
        ),
        "ListMessages": lambda: servicer.ListMessages(
            session_pb2.ListMessagesRequest(parent=name), NO_CONTEXT
        ),
        "ClearHistory": lambda: servicer.ClearHistory(
            session_pb2.ClearHistoryRequest(session=name), NO_CONTEXT
        ),
        "DeleteSession": lambda: servicer.DeleteSession(
            session_pb2.DeleteSessionRequest(name=name), NO_CONTEXT
        ),
    }


async def refusals(
    servicer: SessionServicer, principal: Principal | None, name: str
) -> dict[str, status_pb2.Status]:
    """The status every per-session RPC answers `principal`; each must be NOT_FOUND."""
    found: dict[str, status_pb2.Status] = {}
    with calling_as(principal):
        for rpc, call in per_session_calls(servicer, name).items():
            with pytest.raises(NotFound) as refused:
                await call()
            found[rpc] = refused.value.to_status()
    return found


async def stored(redis_client: aioredis.Redis, session_id: str) -> tuple[object, ...]:
    """Everything Redis holds for the session, expiry included."""
    return (
        await redis_client.hgetall(keys.meta_key(session_id)),
        await redis_client.lrange(keys.messages_key(session_id), 0, -1),
        await redis_client.zscore(keys.ALL_INDEX, session_id),
        await redis_client.zscore(keys.owner_index(ALICE.name), session_id),
        await redis_client.zrange(keys.EXPIRY_INDEX, 0, -1, withscores=True),
    )


async def test_the_creator_is_recorded_as_owner(
    servicer: SessionServicer, redis_client: aioredis.Redis
) -> None:
    mine = await create(servicer, ALICE, "mine")
    anonymous = await create(servicer, None, "anonymous")
    assert mine.owner == "consumers/alice"
    assert anonymous.owner == ""
    assert await redis_client.hget(keys.meta_key("mine"), "owner") == b"consumers/alice"
    assert await redis_client.zrange(keys.owner_index(ALICE.name), 0, -1) == [b"mine"]


async def test_another_consumer_cannot_tell_the_session_exists(
    servicer: SessionServicer, redis_client: aioredis.Redis
) -> None:
    session = await create(servicer, ALICE, "a1")
    with calling_as(ALICE):
        await servicer.AppendMessages(
            session_pb2.AppendMessagesRequest(session=session.name, messages=[user("hi")]),
            NO_CONTEXT,
        )
    before = await stored(redis_client, "a1")

    foreign = await refusals(servicer, BOB, session.name)

    # Not even the expiry moved: a refused call does not use the session.
    assert await stored(redis_client, "a1") == before
    with calling_as(ALICE):
        reply = await servicer.GetSession(
            session_pb2.GetSessionRequest(name=session.name, view=session_pb2.SESSION_VIEW_FULL),
            NO_CONTEXT,
        )
    assert reply.session.system_prompt == "original"
    assert [m.message for m in reply.session.messages] == [user("hi")]

    with calling_as(ALICE):
        await servicer.DeleteSession(
            session_pb2.DeleteSessionRequest(name=session.name), NO_CONTEXT
        )
    missing = await refusals(servicer, BOB, session.name)
    assert foreign == missing
    assert all(status.details for status in missing.values())


async def test_the_owner_uses_every_rpc(servicer: SessionServicer) -> None:
    session = await create(servicer, ALICE, "a1")
    with calling_as(ALICE):
        calls = per_session_calls(servicer, session.name)
        for rpc in ["GetSession", "UpdateSession", "AppendMessages", "ListMessages"]:
            await calls[rpc]()
        listed = await servicer.ListMessages(
            session_pb2.ListMessagesRequest(parent=session.name), NO_CONTEXT
        )
        assert [m.message for m in listed.messages] == [user("intruder")]
        cleared = await calls["ClearHistory"]()
        assert isinstance(cleared, session_pb2.ClearHistoryResponse)
        assert cleared.session.message_count == 0
        assert cleared.session.system_prompt == "changed"
        await calls["DeleteSession"]()
    await refusals(servicer, ALICE, session.name)  # gone for good


@pytest.mark.parametrize("admin", [ADMIN, BOOTSTRAP_ADMIN], ids=["admin-group", "bootstrap"])
async def test_admins_use_every_session(servicer: SessionServicer, admin: Principal) -> None:
    for owner, session_id in [(ALICE, "a1"), (None, "anonymous")]:
        session = await create(servicer, owner, session_id)
        with calling_as(admin):
            calls = per_session_calls(servicer, session.name)
            got = await calls["GetSession"]()
            assert isinstance(got, session_pb2.GetSessionResponse)
            assert got.session.owner == session.owner
            updated = await calls["UpdateSession"]()
            assert isinstance(updated, session_pb2.UpdateSessionResponse)
            # The owner stays the creator whoever changes the session.
            assert updated.session.owner == session.owner
            for rpc in ["AppendMessages", "ListMessages", "ClearHistory", "DeleteSession"]:
                await calls[rpc]()
        await refusals(servicer, admin, session.name)


async def test_without_authentication_every_session_is_usable(
    servicer: SessionServicer,
) -> None:
    session = await create(servicer, ALICE, "a1")
    with calling_as(None):
        calls = per_session_calls(servicer, session.name)
        for call in calls.values():
            await call()
    await refusals(servicer, None, session.name)


async def test_sessions_created_without_authentication_are_for_admins_only(
    servicer: SessionServicer,
) -> None:
    session = await create(servicer, None, "anonymous")
    await refusals(servicer, ALICE, session.name)
    with calling_as(ADMIN):
        reply = await servicer.GetSession(
            session_pb2.GetSessionRequest(name=session.name), NO_CONTEXT
        )
    assert reply.session.name == session.name


async def list_names(
    servicer: SessionServicer,
    principal: Principal | None,
    owner: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> tuple[list[str], str]:
    with calling_as(principal):
        reply = await servicer.ListSessions(
            session_pb2.ListSessionsRequest(
                owner=owner, page_size=page_size, page_token=page_token
            ),
            NO_CONTEXT,
        )
    return [s.name for s in reply.sessions], reply.next_page_token


async def test_list_sessions_by_owner(servicer: SessionServicer) -> None:
    for principal, session_id in [(ALICE, "a1"), (BOB, "b1"), (ALICE, "a2"), (None, "n1")]:
        await create(servicer, principal, session_id)
    alices = ["sessions/a2", "sessions/a1"]
    everyone = ["sessions/n1", "sessions/a2", "sessions/b1", "sessions/a1"]

    assert await list_names(servicer, ALICE) == (alices, "")
    assert await list_names(servicer, ALICE, owner=ALICE.name) == (alices, "")
    assert await list_names(servicer, BOB) == (["sessions/b1"], "")
    with pytest.raises(PermissionDenied) as denied:
        await list_names(servicer, BOB, owner=ALICE.name)
    assert denied.value.message == "listing another consumer's sessions needs the admin role"

    assert await list_names(servicer, ADMIN, owner=ALICE.name) == (alices, "")
    assert await list_names(servicer, ADMIN) == (everyone, "")
    assert await list_names(servicer, None) == (everyone, "")
    assert await list_names(servicer, None, owner=BOB.name) == (["sessions/b1"], "")


async def test_list_page_tokens_stay_with_their_owner(servicer: SessionServicer) -> None:
    for principal, session_id in [(ALICE, "a1"), (BOB, "b1"), (ALICE, "a2")]:
        await create(servicer, principal, session_id)
    first, token = await list_names(servicer, ALICE, page_size=1)
    assert first == ["sessions/a2"] and token
    assert await list_names(servicer, ALICE, page_size=1, page_token=token) == (
        ["sessions/a1"],
        "",
    )
    with pytest.raises(InvalidArgument) as foreign:
        await list_names(servicer, BOB, page_size=1, page_token=token)
    assert [v.field for v in foreign.value.violations] == ["page_token"]

    # A token for every session does not page through one consumer's sessions.
    _, everyone_token = await list_names(servicer, ADMIN, page_size=1)
    with pytest.raises(InvalidArgument):
        await list_names(servicer, ALICE, page_size=1, page_token=everyone_token)
