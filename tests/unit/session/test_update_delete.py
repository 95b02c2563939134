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


async def test_no_mask_changes_only_the_populated_fields(
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
    changed = await update(stub, session_pb2.Session(name=original.name, labels={"z": "9"}))
    assert dict(changed.labels) == {"z": "9"}
    assert changed.system_prompt == "old"
    assert changed.context == context_of(k="v")
    assert changed.ttl.seconds == 900


async def test_wildcard_mask_replaces_every_mutable_field(
    stub: session_grpc.SessionServiceStub,
) -> None:
    original = await create(
        stub,
        "w",
        system_prompt="old",
        labels={"a": "1"},
        context=context_of(k="v"),
        ttl=duration_pb2.Duration(seconds=900),
    )
    replaced = await update(stub, session_pb2.Session(name=original.name, labels={"z": "9"}), "*")
    assert replaced.system_prompt == ""
    assert dict(replaced.labels) == {"z": "9"}
    assert not replaced.HasField("context") or not replaced.context.fields
    assert replaced.ttl.seconds == 60  # unset TTL: back to the configured default


async def test_the_etag_changes_with_every_write_and_a_stale_one_is_aborted(
    stub: session_grpc.SessionServiceStub,
) -> None:
    original = await create(stub, "t", system_prompt="p")
    assert original.etag
    await append(stub, original.name, "hello")
    read = (await stub.GetSession(session_pb2.GetSessionRequest(name=original.name))).session
    assert read.etag != original.etag  # the append was a write
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await update(
            stub, session_pb2.Session(name=original.name, system_prompt="x", etag=original.etag)
        )
    assert stale.value.code() is grpc.StatusCode.ABORTED
    unchanged = (await stub.GetSession(session_pb2.GetSessionRequest(name=original.name))).session
    assert unchanged.system_prompt == "p" and unchanged.etag == read.etag
    changed = await update(
        stub, session_pb2.Session(name=original.name, system_prompt="x", etag=read.etag)
    )
    assert changed.system_prompt == "x" and changed.etag not in (read.etag, original.etag)
    # An update with nothing to change still checks the etag, and writes nothing.
    with pytest.raises(grpc.aio.AioRpcError) as noop:
        await update(stub, session_pb2.Session(name=original.name, etag=read.etag))
    assert noop.value.code() is grpc.StatusCode.ABORTED
    same = await update(stub, session_pb2.Session(name=original.name, etag=changed.etag))
    assert same.etag == changed.etag
    cleared = await stub.ClearHistory(session_pb2.ClearHistoryRequest(session=original.name))
    assert cleared.session.etag != changed.etag


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
