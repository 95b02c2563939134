"""One server skeleton for all five services.

`create_server` builds and starts a grpc.aio server (servicers, health, reflection,
the interceptor, readiness) and returns it with its bound port; `serve` runs one until
SIGTERM or SIGINT and shuts it down gracefully: NOT_SERVING first (so Envoy stops
sending), then in-flight RPCs get `shutdown_grace` seconds, then the service's own
cleanup runs. SIGHUP runs the service's reload hooks (configuration reload) and never
ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import uvloop
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.common import logs, tracing
from services.common.errors import GatewayError
from services.common.identity.gate import Gate
from services.common.interceptors import ServerInterceptor
from services.common.metrics import start_metrics_server
from services.common.readiness import DependencyCheck, Readiness
from services.common.settings import (
    PortUnavailable,
    ServiceSettings,
    SettingsError,
    load_settings,
)
from services.common.tracing_config import TracingSettings, tracing_settings

log = logging.getLogger("llmgw.server")

# Exit status of a process whose port could not be bound (supervisors may retry).
EXIT_PORT_UNAVAILABLE = 3

# Message size limits: conversations with long histories or tool results are large.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

# Request metadata a service accepts (name + value + 32 bytes per entry). gRPC's default
# (8 KiB, then refusals at random up to 16 KiB) lies below what Envoy's public listener
# lets through (envoy/topology.yaml limits.max_request_header_bytes, 16 KiB, plus the
# headers Envoy adds), so Envoy's limit, with its clear 431, is the one callers meet.
MAX_METADATA_BYTES = 64 * 1024

# Calls that have arrived but that the event loop has not accepted yet (grpc.aio takes
# them one at a time). gRPC's default refuses them at random beyond 1,000 and always
# beyond 3,000, as CANCELLED: a burst of 2,000 new streams lost 3-8% that way. How much
# concurrent work reaches a service is Envoy's decision (circuit breakers, max_requests
# per service and Envoy, answered with 503 + retry-after beyond); this is a backstop
# for memory, far above it.
MAX_PENDING_CALLS = 100_000

SERVER_OPTIONS: list[tuple[str, object]] = [
    # Two processes must never share a port silently (grpc enables SO_REUSEPORT).
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_CALLS),
]


# A reload step: re-read configuration and apply it, or raise and change nothing.
Hook = Callable[[], Awaitable[None]]


@dataclass
class ServiceDefinition:
    """What a service contributes to the shared skeleton."""

    # Adds the service's servicers to the server.
    register: Callable[[grpc.aio.Server], None]
    # Fully-qualified gRPC services hosted (health statuses and reflection).
    service_names: Sequence[str]
    # Further services to describe through reflection (the router describes the
    # whole public API, so `grpcurl` through Envoy sees every service).
    extra_reflection_names: Sequence[str] = ()
    # Required dependencies; while one is down the server reports NOT_SERVING.
    checks: Sequence[DependencyCheck] = ()
    # Runs after the server stopped (close clients, flush state).
    on_stop: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Runs, in order, on SIGHUP: re-read the configuration file. A hook that fails
    # must leave the service as it was (the failure is logged, the process goes on).
    on_reload: Sequence[Hook] = field(default_factory=list)
    # Authenticates calls of the public services (None: authentication off).
    gate: Gate | None = None


class ReloadRunner:
    """Runs a service's reload hooks on request (SIGHUP), one reload at a time.

    Requests arriving during a reload are folded into one more reload after it, so the
    last request always sees the file as it is after the last edit. A request before
    `attach` (the service is still being built) is kept and served once it is attached.
    A failed hook is logged; the following hooks still run.
    """

    def __init__(self) -> None:
        self._hooks: list[Hook] | None = None
        self._pending = False
        self._task: asyncio.Task[None] | None = None
        # Reloads run to the end so far (one may serve several requests).
        self.completed = 0

    def attach(self, hooks: Sequence[Hook]) -> None:
        self._hooks = list(hooks)
        if self._pending:
            self._pending = False
            self.request()

    def request(self) -> None:
        """Ask for a reload; safe to call from a loop signal handler."""
        if self._hooks is None:
            self._pending = True
            log.info("SIGHUP during startup: reloading once the service is up")
            return
        if not self._hooks:
            log.info("SIGHUP ignored: this service has nothing to reload")
            return
        if self._task is not None and not self._task.done():
            self._pending = True
            log.info("SIGHUP during a reload: reloading again afterwards")
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._pending = False
            await self._reload_once()
            self.completed += 1
            if not self._pending:
                return

    async def _reload_once(self) -> None:
        failures = 0
        for hook in self._hooks or ():
            try:
                await hook()
            except (GatewayError, SettingsError) as error:
                # Expected failures (a bad file) carry a message written for operators.
                failures += 1
                log.error("reload failed: %s", error)
            except Exception:
                failures += 1
                log.exception("reload hook failed")
        if failures:
            log.warning("reload finished with %d failed step(s)", failures)
        else:
            log.info("reloaded")

    async def idle(self) -> None:
        """Returns once no reload runs or is pending."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Cancels a reload in progress (the process is stopping)."""
        self._hooks = []
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def handle_reload_signal(loop: asyncio.AbstractEventLoop, runner: ReloadRunner) -> None:
    """SIGHUP requests a reload instead of ending the process (its default action)."""
    loop.add_signal_handler(signal.SIGHUP, runner.request)


