"""Where a provider instance lives and which credential it uses.

Endpoint precedence: the file's `base_url`, then the variable named by `base_url_env`,
then the family's standard variable (`OPENAI_BASE_URL`, ...), then the family's default.
The key comes from the variable named by `api_key_env`, else the family's standard one.
Keys are read once here and handed to the provider's client; they are never logged,
never put in an error message and never returned by an RPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from services.common.gateway_config import ConfigError, ProviderConfig

# Sent as the key to servers that need none (vLLM, llama.cpp): the SDKs require one.
NO_KEY = "no-key"


@dataclass(frozen=True)
class Credential:
    """An API key (None when unset) and the variable it is read from."""

    variable: str
    value: str | None = field(default=None, repr=False)


def resolve_base_url(
    name: str,
    config: ProviderConfig,
    environ: Mapping[str, str],
    *,
    standard_variable: str | None,
    default: str | None,
) -> str:
    """The endpoint; a missing one is a configuration error, reported at start-up."""
    if config.base_url:
        return config.base_url
    if config.base_url_env:
        value = environ.get(config.base_url_env, "")
        if not value:
            raise ConfigError(
                f"providers.{name}.base_url_env: environment variable "
                f"{config.base_url_env} is not set"
            )
        return value
    if standard_variable and environ.get(standard_variable):
        return environ[standard_variable]
    if default is None:
        hint = f" or {standard_variable}" if standard_variable else ""
        raise ConfigError(f"providers.{name}: no endpoint: set base_url, base_url_env{hint}")
    return default


def resolve_credential(
    config: ProviderConfig,
    environ: Mapping[str, str],
    standard_variable: str,
    *,
    official: bool,
) -> Credential:
    """The key named by `api_key_env`, else the family's standard variable, which serves
    the family's own (`official`) endpoint or the one its standard URL variable names.
    Any other endpoint named in the file gets a key only through `api_key_env`: a
    provider's key never reaches a third-party or local server by accident."""
    if config.api_key_env:
        variable = config.api_key_env
    elif official or not (config.base_url or config.base_url_env):
        variable = standard_variable
    else:
        return Credential("api_key_env")
    return Credential(variable, environ.get(variable) or None)


def same_host(url: str, other: str) -> bool:
    return urlsplit(url).hostname == urlsplit(other).hostname


def public_url(url: str) -> str:
    """`url` without user information or query, safe to show (ListProviders, logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
