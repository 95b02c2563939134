"""What the eval runs against: one gateway for the whole run (auth required, one
investigation replica), one fake Kubernetes API whose scenario is switched between
investigations, a real Prometheus for the error-rate scenario, and, for the real-model
mode, llama-server serving the embedded model.

One fake switched over `POST /_fake/scenario` rather than one fake per scenario: the Tool
service reads KUBECONFIG once at start, so a fake per scenario means a Tool-service
restart per scenario; the switch is a request (its time is measured and reported).
The context cache is off, so no scenario sees another's tool output.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import json_format

from eval.prometheus import running_error_rate_prometheus
from eval.scenarios import Scenario
from llmgw.identity.v1 import identity_pb2
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.investigation.v1 import investigation_service_pb2_grpc as inv_grpc
from services.common.gateway_config import LOCAL_MODEL_CONTEXT
from services.launcher.localmodel import LOCAL_MODEL_NAME, LocalModelServer
from services.launcher.stack import REPO_ROOT
from tests.fakes import Behaviour
from tests.fakes.control import AsyncFakeControl
from tests.fakes.kubernetes_fake import CONTROL_PATH
from tests.support.gateway import DEFAULT_ADMIN_KEY, Gateway, running_gateway
from tests.support.identity import Identity, create_identity
from tests.support.kube import write_kubeconfig

SCRIPTED_MODEL = "eval-scripted"
SCRIPTED_UPSTREAM = "eval-scripted-upstream"
REAL_MODEL = LOCAL_MODEL_NAME
KUBE_TOKEN = "eval-fake-kube-token-0123456789"
# Limits of the real-model mode: one step, the conclusion. The fifteen tool definitions
# (about 9.4 KB of JSON schema) do not fit the model's 4,096-token slot beside the
# context, so the service offers it none (services/investigation/prompts.py budget_for)
# and it concludes from the context the analyzers also read.
REAL_LIMITS = {"max_steps": 1, "time_limit": "90s"}
# The service's default time limit (`investigations.defaults.time_limit_seconds`), and
# how long beyond its time limit an investigation's stream is waited for.
DEFAULT_TIME_LIMIT_SECONDS = 300.0
RPC_SLACK_SECONDS = 60.0
FINAL_STATES = frozenset(
    {
        inv_pb2.INVESTIGATION_STATE_SUCCEEDED,
        inv_pb2.INVESTIGATION_STATE_FAILED,
        inv_pb2.INVESTIGATION_STATE_CANCELLED,
    }
)


@dataclass
class Run:
    """One finished investigation and how long it took end to end."""

    investigation: inv_pb2.Investigation
    seconds: float


@dataclass
class Environment:
    """The running parts and the caller the eval investigates as."""

    gateway: Gateway
    kube_url: str
    caller: Identity
    switch_ms: list[float] = field(default_factory=list)
    kube_start_seconds: float = 0.0
    prometheus_start_seconds: float = 0.0

    async def use_kube_scenario(self, name: str) -> None:
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=self.kube_url, timeout=10) as client:
            answer = await client.post(CONTROL_PATH, json={"name": name})
        answer.raise_for_status()
        self.switch_ms.append((time.perf_counter() - started) * 1000)

    async def script(self, turns: Sequence[Behaviour]) -> None:
        """The scripted model's conversation from now on (the fake OpenAI upstream)."""
        async with AsyncFakeControl(self.gateway.fakes["openai"].root_url) as control:
            await control.set_conversation(SCRIPTED_UPSTREAM, turns)

    async def investigate(
        self, scenario: Scenario, model: str, limits: dict[str, Any] | None = None
    ) -> Run:
        """`scenario`'s alert investigated with `model` (`none`: analyzers alone), to its
        final state (RunInvestigation's stream), then read back as stored."""
        await self.use_kube_scenario(scenario.kube)
        spec: dict[str, Any] = {"alert": scenario.alert.request(), "model": model}
        if limits:
            spec["limits"] = limits
        investigation = json_format.ParseDict(spec, inv_pb2.Investigation())
        limit = str((limits or {}).get("time_limit", ""))
        timeout = (float(limit[:-1]) if limit else DEFAULT_TIME_LIMIT_SECONDS) + RPC_SLACK_SECONDS
        started = time.monotonic()
        async with grpc.aio.insecure_channel(self.gateway.grpc_target) as channel:
            stub = inv_grpc.InvestigationServiceStub(channel)
            name = ""
            final = inv_pb2.INVESTIGATION_STATE_UNSPECIFIED
            async for answer in stub.RunInvestigation(
                inv_pb2.RunInvestigationRequest(investigation=investigation),
                metadata=self.caller.metadata,
                timeout=timeout,
            ):
                name = answer.event.investigation or name
                if answer.event.WhichOneof("event") == "state":
                    final = answer.event.state
            seconds = time.monotonic() - started
            if final not in FINAL_STATES:
                raise RuntimeError(f"{scenario.name}: the stream ended in state {final}")
            stored = await stub.GetInvestigation(
                inv_pb2.GetInvestigationRequest(name=name),
                metadata=self.caller.metadata,
                timeout=30,
            )
        return Run(stored.investigation, seconds)


