"""`llmgw up/status/down` as a user runs them: nothing it started outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes import DEFAULT_TEXT

pytestmark = pytest.mark.integration


def _processes_using(path: Path, redis_url: str = "") -> list[int]:
    """Pids of a stack: whose command line names its run dir, and its Redis.

    Redis rewrites its process title to `...redis-server host:port`, so it is found by address.
    """
    redis = "redis-server " + redis_url.removeprefix("redis://").split("/")[0] if redis_url else ""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline or (redis and redis in cmdline):
            found.append(int(entry.name))
    return found


def _llmgw(run_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "--run-dir", str(run_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fake OpenAI upstream process and a gateway config pointing at it."""
    port_file = tmp_path / "fake.port"
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "openai", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if port_file.exists():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}/v1"
        config = tmp_path / "gateway.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "providers": {"openai": {"type": "openai", "base_url": url}},
                    "models": [
                        {"name": "m", "deployments": [{"provider": "openai", "model": "m"}]}
                    ],
                    "default_model": "m",
                }
            )
        )
        yield url, config
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(10)


def test_detached_stack_serves_reports_and_stops_cleanly(
    tmp_path: Path, upstream: tuple[str, Path]
) -> None:
    run_dir = tmp_path / "run"
    _url, config = upstream
    started = _llmgw(
        run_dir,
        "up",
        "--detach",
        "--dynamic-ports",
        "--config",
        str(config),
        "--replicas",
        "router=2",
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "llm-gateway is up" in started.stdout
        state = json.loads((run_dir / "stack.json").read_text())
        reply = httpx.post(
            state["public_url"] + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert reply.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
        status = _llmgw(run_dir, "status")
        assert status.returncode == 0 and "router-2" in status.stdout
        # Redis, two routers, provider, session, tool, investigation, Envoy, supervisor.
        assert len(_processes_using(run_dir, state["redis_url"])) == 9
        second = _llmgw(run_dir, "up", "--dynamic-ports", "--config", str(config))
        assert second.returncode == 1 and "already running" in second.stdout
    finally:
        stopped = _llmgw(run_dir, "down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert _processes_using(run_dir, state["redis_url"]) == []
    assert _llmgw(run_dir, "status").returncode == 3  # "no stack is running"


def test_killed_supervisor_takes_its_children_along(
    tmp_path: Path, upstream: tuple[str, Path]
) -> None:
    run_dir = tmp_path / "run"
    _url, config = upstream
    started = _llmgw(run_dir, "up", "--detach", "--dynamic-ports", "--config", str(config))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        state = json.loads((run_dir / "stack.json").read_text())
        assert len(_processes_using(run_dir, state["redis_url"])) == 8
        os.kill(state["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while _processes_using(run_dir, state["redis_url"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_using(run_dir, state["redis_url"]) == []
    finally:
        _llmgw(run_dir, "down")  # whatever failed above, leave nothing running


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("providers: {p: {type: nonsense}}\n")
    result = _llmgw(tmp_path / "run", "up", "--dynamic-ports", "--config", str(config))
    assert result.returncode == 1
    assert "providers.p.type" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
