"""A throw-away data plane: fake replicas as processes, the real Envoy in front.

`envoy_stack` renders a local-mode config whose placement points at the fakes, starts
Envoy on free ports and stops every process it started on exit, whatever happened.
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.launcher import envoy_process
from services.launcher.envoy_config import DEFAULT_DESCRIPTOR, render, write_config
from services.launcher.topology import Topology, load_topology, local_placement
from tests.integration.envoy_support.fake_services import CALLS_DIR_ENV

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class FakeReplica:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _await_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError("fake replica did not report its port in time")
    line = process.stdout.readline().decode().strip()
    if not line.startswith("PORT "):
        raise RuntimeError(f"fake replica failed to start: {line!r}")
    return int(line.removeprefix("PORT "))


def spawn_fakes(
    specs: list[tuple[str, str]], calls_dir: Path, timeout: float = 20.0
) -> list[FakeReplica]:
    """Starts (kind, replica) fakes in parallel; returns them once all serve.

    They record `hang-once:` calls in `calls_dir` (see fake_services).
    """
    calls_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), CALLS_DIR_ENV: str(calls_dir)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.envoy_support.fake_server",
                "--kind",
                kind,
                "--replica",
                name,
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
        )
        for kind, name in specs
    ]
    fakes: list[FakeReplica] = []
    try:
        for (_, name), process in zip(specs, processes, strict=True):
            fakes.append(FakeReplica(name, process, _await_port(process, timeout)))
    except BaseException:
        for process in processes:
            process.kill()
            process.wait(5)
        raise
    return fakes


def fast_health_checks(topology: Topology) -> Topology:
    """The topology with health checks fast enough for a test to watch them act."""
    policy = topology.cluster_policy
    health_check = dataclasses.replace(
        policy.health_check, interval=0.25, timeout=0.5, no_traffic_interval=0.25
    )
    return dataclasses.replace(
        topology, cluster_policy=dataclasses.replace(policy, health_check=health_check)
    )


@dataclass
class EnvoyStack:
    envoy: envoy_process.EnvoyProcess
    public_port: int
    internal_port: int
    ops_port: int
    admin_port: int
    routers: list[FakeReplica]
    provider: FakeReplica
    access_log: Path
    # Where the fakes record `hang-once:` calls (fake_services.recorded_calls).
    calls_dir: Path

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    def host_health(self, cluster: str) -> dict[str, str]:
        """`/clusters` health_flags per host address of one cluster."""
        flags: dict[str, str] = {}
        for line in self.envoy.admin_get("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == cluster and parts[2] == "health_flags":
                flags[parts[1]] = parts[3]
        return flags

    def wait_health(self, cluster: str, address: str, healthy: bool, timeout: float = 10) -> str:
        """Waits until `/clusters` shows the host (un)healthy; returns its flags."""
        deadline = time.monotonic() + timeout
        while True:
            flags = self.host_health(cluster).get(address, "")
            if (flags == "healthy") == healthy:
                return flags
            if time.monotonic() > deadline:
                raise AssertionError(f"{address} in {cluster} still {flags!r}")
            time.sleep(0.05)


@contextmanager
def envoy_stack(
    work_dir: Path,
    routers: int = 2,
    fast_checks: bool = False,
    adjust: Callable[[Topology], Topology] | None = None,
) -> Iterator[EnvoyStack]:
    """Fake routers and a provider behind Envoy; everything stops on exit.

    `adjust` changes the repository's topology before rendering (a test's own limits).
    """
    with ExitStack() as cleanup:
        calls_dir = work_dir / "calls"
        fakes = spawn_fakes(
            [("router", chr(ord("a") + i)) for i in range(routers)] + [("provider", "p")],
            calls_dir,
        )
        for fake in fakes:
            cleanup.callback(fake.stop)
        descriptor = DEFAULT_DESCRIPTOR
        topology = load_topology()
        if fast_checks:
            topology = fast_health_checks(topology)
        if adjust is not None:
            topology = adjust(topology)
        # Services without a fake point at a port nobody listens on.
        nobody = [("127.0.0.1", free_port())]
        public_port, internal_port = free_port(), free_port()
        ops_port, admin_port = free_port(), free_port()
        placement = local_placement(
            topology,
            endpoints={
                "router": [("127.0.0.1", f.port) for f in fakes[:routers]],
                "provider": [("127.0.0.1", fakes[-1].port)],
                "session": nobody,
                "tool": nobody,
                "investigation": nobody,
            },
            public_port=public_port,
            internal_port=internal_port,
            ops_port=ops_port,
            admin_port=admin_port,
        )
        access_log = work_dir / "access.log"
        config = render(topology, placement, "local", descriptor, access_log_path=str(access_log))
        config_path = write_config(config, work_dir / "envoy.yaml")
        envoy = envoy_process.start(
            config_path,
            f"http://127.0.0.1:{admin_port}",
            log_path=work_dir / "envoy.log",
            concurrency=2,
            file_flush_interval_ms=50,
        )
        cleanup.callback(envoy.stop)
        stack = EnvoyStack(
            envoy,
            public_port,
            internal_port,
            ops_port,
            admin_port,
            fakes[:routers],
            fakes[-1],
            access_log,
            calls_dir,
        )
        for fake in stack.routers:
            stack.wait_health("router", fake.address, healthy=True)
        yield stack
