"""Child processes of the launcher (and of integration tests): start, watch, stop.

Every process is started in its own process group and stays a child of a live
supervisor, so stopping the supervisor stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
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


def _die_with_parent(argv: Sequence[str]) -> list[str]:
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
                *_die_with_parent(self.argv),
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

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds."""
        if self.process is None or self.process.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.process.wait()

    def kill(self) -> None:
        """SIGKILL at once (tests use this to simulate a crash)."""
        self.signal(signal.SIGKILL)
