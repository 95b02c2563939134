"""The gateway configuration file: provider instances, the model catalogue, prefix rules.

One YAML file is shared by the services; each reads its own sections. Values may name
environment variables as `${NAME}` or `${NAME:-default}`; credentials are referenced by
variable name (`api_key_env`) so no secret needs to live in a file. With no file, the
configuration is derived from the providers' standard variables (`OPENAI_API_KEY`,
`ANTHROPIC_API_KEY`, `OLLAMA_HOST`, ...) or, with none set, the embedded local model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from services.common.backoff import Backoff
from services.common.breaker_config import BreakerSettings
from services.common.cache_config import CacheConfig
from services.common.config_base import Strict
from services.common.investigation_config import InvestigationConfig
from services.common.limits_config import RateLimitConfig, RateLimitsConfig
from services.common.settings import SettingsError
from services.common.tool_config import ToolsConfig

ProviderType = Literal["openai", "azure_openai", "anthropic", "ollama"]
RoutingStrategy = Literal["priority", "weighted", "least_latency", "lowest_cost", "least_busy"]
# What a catalogue model serves: chat completions, or embeddings (`/v1/embeddings`).
ModelKind = Literal["chat", "embedding"]

LOCAL_PROVIDER = "local"
LOCAL_MODEL = "smollm2-135m-instruct"
# Tokens one request to the embedded model may hold: llama-server's --ctx-size divided by
# its --parallel slots (services/launcher/localmodel.py; a test keeps the two in step).
LOCAL_MODEL_CONTEXT = 4096
# The embedded embeddings server the launcher starts (`LLMGW_LOCAL_EMBEDDINGS_URL`).
LOCAL_EMBEDDINGS_PROVIDER = "local-embeddings"
LOCAL_EMBEDDINGS_MODEL = "smollm2-135m-embeddings"


class ConfigError(SettingsError):
    """The configuration file is unreadable or invalid; the message names each problem.

    `violations` holds the same problems as (path, message) pairs, the path in the
    file's own terms (`models.0.deployments.1.provider`), for callers that report them
    as field violations (the admin reload RPC).
    """

    def __init__(self, message: str, violations: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.violations = violations if violations is not None else [("", message)]


class ProviderConfig(Strict):
    """One provider instance: an API family, an endpoint and a credential."""

    type: ProviderType
    # Endpoint; unset: from `base_url_env` or the SDK's standard variable / default.
    base_url: str | None = None
    base_url_env: str | None = None
    # Name of the variable holding the key; unset: the SDK's standard one.
    api_key_env: str | None = None
    # Azure OpenAI API version; unset: OPENAI_API_VERSION.
    api_version: str | None = None
    # Extra static headers sent upstream.
    headers: dict[str, str] = Field(default_factory=dict)
    # Seconds: whole request (the caller's deadline usually ends it first) and connect.
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    # Output limit sent when the caller gives none (Anthropic requires one).
    default_max_tokens: int = Field(default=4096, gt=0)
    # Connection pool size towards this provider: one connection per request or stream
    # in flight, and a request beyond it waits for a free one. As large as the
    # concurrency Envoy admits to the provider service (envoy/topology.yaml,
    # max_requests), so streams do not queue here unseen (at 1,000, half of 2,000
    # concurrent streams waited up to a whole stream's length for their first token).
    max_connections: int = Field(default=4096, gt=0)
    # Seconds a stream may go without an event (keep-alive comments do not count).
    stream_idle_timeout: float = Field(default=60.0, gt=0)
    # Bytes: largest whole unary answer (or error body), and largest single stream event
    # (an SSE event or an NDJSON line).
    max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_event_bytes: int = Field(default=1024 * 1024, gt=0)


# Deployment ids of prefix-routed models start with this; a configured id may not.
PREFIX_ROUTE = "prefix:"


class Deployment(Strict):
    """One place a public model is served: a provider instance and its model name."""

    provider: str
    model: str
    id: str = ""
    weight: int = Field(default=1, ge=0)
    max_concurrency: int = Field(default=0, ge=0)
    # Prices in currency units per million tokens.
    input_price: float = Field(default=0.0, ge=0)
    output_price: float = Field(default=0.0, ge=0)
    cached_input_price: float | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    tags: list[str] = Field(default_factory=list)
    # Requests and tokens this deployment takes, across every router replica (a request
    # refused here moves on to the next deployment, as an unavailable one does).
    rate_limits: RateLimitConfig | None = None

    @property
    def key(self) -> str:
        return self.id or f"{self.provider}/{self.model}"


class RetryConfig(Strict):
    """How one request retries an upstream failure that is retryable."""

    # Calls to one deployment for one request (1: never the same deployment twice).
    attempts_per_deployment: int = Field(default=2, ge=1, le=10)
    # Upstream calls for one request across every deployment and fallback model.
    max_attempts: int = Field(default=6, ge=1, le=50)
    # Exponential backoff between calls to the same deployment, in seconds.
    backoff_initial: float = Field(default=0.1, gt=0)
    backoff_max: float = Field(default=5.0, gt=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    # Each wait is scaled by a random factor in [1 - jitter, 1 + jitter].
    jitter: float = Field(default=0.2, ge=0, le=1)
    # A provider's Retry-After longer than this is not waited for on the same
    # deployment: the request moves on to the next deployment or fallback.
    max_retry_after: float = Field(default=30.0, ge=0)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial, self.backoff_max, self.backoff_multiplier, self.jitter)


class BreakerConfig(BreakerSettings):
    """A circuit breaker per deployment, its state shared by router replicas in Redis."""

    # Seconds between each replica's refresh of the shared state.
    sync_interval: float = Field(default=0.25, gt=0)


class HealthConfig(Strict):
    """Periodic provider health checks (CheckProvider) run by each router replica."""

    # Seconds between checks; 0 disables them.
    interval_seconds: float = Field(default=30.0, ge=0)
    timeout_seconds: float = Field(default=5.0, gt=0)


class RoutingConfig(Strict):
    """Retries, breakers, health checks and the inputs of the routing strategies."""

    retries: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    # Weight of the newest sample in the latency / time-to-first-token moving averages.
    latency_smoothing: float = Field(default=0.3, gt=0, le=1)
    # A deployment whose latest latency sample is older than this is measured again
    # (least_latency tries it as if it had none), so a recovered deployment is noticed.
    latency_stale_seconds: float = Field(default=30.0, gt=0)
    # Output tokens assumed by lowest_cost when the request sets no max_tokens.
    estimated_output_tokens: int = Field(default=256, gt=0)


class ModelEntry(Strict):
    """A public model name, its aliases and its deployments."""

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    # Chat models answer chat completions only, embedding models embeddings only (their
    # `input_price` is per million input tokens).
    kind: ModelKind = "chat"
    deployments: list[Deployment] = Field(min_length=1)
    routing: RoutingStrategy = "priority"
    # Models tried, in order, when every deployment of this one failed or is open.
    fallbacks: list[str] = Field(default_factory=list)
    created: int = 0
    # Response cache for this model: None follows `cache.enabled`.
    cache: bool | None = None
    # Seconds a cached answer of this model lives; None: `cache.ttl_seconds`.
    cache_ttl_seconds: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _deployments(self) -> ModelEntry:
        problems: list[str] = []
        seen: dict[str, int] = {}
        for j, dep in enumerate(self.deployments):
            if dep.id.startswith(PREFIX_ROUTE):
                problems.append(
                    f"deployments.{j}.id: must not start with '{PREFIX_ROUTE}' "
                    "(prefix rules use it)"
                )
            if dep.key in seen:
                problems.append(
                    f"deployments.{j}: '{dep.key}' repeats deployments.{seen[dep.key]} "
                    "(give each an `id`)"
                )
            seen[dep.key] = j
        if self.routing == "weighted" and not any(d.weight for d in self.deployments):
            problems.append("routing: weighted needs at least one deployment with weight > 0")
        if self.name in self.fallbacks or any(a in self.fallbacks for a in self.aliases):
            problems.append("fallbacks: a model cannot fall back to itself")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PrefixRule(Strict):
    """Models not in the catalogue whose name starts with `prefix` go to `provider`."""

    prefix: str = Field(min_length=1)
    provider: str
    # Remove the prefix before calling upstream (`ollama/llama3.2` -> `llama3.2`).
    strip_prefix: bool = False


class SessionConfig(Strict):
    """Limits of the session service."""

    default_ttl_seconds: int = Field(default=86_400, gt=0)
    max_ttl_seconds: int = Field(default=30 * 86_400, gt=0)
    max_messages: int = Field(default=10_000, gt=0)
    max_message_bytes: int = Field(default=1_048_576, gt=0)
    # Largest system_prompt, and largest context (serialized), of a session: both are
    # stored with it and returned by every Get and List.
    max_settings_bytes: int = Field(default=262_144, gt=0)

    @model_validator(mode="after")
    def _ttl_order(self) -> SessionConfig:
        if self.default_ttl_seconds > self.max_ttl_seconds:
            raise ValueError(
                f"default_ttl_seconds ({self.default_ttl_seconds}) must not exceed "
                f"max_ttl_seconds ({self.max_ttl_seconds})"
            )
        return self


class GatewayConfig(Strict):
    """The whole file."""

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: list[ModelEntry] = Field(default_factory=list)
    prefixes: list[PrefixRule] = Field(default_factory=list)
    default_model: str | None = None
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    rate_limits: RateLimitsConfig = Field(default_factory=RateLimitsConfig)
    investigations: InvestigationConfig = Field(default_factory=InvestigationConfig)

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        problems: list[str] = []
        names: dict[str, str] = {}
        for i, entry in enumerate(self.models):
            for j, dep in enumerate(entry.deployments):
                if dep.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none"
                    problems.append(
                        f"models.{i}.deployments.{j}.provider: unknown provider "
                        f"'{dep.provider}' (configured: {known})"
                    )
            for k, name in enumerate([entry.name, *entry.aliases]):
                where = f"models.{i}." + ("name" if k == 0 else f"aliases.{k - 1}")
                if name in names:
                    problems.append(f"{where}: '{name}' is already used by {names[name]}")
                names[name] = where
        kinds = {n: e.kind for e in self.models for n in (e.name, *e.aliases)}
        for i, entry in enumerate(self.models):
            for k, fallback in enumerate(entry.fallbacks):
                if fallback not in names:
                    problems.append(f"models.{i}.fallbacks.{k}: unknown model '{fallback}'")
                elif kinds[fallback] != entry.kind:
                    problems.append(
                        f"models.{i}.fallbacks.{k}: '{fallback}' is of kind {kinds[fallback]}, "
                        f"this model of kind {entry.kind}"
                    )
        for i, rule in enumerate(self.prefixes):
            if rule.provider not in self.providers:
                problems.append(f"prefixes.{i}.provider: unknown provider '{rule.provider}'")
        default = self.default_model
        if (
            default is not None
            and default not in names
            and not any(default.startswith(r.prefix) for r in self.prefixes)
        ):
            problems.append(f"default_model: unknown model '{self.default_model}'")
        elif default is not None and kinds.get(default) == "embedding":
            problems.append(f"default_model: '{default}' is an embedding model")
        if problems:
            raise ValueError("; ".join(problems))
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, environ: Mapping[str, str]) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string of a loaded document."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [expand_env(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, environ) for k, v in value.items()}
    return value


def parse_config(document: Any, source: str = "configuration") -> GatewayConfig:
    """Validate a loaded document; every problem is named with its path."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping", [("", "the top level must be a mapping")]
        )
    try:
        return GatewayConfig.model_validate(document)
    except ValidationError as exc:
        violations: list[tuple[str, str]] = []
        for error in exc.errors():
            path = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            # A cross-reference check reports several problems, each prefixed with its path.
            for part in message.split("; "):
                where, sep, said = part.partition(": ")
                if sep and " " not in where:
                    violations.append((".".join(x for x in (path, where) if x), said))
                else:
                    violations.append((path, part))
        problems = [f"{path}: {said}" if path else said for path, said in violations]
        raise ConfigError(f"{source}: " + "; ".join(problems), violations) from None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """The file at `path`, or the default derived from the environment."""
    env = os.environ if environ is None else environ
    if path is None:
        return default_config(env)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    return parse_config(expand_env(document, env), str(path))


