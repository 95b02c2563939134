"""`llmgw reload` and the supervisor's SIGHUP forwarding, with stand-in processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.launcher import cli
from services.launcher.processes import ChildProcess
from services.launcher.stack import Replica, Stack, StackOptions

# Records every SIGHUP/SIGTERM it gets (one name per line); SIGTERM also ends it.
TRAP = """
import signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def record(sig, frame):
    with out.open("a") as f:
        f.write(signal.Signals(sig).name + "\\n")
    if sig == signal.SIGTERM:
        sys.exit(0)
signal.signal(signal.SIGHUP, record)
signal.signal(signal.SIGTERM, record)
out.write_text("")
while True:
    time.sleep(0.05)
"""


def _received(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_reload_without_a_stack_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--run-dir", str(tmp_path), "reload"]) == 1
    assert "no stack is running" in capsys.readouterr().err


def test_reload_signals_the_supervisor_named_in_the_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "supervisor.signals"
    supervisor = subprocess.Popen([sys.executable, "-c", TRAP, str(record)])
    try:
        _wait(record.exists)
        (tmp_path / cli.STATE_FILE).write_text(json.dumps({"pid": supervisor.pid, "state": "up"}))

        assert cli.main(["--run-dir", str(tmp_path), "reload"]) == 0

        _wait(lambda: _received(record) == ["SIGHUP"])
        assert supervisor.poll() is None
        assert f"pid {supervisor.pid}" in capsys.readouterr().out
    finally:
        supervisor.terminate()
        supervisor.wait(10)


def _trap(tmp_path: Path, name: str) -> ChildProcess:
    return ChildProcess(
        name=name,
        argv=[sys.executable, "-c", TRAP, str(tmp_path / f"{name}.signals")],
        log_path=tmp_path / "logs" / f"{name}.log",
    )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A stack whose replicas, Envoy and Redis are stand-ins that record signals."""
    stack = Stack(StackOptions(run_dir=tmp_path), progress=lambda line: None)
    for service, count in (("router", 2), ("provider", 1)):
        stack.replicas[service] = [
            Replica(service, i, 0, 0, _trap(tmp_path, f"{service}-{i + 1}")) for i in range(count)
        ]
    # A replica not started yet (or between restarts) has no process to signal.
    stack.replicas["session"] = [
        Replica("session", 0, 0, 0, ChildProcess(name="", argv=[], log_path=Path()))
    ]
    stack.envoy = _trap(tmp_path, "envoy")
    stack.redis = _trap(tmp_path, "redis")
    started = [r.process for rs in stack.replicas.values() for r in rs if r.process.argv]
    started += [stack.envoy, stack.redis]
    for process in started:
        await process.start()
    for process in started:
        path = Path(process.argv[-1])
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline, process.tail()
            await asyncio.sleep(0.02)
    yield stack
    await asyncio.gather(*(process.stop(grace=5) for process in started))


async def test_sighup_is_forwarded_to_service_replicas_only(stack: Stack, tmp_path: Path) -> None:
    assert stack.reload_services() == ["router-1", "router-2", "provider-1"]

    deadline = time.monotonic() + 10
    names = ("router-1", "router-2", "provider-1")
    while not all(_received(tmp_path / f"{n}.signals") == ["SIGHUP"] for n in names):
        assert time.monotonic() < deadline, "a replica did not get SIGHUP"
        await asyncio.sleep(0.02)
    # Stopped now, Envoy and Redis record SIGTERM as the only signal they ever got.
    assert stack.envoy is not None and stack.redis is not None
    for process in (stack.envoy, stack.redis):
        assert await process.stop(grace=5)
        assert _received(Path(process.argv[-1])) == ["SIGTERM"]
