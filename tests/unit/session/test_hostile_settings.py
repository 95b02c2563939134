"""Session settings a caller cannot use to break the service for others: bounded labels
and sizes, JSON that can always be written back, listings that never outgrow a reply."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.session.request_checks import MAX_LABEL_VALUE_CHARS, MAX_LABELS
from services.session.store import NewSession, SessionStore
from tests.unit.session.helpers import create, status_of, violations_of


def _context(**values: object) -> struct_pb2.Struct:
    context = struct_pb2.Struct()
    context.update(values)
    return context


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


async def test_labels_are_bounded_in_count_key_and_value(
    stub: session_grpc.SessionServiceStub,
) -> None:
    ok = await create(stub, labels={"team": "search", "env-1_a": "x" * MAX_LABEL_VALUE_CHARS})
    assert dict(ok.labels)["team"] == "search"
    huge = await _refused(create(stub, labels={"big": "v" * 7_000_000}))
    assert violations_of(huge) == ["session.labels[big]"]
    assert len(status_of(huge).SerializeToString()) < 4096
    keys = await _refused(create(stub, labels={"Bad.Key": "v", "k" * 64: "v"}))
    assert violations_of(keys) == ["session.labels", "session.labels"]
    many = await _refused(create(stub, labels={f"k{i}": "v" for i in range(MAX_LABELS + 1)}))
    assert violations_of(many) == ["session.labels"]
    control = await _refused(create(stub, labels={"k": "line\nbreak"}))
    assert violations_of(control) == ["session.labels[k]"]


async def test_update_checks_labels_like_create(stub: session_grpc.SessionServiceStub) -> None:
    session = await create(stub)
    refused = await _refused(
        stub.UpdateSession(
            session_pb2.UpdateSessionRequest(
                session=session_pb2.Session(name=session.name, labels={"big": "v" * 1000})
            )
        )
    )
    assert violations_of(refused) == ["session.labels[big]"]


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_a_context_number_that_json_cannot_hold_is_refused(
    stub: session_grpc.SessionServiceStub, number: float
) -> None:
    refused = await _refused(create(stub, context=_context(a=number)))
    assert violations_of(refused) == ["session.context.a"]
    session = await create(stub)
    refused = await _refused(
        stub.UpdateSession(
            session_pb2.UpdateSessionRequest(
                session=session_pb2.Session(name=session.name, context=_context(b=[1, number]))
            )
        )
    )
    assert violations_of(refused) == ["session.context.b[1]"]


async def test_context_nesting_is_bounded(stub: session_grpc.SessionServiceStub) -> None:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(25):
        value = {"a": value}
    refused = await _refused(create(stub, context=_context(**value)))
    assert violations_of(refused)[0].startswith("session.context.a.a")


async def test_system_prompt_and_context_sizes_use_the_settings_limit(
    start_server: object,
) -> None:
    server = await start_server(max_settings_bytes=1000, max_message_bytes=100_000)  # type: ignore[operator]
    refused = await _refused(create(server.stub, system_prompt="p" * 1001))
    assert violations_of(refused) == ["session.system_prompt"]
    refused = await _refused(create(server.stub, context=_context(t="x" * 1000)))
    assert violations_of(refused) == ["session.context"]
    assert (await create(server.stub, system_prompt="p" * 1000)).system_prompt


async def test_an_overlong_owner_filter_is_refused(stub: session_grpc.SessionServiceStub) -> None:
    refused = await _refused(stub.ListSessions(session_pb2.ListSessionsRequest(owner="o" * 10_000)))
    assert violations_of(refused) == ["owner"]


async def test_a_page_of_large_sessions_ends_early_and_lists_everything(
    redis_client: object,
) -> None:
    store = SessionStore(redis_client, list_page_bytes=10_000)  # type: ignore[arg-type]
    for i in range(5):
        await store.create(NewSession(f"big{i}", "", 60_000, "p" * 4_000, struct_pb2.Struct(), {}))
    seen: list[str] = []
    sizes: list[int] = []
    before = None
    while True:
        page = await store.list_sessions("", before, 100)
        seen += [s.name for s in page.sessions]
        sizes.append(len(page.sessions))
        if page.next_cursor is None:
            break
        before = page.next_cursor
    assert sorted(seen) == [f"sessions/big{i}" for i in range(5)]
    # 4 KB each against a 10 KB budget: three per page at most, never an empty page first.
    assert max(sizes) <= 3 and sizes[0] >= 1
