"""What ListModels and GetModel show: the catalogue plus what prefix-routed providers list.

Provider listings are cached for a minute and fetched with a short timeout; a provider
that cannot list is logged and counted, and the catalogue is still answered.
"""

from __future__ import annotations

import asyncio
import logging
import time

from llmgw.common.v1 import error_reason_pb2
from llmgw.router.v1 import router_service_pb2 as router_pb2
from services.common.errors import GatewayError, NotFound
from services.common.gateway_config import ModelEntry
from services.router.catalog import Catalog
from services.router.metrics import MODEL_LISTING_FAILURES
from services.router.provider_client import ProviderClient

log = logging.getLogger("llmgw.router.models")

LISTING_TTL_SECONDS = 60.0
LISTING_TIMEOUT_SECONDS = 3.0


class ModelDirectory:
    def __init__(self, provider: ProviderClient) -> None:
        self._provider = provider
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def _listed(self, provider: str) -> list[str] | None:
        """Model ids a provider lists (cached), or None when it cannot list now."""
        cached = self._cache.get(provider)
        if cached is not None and time.monotonic() - cached[0] < LISTING_TTL_SECONDS:
            return cached[1]
        try:
            models = await self._provider.list_models(provider, LISTING_TIMEOUT_SECONDS)
        except GatewayError as error:
            MODEL_LISTING_FAILURES.labels(provider).inc()
            log.warning("provider %s cannot list models: %s", provider, error.message)
            return None
        ids = [m.id for m in models]
        self._cache[provider] = (time.monotonic(), ids)
        return ids

    async def list(self, catalog: Catalog) -> list[router_pb2.Model]:
        models = [_catalogue_model(entry, catalog) for entry in catalog.entries]
        seen = {m.id for m in models}
        rules = catalog.prefixes
        listings = await asyncio.gather(*(self._listed(r.provider) for r in rules))
        for rule, ids in zip(rules, listings, strict=True):
            for upstream in sorted(ids or []):
                name = rule.prefix + upstream if rule.strip_prefix else upstream
                if not name.startswith(rule.prefix) or name in seen:
                    continue
                seen.add(name)
                models.append(_provider_model(name, rule.provider, catalog))
        return models

    async def get(self, catalog: Catalog, name: str) -> router_pb2.Model:
        resolved = catalog.resolve(name)
        if resolved.entry is not None:
            return _catalogue_model(resolved.entry, catalog)
        provider = resolved.deployments[0].provider
        listed = await self._listed(provider)
        if listed is not None and resolved.deployments[0].model not in listed:
            raise NotFound(
                f"model '{name}' not found at provider '{provider}'",
                reason=error_reason_pb2.ERROR_REASON_MODEL_NOT_FOUND,
                resource_type="model",
                resource_name=name,
            )
        return _provider_model(resolved.name, provider, catalog)


def _catalogue_model(entry: ModelEntry, catalog: Catalog) -> router_pb2.Model:
    first = entry.deployments[0]
    return router_pb2.Model(
        id=entry.name,
        object="model",
        created=entry.created or catalog.loaded_at,
        owned_by=first.provider,
        aliases=entry.aliases,
        context_window=first.context_window or 0,
        max_output_tokens=first.max_output_tokens or 0,
        source="catalogue",
    )


def _provider_model(name: str, provider: str, catalog: Catalog) -> router_pb2.Model:
    return router_pb2.Model(
        id=name, object="model", created=catalog.loaded_at, owned_by=provider, source="provider"
    )
