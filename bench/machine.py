"""What a benchmark ran on, and when: the line every section of RESULTS.md starts with."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from services.launcher.envoy_process import envoy_binary


def measured(detail: str = "") -> str:
    """A section's "Measured ..." text: today, this machine, and `detail` after a comma."""
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return f"{today} on {machine()}" + (f", {detail}" if detail else "")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        memory = "unknown RAM"
    envoy = (
        subprocess.run(
            [str(envoy_binary()), "--version"], capture_output=True, text=True, check=False
        )
        .stdout.strip()
        .split("version:")[-1]
        .strip()
        .split("/")[1:2]
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; Envoy {envoy[0] if envoy else '?'}"
    )
