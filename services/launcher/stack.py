"""The whole gateway on one machine as supervised child processes.

Start order: Redis (unless an external one is given), the local model's chat and
embeddings servers (only when no provider is configured), every service replica (each
waited for until its gRPC health says SERVING), then Envoy rendered from the topology for
exactly these replicas. Stop order is the reverse. While running, a crashed replica is restarted.
SIGHUP to the supervisor is forwarded to every service replica (configuration reload).
With OTEL_EXPORTER_OTLP_ENDPOINT set (the services' environment, else the launcher's),
Envoy is rendered with tracing and every service traces to the same collector; each
process gets a service name of its own (`tracing_names`). Companions (`Companion`, e.g.
Prometheus and Alertmanager in services/launcher/observability.py) start last, once
Envoy is up, and stop first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.gateway_config import load_config, needs_local_model
from services.common.identity.assertion import (
    EDGE_TOKEN_ENV,
    MIN_SECRET_BYTES,
    check_secret,
    edge_token,
)
from services.common.redaction import url_without_password
from services.common.server import EXIT_PORT_UNAVAILABLE
from services.common.settings import DEFAULT_PORTS, SettingsError, is_loopback
from services.common.tracing_config import (
    SERVICE_NAME_ENV,
    TracingConfigError,
    TracingSettings,
    tracing_settings,
)
from services.launcher import envoy_config, envoy_process, local_embeddings, localmodel
from services.launcher.processes import ChildProcess, ProcessError, free_port, port_open, wait_port
from services.launcher.redis_process import redis_process
from services.launcher.topology import (
    Endpoint,
    Placement,
    Topology,
    load_topology,
    local_placement,
)
from services.tool.toolsets import enabled_toolsets

log = logging.getLogger("llmgw.launcher")

SERVICES = ("router", "provider", "session", "tool", "investigation")
REPO_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO_ROOT / "gen" / "descriptor" / "llmgw.binpb"
METRICS_PORT_STEP = 100
EMBEDDED_REDIS_PORT = 6390
BIND_ATTEMPTS = 5
LOCAL_MODEL_PORT = 8090
INTERNAL_SECRET_ENV = "LLMGW_INTERNAL_SECRET"
# What configures the tool service's read-only toolsets (services/tool/toolsets).
TOOLSET_ENV = ("KUBECONFIG", "PROMETHEUS_URL", "PROMETHEUS_TOKEN")
# Secrets of the services that Envoy must not inherit from the launcher's environment.
_NOT_FOR_ENVOY = (INTERNAL_SECRET_ENV, "LLMGW_ADMIN_KEY", "PROMETHEUS_TOKEN")

Progress = Callable[[str], None]


class Companion(Protocol):
    """Processes that run beside the stack, started once Envoy is up and stopped before
    anything else: they read the stack (its replicas' metrics ports, its public address)
    and the services may need to know where they will be (`plan`)."""

    def plan(self, stack: Stack) -> Mapping[str, str]:
        """Choose addresses before anything starts (refusing a setup that cannot work);
        returns variables for the services' environment."""
        ...

    def ports(self) -> Sequence[tuple[str, int]]:
        """(what, port) on loopback that must be free before the stack starts."""
        ...

    async def start(self, stack: Stack) -> None: ...

    async def stop(self) -> None: ...

    def processes(self) -> Sequence[ChildProcess]:
        """What the supervisor watches: one of them exiting stops the stack."""
        ...

    def summary_lines(self) -> list[str]: ...


@dataclass
class StackOptions:
    """What to run and where; defaults are the documented ports."""

    run_dir: Path
    host: str = "127.0.0.1"
    public_port: int | None = None
    internal_port: int | None = None
    ops_port: int | None = None
    admin_port: int | None = None
    replicas: Mapping[str, int] = field(default_factory=dict)
    config_path: Path | None = None
    # An external Redis; None starts a private one (data under run_dir/redis).
    redis_url: str | None = None
    redis_port: int = EMBEDDED_REDIS_PORT
    # None: start the embedded model exactly when no provider is configured.
    local_model: bool | None = None
    local_model_port: int = LOCAL_MODEL_PORT
    # Tests: every port picked free instead of the documented defaults.
    dynamic_ports: bool = False
    # Extra environment for the services (provider endpoints, keys, settings).
    env: Mapping[str, str] = field(default_factory=dict)
    restart_crashed: bool = True
    log_level: str = "INFO"
    companions: Sequence[Companion] = ()


@dataclass
class Replica:
    """One service replica: its ports and its process."""

    service: str
    index: int
    port: int
    metrics_port: int
    process: ChildProcess
    restarts: int = 0

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index + 1}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


