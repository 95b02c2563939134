"""The launcher starts the real Envoy while one of its ports is taken by someone else.

Only Envoy runs: the replicas it routes to point at a port nobody listens on (Envoy is
ready without healthy upstreams), so each case takes about a second.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from services.launcher import envoy_process
from services.launcher.processes import ProcessError, free_port
from services.launcher.stack import Replica, Stack, StackOptions
from services.launcher.topology import Endpoint
from tests.integration.envoy_support.stack import envoy_stack

pytestmark = pytest.mark.integration


class EnvoyOnlyStack(Stack):
    """A planned stack whose replicas are never started (restarts are recorded)."""

    def __init__(self, options: StackOptions) -> None:
        self.lines: list[str] = []
        super().__init__(options, progress=self.lines.append)
        self.restarted: list[str] = []
        self._plan()
        nobody = free_port()
        for replicas in self.replicas.values():
            for replica in replicas:
                replica.port = nobody

    async def _start_replica(self, replica: Replica) -> None:
        self.restarted.append(f"{replica.name}->{self.internal_target}")


@pytest.fixture
async def stacks() -> AsyncIterator[list[Stack]]:
    """Stacks to stop whatever the test did."""
    started: list[Stack] = []
    yield started
    for stack in started:
        await stack.stop()


def _hold(port: int) -> socket.socket:
    """Takes `port` as another process would between `free_port` and Envoy's bind."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def _bound_ports(stack: Stack) -> dict[str, int]:
    listeners = envoy_process.admin_listeners(stack.admin_url)
    return {name: listener.port for name, listener in listeners.items()}


async def test_dynamic_ports_move_a_taken_public_port(tmp_path: Path, stacks: list[Stack]) -> None:
    stack = EnvoyOnlyStack(StackOptions(run_dir=tmp_path, dynamic_ports=True))
    stacks.append(stack)
    taken = stack._public.port
    with _hold(taken):
        await stack._start_envoy()
        assert stack.envoy is not None and stack.envoy.returncode is None
        assert stack._public.port != taken
        assert _bound_ports(stack) == {
            "public": stack._public.port,
            "internal": stack._internal.port,
            "ops": stack._ops.port,
        }
    assert any(f"127.0.0.1:{taken} (public listener)" in line for line in stack.lines)
    assert stack.restarted == []


async def test_dynamic_ports_move_a_taken_internal_port_and_restart_the_replicas(
    tmp_path: Path, stacks: list[Stack]
) -> None:
    stack = EnvoyOnlyStack(StackOptions(run_dir=tmp_path, dynamic_ports=True))
    stacks.append(stack)
    taken = stack._internal.port
    with _hold(taken):
        await stack._start_envoy()
        assert _bound_ports(stack)["internal"] == stack._internal.port != taken
    replicas = [r.name for rs in stack.replicas.values() for r in rs]
    assert stack.restarted == [f"{name}->{stack.internal_target}" for name in replicas]


async def test_ports_given_explicitly_fail_naming_the_taken_one(
    tmp_path: Path, stacks: list[Stack]
) -> None:
    public, internal, ops, admin = free_port(), free_port(), free_port(), free_port()
    stack = EnvoyOnlyStack(
        StackOptions(
            run_dir=tmp_path,
            public_port=public,
            internal_port=internal,
            ops_port=ops,
            admin_port=admin,
        )
    )
    stacks.append(stack)
    with _hold(internal), pytest.raises(ProcessError) as error:
        await stack._start_envoy()
    assert f"Envoy could not listen on 127.0.0.1:{internal} (internal listener): in use?" in str(
        error.value
    )
    assert stack.envoy is not None and stack.envoy.returncode is not None


@pytest.fixture
def other_envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The admin port of another stack's Envoy, answering /ready with LIVE."""
    with envoy_stack(tmp_path_factory.mktemp("other"), routers=1) as other:
        yield other.admin_port


async def test_another_envoy_on_the_admin_port_is_not_taken_for_ours(
    tmp_path: Path, stacks: list[Stack], other_envoy: int
) -> None:
    stack = EnvoyOnlyStack(StackOptions(run_dir=tmp_path, dynamic_ports=True))
    stacks.append(stack)
    stack._admin = Endpoint(stack._admin.host, other_envoy)
    await stack._start_envoy()
    assert stack._admin.port != other_envoy
    assert _bound_ports(stack) == {
        "public": stack._public.port,
        "internal": stack._internal.port,
        "ops": stack._ops.port,
    }
    assert any(f"127.0.0.1:{other_envoy} (admin interface)" in line for line in stack.lines)


async def test_the_ops_listener_serves_metrics_and_readiness_only(
    tmp_path: Path, stacks: list[Stack]
) -> None:
    stack = EnvoyOnlyStack(StackOptions(run_dir=tmp_path, dynamic_ports=True))
    stacks.append(stack)
    await stack._start_envoy()
    bound = envoy_process.admin_listeners(stack.admin_url)
    assert stack._admin.host == "127.0.0.1"
    async with httpx.AsyncClient(base_url=stack.ops_url, timeout=5) as ops:
        metrics = await ops.get("/stats/prometheus")
        ready = await ops.get("/ready")
        refused = {
            f"{method} {path}": (await ops.request(method, path)).status_code
            for method, path in [
                ("POST", "/quitquitquit"),
                ("POST", "/healthcheck/fail"),
                ("POST", "/ready"),
                ("GET", "/clusters"),
                ("GET", "/config_dump"),
                ("GET", "/stats"),
                ("GET", "/ready/../quitquitquit"),
                ("GET", "/stats%2Fprometheus"),
            ]
        }
    assert metrics.status_code == 200
    assert "envoy_cluster_upstream_rq_total" in metrics.text
    assert (ready.status_code, ready.text.strip()) == (200, "LIVE")
    assert set(refused.values()) <= {400, 404}, refused
    assert all(code == 404 for key, code in refused.items() if "%2F" not in key), refused
    # Nothing of that reached admin: Envoy still runs, and still passes its health check.
    assert stack.envoy is not None and stack.envoy.returncode is None
    assert envoy_process.admin_ready(stack.admin_url)
    assert set(bound) == {"public", "internal", "ops"}
