"""A real Prometheus and Alertmanager beside a local stack (`llmgw up --observability`).

Prometheus (Debian `prometheus`) scrapes every replica's metrics port and Envoy's ops
listener with the configuration `prometheus_config.local_jobs` renders, evaluates the
shipped rule files (deploy/prometheus/rules/*.yml) and sends alerts to the Alertmanager
(Debian `prometheus-alertmanager`) started here, whose receiver is the shipped one
(deploy/alertmanager/receiver.yml) pointed at the gateway's own webhook through Envoy's
public listener. The tool service gets PROMETHEUS_URL for this Prometheus, so an
investigation of an alert reads the Prometheus that raised it.

Which key Alertmanager presents (only when the stack requires API keys): one issued at
each start, with the bootstrap admin key, to the consumer `alertmanager` of the group
`alertmanager`, which may call the `investigation` service (and `router`, for the
investigation's model) and nothing else. Not the admin key itself: a file Alertmanager
reads would then hold the power to create keys and change every limit. The key lies in
a file of mode 0600 (`credentials_file`); the consumer's older keys are revoked, so one
key works at a time. With authentication off the webhook is called without a key.

Both listen on loopback only (neither authenticates its API): 9090 and 9093 by default,
free ports with `--dynamic-ports`. Rules are evaluated as shipped; `max_for` (tests
only) renders a copy whose `for:` durations are capped, as minutes of waiting have no
place in a test. The shipped files are never changed.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import yaml

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from services.launcher import prometheus_config
from services.launcher.processes import ChildProcess, ProcessError, free_port
from services.launcher.stack import REPO_ROOT, SERVICES, Progress, Stack

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
LOOPBACK = "127.0.0.1"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"
RECEIVER = REPO_ROOT / "deploy" / "alertmanager" / "receiver.yml"
WEBHOOK_PATH = "/v1/alertmanager/webhook"
# The identity Alertmanager's key belongs to (see the module docstring).
WEBHOOK_GROUP = "alertmanager"
WEBHOOK_CONSUMER = "alertmanager"
WEBHOOK_SERVICES = ("investigation", "router")
KEY_FILE = "llmgw-api-key"
READY_TIMEOUT = 30.0
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}
_ROUTE_TIMING = ("group_wait", "group_interval", "repeat_interval")


def duration_seconds(text: str) -> float:
    """A Prometheus duration (`90s`, `1h30m`) in seconds; ValueError for anything else."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def cap_for(document: Mapping[str, Any], cap: str) -> dict[str, Any]:
    """A copy of a rule file's document whose `for:` durations are at most `cap`
    (test-only: rules wait minutes before firing); everything else is unchanged."""
    limit = duration_seconds(cap)
    groups = []
    for group in document.get("groups", []):
        rules = []
        for source in group.get("rules", []):
            rule = dict(source)
            if "for" in rule and duration_seconds(str(rule["for"])) > limit:
                rule["for"] = cap
            rules.append(rule)
        groups.append({**group, "rules": rules})
    return {**document, "groups": groups}


def alertmanager_config(
    receiver: Mapping[str, Any],
    webhook_url: str,
    key_file: Path | None,
    timing: Mapping[str, str],
) -> dict[str, Any]:
    """The shipped receiver configuration with its webhook at `webhook_url`, presenting
    the key in `key_file` (None: no key), and the route's `timing` overrides."""
    unknown = sorted(set(timing) - set(_ROUTE_TIMING))
    if unknown:
        raise ValueError(f"not route timings: {', '.join(unknown)}")
    config = yaml.safe_load(yaml.safe_dump(dict(receiver)))
    config["route"].update(timing)
    for entry in config["receivers"]:
        for hook in entry.get("webhook_configs", []):
            hook["url"] = webhook_url
            if key_file is None:
                hook.pop("http_config", None)
            else:
                hook["http_config"] = {
                    "authorization": {"type": "Bearer", "credentials_file": str(key_file)}
                }
    return dict(config)


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class ObservabilityOptions:
    """Where Prometheus and Alertmanager listen and how fast they work."""

    # None: the defaults (9090, 9093), or free ports when the stack picks them.
    prometheus_port: int | None = None
    alertmanager_port: int | None = None
    # Scrape and rule evaluation interval.
    interval: str = prometheus_config.SCRAPE_INTERVAL
    # Tests only: every alert's `for:` capped at this (None: the rules as shipped).
    max_for: str | None = None
    # Alertmanager route timings replacing the receiver's (group_wait, ...).
    route_timing: Mapping[str, str] = field(default_factory=dict)


