"""The shared server skeleton, through a real grpc.aio server and channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common import context
from services.common.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    RemoteError,
    Unavailable,
    find_detail,
)
from services.common.readiness import DependencyCheck
from services.common.server import (
    ReloadRunner,
    RunningServer,
    ServiceDefinition,
    create_server,
    handle_reload_signal,
)
from services.common.settings import ServiceSettings
from services.common.unimplemented import unimplemented_servicer
from tests.conftest import RedisServer
from tests.support.trust import TEST_INTERNAL_SECRET

SESSION = "llmgw.session.v1.SessionService"
ROUTER = "llmgw.router.v1.RouterService"


class Sessions(session_grpc.SessionServiceServicer):
    async def CreateSession(self, request, context):
        raise InvalidArgument.from_violations(
            [FieldViolation("session.ttl", "must be positive"), FieldViolation("x", "bad")]
        )

    async def GetSession(self, request, ctx):
        if request.name == "sessions/boom":
            raise ValueError("secret sk-abcdefghijklmnop leaked in a bug")
        if request.name == "sessions/rid":
            return session_pb2.GetSessionResponse(
                session=session_pb2.Session(name=context.request_id.get())
            )
        raise NotFound(
            f"session '{request.name}' not found",
            resource_type="session",
            resource_name=request.name,
        )


class Router(router_service_pb2_grpc.RouterServiceServicer):
    async def StreamChatCompletion(
        self, request, context
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        for i in range(2):
            yield chat_pb2.StreamChatCompletionResponse(id=str(i))
        raise Unavailable("upstream went away", retry_after=1.5)


class Flag:
    def __init__(self) -> None:
        self.up = True

    async def probe(self) -> None:
        if not self.up:
            raise ConnectionError("down")


@pytest.fixture
async def flag() -> Flag:
    return Flag()


@pytest.fixture
async def server(flag: Flag) -> AsyncIterator[RunningServer]:
    def register(srv: grpc.aio.Server) -> None:
        session_grpc.add_SessionServiceServicer_to_server(Sessions(), srv)
        router_service_pb2_grpc.add_RouterServiceServicer_to_server(Router(), srv)

    settings = ServiceSettings(
        service="session", port=0, metrics_port=0, readiness_interval=0.05, access_log=False
    )
    running = await create_server(
        settings,
        ServiceDefinition(
            register=register,
            service_names=[SESSION, ROUTER],
            checks=[DependencyCheck("flag", flag.probe, timeout=0.5)],
        ),
    )
    yield running
    await running.stop(0)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


async def test_invalid_argument_carries_every_field_violation(channel: grpc.aio.Channel) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(session_pb2.CreateSessionRequest())
    error = caught.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = RemoteError.from_rpc_error(error).status
    assert status is not None
    bad = find_detail(status, error_details_pb2.BadRequest)
    assert bad is not None
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("session.ttl", "must be positive"),
        ("x", "bad"),
    ]
    info = find_detail(status, error_details_pb2.ErrorInfo)
    assert info is not None and info.reason == "INVALID_REQUEST" and info.domain == "llm-gateway"


async def test_not_found_names_the_resource(channel: grpc.aio.Channel) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSession(session_pb2.GetSessionRequest(name="sessions/nope"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "sessions/nope" in (caught.value.details() or "")
    status = RemoteError.from_rpc_error(caught.value).status
    resource = find_detail(status, error_details_pb2.ResourceInfo)
    assert resource is not None and resource.resource_name == "sessions/nope"


async def test_unexpected_exception_is_internal_without_leaking(channel: grpc.aio.Channel) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSession(
            session_pb2.GetSessionRequest(name="sessions/boom"),
            metadata=(("x-request-id", "req-123"),),
        )
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    details = caught.value.details() or ""
    assert "sk-" not in details and "Traceback" not in details and "ValueError" not in details
    assert "req-123" in details


async def test_request_id_comes_from_metadata(channel: grpc.aio.Channel) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    reply = await stub.GetSession(
        session_pb2.GetSessionRequest(name="sessions/rid"), metadata=(("x-request-id", "abc"),)
    )
    assert reply.session.name == "abc"
    generated = await stub.GetSession(session_pb2.GetSessionRequest(name="sessions/rid"))
    assert len(generated.session.name) == 32


async def test_stream_error_after_messages_keeps_them_and_ends_with_status(
    channel: grpc.aio.Channel,
) -> None:
    stub = router_service_pb2_grpc.RouterServiceStub(channel)
    call = stub.StreamChatCompletion(chat_pb2.CreateChatCompletionRequest())
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for chunk in call:
            received.append(chunk.id)
    assert received == ["0", "1"]
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    status = RemoteError.from_rpc_error(caught.value).status
    retry = find_detail(status, error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.ToMilliseconds() == 1500


async def test_unimplemented_servicer_is_honest(channel: grpc.aio.Channel) -> None:
    def register(srv: grpc.aio.Server) -> None:
        router_service_pb2_grpc.add_RouterServiceServicer_to_server(
            unimplemented_servicer(
                router_service_pb2_grpc.RouterServiceServicer,
                router_service_pb2.DESCRIPTOR.services_by_name["RouterService"],
                "later",
            ),
            srv,
        )

    running = await create_server(
        ServiceSettings(service="router", port=0, metrics_port=0, access_log=False),
        ServiceDefinition(register=register, service_names=[ROUTER]),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = router_service_pb2_grpc.RouterServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as unary:
                await stub.ListModels(router_service_pb2.ListModelsRequest())
            assert unary.value.code() is grpc.StatusCode.UNIMPLEMENTED
            assert "RouterService.ListModels is not implemented yet (later)" in (
                unary.value.details() or ""
            )
            with pytest.raises(grpc.aio.AioRpcError) as stream:
                async for _ in stub.StreamChatCompletion(chat_pb2.CreateChatCompletionRequest()):
                    pass
            assert stream.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await running.stop(0)


async def test_health_follows_dependencies(channel: grpc.aio.Channel, flag: Flag) -> None:
    health = health_pb2_grpc.HealthStub(channel)

    async def status(service: str) -> int:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        return reply.status

    assert await status("") == health_pb2.HealthCheckResponse.SERVING
    assert await status(SESSION) == health_pb2.HealthCheckResponse.SERVING
    flag.up = False
    for _ in range(100):
        if await status(SESSION) == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        await asyncio.sleep(0.02)
    assert await status("") == health_pb2.HealthCheckResponse.NOT_SERVING
    flag.up = True
    for _ in range(100):
        if await status(SESSION) == health_pb2.HealthCheckResponse.SERVING:
            break
        await asyncio.sleep(0.02)
    assert await status("") == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_hosted_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = []
    async for reply in stub.ServerReflectionInfo(requests()):
        names = [s.name for s in reply.list_services_response.service]
    assert SESSION in names and ROUTER in names and "grpc.health.v1.Health" in names


async def test_graceful_stop_reports_not_serving(server: RunningServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        await server.readiness.stop()
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_every_call_is_counted_by_method_and_code(channel: grpc.aio.Channel) -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    def count(method: str, code: str) -> float:
        labels = {"service": "session", "method": method, "code": code}
        return REGISTRY.get_sample_value("llmgw_rpc_requests_total", labels) or 0.0

    stub = session_grpc.SessionServiceStub(channel)
    before_ok, before_missing = count("GetSession", "OK"), count("GetSession", "NOT_FOUND")
    for name in ("sessions/rid", "sessions/rid", "sessions/nope"):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.GetSession(session_pb2.GetSessionRequest(name=name))
    assert count("GetSession", "OK") - before_ok == 2
    assert count("GetSession", "NOT_FOUND") - before_missing == 1


class Hooks:
    """Reload hooks that record their runs; `gate` holds the first one until opened."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_first = False

    async def first(self) -> None:
        self.runs.append("first")
        await self.gate.wait()
        if self.fail_first:
            raise InvalidArgument("configuration not reloaded: models.0.name: required")

    async def second(self) -> None:
        self.runs.append("second")


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_sighup_runs_the_reload_hooks_in_order() -> None:
    hooks = Hooks()
    runner = ReloadRunner()
    runner.attach([hooks.first, hooks.second])
    loop = asyncio.get_running_loop()
    handle_reload_signal(loop, runner)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(lambda: runner.completed == 1)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
    assert hooks.runs == ["first", "second"]


