"""Runs the installed `llmgw` console script in a pseudo-terminal, as a person would.

The script is the virtualenv's own entry point (pyproject's [project.scripts]), started
with this checkout first on PYTHONPATH so it runs the code under test. Its stderr is
always the terminal; stdout is the terminal too unless `stdout_pipe` (what a script
piping `--json` into jq sees). Output read from the terminal has its carriage returns
and the progress indicator's erase sequences left in; `Terminal.text` strips them.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LLMGW = Path(sys.executable).parent / "llmgw"


@dataclass
class Finished:
    code: int
    terminal: str  # what the terminal showed (stderr, and stdout unless piped)
    stdout: str  # the piped stdout, or "" when stdout was the terminal

    @property
    def text(self) -> str:
        """The terminal's text without carriage returns or spinner frames."""
        lines = self.terminal.replace("\x1b[K", "").split("\n")
        return "\n".join(line.rsplit("\r", 1)[-1] for line in lines)


class Terminal:
    """One `llmgw` process on a fresh pseudo-terminal."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        stdout_pipe: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        master, slave = pty.openpty()
        self._master = master
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
        environment = {**inherited, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
        self.process = subprocess.Popen(
            [str(LLMGW), *args],
            stdin=subprocess.PIPE if stdin is not None else slave,
            stdout=subprocess.PIPE if stdout_pipe else slave,
            stderr=slave,
            env=environment,
            close_fds=True,
        )
        os.close(slave)
        if stdin is not None and self.process.stdin is not None:
            self.process.stdin.write(stdin.encode())
            self.process.stdin.close()
        self._seen = b""

    def read_until(self, needle: str, timeout: float) -> str:
        """Terminal output up to and including the first `needle` (AssertionError when it
        does not appear in time or the terminal closes first)."""
        deadline = time.monotonic() + timeout
        while needle.encode() not in self._seen:
            if not self._read_some(deadline - time.monotonic()):
                raise AssertionError(f"{needle!r} never appeared; terminal: {self._seen!r}")
        return self._seen.decode("utf-8", "replace")

    def _read_some(self, timeout: float) -> bool:
        if timeout <= 0:
            return False
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            return False
        self._seen += data
        return bool(data)

    def finish(self, timeout: float = 60) -> Finished:
        deadline = time.monotonic() + timeout
        while self._read_some(deadline - time.monotonic()):
            pass
        stdout = self.process.stdout.read().decode() if self.process.stdout else ""
        code = self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self._master)
        return Finished(code, self._seen.decode("utf-8", "replace").replace("\r\n", "\n"), stdout)


def run(args: Sequence[str], **options: object) -> Finished:
    return Terminal(args, **options).finish()  # type: ignore[arg-type]
