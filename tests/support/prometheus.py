"""A real Prometheus (and Alertmanager) for tests: the Debian `prometheus` and
`prometheus-alertmanager` packages, started on free ports with temporary storage.

Two ways to give Prometheus a scenario's series:
- `history`: samples with timestamps, written as OpenMetrics and turned into TSDB blocks
  by `promtool tsdb create-blocks-from openmetrics` before the server starts. Queryable
  the moment the server is ready (block creation and start take well under a second
  here), so a test can give an hour of known values and query them at once; rules
  evaluate over them too (a sample is visible for 5 minutes after its timestamp).
- `Exporter`: an in-test HTTP server with text exposition whose values the test sets and
  changes, scraped every second. Prometheus only picks up scrape targets about 5 s after
  it starts (its discovery manager batches updates), so the first scrape lands 5-7 s in:
  use it for live values, `history` for everything known up front.

Rules evaluate every second; an alerting rule with `for: 0s` fires on its first
evaluation that matches.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from aiohttp import web

from services.launcher.processes import ChildProcess, ProcessError, free_port

_T = TypeVar("_T")
INTERVAL = "1s"
READY_TIMEOUT = 30.0
# Basic auth for a Prometheus that must refuse other credentials (its web config takes
# bcrypt hashes only; this one is of BASIC_AUTH_PASSWORD, cost 4). Test-only values.
BASIC_AUTH_USER = "test"
BASIC_AUTH_PASSWORD = "test-only-password"
_BASIC_AUTH_HASH = "$2b$04$Jrrzmsy6iJKj8ayhk1frc.Nxi8/pOt6VAZbQ3xTZvlZSBRmpqmJhK"


def binary(*names: str) -> str | None:
    """The first of `names` on PATH (the Debian package names Alertmanager's binary
    `prometheus-alertmanager`, upstream calls it `alertmanager`)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def available() -> bool:
    return binary("prometheus") is not None and binary("promtool") is not None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels_text(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _value_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass(frozen=True)
class Series:
    """One series of a scenario's history: name, labels and (unix seconds, value) samples."""

    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]


