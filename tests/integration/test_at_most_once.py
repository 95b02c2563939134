"""Nothing runs twice that must run once: kill -9 a provider, then a router, in the middle
of 200 concurrent session-aware chat calls.

The fake upstream's hit count stays within the calls the clients saw succeed plus the
calls that were in flight on the dead replica; usage is recorded once per call the
gateway answered; no session ever holds a turn twice, even after the clients repeat
their failed calls with the same request ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from llmgw.router.v1 import admin_service_pb2_grpc as admin_grpc
from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.launcher.envoy_config import REPLICA_LOST_MESSAGE
from tests.fakes import Behaviour
from tests.support.gateway import Gateway, running_gateway

pytestmark = pytest.mark.integration

CALLS = 200
# Long enough that every call is waiting upstream when the replica dies.
UPSTREAM_DELAY = 0.8
KILL_AFTER = 0.5


@pytest.fixture(scope="module")
def kill_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of its own: this module kills its replicas."""
    with running_gateway(
        Path(tmp_path_factory.mktemp("once")), replicas={"router": 2, "provider": 2}
    ) as running:
        yield running


@dataclass
class Storm:
    model: str
    sessions: list[str]
    request_ids: list[str]
    codes: list[grpc.StatusCode]
    details: list[str]

    @property
    def succeeded(self) -> int:
        return self.codes.count(grpc.StatusCode.OK)

    @property
    def failed(self) -> list[int]:
        return [i for i, code in enumerate(self.codes) if code is not grpc.StatusCode.OK]


def _chat(model: str, session: str, request_id: str) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi"))],
        gateway=chat_pb2.GatewayOptions(session=session, request_id=request_id),
    )


async def _call(
    router: router_service_pb2_grpc.RouterServiceStub, request: chat_pb2.CreateChatCompletionRequest
) -> tuple[grpc.StatusCode, str]:
    try:
        await router.CreateChatCompletion(request, timeout=40)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def _storm(gw: Gateway, channel: grpc.aio.Channel, victim: str) -> Storm:
    model = f"gpt-once-{uuid.uuid4().hex[:8]}"  # through the gpt- prefix rule
    with gw.fakes["openai"].control() as control:
        control.reset()
        control.set_default(Behaviour(text="done", delay=UPSTREAM_DELAY), model=model)
    sessions_stub = session_grpc.SessionServiceStub(channel)
    sessions = [
        reply.session.name
        for reply in await asyncio.gather(
            *(
                sessions_stub.CreateSession(session_pb2.CreateSessionRequest(), timeout=10)
                for _ in range(CALLS)
            )
        )
    ]
    request_ids = [f"once-{uuid.uuid4()}" for _ in range(CALLS)]
    router = router_service_pb2_grpc.RouterServiceStub(channel)

    async def kill() -> None:
        await asyncio.sleep(KILL_AFTER)
        gw.stack.replicas[victim][0].process.kill()

    results, _ = await asyncio.gather(
        asyncio.gather(
            *(_call(router, _chat(model, s, r)) for s, r in zip(sessions, request_ids, strict=True))
        ),
        kill(),
    )
    return Storm(
        model, sessions, request_ids, [code for code, _ in results], [d for _, d in results]
    )


def _upstream(gw: Gateway, model: str) -> tuple[int, int]:
    """Completion requests the fake got for `model`, and those whose client went away."""
    with gw.fakes["openai"].control() as control:
        stats = control.stats()
    return stats.hits_by_model.get(model, 0), stats.cancelled


async def _usage_requests(channel: grpc.aio.Channel, model: str) -> int:
    reply = await admin_grpc.AdminServiceStub(channel).GetUsage(
        admin_pb2.GetUsageRequest(model=model), timeout=10
    )
    return int(reply.totals.requests)


async def _turns(channel: grpc.aio.Channel, sessions: list[str]) -> list[int]:
    stub = session_grpc.SessionServiceStub(channel)
    replies = await asyncio.gather(
        *(stub.GetSession(session_pb2.GetSessionRequest(name=s), timeout=10) for s in sessions)
    )
    return [int(r.session.message_count) for r in replies]


async def test_a_provider_killed_mid_calls_repeats_only_the_calls_it_held(
    kill_gateway: Gateway,
) -> None:
    gw = kill_gateway
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        storm = await _storm(gw, channel, "provider")
        hits, abandoned = _upstream(gw, storm.model)
        # The routers' engine moves the calls of the dead provider to the other one.
        assert storm.failed == [], storm.details[:3]
        assert 0 < abandoned < CALLS, "calls were in flight on the killed provider"
        assert storm.succeeded <= hits <= storm.succeeded + abandoned
        assert await _usage_requests(channel, storm.model) == storm.succeeded
        assert set(await _turns(channel, storm.sessions)) == {2}


async def test_a_router_killed_mid_calls_repeats_nothing_and_repeats_stay_once(
    kill_gateway: Gateway,
) -> None:
    gw = kill_gateway
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        storm = await _storm(gw, channel, "router")
        hits, _ = _upstream(gw, storm.model)
        failed = storm.failed
        # Envoy does not repeat a call a router took: its caller learns it may have run.
        assert failed, "calls were in flight on the killed router"
        assert len(failed) < CALLS
        assert {storm.details[i] for i in failed} == {REPLICA_LOST_MESSAGE}
        assert storm.succeeded <= hits <= storm.succeeded + len(failed)
        usage = await _usage_requests(channel, storm.model)
        assert storm.succeeded <= usage <= storm.succeeded + len(failed)
        turns = await _turns(channel, storm.sessions)
        assert all(turns[i] == 2 for i in range(CALLS) if i not in failed)
        assert {turns[i] for i in failed} <= {0, 2}

        # The clients repeat their failed calls with the same request ids: each runs at
        # most once more, and no session gets its turn twice.
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        repeats = await asyncio.gather(
            *(
                _call(router, _chat(storm.model, storm.sessions[i], storm.request_ids[i]))
                for i in failed
            )
        )
        assert [code for code, _ in repeats] == [grpc.StatusCode.OK] * len(failed)
        assert set(await _turns(channel, storm.sessions)) == {2}
        final_hits, _ = _upstream(gw, storm.model)
        assert final_hits <= CALLS + len(failed)
