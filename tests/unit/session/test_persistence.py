"""Accepted data survives a Redis restart (AOF) and a restart of the service."""

from __future__ import annotations

import redis.asyncio as aioredis

from llmgw.session.v1 import session_service_pb2 as session_pb2
from tests.conftest import RedisServer
from tests.unit.session.conftest import StartServer
from tests.unit.session.helpers import all_messages, append, create


async def test_survives_redis_and_service_restarts(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    server = await start_server()
    session = await create(server.stub, "durable", system_prompt="remember", labels={"a": "b"})
    await append(server.stub, session.name, "one", "two", "three")

    # Redis restarts: its script cache is empty (NOSCRIPT) and pooled connections are dead.
    await redis_server.restart()
    full = await server.stub.GetSession(
        session_pb2.GetSessionRequest(name=session.name, view=session_pb2.SESSION_VIEW_FULL)
    )
    assert full.session.system_prompt == "remember"
    assert dict(full.session.labels) == {"a": "b"}
    assert [m.message.content[0].text for m in full.session.messages] == ["one", "two", "three"]
    reply = await append(server.stub, session.name, "four")
    assert reply.first_index == 3

    # A new service instance (another replica, or the same one restarted) sees it all.
    await server.stop()
    replacement = await start_server()
    texts = [m.message.content[0].text for m in await all_messages(replacement.stub, session.name)]
    assert texts == ["one", "two", "three", "four"]
    listed = await replacement.stub.ListSessions(session_pb2.ListSessionsRequest())
    assert [s.name for s in listed.sessions] == [session.name]


async def test_scripts_are_reloaded_after_script_flush(
    start_server: StartServer, redis_client: aioredis.Redis
) -> None:
    server = await start_server()
    session = await create(server.stub, "flushed")
    await redis_client.script_flush()
    reply = await append(server.stub, session.name, "still works")
    assert reply.message_count == 1
