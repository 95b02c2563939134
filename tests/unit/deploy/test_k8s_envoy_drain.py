"""`entrypoint.py drain`, Envoy's preStop hook on Kubernetes: it drains the listeners
through the admin interface, then waits until no request is in flight (or time is up)."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from services.launcher import k8s_manifests
from services.launcher.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.py"


@pytest.fixture(scope="module")
def entry() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llmgw_entrypoint_drain", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeAdmin:
    """Envoy's admin: records POST /drain_listeners, serves a queue of in-flight counts."""

    def __init__(self, active: list[int]) -> None:
        self.active = active
        self.requests: list[tuple[str, str]] = []
        admin = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: str) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                admin.requests.append(("POST", self.path))
                self._reply("OK\n")

            def do_GET(self) -> None:
                admin.requests.append(("GET", self.path))
                count = admin.active.pop(0) if len(admin.active) > 1 else admin.active[0]
                self._reply(
                    f"http.admin.downstream_rq_active: 7\n"
                    f"http.internal.downstream_rq_active: {count}\n"
                    f"http.ops.downstream_rq_active: 1\n"
                    f"http.public.downstream_rq_active: {count}\n"
                )

            def log_message(self, *_: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]


Start = Callable[[list[int]], tuple[FakeAdmin, dict[str, str]]]


@pytest.fixture
def admin_for(tmp_path: Path) -> Iterator[Start]:
    servers: list[FakeAdmin] = []

    def start(active: list[int]) -> tuple[FakeAdmin, dict[str, str]]:
        admin = FakeAdmin(active)
        threading.Thread(target=admin.server.serve_forever, daemon=True).start()
        servers.append(admin)
        config = tmp_path / "envoy.yaml"
        config.write_text(
            yaml.safe_dump({"admin": {"address": {"socket_address": {"port_value": admin.port}}}})
        )
        return admin, {"LLMGW_SERVICE": "envoy", "LLMGW_ENVOY_CONFIG": str(config)}

    yield start
    for admin in servers:
        admin.server.shutdown()
        admin.server.server_close()


def test_active_requests_counts_the_public_and_internal_listeners(entry: ModuleType) -> None:
    stats = (
        "http.public.downstream_rq_active: 3\n"
        "http.internal.downstream_rq_active: 2\n"
        "http.ops.downstream_rq_active: 1\n"
    )
    assert entry.active_requests(stats) == 5


def test_drain_waits_until_no_request_is_in_flight(entry: ModuleType, admin_for: Start) -> None:
    admin, environ = admin_for([2, 1, 0])
    assert entry.envoy_drain(environ, 30, settle=0, poll=0.01) is True
    assert admin.requests[0] == ("POST", "/drain_listeners?graceful")
    polls = [path for method, path in admin.requests if method == "GET"]
    assert len(polls) == 3 and all(p.startswith("/stats?filter=") for p in polls)


def test_drain_gives_up_after_its_timeout(entry: ModuleType, admin_for: Start) -> None:
    _, environ = admin_for([4])
    assert entry.envoy_drain(environ, 0.05, settle=0, poll=0.01) is False


def test_drain_succeeds_when_envoy_is_already_gone(entry: ModuleType, tmp_path: Path) -> None:
    config = tmp_path / "envoy.yaml"
    # A port nothing listens on: Envoy exited, nothing is left to drain.
    config.write_text(yaml.safe_dump({"admin": {"address": {"socket_address": {"port_value": 9}}}}))
    environ = {"LLMGW_SERVICE": "envoy", "LLMGW_ENVOY_CONFIG": str(config)}
    assert entry.envoy_drain(environ, 1, settle=0, poll=0.01) is True


def test_drain_is_for_envoy_only_and_takes_seconds(
    entry: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert entry.main(["drain"], {"LLMGW_SERVICE": "router"}) == 2
    assert "only Envoy" in capsys.readouterr().err
    assert entry.main(["drain", "soon"], {"LLMGW_SERVICE": "envoy"}) == 2
    assert "not a number of seconds" in capsys.readouterr().err


def test_manifests_size_the_drain_from_the_entrypoint(entry: ModuleType) -> None:
    """Envoy's termination grace covers the settle pause and the drain timeout."""
    topology = load_topology()
    assert entry.DRAIN_SETTLE_SECONDS < k8s_manifests.EXIT_MARGIN_SECONDS
    assert (
        k8s_manifests.envoy_termination_seconds(topology)
        >= k8s_manifests.envoy_drain_seconds(topology) + entry.DRAIN_SETTLE_SECONDS
    )
