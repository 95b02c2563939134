"""Child processes of the launcher (and of integration tests): start, watch, stop.

Every process is started in its own process group and stays a child of a live
supervisor, so stopping the supervisor stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


# Ports this process handed out lately. A port is free when chosen but bound only when
# the child starts: two choices for the same stack (or for a stack whose processes have
# not started yet) must never be the same port. Bounded: the oldest are forgotten.
_HANDED_OUT: deque[int] = deque(maxlen=2048)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, to be bound a little later by a child process.

    Chosen at random below the kernel's ephemeral range: a port the kernel hands out for
    `bind(0)` or an outgoing connection meanwhile can never take it, as could happen to
    one obtained from `bind(0)` itself and released. Never one this process handed out
    among its last 2,048.
    """
    low, _high = _ephemeral_range()
    lowest = 10000
    if low - lowest >= 1000 + len(_HANDED_OUT):
        for _ in range(100):
            port = random.randrange(lowest, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _HANDED_OUT.append(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def wait_port(host: str, port: int, timeout: float, proc: ChildProcess | None = None) -> None:
    """Wait until something accepts connections on host:port; fail early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.returncode is not None:
            raise ProcessError(f"{proc.name} exited with status {proc.returncode}: {proc.tail()}")
        if port_open(host, port):
            return
        await asyncio.sleep(0.05)
    what = proc.name if proc else f"{host}:{port}"
    raise ProcessError(f"{what} did not listen within {timeout}s")


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """`argv` run so that it gets SIGTERM when its supervisor dies, even by SIGKILL.

    util-linux's `setpriv` sets the parent-death signal and execs the command. (A
    `preexec_fn` would do the same from Python, but running Python between fork and exec
    in a process that uses gRPC aborts the child now and then.) The signal follows the
    thread that started the child, which lives as long as the supervisor does.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


class ProcessError(Exception):
    """A child process failed to start or died; the message says which and why."""


@dataclass
class ChildProcess:
    """One started process, its log file and how to stop it."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *with_parent_death_signal(self.argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()

    def tail(self, lines: int = 15) -> str:
        """The last lines of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    async def stop(self, grace: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL it after `grace` seconds.

        True when it ended by itself within the grace period (or had already ended).
        """
        if self.process is None or self.process.returncode is not None:
            return True
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.process.wait()
            return False
        return True

    def kill(self) -> None:
        """SIGKILL at once (tests use this to simulate a crash)."""
        self.signal(signal.SIGKILL)