@dataclass
class RunningServer:
    """A started server and what belongs to it."""

    server: grpc.aio.Server
    port: int
    readiness: Readiness
    definition: ServiceDefinition

    async def stop(self, grace: float) -> None:
        await self.readiness.stop()
        await self.server.stop(grace)
        for hook in self.definition.on_stop:
            try:
                await hook()
            except Exception:
                log.exception("cleanup hook failed")


async def create_server(settings: ServiceSettings, definition: ServiceDefinition) -> RunningServer:
    """Build, bind and start the server; port 0 binds a free port."""
    server = grpc.aio.server(
        interceptors=[
            ServerInterceptor(
                settings.service,
                settings.access_log,
                definition.gate,
                deadline_ceiling=settings.request_deadline,
            ),
        ],
        options=SERVER_OPTIONS,
    )
    definition.register(server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflected = dict.fromkeys(
        [
            *definition.service_names,
            *definition.extra_reflection_names,
            "grpc.health.v1.Health",
            reflection.SERVICE_NAME,
        ]
    )
    reflection.enable_server_reflection(list(reflected), server)
    address = f"{settings.host}:{settings.port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        raise PortUnavailable(f"cannot listen on {address}: in use or not available") from None
    readiness = Readiness(
        health,
        settings.service,
        definition.service_names,
        definition.checks,
        settings.readiness_interval,
    )
    await server.start()
    await readiness.start()
    return RunningServer(server, port, readiness, definition)


async def serve(
    settings: ServiceSettings,
    build: Callable[[ServiceSettings], Awaitable[ServiceDefinition]],
    trace_settings: TracingSettings | None = None,
) -> None:
    """Run one service until SIGTERM/SIGINT, then stop gracefully.

    Tracing is set up before the service is built: its channels take their client
    interceptors when they are made.
    """
    logs.configure(settings.replica or settings.service, settings.log_level)
    tracing.configure(trace_settings, settings.service, settings.replica)
    loop = asyncio.get_running_loop()
    # Installed before the (possibly slow) build: a SIGHUP then must not kill us.
    reloads = ReloadRunner()
    handle_reload_signal(loop, reloads)
    metrics_port = start_metrics_server(settings.host, settings.metrics_port)
    definition = await build(settings)
    running = await create_server(settings, definition)
    reloads.attach(definition.on_reload)
    log.info(
        "serving",
        extra={"port": running.port, "metrics_port": metrics_port, "replica": settings.replica},
    )
    if settings.port_file is not None:
        write_port_file(settings.port_file, running.port, metrics_port)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down", extra={"grace_s": settings.shutdown_grace})
    await reloads.close()
    await running.stop(settings.shutdown_grace)
    # The last spans (this shutdown's RPCs among them) go out before the process ends.
    await asyncio.to_thread(tracing.shutdown)
    log.info("stopped")


def write_port_file(path: Path, port: int, metrics_port: int) -> None:
    """Bound ports as JSON, written atomically so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"port": port, "metrics_port": metrics_port}))
    os.replace(partial, path)


def run(service: str, build: Callable[[ServiceSettings], Awaitable[ServiceDefinition]]) -> None:
    """Process entry point shared by every service's `__main__`.

    A bad setting, tracing variable or configuration file ends the process with one
    clear line and exit status 2 (3 when the port cannot be bound, which a supervisor may
    retry), never a traceback.
    """
    try:
        settings = load_settings(service)
        trace_settings = tracing_settings()
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve(settings, build, trace_settings))
    except SettingsError as error:
        print(f"llmgw-{service}: {error}", file=sys.stderr)
        raise SystemExit(
            EXIT_PORT_UNAVAILABLE if isinstance(error, PortUnavailable) else 2
        ) from None