class Stack:
    """Starts, supervises and stops one local stack."""

    def __init__(self, options: StackOptions, progress: Progress = print) -> None:
        self.options = options
        self.progress = progress
        self.topology: Topology = load_topology()
        self.replicas: dict[str, list[Replica]] = {}
        self.redis: ChildProcess | None = None
        self.redis_url = options.redis_url or ""
        self.local_model: ChildProcess | None = None
        self.local_model_url = ""
        self.local_embeddings: ChildProcess | None = None
        self.local_embeddings_url = ""
        self.envoy: ChildProcess | None = None
        self.placement: Placement | None = None
        self._public = self._internal = self._ops = self._admin = Endpoint("127.0.0.1", 0)
        self._env = dict(options.env)
        self._stopping = False
        # "off" or "required", decided by `_decide_auth` when the stack is planned.
        self.auth = "off"
        # Signs service-to-service calls; given or generated by `_decide_secret`.
        self.internal_secret = ""
        # Tracing of Envoy and the services (None: off), decided by `_decide_tracing`.
        self.tracing: TracingSettings | None = None

    # Addresses -------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.options.run_dir / "logs"

    def _port(self, default: int) -> int:
        return free_port() if self.options.dynamic_ports else default

    @property
    def public_url(self) -> str:
        return f"http://{self.grpc_target}"

    @property
    def grpc_target(self) -> str:
        return f"{self._public.host}:{self._public.port}"

    @property
    def internal_target(self) -> str:
        return f"{self._internal.host}:{self._internal.port}"

    @property
    def ops_url(self) -> str:
        """The read-only ops listener (GET /stats/prometheus, GET /ready)."""
        return f"http://{self._ops.host}:{self._ops.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self._admin.host}:{self._admin.port}"

    # Start -----------------------------------------------------------------------

    def _plan(self) -> None:
        """Ports of every listener and replica (0: the replica binds one and reports it)."""
        opts = self.options
        unknown = sorted(set(opts.replicas) - set(SERVICES))
        if unknown:
            raise ProcessError(f"unknown service in --replicas: {', '.join(unknown)}")
        self._decide_auth()
        self._decide_secret()
        self._decide_tracing()
        for companion in opts.companions:
            self._env.update(companion.plan(self))
        listeners = self.topology.listeners
        # Only the public and the read-only ops listener may face the network; the rest
        # stays on loopback.
        self._public = Endpoint(opts.host, opts.public_port or self._port(listeners.public))
        self._internal = Endpoint("127.0.0.1", opts.internal_port or self._port(listeners.internal))
        self._ops = Endpoint(opts.host, opts.ops_port or self._port(listeners.ops))
        self._admin = Endpoint("127.0.0.1", opts.admin_port or self._port(listeners.admin))
        for service in SERVICES:
            count = opts.replicas.get(service, 1)
            if count < 1:
                raise ProcessError(f"--replicas {service}={count}: at least 1")
            port, metrics = DEFAULT_PORTS[service]
            step = self.topology.replica_port_step
            self.replicas[service] = [
                Replica(
                    service=service,
                    index=i,
                    port=0 if opts.dynamic_ports else port + step * i,
                    metrics_port=0 if opts.dynamic_ports else metrics + METRICS_PORT_STEP * i,
                    process=ChildProcess(name="", argv=[], log_path=Path()),
                )
                for i in range(count)
            ]

    def _decide_auth(self) -> None:
        """API keys are optional only while Envoy's public listener is on loopback.

        LLMGW_AUTH (the services' environment, else the launcher's) may require them
        anywhere; on any other address the stack refuses to start without them.
        """
        requested = (self._env.get("LLMGW_AUTH") or os.environ.get("LLMGW_AUTH", "")).lower()
        if requested not in ("", "off", "required"):
            raise ProcessError(f"LLMGW_AUTH must be off or required, not {requested!r}")
        host = self.options.host
        if requested != "required" and not is_loopback(host):
            raise ProcessError(
                f"refusing to listen on {host} without authentication: set "
                "LLMGW_AUTH=required (and LLMGW_ADMIN_KEY to create the first keys), or "
                "keep --host on loopback"
            )
        self.auth = requested or "off"
        self._env["LLMGW_AUTH"] = self.auth
        if self.auth == "off":
            self.progress(
                f"==> authentication off: Envoy listens on loopback only ({host}), so no "
                "API key is needed; set LLMGW_AUTH=required to require keys"
            )
        else:
            admin_key = self._env.get("LLMGW_ADMIN_KEY") or os.environ.get("LLMGW_ADMIN_KEY")
            self.progress(
                "==> authentication required: every public RPC needs an API key"
                + ("" if admin_key else " (no LLMGW_ADMIN_KEY: only keys already issued work)")
            )

    def _decide_secret(self) -> None:
        """The internal secret every service shares: LLMGW_INTERNAL_SECRET (the services'
        environment, else the launcher's), or a random one for this stack alone. It is
        passed to the services and never printed; Envoy gets only the edge token derived
        from it."""
        given = self._env.get(INTERNAL_SECRET_ENV) or os.environ.get(INTERNAL_SECRET_ENV, "")
        if given:
            try:
                check_secret(given)
            except ValueError:
                raise ProcessError(
                    f"{INTERNAL_SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes"
                ) from None
            self.internal_secret = given
        else:
            self.internal_secret = secrets.token_urlsafe(48)
        self._env[INTERNAL_SECRET_ENV] = self.internal_secret

    def _decide_tracing(self) -> None:
        """Tracing from the OTEL_* variables (the services' environment, else the
        launcher's); a bad value stops the start here with the variable's name."""
        try:
            self.tracing = tracing_settings({**os.environ, **self._env})
        except TracingConfigError as error:
            raise ProcessError(str(error)) from None
        if self.tracing is not None:
            self.progress(
                f"==> tracing to {self.tracing.collector.url} ({self.tracing.protocol}, "
                f"{self.tracing.sampler}, {self.tracing.sampling_percent:g}% of new traces)"
            )

    @property
    def admin_key(self) -> str:
        """The bootstrap admin key the services were given ("" for none)."""
        return self._env.get("LLMGW_ADMIN_KEY") or os.environ.get("LLMGW_ADMIN_KEY", "")

    def _envoy_env(self) -> dict[str, str]:
        env = dict.fromkeys(_NOT_FOR_ENVOY, "")
        env[EDGE_TOKEN_ENV] = edge_token(self.internal_secret)
        return env

    def _place(self) -> Placement:
        """Where Envoy finds everything, once every replica is listening."""
        return local_placement(
            self.topology,
            host=self._public.host,
            endpoints={
                service: [("127.0.0.1", r.port) for r in replicas]
                for service, replicas in self.replicas.items()
            },
            public_port=self._public.port,
            internal_port=self._internal.port,
            ops_port=self._ops.port,
            admin_port=self._admin.port,
        )

    def _check_ports_free(self) -> None:
        wanted = [
            ("Envoy public listener", self._public.port),
            ("Envoy internal listener", self._internal.port),
            ("Envoy ops listener", self._ops.port),
            ("Envoy admin", self._admin.port),
        ]
        for replicas in self.replicas.values():
            for r in replicas:
                wanted += [(r.name, r.port), (f"{r.name} metrics", r.metrics_port)]
        for companion in self.options.companions:
            wanted += companion.ports()
        busy = [
            f"{what} ({port})" for what, port in wanted if port and port_open("127.0.0.1", port)
        ]
        if busy:
            raise ProcessError(
                "ports already in use: " + ", ".join(busy) + " — is another stack running? "
                "(`make down`), or choose other ports"
            )

    async def _start_redis(self) -> None:
        if self.redis_url:
            self.progress(f"==> using Redis at {url_without_password(self.redis_url)}")
            return
        port = self._port(self.options.redis_port)
        self.redis = redis_process(self.options.run_dir / "redis", port)
        self.progress(f"==> starting Redis on 127.0.0.1:{port}")
        await self.redis.start()
        await wait_port("127.0.0.1", port, 15, self.redis)
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    async def _start_local_model(self) -> None:
        wanted = self.options.local_model
        if wanted is None:
            environ = {**os.environ, **self._env}
            wanted = needs_local_model(self.options.config_path, environ)
        if not wanted:
            return
        self.progress("==> no provider configured: serving the embedded local model")
        install = await asyncio.to_thread(localmodel.ensure_llama_server, self.progress)
        model = await asyncio.to_thread(localmodel.ensure_model, self.progress)
        port = self._port(self.options.local_model_port)
        self.local_model = ChildProcess(
            name="llama-server",
            argv=localmodel.server_argv(install, model, "127.0.0.1", port),
            log_path=self.logs / "llama-server.log",
        )
        # The embeddings server: the same weights in llama-server's embeddings-only mode,
        # on a port of its own (see services/launcher/local_embeddings.py).
        embeddings_port = free_port()
        self.local_embeddings = ChildProcess(
            name="llama-embeddings",
            argv=local_embeddings.embeddings_argv(install, model, "127.0.0.1", embeddings_port),
            log_path=self.logs / "llama-embeddings.log",
        )
        self.progress(
            f"==> starting llama-server on 127.0.0.1:{port} and its embeddings server on "
            f"127.0.0.1:{embeddings_port}"
        )
        await self.local_model.start()
        self.local_model_url = f"http://127.0.0.1:{port}"
        await self.local_embeddings.start()
        self.local_embeddings_url = f"http://127.0.0.1:{embeddings_port}"
        await asyncio.gather(
            localmodel.wait_healthy(self.local_model_url, 120),
            localmodel.wait_healthy(self.local_embeddings_url, 120, self.local_embeddings),
        )
        self._env.setdefault("LLMGW_LOCAL_MODEL_URL", self.local_model_url)
        self._env.setdefault(local_embeddings.EMBEDDINGS_URL_ENV, self.local_embeddings_url)

    def _toolset_env(self) -> dict[str, str]:
        """The toolsets' variables (the services' environment, else the launcher's); a
        relative KUBECONFIG made absolute, as the services run from the repository."""
        env = {}
        for name in TOOLSET_ENV:
            value = self._env.get(name) or os.environ.get(name, "")
            if value:
                env[name] = value
        if "KUBECONFIG" in env:
            env["KUBECONFIG"] = os.pathsep.join(
                str(Path(part).expanduser().resolve())
                for part in env["KUBECONFIG"].split(os.pathsep)
                if part
            )
        return env

    def _announce_toolsets(self) -> None:
        """Prints which read-only toolsets the tool service will run."""
        environ = {**os.environ, **self._toolset_env()}
        try:
            tools = load_config(self.options.config_path, {**environ, **self._env}).tools
            enabled = enabled_toolsets(tools.toolsets, environ)
        except SettingsError as error:
            self.progress(f"!! toolsets: {error}")
            return
        if enabled:
            self.progress(f"==> toolsets enabled: {', '.join(enabled)}")
        else:
            self.progress("==> toolsets: none (set KUBECONFIG or PROMETHEUS_URL to enable)")

    def _service_env(self, replica: Replica) -> dict[str, str]:
        env = {
            **self._env,
            "LLMGW_INTERNAL_ADDR": self.internal_target,
            "LLMGW_REPLICA": replica.name,
            "LLMGW_LOG_LEVEL": self.options.log_level,
            "PYTHONUNBUFFERED": "1",
        }
        if self.redis_url:
            env["LLMGW_REDIS_URL"] = self.redis_url
        if replica.service == "tool":
            env.update(self._toolset_env())
        if self.options.config_path is not None:
            env["LLMGW_CONFIG"] = str(self.options.config_path.resolve())
        if self.tracing is not None:
            env[SERVICE_NAME_ENV] = tracing_names(self.tracing)[replica.service]
        return env

    def _port_file(self, replica: Replica) -> Path:
        return self.options.run_dir / "ports" / f"{replica.name}.json"

    def _service_process(self, replica: Replica) -> ChildProcess:
        return ChildProcess(
            name=replica.name,
            argv=[
                sys.executable,
                "-m",
                f"services.{replica.service}",
                "--host",
                "127.0.0.1",
                "--port",
                str(replica.port),
                "--metrics-port",
                str(replica.metrics_port),
                "--port-file",
                str(self._port_file(replica)),
            ],
            log_path=self.logs / f"{replica.name}.log",
            env=self._service_env(replica),
            cwd=REPO_ROOT,
        )

    async def _start_replica(self, replica: Replica) -> None:
        """Start one replica and wait until it serves; a restart keeps its ports.

        The default ports lie in the kernel's ephemeral range, so an outgoing connection
        may hold one for a moment; a replica that could not bind is started again.
        """
        port_file = self._port_file(replica)
        port_file.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(BIND_ATTEMPTS):
            port_file.unlink(missing_ok=True)
            replica.process = self._service_process(replica)
            await replica.process.start()
            try:
                ports = await wait_port_file(port_file, 60, replica.process)
                break
            except ProcessError:
                if replica.process.returncode != EXIT_PORT_UNAVAILABLE or (
                    attempt == BIND_ATTEMPTS - 1
                ):
                    raise
            await asyncio.sleep(0.5 * (attempt + 1))
        replica.port, replica.metrics_port = ports["port"], ports["metrics_port"]
        await wait_serving(replica.target, 60, replica.process)

    async def _start_services(self) -> None:
        everything = [r for replicas in self.replicas.values() for r in replicas]
        self.progress(f"==> starting {len(everything)} service replicas")
        await asyncio.gather(*(self._start_replica(r) for r in everything))

    async def _start_envoy(self) -> None:
        """Start Envoy and make sure it holds every listener of its config.

        A port chosen by `free_port` may be taken by another process before Envoy binds
        it. Envoy then exits (it does when a bootstrap listener or the admin port cannot
        bind), or, were it to run on, lacks the listener in admin /listeners. With dynamic
        ports Envoy starts again on fresh ones, a few times; with the documented ports (or
        ports given explicitly) the error names the port.
        """
        for attempt in range(BIND_ATTEMPTS):
            busy = await self._launch_envoy()
            if not busy:
                return
            where = ", ".join(
                f"{endpoint.host}:{endpoint.port} ({_envoy_socket_label(role)})"
                for role, endpoint in busy.items()
            )
            movable = self._movable_envoy_sockets()
            if attempt == BIND_ATTEMPTS - 1 or not set(busy) <= movable:
                log_path = self.envoy.log_path if self.envoy else self.logs / "envoy.log"
                raise ProcessError(f"Envoy could not listen on {where}: in use? (log: {log_path})")
            self.progress(f"!! Envoy could not listen on {where}: trying other ports")
            await self._move_envoy_sockets(set(busy))

    async def _launch_envoy(self) -> dict[str, Endpoint]:
        """One try: Envoy's sockets that could not be bound by role (empty: Envoy is up).

        Raises EnvoyError when Envoy failed for another reason than a port in use.
        """
        self.placement = self._place()
        config = envoy_config.render(
            self.topology,
            self.placement,
            "local",
            DESCRIPTOR,
            tracing=self.tracing,
            tracing_name=tracing_names(self.tracing)["envoy"] if self.tracing else None,
        )
        path = envoy_config.write_config(config, self.options.run_dir / "envoy.yaml")
        self.envoy = ChildProcess(
            name="envoy",
            argv=envoy_process.envoy_argv(path),
            log_path=self.logs / "envoy.log",
            env=self._envoy_env(),
        )
        self.progress(f"==> starting Envoy on {self.grpc_target}")
        await self.envoy.start()
        try:
            await envoy_process.wait_ready_async(self.admin_url, 30, self.envoy)
            bound = await asyncio.to_thread(envoy_process.admin_listeners, self.admin_url)
        except envoy_process.EnvoyError:
            await self.envoy.stop(grace=5)
            busy = self._envoy_sockets_in_use()
            if not busy:
                raise
            return busy
        expected = envoy_process.configured_listeners(config)
        missing = envoy_process.missing_listeners(expected, bound)
        if not missing:
            return {}
        # Whoever holds a port now names it best: another process answering on the
        # admin port makes every listener look missing.
        await self.envoy.stop(grace=5)
        return self._envoy_sockets_in_use() or {
            listener.name: Endpoint(listener.host, listener.port) for listener in missing
        }

    def _envoy_sockets(self) -> dict[str, Endpoint]:
        """Every socket Envoy binds, by role: its listeners by config name, and admin."""
        return {
            "public": self._public,
            "internal": self._internal,
            "ops": self._ops,
            "admin": self._admin,
        }

    def _envoy_sockets_in_use(self) -> dict[str, Endpoint]:
        """Envoy's sockets another process holds (call while Envoy is stopped)."""
        return {
            role: endpoint
            for role, endpoint in self._envoy_sockets().items()
            if not _bindable(endpoint)
        }

    def _movable_envoy_sockets(self) -> set[str]:
        """Roles whose port the launcher picked freely (dynamic and not given explicitly)."""
        if not self.options.dynamic_ports:
            return set()
        given = {
            "public": self.options.public_port,
            "internal": self.options.internal_port,
            "ops": self.options.ops_port,
            "admin": self.options.admin_port,
        }
        return {role for role, port in given.items() if port is None}

    async def _move_envoy_sockets(self, roles: set[str]) -> None:
        """Fresh ports for `roles`; replicas read the internal address only at start."""
        if "public" in roles:
            self._public = Endpoint(self._public.host, free_port())
        if "ops" in roles:
            self._ops = Endpoint(self._ops.host, free_port())
        if "admin" in roles:
            self._admin = Endpoint(self._admin.host, free_port())
        if "internal" in roles:
            self._internal = Endpoint(self._internal.host, free_port())
            self.progress(f"==> restarting the replicas for internal {self.internal_target}")
            everything = [r for replicas in self.replicas.values() for r in replicas]
            await asyncio.gather(*(r.process.stop(grace=15) for r in everything))
            await asyncio.gather(*(self._start_replica(r) for r in everything))

    async def start(self) -> None:
        """Start everything; on any failure, stop what was started and raise."""
        started = time.monotonic()
        self.options.run_dir.mkdir(parents=True, exist_ok=True)
        self._plan()
        self._check_ports_free()
        self._announce_toolsets()
        try:
            await self._start_redis()
            await self._start_local_model()
            await self._start_services()
            await self._start_envoy()
            for companion in self.options.companions:
                await companion.start(self)
        except BaseException:
            await self.stop()
            raise
        self.progress(f"==> stack up in {time.monotonic() - started:.1f}s")

    # Run and stop ----------------------------------------------------------------

    async def supervise(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: restart crashed replicas (with backoff), report others."""
        while not stop.is_set():
            await asyncio.sleep(0.5)
            if self._stopping:
                return
            for replicas in self.replicas.values():
                for replica in replicas:
                    code = replica.process.returncode
                    if code is None or not self.options.restart_crashed:
                        continue
                    replica.restarts += 1
                    delay = min(30.0, 0.5 * 2 ** min(replica.restarts, 6))
                    self.progress(
                        f"!! {replica.name} exited with status {code}; restarting in {delay:.1f}s "
                        f"(log: {replica.process.log_path})"
                    )
                    await asyncio.sleep(delay)
                    try:
                        await self._start_replica(replica)
                    except ProcessError as error:
                        self.progress(f"!! {replica.name} failed to restart: {error}")
            watched = [("envoy", self.envoy), ("redis", self.redis)] + [
                (proc.name, proc) for c in self.options.companions for proc in c.processes()
            ]
            for name, proc in watched:
                if proc is not None and proc.returncode is not None and not self._stopping:
                    raise ProcessError(f"{name} exited ({proc.returncode}): {proc.tail()}")

    def reload_services(self) -> list[str]:
        """SIGHUP to every running service replica; returns their names.

        Envoy, Redis and the local model's servers are left alone: their configuration does not
        come from the gateway file.
        """
        signalled = []
        for replicas in self.replicas.values():
            for replica in replicas:
                if replica.process.pid is not None and replica.process.returncode is None:
                    replica.process.signal(signal.SIGHUP)
                    signalled.append(replica.name)
        return signalled

    async def stop(self) -> None:
        """Stop everything that was started: companions, then Envoy, Redis last."""
        self._stopping = True
        for companion in reversed(self.options.companions):
            await companion.stop()
        if self.envoy is not None:
            await self.envoy.stop(grace=5)
        replicas = [r for rs in self.replicas.values() for r in rs]
        await asyncio.gather(*(r.process.stop(grace=15) for r in replicas))
        if self.local_model is not None:
            await self.local_model.stop(grace=5)
        if self.local_embeddings is not None:
            await self.local_embeddings.stop(grace=5)
        if self.redis is not None:
            await self.redis.stop(grace=10)

    def summary(self) -> str:
        lines = [
            "llm-gateway is up:",
            f"  public    {self.public_url}    REST/JSON and gRPC (Envoy)",
            f"  internal  {self.internal_target}     service-to-service gRPC (Envoy)",
            f"  ops       {self.ops_url}    read-only: GET /stats/prometheus, GET /ready",
            f"  admin     {self.admin_url}    Envoy admin, loopback only (/stats /clusters)",
        ]
        for replicas in self.replicas.values():
            for r in replicas:
                lines.append(
                    f"  {r.name:<16}{r.target:<22}metrics http://127.0.0.1:{r.metrics_port}/metrics"
                )
        lines.append(f"  redis     {url_without_password(self.redis_url)}")
        if self.local_model_url:
            lines.append(
                f"  model     {localmodel.LOCAL_MODEL_NAME} (llama-server {self.local_model_url})"
            )
        if self.local_embeddings_url:
            lines.append(
                f"  embed     {local_embeddings.EMBEDDINGS_MODEL_NAME} (llama-server "
                f"{self.local_embeddings_url}, /v1/embeddings)"
            )
        for companion in self.options.companions:
            lines += companion.summary_lines()
        lines.append(f"  logs      {self.logs}/")
        key = " -H 'authorization: Bearer <API key>'" if self.auth == "required" else ""
        lines.append(
            f"try:  curl -s {self.public_url}/v1/chat/completions -H 'content-type: "
            f"application/json'{key} -d "
            '\'{"messages":[{"role":"user","content":"Hello"}]}\''
        )
        return "\n".join(lines)


def tracing_names(tracing: TracingSettings) -> dict[str, str]:
    """The service name of each process's spans: `llmgw-<service>` (Envoy: `envoy`), or,
    when OTEL_SERVICE_NAME names the stack, `<that>-<service>` and `<that>-envoy`: one
    name for six processes would make them one service in every trace view."""
    base = tracing.service_name
    names = {service: f"{base or 'llmgw'}-{service}" for service in SERVICES}
    names["envoy"] = f"{base}-envoy" if base else "envoy"
    return names


def _envoy_socket_label(role: str) -> str:
    return "admin interface" if role == "admin" else f"{role} listener"


def _bindable(endpoint: Endpoint) -> bool:
    """Whether this process could bind the endpoint now, as Envoy would.

    SO_REUSEADDR (which Envoy sets too) lets connections left in TIME_WAIT on the port
    pass; a socket listening there, even with SO_REUSEPORT, still makes the bind fail.
    """
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((endpoint.host, endpoint.port))
        except OSError:
            return False
    return True


async def wait_port_file(path: Path, timeout: float, proc: ChildProcess) -> dict[str, int]:
    """The ports a service reports once it listens (see `--port-file`)."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            data = json.loads(path.read_text())
            return {"port": int(data["port"]), "metrics_port": int(data["metrics_port"])}
        if proc.returncode is not None:
            raise ProcessError(f"{proc.name} exited with status {proc.returncode}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise ProcessError(f"{proc.name} did not start within {timeout:.0f}s:\n{proc.tail()}")
        await asyncio.sleep(0.05)


async def wait_serving(target: str, timeout: float, proc: ChildProcess | None = None) -> None:
    """Wait until a gRPC server at `target` reports SERVING for the overall server."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc is not None and proc.returncode is not None:
                raise ProcessError(
                    f"{proc.name} exited with status {proc.returncode}:\n{proc.tail()}"
                )
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                what = proc.name if proc else target
                tail = f":\n{proc.tail()}" if proc else ""
                raise ProcessError(f"{what} not serving after {timeout:.0f}s{tail}")
            await asyncio.sleep(0.1)