def openmetrics(history: Sequence[Series]) -> str:
    """The history as OpenMetrics text (what `promtool` backfills): one family per name,
    typed `unknown`, samples in time order, `# EOF` last."""
    by_name: dict[str, list[Series]] = {}
    for series in history:
        by_name.setdefault(series.name, []).append(series)
    lines = []
    for name, family in by_name.items():
        lines.append(f"# TYPE {name} unknown")
        for series in family:
            labels = _labels_text(series.labels)
            for ts, value in sorted(series.samples):
                lines.append(f"{name}{labels} {_value_text(value)} {ts:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


async def _run(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise ProcessError(f"{argv[0]} failed ({process.returncode}): {output.decode()[-2000:]}")


async def backfill(data_dir: Path, history: Sequence[Series]) -> None:
    """TSDB blocks for `history` in `data_dir` (before Prometheus starts on it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "history.om"
    source.write_text(openmetrics(history))
    promtool = binary("promtool")
    assert promtool, "promtool (Debian package prometheus) is not installed"
    await _run(promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir))


async def wait_until(probe: Callable[[], Awaitable[_T | None]], timeout: float, what: str) -> _T:
    """`probe()`'s first answer that is not None, asked every 0.1 s. Prometheus tells no
    one when a scrape or an evaluation happened: its API is the only way to know."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        await asyncio.sleep(0.1)


async def _wait_ready(
    process: ChildProcess, url: str, timeout: float, auth: tuple[str, str] | None = None
) -> None:
    async def ready() -> bool | None:
        if process.returncode is not None:
            raise ProcessError(f"{process.name} exited ({process.returncode}): {process.tail()}")
        try:
            async with httpx.AsyncClient(timeout=1, auth=auth) as client:
                answer = await client.get(url + "/-/ready")
        except httpx.TransportError:
            return None
        return True if answer.status_code == 200 else None

    await wait_until(ready, timeout, f"{process.name} was not ready")


@dataclass
class Prometheus:
    """A running Prometheus."""

    url: str
    process: ChildProcess
    # Seconds from spawn to ready (what tests report as its start time).
    start_seconds: float

    async def api(self, path: str, **params: str) -> Any:
        """`data` of a GET on the HTTP API (for a test's own checks and waits)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            answer = (await client.get(path, params=params)).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    async def wait_for(self, query: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The instant vector of `query` once it is not empty (a first scrape, a rule's
        first evaluation)."""

        async def probe() -> list[dict[str, Any]] | None:
            result = (await self.api("/api/v1/query", query=query))["result"]
            return result or None

        return await wait_until(probe, timeout, f"no result for {query!r}")

    async def wait_for_alert(
        self, name: str, state: str = "firing", timeout: float = 20.0
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            for alert in (await self.api("/api/v1/alerts"))["alerts"]:
                if alert["labels"].get("alertname") == name and alert["state"] == state:
                    return dict(alert)
            return None

        return await wait_until(probe, timeout, f"alert {name} not {state}")


@asynccontextmanager
async def running_prometheus(
    workdir: Path,
    *,
    scrape_configs: Sequence[Mapping[str, Any]] = (),
    rule_groups: Sequence[Mapping[str, Any]] = (),
    history: Sequence[Series] = (),
    alertmanagers: Sequence[str] = (),
    basic_auth: bool = False,
    flags: Sequence[str] = (),
) -> AsyncIterator[Prometheus]:
    """Prometheus on a free port over a fresh TSDB in `workdir`, scraping and evaluating
    every second; `rule_groups` are `groups:` entries of a rule file; alerts go to the
    `alertmanagers` (`host:port`) given. With `basic_auth` its API demands
    BASIC_AUTH_USER/BASIC_AUTH_PASSWORD (the only scheme its web config checks); `flags`
    are more command-line flags (`--query.timeout=...`)."""
    prometheus = binary("prometheus")
    assert prometheus, "prometheus (Debian package prometheus) is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    if history:
        await backfill(data_dir, history)
    rule_file = workdir / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [dict(g) for g in rule_groups]}))
    config = {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(rule_file)],
        "scrape_configs": [dict(c) for c in scrape_configs],
    }
    if alertmanagers:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    extra_args = list(flags)
    if basic_auth:
        web_file = workdir / "web.yml"
        web_file.write_text(
            yaml.safe_dump({"basic_auth_users": {BASIC_AUTH_USER: _BASIC_AUTH_HASH}})
        )
        extra_args.append(f"--web.config.file={web_file}")
    port = free_port()
    process = ChildProcess(
        "prometheus",
        [
            prometheus,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            *extra_args,
        ],
        workdir / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    await process.start()
    try:
        auth = (BASIC_AUTH_USER, BASIC_AUTH_PASSWORD) if basic_auth else None
        await _wait_ready(process, url, READY_TIMEOUT, auth)
        yield Prometheus(url, process, time.monotonic() - started)
    finally:
        await process.stop(grace=5)


@dataclass
class Exporter:
    """An HTTP endpoint in text exposition format whose series the test sets."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        self.values[(name, tuple(sorted(labels.items())))] = value

    def remove(self, name: str, labels: Mapping[str, str]) -> None:
        self.values.pop((name, tuple(sorted(labels.items()))), None)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def scrape_config(self, job: str) -> dict[str, Any]:
        """The `scrape_configs` entry that scrapes this exporter as `job`."""
        return {"job_name": job, "static_configs": [{"targets": [self.target]}]}

    def exposition(self) -> str:
        lines = [
            f"{name}{_labels_text(dict(labels))} {_value_text(value)}"
            for (name, labels), value in sorted(self.values.items())
        ]
        return "\n".join(lines) + "\n"

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.exposition(), content_type="text/plain")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def running_exporter() -> AsyncIterator[Exporter]:
    exporter = Exporter()
    await exporter.start()
    try:
        yield exporter
    finally:
        await exporter.stop()


@dataclass
class Alertmanager:
    """A running Alertmanager (clustering off)."""

    url: str
    process: ChildProcess
    start_seconds: float


@asynccontextmanager
async def running_alertmanager(
    workdir: Path, config: Mapping[str, Any], *, port: int | None = None
) -> AsyncIterator[Alertmanager]:
    """Alertmanager on `port` (default: a free one) with `config` (its alertmanager.yml
    as a mapping), storage in `workdir`, and no cluster listener. A port chosen up front
    lets a Prometheus started earlier name it in `alertmanagers`, when the receiver's
    configuration needs something that Prometheus' address is needed for first."""
    alertmanager = binary("prometheus-alertmanager", "alertmanager")
    assert alertmanager, "alertmanager (Debian package prometheus-alertmanager) is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(dict(config)))
    port = port or free_port()
    process = ChildProcess(
        "alertmanager",
        [
            alertmanager,
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        workdir / "alertmanager.log",
    )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    await process.start()
    try:
        await _wait_ready(process, url, READY_TIMEOUT)
        yield Alertmanager(url, process, time.monotonic() - started)
    finally:
        await process.stop(grace=5)
