"""A whole gateway for integration tests: fake upstreams and the real stack.

The fakes run as their own processes (the provider service reaches them over HTTP as it
would reach OpenAI, Anthropic or Ollama); the stack is the launcher's `Stack` on free
ports. Both run on a dedicated event-loop thread, so tests keep their own loops and talk
to the gateway only over the network, as clients do.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.common.gateway_config import LOCAL_EMBEDDINGS_MODEL, LOCAL_EMBEDDINGS_PROVIDER
from services.launcher.localmodel import LOCAL_MODEL_NAME, LocalModelServer
from services.launcher.processes import ChildProcess, wait_port
from services.launcher.stack import REPO_ROOT, Companion, Stack, StackOptions
from tests.fakes.control import FakeControl
from tests.support.trust import Metadata, edge_metadata, vouched_metadata

FAKE_KEYS = {
    "openai": "sk-fake-openai-key",
    "anthropic": "sk-ant-fake-key",
    "ollama": "",
    "downstream": "",
}
# Sent by the `weather` tool as a header (a `${NAME}` reference the tool service expands).
FAKE_WEATHER_KEY = "fake-weather-key"
# The bootstrap admin key of every test gateway unless its `env` names another: the admin
# RPCs need it whatever the auth mode.
DEFAULT_ADMIN_KEY = "test-gateway-admin-key-0123456789"


@dataclass
class FakeUpstream:
    """One fake provider process."""

    kind: str
    port: int
    process: ChildProcess

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a provider's base URL setting must be for this fake."""
        return self.root_url + ("/v1" if self.kind == "openai" else "")

    def control(self) -> FakeControl:
        return FakeControl(self.root_url)


def gateway_config(fakes: Mapping[str, FakeUpstream]) -> dict[str, Any]:
    """Catalogue over the three fakes: names, an alias, prefixes and a default."""
    return {
        "providers": {
            "openai": {
                "type": "openai",
                "base_url": fakes["openai"].base_url,
                "api_key_env": "FAKE_OPENAI_KEY",
            },
            "anthropic": {
                "type": "anthropic",
                "base_url": fakes["anthropic"].base_url,
                "api_key_env": "FAKE_ANTHROPIC_KEY",
            },
            "ollama": {"type": "ollama", "base_url": fakes["ollama"].base_url},
        },
        "models": [
            {
                "name": "gpt-4o-mini",
                "aliases": ["fast"],
                # Prices per million tokens (tests/integration/test_usage.py checks costs).
                "deployments": [
                    {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "input_price": 0.15,
                        "output_price": 0.6,
                        "cached_input_price": 0.075,
                    }
                ],
            },
            {
                "name": "claude-sonnet",
                "deployments": [{"provider": "anthropic", "model": "claude-sonnet-4-6"}],
            },
            {"name": "llama", "deployments": [{"provider": "ollama", "model": "llama3.2"}]},
            # The one model with the response cache on (tests/integration/test_cache.py).
            {
                "name": "cached-mini",
                "deployments": [{"provider": "openai", "model": "gpt-4o-mini"}],
                "cache": True,
            },
            # Embedding models (tests/integration/test_embeddings_sdk.py): OpenAI's, with
            # the response cache on, falling back to Ollama's.
            {
                "name": "text-embedding-3-small",
                "kind": "embedding",
                "fallbacks": ["nomic-embed-text"],
                "cache": True,
                "deployments": [
                    {"provider": "openai", "model": "text-embedding-3-small", "input_price": 0.02}
                ],
            },
            {
                "name": "nomic-embed-text",
                "kind": "embedding",
                "deployments": [
                    {"provider": "ollama", "model": "nomic-embed-text", "input_price": 0.01}
                ],
            },
        ],
        "prefixes": [
            {"prefix": "gpt-", "provider": "openai"},
            {"prefix": "claude-", "provider": "anthropic"},
            {"prefix": "ollama/", "provider": "ollama", "strip_prefix": True},
        ],
        "default_model": "gpt-4o-mini",
        **({"tools": tools_config(fakes["downstream"])} if "downstream" in fakes else {}),
    }


def tools_config(downstream: FakeUpstream) -> dict[str, Any]:
    """Built-in tools over the downstream fake, and one tool of the file over it."""
    return {
        "allowed_hosts": ["127.0.0.1"],
        "downstream": {"search_url": downstream.root_url, "agents_url": downstream.root_url},
        "definitions": [
            {
                "name": "weather",
                "description": "Current weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "minLength": 1}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
                "http": {
                    "method": "GET",
                    "url_template": downstream.root_url + "/weather/{city}",
                    "headers": {"X-Weather-Key": "${FAKE_WEATHER_KEY}"},
                },
            }
        ],
    }


