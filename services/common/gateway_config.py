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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.common.settings import SettingsError

ProviderType = Literal["openai", "azure_openai", "anthropic", "ollama"]
RoutingStrategy = Literal["priority", "weighted", "least_latency", "lowest_cost", "least_busy"]

LOCAL_PROVIDER = "local"
LOCAL_MODEL = "smollm2-135m-instruct"


class ConfigError(SettingsError):
    """The configuration file is unreadable or invalid; the message names each problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
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
    # Connection pool size towards this provider.
    max_connections: int = Field(default=1000, gt=0)


class Deployment(_Strict):
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

    @property
    def key(self) -> str:
        return self.id or f"{self.provider}/{self.model}"


class ModelEntry(_Strict):
    """A public model name, its aliases and its deployments."""

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    deployments: list[Deployment] = Field(min_length=1)
    routing: RoutingStrategy = "priority"
    fallbacks: list[str] = Field(default_factory=list)
    created: int = 0


class PrefixRule(_Strict):
    """Models not in the catalogue whose name starts with `prefix` go to `provider`."""

    prefix: str = Field(min_length=1)
    provider: str
    # Remove the prefix before calling upstream (`ollama/llama3.2` -> `llama3.2`).
    strip_prefix: bool = False


class SessionConfig(_Strict):
    """Limits of the session service."""

    default_ttl_seconds: int = Field(default=86_400, gt=0)
    max_ttl_seconds: int = Field(default=30 * 86_400, gt=0)
    max_messages: int = Field(default=10_000, gt=0)
    max_message_bytes: int = Field(default=1_048_576, gt=0)

    @model_validator(mode="after")
    def _ttl_order(self) -> SessionConfig:
        if self.default_ttl_seconds > self.max_ttl_seconds:
            raise ValueError(
                f"default_ttl_seconds ({self.default_ttl_seconds}) must not exceed "
                f"max_ttl_seconds ({self.max_ttl_seconds})"
            )
        return self


class GatewayConfig(_Strict):
    """The whole file."""

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: list[ModelEntry] = Field(default_factory=list)
    prefixes: list[PrefixRule] = Field(default_factory=list)
    default_model: str | None = None
    sessions: SessionConfig = Field(default_factory=SessionConfig)

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        problems: list[str] = []
        names: dict[str, str] = {}
        for i, entry in enumerate(self.models):
            for j, dep in enumerate(entry.deployments):
                if dep.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none"
                    problems.append(
                        f"models[{i}].deployments[{j}].provider: unknown provider "
                        f"'{dep.provider}' (configured: {known})"
                    )
            for k, name in enumerate([entry.name, *entry.aliases]):
                where = f"models[{i}]." + ("name" if k == 0 else f"aliases[{k - 1}]")
                if name in names:
                    problems.append(f"{where}: '{name}' is already used by {names[name]}")
                names[name] = where
        for i, entry in enumerate(self.models):
            for k, fallback in enumerate(entry.fallbacks):
                if fallback not in names:
                    problems.append(f"models[{i}].fallbacks[{k}]: unknown model '{fallback}'")
        for i, rule in enumerate(self.prefixes):
            if rule.provider not in self.providers:
                problems.append(f"prefixes[{i}].provider: unknown provider '{rule.provider}'")
        default = self.default_model
        if (
            default is not None
            and default not in names
            and not any(default.startswith(r.prefix) for r in self.prefixes)
        ):
            problems.append(f"default_model: unknown model '{self.default_model}'")
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
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return GatewayConfig.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = ".".join(str(p) for p in error["loc"]) or "(top level)"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{path}: {message}" if error["loc"] else message)
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


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
                    {"provider": LOCAL_PROVIDER, "model": LOCAL_MODEL, "context_window": 8192}
                ],
            }
        )
    default = environ.get("LLMGW_DEFAULT_MODEL") or (LOCAL_MODEL if local_url else None)
    if default is None and doc["models"]:
        default = doc["models"][0]["name"]
    doc["default_model"] = default
    return parse_config(doc, "default configuration")


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
