"""Atomic appends: many concurrent writers, two replicas, one session, nothing lost."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from tests.support.trust import edge_channel
from tests.unit.session.conftest import SessionServer, StartServer
from tests.unit.session.helpers import all_messages, create, user

WRITERS = 20
APPENDS_PER_WRITER = 50


async def write(server: SessionServer, name: str, writer: int, batch: int) -> list[int]:
    """Sequential appends over the writer's own channel; returns each first_index."""
    firsts: list[int] = []
    async with edge_channel(f"127.0.0.1:{server.running.port}") as channel:
        stub = session_grpc.SessionServiceStub(channel)
        for seq in range(APPENDS_PER_WRITER):
            reply = await stub.AppendMessages(
                session_pb2.AppendMessagesRequest(
                    session=name,
                    messages=[user(f"w{writer}-{seq}-{part}") for part in range(batch)],
                )
            )
            firsts.append(reply.first_index)
    return firsts


def parse(message: session_pb2.SessionMessage) -> tuple[int, int, int]:
    writer, seq, part = message.message.content[0].text.removeprefix("w").split("-")
    return int(writer), int(seq), int(part)


async def test_1000_concurrent_appends_from_20_clients(start_server: StartServer) -> None:
    replicas = [await start_server(), await start_server()]
    session = await create(replicas[0].stub, "hot")

    started = time.perf_counter()
    firsts = await asyncio.gather(
        *(write(replicas[w % 2], session.name, w, batch=1) for w in range(WRITERS))
    )
    elapsed = time.perf_counter() - started
    total = WRITERS * APPENDS_PER_WRITER
    print(f"\n{total} appends in {elapsed:.2f}s ({total / elapsed:.0f} appends/s)")

    assert sorted(i for writer in firsts for i in writer) == list(range(total))
    messages = await all_messages(replicas[1].stub, session.name)
    assert len(messages) == total
    assert [m.index for m in messages] == list(range(total))
    order: dict[int, list[int]] = defaultdict(list)
    for message in messages:
        writer, seq, _ = parse(message)
        order[writer].append(seq)
    assert order == {w: list(range(APPENDS_PER_WRITER)) for w in range(WRITERS)}
    fetched = await replicas[1].stub.GetSession(session_pb2.GetSessionRequest(name=session.name))
    assert fetched.session.message_count == total


async def test_batches_stay_contiguous(start_server: StartServer) -> None:
    server = await start_server()
    session = await create(server.stub, "batches")
    await asyncio.gather(*(write(server, session.name, w, batch=3) for w in range(6)))
    messages = await all_messages(server.stub, session.name)
    assert len(messages) == 6 * APPENDS_PER_WRITER * 3
    for start in range(0, len(messages), 3):
        batch = [parse(m) for m in messages[start : start + 3]]
        writer, seq, _ = batch[0]
        assert batch == [(writer, seq, part) for part in range(3)]