@dataclass
class Gateway:
    """A running gateway and the fakes behind it."""

    stack: Stack
    fakes: dict[str, FakeUpstream]
    config_path: Path | None

    @property
    def public_url(self) -> str:
        return self.stack.public_url

    @property
    def grpc_target(self) -> str:
        return self.stack.grpc_target

    @property
    def internal_target(self) -> str:
        return self.stack.internal_target

    @property
    def admin_url(self) -> str:
        return self.stack.admin_url

    @property
    def admin_key(self) -> str:
        return self.stack.admin_key

    @property
    def admin_metadata(self) -> Metadata:
        """gRPC metadata presenting the bootstrap admin key."""
        return (("authorization", f"Bearer {self.admin_key}"),)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin_key}"}

    @property
    def internal_secret(self) -> str:
        """The secret the stack's services share (generated per stack)."""
        return self.stack.internal_secret

    def edge_metadata(self) -> Metadata:
        """What Envoy's public listener adds: for calls straight to a service's port."""
        return edge_metadata(self.internal_secret)

    def vouched_metadata(self, consumer: str = "", key_name: str = "") -> Metadata:
        """A principal assertion, as a gateway service sends with its calls."""
        return vouched_metadata(self.internal_secret, consumer=consumer, key_name=key_name)

    def router_metric(self, name: str, **labels: str) -> list[float]:
        """A Prometheus sample on each router replica, summed over the labels not given."""
        values = []
        for replica in self.stack.replicas["router"]:
            url = f"http://127.0.0.1:{replica.metrics_port}/metrics"
            text = httpx.get(url, timeout=5).text
            values.append(
                sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == name
                    and all(sample.labels.get(k) == v for k, v in labels.items())
                )
            )
        return values

    def reset_fakes(self) -> None:
        for fake in self.fakes.values():
            with fake.control() as control:
                control.reset()


async def _start_fake(kind: str, run_dir: Path, record: bool = True) -> FakeUpstream:
    port_file = run_dir / f"fake-{kind}.port"
    port_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "tests.fakes", kind, "--port", "0", "--port-file", str(port_file)]
    if FAKE_KEYS[kind]:
        argv += ["--api-key", FAKE_KEYS[kind]]
    if not record:
        argv.append("--no-record")
    process = ChildProcess(
        name=f"fake-{kind}",
        argv=argv,
        log_path=run_dir / "logs" / f"fake-{kind}.log",
        cwd=REPO_ROOT,
    )
    await process.start()
    for _ in range(200):
        if port_file.exists():
            break
        if process.returncode is not None:
            raise RuntimeError(f"fake {kind} exited: {process.tail()}")
        await asyncio.sleep(0.05)
    port = int(port_file.read_text())
    await wait_port("127.0.0.1", port, 10, process)
    return FakeUpstream(kind, port, process)


