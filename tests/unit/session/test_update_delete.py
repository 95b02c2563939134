"""UpdateSession (update masks) and DeleteSession."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from tests.unit.session.helpers import append, create, violations_of


def context_of(**values: object) -> struct_pb2.Struct:
    context = struct_pb2.Struct()
    context.update(values)
    return context


async def update(
    stub: session_grpc.SessionServiceStub, session: session_pb2.Session, *paths: str
) -> session_pb2.Session:
    reply = await stub.UpdateSession(
        session_pb2.UpdateSessionRequest(
            session=session, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
    )
    return reply.session


async def test_mask_limits_the_update(stub: session_grpc.SessionServiceStub) -> None:
    original = await create(
        stub, "u", system_prompt="old", labels={"a": "1"}, context=context_of(k="v")
    )
    await append(stub, original.name, "hello")
    changed = await update(
        stub,
        session_pb2.Session(
            name=original.name, system_prompt="new", labels={"b": "2"}, owner="ignored"
        ),
        "system_prompt",
    )
    assert changed.system_prompt == "new"
    assert dict(changed.labels) == {"a": "1"}
    assert changed.context == context_of(k="v")
    assert changed.owner == "" and changed.message_count == 1
    assert changed.create_time == original.create_time
    assert changed.update_time.ToMicroseconds() > original.update_time.ToMicroseconds()

    ttl = await update(
        stub,
        session_pb2.Session(name=original.name, ttl=duration_pb2.Duration(seconds=600)),
        "ttl",
        "labels",
    )
    assert ttl.ttl.seconds == 600 and dict(ttl.labels) == {}
    assert ttl.system_prompt == "new"
    assert ttl.expire_time.seconds - ttl.update_time.seconds in (599, 600, 601)


async def test_empty_mask_replaces_every_mutable_field(
    stub: session_grpc.SessionServiceStub,
) -> None:
    original = await create(
        stub,
        "e",
        system_prompt="old",
        labels={"a": "1"},
        context=context_of(k="v"),
        ttl=duration_pb2.Duration(seconds=900),
    )
    replaced = await update(stub, session_pb2.Session(name=original.name, labels={"z": "9"}))
    assert replaced.system_prompt == ""
    assert dict(replaced.labels) == {"z": "9"}
    assert not replaced.HasField("context") or not replaced.context.fields
    assert replaced.ttl.seconds == 60  # unset TTL: back to the configured default


async def test_update_errors(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, "x")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await update(stub, session_pb2.Session(name=session.name), "labels", "owner")
    assert unknown.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(unknown.value) == ["update_mask.paths[1]"]
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await update(
            stub,
            session_pb2.Session(name="bad name", ttl=duration_pb2.Duration(seconds=0)),
            "ttl",
        )
    assert violations_of(bad.value) == ["session.name", "session.ttl"]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await update(stub, session_pb2.Session(name="sessions/absent", system_prompt="p"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_delete(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, "d")
    await append(stub, session.name, "a", "b")
    await stub.DeleteSession(session_pb2.DeleteSessionRequest(name=session.name))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetSession(session_pb2.GetSessionRequest(name=session.name))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.DeleteSession(session_pb2.DeleteSessionRequest(name=session.name))
    assert again.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.DeleteSession(session_pb2.DeleteSessionRequest(name="sessions/"))
    assert violations_of(bad.value) == ["name"]
    # The id is free again, with an empty history.
    recreated = await create(stub, "d")
    assert recreated.message_count == 0
    listed = await stub.ListMessages(session_pb2.ListMessagesRequest(parent=recreated.name))
    assert list(listed.messages) == []
