"""The one place that maps a provider type to its family's adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.common.gateway_config import ConfigError, ProviderConfig
from services.provider.adapters.anthropic import build_anthropic
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.ollama import build_ollama
from services.provider.adapters.openai import build_azure, build_openai

Factory = Callable[[str, ProviderConfig, Mapping[str, str]], ProviderAdapter]

FACTORIES: dict[str, Factory] = {
    "openai": build_openai,
    "azure_openai": build_azure,
    "anthropic": build_anthropic,
    "ollama": build_ollama,
}


def build_adapter(name: str, config: ProviderConfig, environ: Mapping[str, str]) -> ProviderAdapter:
    """Raises ConfigError for an unknown type or a missing endpoint setting."""
    factory = FACTORIES.get(config.type)
    if factory is None:
        known = ", ".join(sorted(FACTORIES))
        raise ConfigError(
            f"providers.{name}.type: unknown provider type '{config.type}' (known: {known})"
        )
    return factory(name, config, environ)


def build_adapters(
    providers: Mapping[str, ProviderConfig], environ: Mapping[str, str]
) -> dict[str, ProviderAdapter]:
    return {name: build_adapter(name, config, environ) for name, config in providers.items()}