class _LoopThread:
    """An event loop on its own thread: processes started here outlive test loops."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop")
        self._thread.daemon = True
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 180) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _stack(
    run_dir: Path,
    document: dict[str, Any] | None,
    replicas: Mapping[str, int] | None,
    env: Mapping[str, str],
    log_level: str,
    *,
    redis_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    companions: Sequence[Companion] = (),
) -> tuple[Stack, Path | None]:
    """The stack over `document` as its configuration file; None: no file at all."""
    config_path: Path | None = None
    if document is not None:
        config_path = run_dir / "gateway.yaml"
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    stack = Stack(
        StackOptions(
            run_dir=run_dir,
            replicas=dict(replicas or {}),
            config_path=config_path,
            dynamic_ports=True,
            local_model=False,
            restart_crashed=False,
            log_level=log_level,
            env=dict(env),
            redis_url=redis_url,
            companions=companions,
        ),
        progress=progress or (lambda line: None),
    )
    return stack, config_path


@contextmanager
def running_gateway(
    run_dir: Path,
    *,
    replicas: Mapping[str, int] | None = None,
    configure: Callable[[dict[str, Any]], None] | None = None,
    env: Callable[[Mapping[str, FakeUpstream]], Mapping[str, str]] | None = None,
    config_file: bool = True,
    record: bool = True,
    log_level: str = "INFO",
    redis_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    companions: Sequence[Companion] = (),
) -> Iterator[Gateway]:
    """Fake upstreams and the stack; everything stops on exit, whatever happened.

    `env` gives extra variables for the services once the fakes' addresses are known;
    `config_file=False` starts them with no configuration file, as `make up` does with
    only provider variables set. `record=False` keeps the fakes from logging requests
    (long benchmarks). `redis_url`: an external Redis instead of the stack's own;
    `progress` receives the launcher's output lines; `companions` start beside the stack
    (e.g. services/launcher/observability.py's Prometheus and Alertmanager).
    """
    thread = _LoopThread()
    fakes: dict[str, FakeUpstream] = {}
    stack: Stack | None = None
    try:
        for kind in ("openai", "anthropic", "ollama", "downstream"):
            fakes[kind] = thread.call(_start_fake(kind, run_dir, record))
        document = gateway_config(fakes) if config_file else None
        if configure is not None and document is not None:
            configure(document)
        keys = {
            "FAKE_OPENAI_KEY": FAKE_KEYS["openai"],
            "FAKE_ANTHROPIC_KEY": FAKE_KEYS["anthropic"],
            "FAKE_WEATHER_KEY": FAKE_WEATHER_KEY,
            "LLMGW_ADMIN_KEY": DEFAULT_ADMIN_KEY,
        }
        extra = env(fakes) if env is not None else {}
        stack, config_path = _stack(
            run_dir,
            document,
            replicas,
            {**keys, **extra},
            log_level,
            redis_url=redis_url,
            progress=progress,
            companions=companions,
        )
        thread.call(stack.start())
        yield Gateway(stack=stack, fakes=fakes, config_path=config_path)
    finally:
        if stack is not None:
            thread.call(stack.stop())
        for fake in fakes.values():
            thread.call(fake.process.stop(grace=5))
        thread.close()


def local_model_config(
    base_url: str, downstream: FakeUpstream | None = None, embeddings_url: str = ""
) -> dict[str, Any]:
    """The embedded model through both adapters that can reach llama-server (and the
    tools over the downstream fake, when one runs; and the embeddings server as the
    default catalogue names it, when one runs)."""
    document: dict[str, Any] = {
        "providers": {
            "local": {"type": "openai", "base_url": base_url + "/v1"},
            "local-anthropic": {"type": "anthropic", "base_url": base_url},
        },
        "models": [
            {
                "name": LOCAL_MODEL_NAME,
                "aliases": ["local"],
                "deployments": [{"provider": "local", "model": LOCAL_MODEL_NAME}],
            },
            {
                "name": "local-anthropic",
                "deployments": [{"provider": "local-anthropic", "model": LOCAL_MODEL_NAME}],
            },
        ],
        "default_model": LOCAL_MODEL_NAME,
        **({"tools": tools_config(downstream)} if downstream is not None else {}),
    }
    if embeddings_url:
        document["providers"][LOCAL_EMBEDDINGS_PROVIDER] = {
            "type": "openai",
            "base_url": embeddings_url + "/v1",
        }
        document["models"].append(
            {
                "name": LOCAL_EMBEDDINGS_MODEL,
                "aliases": ["local-embeddings"],
                "kind": "embedding",
                "deployments": [
                    {"provider": LOCAL_EMBEDDINGS_PROVIDER, "model": LOCAL_EMBEDDINGS_MODEL}
                ],
            }
        )
    return document


@contextmanager
def running_local_model_gateway(run_dir: Path) -> Iterator[Gateway]:
    """The stack over the real local model (llama-server), built on first use, with the
    downstream fake behind the tool service."""
    thread = _LoopThread()
    server = LocalModelServer(log_path=run_dir / "logs" / "llama-server.log", startup_timeout=120)
    embeddings = LocalModelServer(
        log_path=run_dir / "logs" / "llama-embeddings.log", startup_timeout=120, embeddings=True
    )
    stack: Stack | None = None
    downstream: FakeUpstream | None = None
    started = embedding = False
    try:
        thread.call(server.start(), timeout=1800)
        started = True
        thread.call(embeddings.start(), timeout=300)
        embedding = True
        downstream = thread.call(_start_fake("downstream", run_dir))
        document = local_model_config(server.base_url, downstream, embeddings.base_url)
        env = {"FAKE_WEATHER_KEY": FAKE_WEATHER_KEY, "LLMGW_ADMIN_KEY": DEFAULT_ADMIN_KEY}
        stack, config_path = _stack(run_dir, document, None, env, "INFO")
        thread.call(stack.start())
        yield Gateway(stack=stack, fakes={"downstream": downstream}, config_path=config_path)
    finally:
        if stack is not None:
            thread.call(stack.stop())
        if downstream is not None:
            thread.call(downstream.process.stop(grace=5))
        if embedding:
            thread.call(embeddings.stop())
        if started:
            thread.call(server.stop())
        thread.close()
