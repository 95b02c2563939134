"""deploy/entrypoint.py: the role picked from the environment, its command line, its health."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.identity.assertion import EDGE_TOKEN_ENV, edge_token
from services.common.settings import DEFAULT_PORTS, load_settings
from services.launcher import envoy_process
from services.launcher.stack import SERVICES

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.py"
COMPOSE_ENVOY = ROOT / "deploy" / "compose" / "envoy.yaml"
SECRET = "an-internal-secret-of-at-least-32-bytes"


@pytest.fixture(scope="module")
def entry() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llmgw_container_entrypoint", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    """A gRPC server with only the standard health service, on a free loopback port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_role_comes_from_the_environment(entry: ModuleType) -> None:
    assert entry.role({"LLMGW_SERVICE": "Session"}) == "session"
    assert entry.role({"LLMGW_SERVICE": "envoy"}) == "envoy"
    assert set(entry.SERVICES) == set(SERVICES)
    for bad in ({}, {"LLMGW_SERVICE": "redis"}):
        with pytest.raises(entry.EntrypointError, match="LLMGW_SERVICE must be one of"):
            entry.role(bad)


def test_service_command_line_uses_the_documented_ports(entry: ModuleType) -> None:
    argv = entry.service_argv("session", {}, ["--log-level", "DEBUG"])
    port, metrics = DEFAULT_PORTS["session"]
    assert argv[:3] == [sys.executable, "-m", "services.session"]
    assert argv[3:9] == ["--host", "0.0.0.0", "--port", str(port), "--metrics-port", str(metrics)]
    assert argv[9:11] == ["--replica", f"session-{socket.gethostname()}"]
    assert argv[11:] == ["--log-level", "DEBUG"]
    # The service's own settings parser accepts the command line.
    settings = load_settings("session", argv[3:], environ={})
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", port, metrics)
    assert settings.log_level == "DEBUG"


def test_service_command_line_honours_overrides(entry: ModuleType) -> None:
    env = {"LLMGW_PORT": "6000", "LLMGW_METRICS_PORT": "6001", "LLMGW_REPLICA": "tool-a"}
    argv = entry.service_argv("tool", {**env, "LLMGW_HOST": "127.0.0.1"}, [])
    assert argv[3:] == ["--host", "127.0.0.1", "--port", "6000", "--metrics-port", "6001"]
    with pytest.raises(entry.EntrypointError, match="LLMGW_PORT: not a port number"):
        entry.service_argv("tool", {"LLMGW_PORT": "http"}, [])
    with pytest.raises(entry.EntrypointError, match="LLMGW_METRICS_PORT"):
        entry.service_argv("tool", {"LLMGW_METRICS_PORT": "70000"}, [])


def test_envoy_command_line_runs_the_real_binary(entry: ModuleType) -> None:
    argv = entry.envoy_argv({"LLMGW_ENVOY_CONFIG": str(COMPOSE_ENVOY)}, ["--concurrency", "2"])
    assert argv[0] == str(envoy_process.envoy_binary())
    assert argv[argv.index("-c") + 1] == str(COMPOSE_ENVOY)
    assert "--use-dynamic-base-id" in argv
    assert argv[argv.index("--log-level") + 1] == "warn"
    assert argv[-2:] == ["--concurrency", "2"]
    assert entry.envoy_config_path({}) == Path("/etc/envoy/envoy.yaml")


def test_service_health_follows_grpc_health(
    entry: ModuleType, health_server: tuple[int, health.HealthServicer]
) -> None:
    port, servicer = health_server
    env = {"LLMGW_SERVICE": "router", "LLMGW_PORT": str(port)}
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert entry.main(["healthcheck"], env) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert entry.main(["healthcheck"], env) == 1


def test_service_health_fails_without_a_server(entry: ModuleType) -> None:
    env = {"LLMGW_SERVICE": "tool", "LLMGW_PORT": str(_free_port())}
    assert entry.main(["healthcheck"], env) == 1


