"""CreateSession and GetSession through a real server and Redis."""

from __future__ import annotations

import re
import time

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2

from llmgw.identity.v1 import identity_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import find_detail
from services.common.gateway_config import SessionConfig
from services.common.identity.principal import Principal
from services.session.servicer import SessionServicer
from services.session.store import SessionStore
from tests.unit.session.helpers import (
    NO_CONTEXT,
    append,
    create,
    reason_of,
    status_of,
    violations_of,
)


async def test_create_generates_a_url_safe_id_and_defaults(
    stub: session_grpc.SessionServiceStub,
) -> None:
    before = time.time()
    context = struct_pb2.Struct()
    context.update({"user": "ada", "depth": 2, "tags": ["a", "b"]})
    session = await create(stub, system_prompt="Be brief.", context=context, labels={"app": "docs"})
    assert re.fullmatch(r"sessions/[a-zA-Z0-9_-]{22}", session.name)
    assert session.system_prompt == "Be brief."
    assert session.context == context
    assert dict(session.labels) == {"app": "docs"}
    assert session.ttl.seconds == 60  # the configured default
    assert session.message_count == 0
    assert session.owner == ""
    created = session.create_time.ToMicroseconds() / 1e6
    assert before - 1 <= created <= time.time() + 1
    assert session.update_time == session.create_time
    expires = session.expire_time.ToMicroseconds() / 1e6
    assert expires == pytest.approx(created + 60, abs=1)
    other = await create(stub)
    assert other.name != session.name


async def test_create_with_a_given_id_and_ttl(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, "chat_1-A", ttl=duration_pb2.Duration(seconds=90))
    assert session.name == "sessions/chat_1-A"
    assert session.ttl.seconds == 90
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await create(stub, "chat_1-A")
    assert taken.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(taken.value) == "ALREADY_EXISTS"


async def test_create_reports_every_invalid_field(stub: session_grpc.SessionServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(
            stub,
            "bad id!",
            ttl=duration_pb2.Duration(seconds=3601),
            system_prompt="x" * 5000,
            labels={"": "empty key"},
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(caught.value) == [
        "session_id",
        "session.ttl",
        "session.system_prompt",
        "session.labels",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await create(stub, "x" * 65, ttl=duration_pb2.Duration(seconds=-1))
    assert violations_of(negative.value) == ["session_id", "session.ttl"]


async def test_get_basic_and_full_views(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, system_prompt="p")
    for i in range(0, 120, 10):
        await append(stub, session.name, *[f"m{j}" for j in range(i, i + 10)])
    basic = (await stub.GetSession(session_pb2.GetSessionRequest(name=session.name))).session
    assert basic.message_count == 120 and not basic.messages
    assert basic.system_prompt == "p"

    full = (
        await stub.GetSession(
            session_pb2.GetSessionRequest(name=session.name, view=session_pb2.SESSION_VIEW_FULL)
        )
    ).session
    # Default limit: the 100 most recent, oldest first.
    assert [m.index for m in full.messages] == list(range(20, 120))
    assert full.messages[0].message.content[0].text == "m20"
    limited = (
        await stub.GetSession(
            session_pb2.GetSessionRequest(
                name=session.name, view=session_pb2.SESSION_VIEW_FULL, message_limit=3
            )
        )
    ).session
    assert [m.message.content[0].text for m in limited.messages] == ["m117", "m118", "m119"]
    assert all(m.create_time.seconds > 0 for m in limited.messages)


async def test_get_errors(stub: session_grpc.SessionServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetSession(session_pb2.GetSessionRequest(name="sessions/nope"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    resource = find_detail(status_of(missing.value), error_details_pb2.ResourceInfo)
    assert resource is not None and resource.resource_name == "sessions/nope"

    for name in ("", "nope", "sessions/", "sessions/a/b", "other/a"):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.GetSession(session_pb2.GetSessionRequest(name=name))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT, name
        assert violations_of(bad.value) == ["name"]

    with pytest.raises(grpc.aio.AioRpcError) as bad_args:
        await stub.GetSession(
            session_pb2.GetSessionRequest(name="sessions/a", view=7, message_limit=-1)
        )
    assert violations_of(bad_args.value) == ["view", "message_limit"]


async def test_owner_is_the_caller(
    store: SessionStore, stub: session_grpc.SessionServiceStub
) -> None:
    """The owner is the authenticated consumer (`current_owner()`)."""
    servicer = SessionServicer(store, SessionConfig(default_ttl_seconds=60))
    principal = Principal(
        consumer=identity_pb2.Consumer(name="consumers/team-a"), groups=(), key_name="k"
    )
    token = set_caller(Caller(principal=principal))
    try:
        reply = await servicer.CreateSession(session_pb2.CreateSessionRequest(), NO_CONTEXT)
    finally:
        reset_caller(token)
    assert reply.session.owner == "consumers/team-a"
    fetched = await stub.GetSession(session_pb2.GetSessionRequest(name=reply.session.name))
    assert fetched.session.owner == "consumers/team-a"
