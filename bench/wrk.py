"""wrk runs against one URL: the POST of a JSON body, read back as a WrkResult."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class WrkResult:
    requests: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    rps: float
    # Answers whose x-llmgw-route header said `fallback`.
    fallbacks: int = 0


def wrk(url: str, concurrency: int, duration: float, body_file: Path, api_key: str) -> WrkResult:
    wrk_bin = shutil.which("wrk")
    if wrk_bin is None:
        raise SystemExit("wrk is missing: `make system-deps` installs it")
    threads = 1 if concurrency == 1 else 2
    out = subprocess.run(
        [
            wrk_bin,
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "wrk_post.lua"),
            url,
        ],
        env={**os.environ, "WRK_BODY_FILE": str(body_file), "WRK_API_KEY": api_key},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(
        r"BENCH requests=(\d+) errors=(\d+) non2xx=(\d+) fallback=(\d+) p50_us=(\d+) "
        r"p90_us=(\d+) p99_us=(\d+) rps=([\d.]+)",
        out,
    )
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    n, errors, non2xx, fallbacks, p50, p90, p99, rps = match.groups()
    return WrkResult(
        requests=int(n),
        errors=int(errors) + int(non2xx),
        p50_ms=int(p50) / 1000,
        p90_ms=int(p90) / 1000,
        p99_ms=int(p99) / 1000,
        rps=float(rps),
        fallbacks=int(fallbacks),
    )