class _Ready(BaseHTTPRequestHandler):
    body = b"LIVE\n"

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_envoy_health_follows_admin_ready(entry: ModuleType, tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = tmp_path / "envoy.yaml"
        address = {"address": "0.0.0.0", "port_value": server.server_address[1]}
        config.write_text(yaml.safe_dump({"admin": {"address": {"socket_address": address}}}))
        env = {"LLMGW_SERVICE": "envoy", "LLMGW_ENVOY_CONFIG": str(config)}
        assert entry.main(["healthcheck"], env) == 0
        _Ready.body = b"PRE_INITIALIZING\n"
        assert entry.main(["healthcheck"], env) == 1
    finally:
        _Ready.body = b"LIVE\n"
        server.shutdown()
        server.server_close()
    assert entry.main(["healthcheck"], env) == 1


def test_main_execs_the_role(entry: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(entry.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    environ = {"LLMGW_SERVICE": "investigation", "LLMGW_INTERNAL_SECRET": SECRET}
    assert entry.main(["--log-level", "ERROR"], environ) == 0
    path, argv, env = calls[0]
    assert path == sys.executable
    assert argv[1:3] == ["-m", "services.investigation"]
    assert argv[-2:] == ["--log-level", "ERROR"]
    assert env == environ


def test_envoy_gets_the_edge_token_and_none_of_the_services_secrets(
    entry: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, str]] = []
    monkeypatch.setattr(entry.os, "execve", lambda path, argv, env: calls.append(env))
    environ = {
        "LLMGW_SERVICE": "envoy",
        "LLMGW_INTERNAL_SECRET": SECRET,
        "LLMGW_ADMIN_KEY": "admin-key-0123456789abcdef",
        "PATH": "/usr/bin",
    }
    assert entry.main([], environ) == 0
    (env,) = calls
    assert env == {"LLMGW_SERVICE": "envoy", "PATH": "/usr/bin", EDGE_TOKEN_ENV: edge_token(SECRET)}


@pytest.mark.parametrize("secret", ["", "too-short"])
def test_envoy_without_a_usable_internal_secret_does_not_start(
    entry: ModuleType, capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    assert entry.main([], {"LLMGW_SERVICE": "envoy", "LLMGW_INTERNAL_SECRET": secret}) == 2
    message = capsys.readouterr().err
    assert "LLMGW_INTERNAL_SECRET must be at least 32 bytes" in message
    assert not secret or secret not in message


def test_main_reports_a_bad_environment(
    entry: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert entry.main([], {"LLMGW_SERVICE": "nope"}) == 2
    assert "LLMGW_SERVICE must be one of" in capsys.readouterr().err


def _envoy_exec(
    entry: ModuleType, monkeypatch: pytest.MonkeyPatch, **environ: str
) -> tuple[list[str], dict[str, str]]:
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(entry.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    base = {
        "LLMGW_SERVICE": "envoy",
        "LLMGW_INTERNAL_SECRET": SECRET,
        "LLMGW_ENVOY_CONFIG": str(COMPOSE_ENVOY),
    }
    assert entry.main([], {**base, **environ}) == 0
    (call,) = calls
    return call


def _config_of(argv: list[str]) -> Path:
    return Path(argv[argv.index("-c") + 1])


def test_envoy_without_an_otlp_endpoint_runs_the_rendered_config(
    entry: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, _ = _envoy_exec(entry, monkeypatch, OTEL_TRACES_SAMPLER="always_on")
    assert _config_of(argv) == COMPOSE_ENVOY


def test_envoy_with_an_otlp_endpoint_runs_a_traced_copy(
    entry: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv, env = _envoy_exec(
        entry,
        monkeypatch,
        TMPDIR=str(tmp_path),
        OTEL_EXPORTER_OTLP_ENDPOINT="http://otel-collector:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
        OTEL_SERVICE_NAME="llmgw-envoy",
    )
    config_path = _config_of(argv)
    assert config_path == tmp_path / "envoy-traced.yaml"
    config = yaml.safe_load(config_path.read_text())
    listeners = {
        listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]
        for listener in config["static_resources"]["listeners"]
    }
    for name in ("public", "internal"):
        tracing = listeners[name]["tracing"]
        assert tracing["random_sampling"] == {"value": 25.0}
        assert tracing["provider"]["typed_config"]["service_name"] == "llmgw-envoy"
    assert "tracing" not in listeners["ops"]
    clusters = [c["name"] for c in config["static_resources"]["clusters"]]
    assert clusters[-1] == "otel_collector"
    # The rendered file itself is untouched (it is the image's, read-only).
    assert "otel_collector" not in COMPOSE_ENVOY.read_text()
    assert env["OTEL_SERVICE_NAME"] == "llmgw-envoy"


def test_envoy_with_a_bad_tracing_variable_does_not_start(
    entry: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {
        "LLMGW_SERVICE": "envoy",
        "LLMGW_INTERNAL_SECRET": SECRET,
        "LLMGW_ENVOY_CONFIG": str(COMPOSE_ENVOY),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4317",
    }
    assert entry.main([], environ) == 2
    assert "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL" in (
        capsys.readouterr().err
    )