# Well-known models served by name when their provider is configured from the
# environment. Prices (per million tokens) and windows as published by the providers;
# override them with a configuration file.
_KNOWN_MODELS: dict[str, list[dict[str, Any]]] = {
    "openai": [
        {
            "model": "gpt-4o",
            "input_price": 2.5,
            "output_price": 10.0,
            "cached_input_price": 1.25,
            "context_window": 128_000,
        },
        {
            "model": "gpt-4o-mini",
            "input_price": 0.15,
            "output_price": 0.6,
            "cached_input_price": 0.075,
            "context_window": 128_000,
        },
        {
            "model": "gpt-4.1",
            "input_price": 2.0,
            "output_price": 8.0,
            "cached_input_price": 0.5,
            "context_window": 1_047_576,
        },
        {
            "model": "gpt-4.1-mini",
            "input_price": 0.4,
            "output_price": 1.6,
            "cached_input_price": 0.1,
            "context_window": 1_047_576,
        },
    ],
    "anthropic": [
        {
            "model": "claude-sonnet-4-5",
            "input_price": 3.0,
            "output_price": 15.0,
            "cached_input_price": 0.3,
            "context_window": 200_000,
        },
        {
            "model": "claude-haiku-4-5",
            "input_price": 1.0,
            "output_price": 5.0,
            "cached_input_price": 0.1,
            "context_window": 200_000,
        },
        {
            "model": "claude-opus-4-1",
            "input_price": 15.0,
            "output_price": 75.0,
            "cached_input_price": 1.5,
            "context_window": 200_000,
        },
    ],
}
_PREFIXES: dict[str, list[str]] = {
    "openai": ["gpt-", "o1", "o3", "o4-", "chatgpt-"],
    "anthropic": ["claude-"],
}


