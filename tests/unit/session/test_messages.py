"""AppendMessages, ListMessages and ClearHistory, with their limits."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2

from llmgw.common.v1 import chat_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.errors import find_detail
from services.session import store as store_module
from tests.unit.session.conftest import StartServer
from tests.unit.session.helpers import (
    all_messages,
    append,
    create,
    reason_of,
    status_of,
    text,
    user,
    violations_of,
)


async def test_append_and_list_in_pages(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, "m")
    first = await append(stub, session.name, "a", "b")
    assert (first.first_index, first.message_count) == (0, 2)
    assert first.expire_time.seconds > 0
    tool_turn = [
        chat_pb2.Message(
            role=chat_pb2.ROLE_ASSISTANT, tool_calls=[chat_pb2.ToolCall(id="c1", name="lookup")]
        ),
        chat_pb2.Message(
            role=chat_pb2.ROLE_TOOL, tool_call_id="c1", content=[chat_pb2.ContentPart(text="42")]
        ),
    ]
    second = await stub.AppendMessages(
        session_pb2.AppendMessagesRequest(session=session.name, messages=tool_turn)
    )
    assert (second.first_index, second.message_count) == (2, 4)
    for i in range(4, 25):
        await append(stub, session.name, f"t{i}")

    pages: list[list[int]] = []
    token = ""
    while True:
        reply = await stub.ListMessages(
            session_pb2.ListMessagesRequest(parent=session.name, page_size=10, page_token=token)
        )
        pages.append([m.index for m in reply.messages])
        token = reply.next_page_token
        if not token:
            break
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    everything = await all_messages(stub, session.name)
    assert everything[2].message == tool_turn[0] and everything[3].message == tool_turn[1]
    assert everything[0].message.content[0].text == "a"
    times = [m.create_time.ToMicroseconds() for m in everything]
    assert times == sorted(times) and times[0] > 0


async def test_list_messages_errors(stub: session_grpc.SessionServiceStub) -> None:
    one = await create(stub, "one")
    two = await create(stub, "two")
    for name in (one.name, two.name):
        await append(stub, name, "a", "b", "c")
    page = await stub.ListMessages(session_pb2.ListMessagesRequest(parent=one.name, page_size=1))
    sessions = await stub.ListSessions(session_pb2.ListSessionsRequest(page_size=1))
    for token in ("garbage", sessions.next_page_token):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMessages(
                session_pb2.ListMessagesRequest(parent=one.name, page_token=token)
            )
        assert violations_of(caught.value) == ["page_token"]
    # A token of one session's history is no good for another's.
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.ListMessages(
            session_pb2.ListMessagesRequest(parent=two.name, page_token=page.next_page_token)
        )
    assert violations_of(foreign.value) == ["page_token"]
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ListMessages(session_pb2.ListMessagesRequest(parent="x", page_size=-5))
    assert violations_of(bad.value) == ["parent", "page_size"]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.ListMessages(session_pb2.ListMessagesRequest(parent="sessions/none"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_append_validates_every_message(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub, "v")
    messages = [
        user("fine"),
        chat_pb2.Message(content=[chat_pb2.ContentPart(text="no role")]),
        chat_pb2.Message(role=chat_pb2.ROLE_TOOL, content=[chat_pb2.ContentPart(text="x")]),
        user("y" * 5000),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AppendMessages(
            session_pb2.AppendMessagesRequest(session=session.name, messages=messages)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(caught.value) == [
        "messages[1].role",
        "messages[2].tool_call_id",
        "messages[3]",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.AppendMessages(session_pb2.AppendMessagesRequest(session="bad"))
    assert violations_of(empty.value) == ["session", "messages"]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await append(stub, "sessions/none", "x")
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert (
        await stub.GetSession(session_pb2.GetSessionRequest(name=session.name))
    ).session.message_count == 0


async def test_message_limit_is_all_or_nothing(start_server: StartServer) -> None:
    stub = (await start_server(max_messages=5)).stub
    session = await create(stub, "full")
    await append(stub, session.name, "1", "2", "3")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await append(stub, session.name, "4", "5", "6")
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(caught.value) == "LIMIT_EXCEEDED"
    quota = find_detail(status_of(caught.value), error_details_pb2.QuotaFailure)
    assert quota is not None
    assert [v.subject for v in quota.violations] == ["sessions/full"]
    assert [m.message.content[0].text for m in await all_messages(stub, session.name)] == [
        "1",
        "2",
        "3",
    ]
    reply = await append(stub, session.name, "4", "5")
    assert (reply.first_index, reply.message_count) == (3, 5)
    with pytest.raises(grpc.aio.AioRpcError) as one_more:
        await append(stub, session.name, "6")
    assert one_more.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_clear_history_keeps_the_session(stub: session_grpc.SessionServiceStub) -> None:
    context = struct_pb2.Struct()
    context.update({"k": "v"})
    session = await create(stub, "c", system_prompt="keep me", context=context)
    await append(stub, session.name, "a", "b", "c")
    old_page = await stub.ListMessages(
        session_pb2.ListMessagesRequest(parent=session.name, page_size=2)
    )
    cleared = (
        await stub.ClearHistory(session_pb2.ClearHistoryRequest(session=session.name))
    ).session
    assert cleared.message_count == 0 and not cleared.messages
    assert cleared.system_prompt == "keep me" and cleared.context == context
    assert await all_messages(stub, session.name) == []
    # A token from before the clear points past the end: an empty last page.
    stale = await stub.ListMessages(
        session_pb2.ListMessagesRequest(parent=session.name, page_token=old_page.next_page_token)
    )
    assert list(stale.messages) == [] and stale.next_page_token == ""
    again = await stub.AppendMessages(
        session_pb2.AppendMessagesRequest(
            session=session.name, messages=[text(chat_pb2.ROLE_SYSTEM, "fresh")]
        )
    )
    assert (again.first_index, again.message_count) == (0, 1)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.ClearHistory(session_pb2.ClearHistoryRequest(session="sessions/none"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ClearHistory(session_pb2.ClearHistoryRequest())
    assert violations_of(bad.value) == ["session"]


def _first_word(message: session_pb2.SessionMessage) -> str:
    return message.message.content[0].text.split()[0]


async def test_reads_are_bounded_in_bytes_whatever_the_history(
    stub: session_grpc.SessionServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_READ_BYTES", 2_500)
    session = await create(stub, "big")
    await append(stub, session.name, *(f"{i} " + "x" * 1000 for i in range(10)))

    # GetSession: the newest messages that fit, in order; a smaller limit of the caller's.
    full = session_pb2.SESSION_VIEW_FULL
    got = await stub.GetSession(session_pb2.GetSessionRequest(name=session.name, view=full))
    assert [_first_word(m) for m in got.session.messages] == ["8", "9"]
    small = await stub.GetSession(
        session_pb2.GetSessionRequest(name=session.name, view=full, message_bytes_limit=1_200)
    )
    assert [_first_word(m) for m in small.session.messages] == ["9"]
    none = await stub.GetSession(
        session_pb2.GetSessionRequest(name=session.name, view=full, message_bytes_limit=10)
    )
    assert list(none.session.messages) == [] and none.session.message_count == 10

    # ListMessages: pages from the oldest, each within the bound; paging reaches them all.
    page = await stub.ListMessages(
        session_pb2.ListMessagesRequest(parent=session.name, page_size=100)
    )
    assert [m.index for m in page.messages] == [0, 1] and page.next_page_token
    everything = await all_messages(stub, session.name)
    assert [m.index for m in everything] == list(range(10))

    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await stub.GetSession(
            session_pb2.GetSessionRequest(name=session.name, view=full, message_bytes_limit=-1)
        )
    assert violations_of(negative.value) == ["message_bytes_limit"]


async def test_a_message_larger_than_the_bound_still_pages(
    stub: session_grpc.SessionServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_READ_BYTES", 500)
    session = await create(stub, "huge")
    await append(stub, session.name, "a" * 2000, "b" * 2000)
    everything = await all_messages(stub, session.name)
    assert [m.index for m in everything] == [0, 1]