async def _wait_ready(process: ChildProcess, url: str, timeout: float) -> None:
    """Until `url`/-/ready answers 200 (both servers serve it); fails early on an exit."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if process.returncode is not None:
                raise ProcessError(
                    f"{process.name} exited with status {process.returncode}:\n{process.tail()}"
                )
            try:
                if (await client.get(url + "/-/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ProcessError(f"{process.name} not ready after {timeout:.0f}s")
            await asyncio.sleep(0.1)


async def issue_webhook_key(grpc_target: str, admin_key: str) -> str:
    """A new key of the webhook's consumer (group and consumer created when missing),
    every older key of it revoked."""
    metadata = (("authorization", f"Bearer {admin_key}"),)
    consumer = f"consumers/{WEBHOOK_CONSUMER}"
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        admin = identity_grpc.IdentityServiceStub(channel)
        try:
            await admin.GetGroup(
                identity_service_pb2.GetGroupRequest(name=f"groups/{WEBHOOK_GROUP}"),
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            group = identity_pb2.Group(
                display_name="Alertmanager webhook",
                allowed_models=["*"],
                allowed_services=list(WEBHOOK_SERVICES),
            )
            await admin.CreateGroup(
                identity_service_pb2.CreateGroupRequest(group=group, group_id=WEBHOOK_GROUP),
                metadata=metadata,
            )
        try:
            await admin.GetConsumer(
                identity_service_pb2.GetConsumerRequest(name=consumer), metadata=metadata
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            who = identity_pb2.Consumer(
                display_name="Alertmanager", groups=[f"groups/{WEBHOOK_GROUP}"]
            )
            await admin.CreateConsumer(
                identity_service_pb2.CreateConsumerRequest(
                    consumer=who, consumer_id=WEBHOOK_CONSUMER
                ),
                metadata=metadata,
            )
        issued = await admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent=consumer), metadata=metadata
        )
        older: list[str] = []
        page = ""
        while True:
            listed = await admin.ListApiKeys(
                identity_service_pb2.ListApiKeysRequest(parent=consumer, page_token=page),
                metadata=metadata,
            )
            older += [k.name for k in listed.api_keys if k.active and k.name != issued.api_key.name]
            page = listed.next_page_token
            if not page:
                break
        for name in older:
            await admin.RevokeApiKey(
                identity_service_pb2.RevokeApiKeyRequest(name=name), metadata=metadata
            )
    return str(issued.secret)


class Observability:
    """Prometheus and Alertmanager for one stack (a `Companion` of it)."""

    def __init__(self, options: ObservabilityOptions | None = None) -> None:
        self.options = options or ObservabilityOptions()
        self.prometheus: ChildProcess | None = None
        self.alertmanager: ChildProcess | None = None
        self._prometheus_port = self._alertmanager_port = 0
        self._dir = Path()
        self._key_needed = False

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self._prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{LOOPBACK}:{self._alertmanager_port}"

    @property
    def key_file(self) -> Path:
        return self._dir / "alertmanager" / KEY_FILE

    def plan(self, stack: Stack) -> Mapping[str, str]:
        if _binary("prometheus") is None:
            raise ProcessError(
                "--observability needs Prometheus: install the Debian package prometheus "
                "(`make system-deps`)"
            )
        if _binary("prometheus-alertmanager", "alertmanager") is None:
            raise ProcessError(
                "--observability needs Alertmanager: install the Debian package "
                "prometheus-alertmanager (`make system-deps`)"
            )
        try:
            duration_seconds(self.options.interval)
            if self.options.max_for is not None:
                duration_seconds(self.options.max_for)
        except ValueError as error:
            raise ProcessError(f"--observability: {error}") from None
        self._key_needed = stack.auth == "required"
        if self._key_needed and not stack.admin_key:
            raise ProcessError(
                "--observability with LLMGW_AUTH=required issues Alertmanager's webhook key "
                "with the bootstrap admin key: set LLMGW_ADMIN_KEY"
            )
        dynamic = stack.options.dynamic_ports
        opts = self.options
        self._prometheus_port = opts.prometheus_port or (
            free_port() if dynamic else PROMETHEUS_PORT
        )
        self._alertmanager_port = opts.alertmanager_port or (
            free_port() if dynamic else ALERTMANAGER_PORT
        )
        self._dir = stack.options.run_dir
        # The tool service's Prometheus toolset, which investigations read.
        return {"PROMETHEUS_URL": self.prometheus_url}

    def ports(self) -> Sequence[tuple[str, int]]:
        return [("Prometheus", self._prometheus_port), ("Alertmanager", self._alertmanager_port)]

    def processes(self) -> Sequence[ChildProcess]:
        return [p for p in (self.alertmanager, self.prometheus) if p is not None]

    async def start(self, stack: Stack) -> None:
        """Alertmanager first: Prometheus re-sends an alert it could not deliver only
        after a minute."""
        key_file = None
        if self._key_needed:
            try:
                key = await issue_webhook_key(stack.grpc_target, stack.admin_key)
            except grpc.aio.AioRpcError as error:
                raise ProcessError(
                    f"could not issue Alertmanager's webhook key: {error.code().name} "
                    f"{error.details()}"
                ) from None
            key_file = self.key_file
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.chmod(0o600)
            key_file.write_text(key)
        await self._start_alertmanager(stack.public_url + WEBHOOK_PATH, key_file, stack.progress)
        await self._start_prometheus(stack)

    async def _start_alertmanager(
        self, webhook: str, key_file: Path | None, progress: Progress
    ) -> None:
        binary = _binary("prometheus-alertmanager", "alertmanager")
        assert binary is not None  # checked by plan
        workdir = self._dir / "alertmanager"
        receiver = yaml.safe_load(RECEIVER.read_text())
        config = alertmanager_config(receiver, webhook, key_file, self.options.route_timing)
        config_file = workdir / "alertmanager.yml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(_HEADER + yaml.safe_dump(config, sort_keys=False))
        self.alertmanager = ChildProcess(
            name="alertmanager",
            argv=[
                binary,
                f"--config.file={config_file}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self._alertmanager_port}",
                # One instance: no gossip listener (it would take port 9094).
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            log_path=self._dir / "logs" / "alertmanager.log",
        )
        progress(f"==> starting Alertmanager on {LOOPBACK}:{self._alertmanager_port}")
        await self.alertmanager.start()
        await _wait_ready(self.alertmanager, self.alertmanager_url, READY_TIMEOUT)

    def _rule_files(self) -> list[str]:
        """The shipped rule files, or copies with `for:` capped (`max_for`)."""
        if self.options.max_for is None:
            return [str(RULES_DIR / "*.yml")]
        out = self._dir / "prometheus" / "rules"
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for source in sorted(RULES_DIR.glob("*.yml")):
            document = cap_for(yaml.safe_load(source.read_text()), self.options.max_for)
            target = out / source.name
            target.write_text(_HEADER + yaml.safe_dump(document, sort_keys=False))
            files.append(str(target))
        return files

    async def _start_prometheus(self, stack: Stack) -> None:
        binary = _binary("prometheus")
        assert binary is not None  # checked by plan
        ports = {s: [r.metrics_port for r in stack.replicas[s]] for s in SERVICES}
        jobs = prometheus_config.local_jobs(ports, urlsplit(stack.ops_url).netloc)
        config = prometheus_config.render(
            jobs,
            rule_files=self._rule_files(),
            alertmanagers=[f"{LOOPBACK}:{self._alertmanager_port}"],
            scrape_interval=self.options.interval,
            evaluation_interval=self.options.interval,
        )
        workdir = self._dir / "prometheus"
        config_file = workdir / "prometheus.yml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(_HEADER + yaml.safe_dump(config, sort_keys=False))
        self.prometheus = ChildProcess(
            name="prometheus",
            argv=[
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self._prometheus_port}",
                "--log.level=warn",
            ],
            log_path=self._dir / "logs" / "prometheus.log",
        )
        stack.progress(f"==> starting Prometheus on {LOOPBACK}:{self._prometheus_port}")
        await self.prometheus.start()
        await _wait_ready(self.prometheus, self.prometheus_url, READY_TIMEOUT)

    async def stop(self) -> None:
        if self.prometheus is not None:
            await self.prometheus.stop(grace=10)
        if self.alertmanager is not None:
            await self.alertmanager.stop(grace=10)

    def summary_lines(self) -> list[str]:
        key = f" with the key in {self.key_file}" if self._key_needed else ""
        return [
            f"  {'prometheus':<16}{self.prometheus_url:<30}scrapes every replica and Envoy, "
            f"evaluates {RULES_DIR.relative_to(REPO_ROOT)}/",
            f"  {'alertmanager':<16}{self.alertmanager_url:<30}notifies the gateway's "
            f"{WEBHOOK_PATH}{key}",
        ]


_HEADER = (
    "# Written by services/launcher/observability.py for this run of the stack; it is\n"
    "# rewritten at every start.\n"
)