def default_config(environ: Mapping[str, str]) -> GatewayConfig:
    """Providers from their standard variables; with none, the embedded local model."""
    doc: dict[str, Any] = {"providers": {}, "models": [], "prefixes": []}
    if environ.get("OPENAI_API_KEY") or environ.get("OPENAI_BASE_URL"):
        doc["providers"]["openai"] = {"type": "openai"}
    if environ.get("ANTHROPIC_API_KEY") or environ.get("ANTHROPIC_BASE_URL"):
        doc["providers"]["anthropic"] = {"type": "anthropic"}
    for name in list(doc["providers"]):
        for known in _KNOWN_MODELS[name]:
            doc["models"].append(
                {"name": known["model"], "deployments": [{"provider": name, **known}]}
            )
        doc["prefixes"] += [{"prefix": p, "provider": name} for p in _PREFIXES[name]]
    if environ.get("OLLAMA_HOST"):
        doc["providers"]["ollama"] = {"type": "ollama"}
        doc["prefixes"].append({"prefix": "ollama/", "provider": "ollama", "strip_prefix": True})
    local_url = environ.get("LLMGW_LOCAL_MODEL_URL", "")
    if local_url:
        doc["providers"][LOCAL_PROVIDER] = {
            "type": "openai",
            "base_url": local_url.rstrip("/") + "/v1",
            "api_key_env": "LLMGW_LOCAL_MODEL_KEY",
        }
        doc["models"].append(
            {
                "name": LOCAL_MODEL,
                "aliases": ["local"],
                "deployments": [
                    {
                        "provider": LOCAL_PROVIDER,
                        "model": LOCAL_MODEL,
                        "context_window": LOCAL_MODEL_CONTEXT,
                    }
                ],
            }
        )
    default = environ.get("LLMGW_DEFAULT_MODEL") or (LOCAL_MODEL if local_url else None)
    if default is None and doc["models"]:
        default = doc["models"][0]["name"]
    _add_embedding_models(doc, environ)
    doc["default_model"] = default
    return parse_config(doc, "default configuration")