async def test_requests_during_a_reload_run_once_more_afterwards() -> None:
    hooks = Hooks()
    hooks.gate.clear()
    runner = ReloadRunner()
    runner.attach([hooks.first, hooks.second])
    runner.request()
    await _until(lambda: hooks.runs == ["first"])
    for _ in range(3):
        runner.request()
    hooks.gate.set()
    await runner.idle()
    assert hooks.runs == ["first", "second", "first", "second"]
    assert runner.completed == 2


async def test_a_failed_hook_is_logged_and_the_next_ones_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()
    hooks.fail_first = True
    runner = ReloadRunner()
    runner.attach([hooks.first, hooks.second])
    with caplog.at_level(logging.INFO, "llmgw.server"):
        runner.request()
        await runner.idle()
        hooks.fail_first = False
        runner.request()
        await runner.idle()
    assert hooks.runs == ["first", "second", "first", "second"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("reload failed" in m and "models.0.name" in m for m in messages)
    assert messages[-1] == "reloaded"


async def test_a_request_before_the_service_is_built_runs_once_it_is() -> None:
    hooks = Hooks()
    runner = ReloadRunner()
    runner.request()
    runner.request()
    await asyncio.sleep(0)
    assert hooks.runs == []
    runner.attach([hooks.second])
    await runner.idle()
    assert hooks.runs == ["second"]


async def test_without_hooks_a_reload_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    runner = ReloadRunner()
    runner.attach([])
    with caplog.at_level(logging.INFO, "llmgw.server"):
        runner.request()
    await runner.idle()
    assert runner.completed == 0
    assert "nothing to reload" in caplog.text


async def test_a_service_process_survives_sighup(tmp_path: Path, redis_server: RedisServer) -> None:
    """serve() itself: SIGHUP's default action would end the process; the service's
    reload hook runs instead."""
    port_file = tmp_path / "ports.json"
    log_path = tmp_path / "investigation.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.investigation",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--port-file",
            str(port_file),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[3],
            env={
                **os.environ,
                "LLMGW_INTERNAL_SECRET": TEST_INTERNAL_SECRET,
                "LLMGW_REDIS_URL": redis_server.url,
            },
        )
    try:
        await _until(lambda: port_file.exists() or process.returncode is not None, 30)
        assert process.returncode is None, log_path.read_text()
        port = json.loads(port_file.read_text())["port"]
        process.send_signal(signal.SIGHUP)
        await _until(lambda: "investigations configuration reloaded" in log_path.read_text())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert process.returncode is None
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 20)