def _configure(local_model_url: str | None) -> Callable[[dict[str, Any]], None]:
    def configure(document: dict[str, Any]) -> None:
        document["models"].append(
            {
                "name": SCRIPTED_MODEL,
                "deployments": [{"provider": "openai", "model": SCRIPTED_UPSTREAM}],
            }
        )
        if local_model_url is not None:
            document["providers"]["local"] = {"type": "openai", "base_url": local_model_url}
            document["models"].append(
                {
                    "name": REAL_MODEL,
                    # The window the investigation sizes its prompts to (llama-server's
                    # slot), as the default catalogue states it for the embedded model.
                    "deployments": [
                        {
                            "provider": "local",
                            "model": LOCAL_MODEL_NAME,
                            "context_window": LOCAL_MODEL_CONTEXT,
                        }
                    ],
                }
            )
        document["investigations"] = {
            "default_model": SCRIPTED_MODEL,
            # Scenarios share tool arguments (the nodes, the alerts firing): no cache.
            "context_cache_seconds": 0,
        }

    return configure


@contextlib.contextmanager
def _kube_fake(run_dir: Path) -> Iterator[tuple[str, float]]:
    """The fake Kubernetes API as a process (healthy until switched): its URL and how
    long it took to serve (what a fake per scenario would cost each time, at least)."""
    port_file = run_dir / "kube.port"
    log_path = run_dir / "kube.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "tests.fakes.kubernetes_fake", "--scenario", "healthy"),
                *("--token", KUBE_TOKEN, "--port-file", str(port_file)),
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = started + 30
        while not port_file.exists():
            if process.poll() is not None:
                raise RuntimeError(log_path.read_text()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Kubernetes API did not start within 30 s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{int(port_file.read_text())}", time.monotonic() - started
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@asynccontextmanager
async def environment(
    run_dir: Path, *, real_model: bool, progress: Callable[[str], None]
) -> AsyncIterator[Environment]:
    """Everything started, in order; everything stopped on exit, whatever happened."""
    run_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        # First: a first run builds llama-server (minutes), which must not age the rest.
        local_url: str | None = None
        if real_model:
            server = LocalModelServer(
                log_path=run_dir / "llama-server.log", startup_timeout=120, progress=progress
            )
            await stack.enter_async_context(server)
            local_url = server.base_url + "/v1"
            progress(f"llama-server at {server.base_url}")
        kube_url, kube_seconds = stack.enter_context(_kube_fake(run_dir))
        kubeconfig = write_kubeconfig(run_dir / "kubeconfig", kube_url, token=KUBE_TOKEN)
        progress(f"fake Kubernetes API at {kube_url} ({kube_seconds:.2f} s to start)")
        prometheus = await stack.enter_async_context(
            running_error_rate_prometheus(run_dir / "prometheus")
        )
        progress(f"Prometheus at {prometheus.url}, alert firing")
        gateway_cm = running_gateway(
            run_dir / "gateway",
            replicas={"investigation": 1},
            configure=_configure(local_url),
            env=lambda fakes: {
                "LLMGW_AUTH": "required",
                "KUBECONFIG": str(kubeconfig),
                "PROMETHEUS_URL": prometheus.url,
            },
        )
        (run_dir / "gateway").mkdir(exist_ok=True)
        gateway = await asyncio.to_thread(gateway_cm.__enter__)
        stack.push_async_callback(asyncio.to_thread, gateway_cm.__exit__, None, None, None)
        progress(f"gateway up at {gateway.grpc_target}")
        caller = await create_identity(
            gateway.grpc_target,
            DEFAULT_ADMIN_KEY,
            group=identity_pb2.Group(
                allowed_models=["*"], allowed_services=["router", "investigation", "session"]
            ),
            prefix="eval",
        )
        yield Environment(
            gateway=gateway,
            kube_url=kube_url,
            caller=caller,
            kube_start_seconds=kube_seconds,
            prometheus_start_seconds=prometheus.start_seconds,
        )