def _add_embedding_models(doc: dict[str, Any], environ: Mapping[str, str]) -> None:
    """OpenAI's small embedding model with OpenAI, and the embedded embeddings server
    when the launcher started one (after the chat models: never the default)."""
    if "openai" in doc["providers"]:
        doc["models"].append(
            {
                "name": "text-embedding-3-small",
                "kind": "embedding",
                "deployments": [
                    {"provider": "openai", "model": "text-embedding-3-small", "input_price": 0.02}
                ],
            }
        )
    url = environ.get("LLMGW_LOCAL_EMBEDDINGS_URL", "")
    if url:
        doc["providers"][LOCAL_EMBEDDINGS_PROVIDER] = {
            "type": "openai",
            "base_url": url.rstrip("/") + "/v1",
            "api_key_env": "LLMGW_LOCAL_MODEL_KEY",
        }
        doc["models"].append(
            {
                "name": LOCAL_EMBEDDINGS_MODEL,
                "aliases": ["local-embeddings"],
                "kind": "embedding",
                "deployments": [
                    {"provider": LOCAL_EMBEDDINGS_PROVIDER, "model": LOCAL_EMBEDDINGS_MODEL}
                ],
            }
        )


def needs_local_model(path: Path | None, environ: Mapping[str, str]) -> bool:
    """Whether the launcher must start the embedded model: no file and no provider."""
    if path is not None:
        return False
    keys = (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OLLAMA_HOST",
    )
    return not any(environ.get(k) for k in keys)
