"""Wires the Provider service: configuration, one adapter per provider instance, the
servicer, and closing every client on stop.

SIGHUP rebuilds the adapters from the configuration file and swaps them in whole; the
replaced ones are closed once the calls still using them have ended. A file that does
not load leaves the running adapters untouched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable

import grpc

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.gateway_config import ConfigError, load_config
from services.common.identity.wiring import build_gate
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.registry import build_adapters
from services.provider.adapters.unconfigured import UnconfiguredAdapter
from services.provider.metrics import ModelLabels
from services.provider.servicer import ProviderServicer

SERVICE_NAME = provider_pb2.DESCRIPTOR.services_by_name["ProviderService"].full_name

log = logging.getLogger("llmgw.provider")

# Longest a replaced adapter waits for its calls to end before it is closed anyway: the
# default whole-request timeout of a provider instance.
RETIRE_TIMEOUT = 600.0


async def build(settings: ServiceSettings) -> ServiceDefinition:
    # Only calls the gateway's services vouch for (the router's) are answered; the
    # provider loads no principal, so it needs no Redis.
    gate = build_gate(settings, None, load_principals=False)
    adapters, labels = _load(settings)
    servicer = ProviderServicer(adapters, labels)
    retiring: set[asyncio.Task[None]] = set()

    async def retire(replaced: list[ProviderAdapter]) -> None:
        try:
            if not await servicer.wait_idle(replaced, RETIRE_TIMEOUT):
                log.warning("replaced provider clients still busy; closing them anyway")
        finally:
            await close_adapters(replaced)

    async def reload() -> None:
        try:
            fresh, labels = _load(settings)
        except ConfigError as error:
            raise ConfigError(
                f"provider instances not reloaded, the previous ones stay in service: {error}",
                error.violations,
            ) from None
        task = asyncio.create_task(retire(servicer.replace_adapters(fresh, labels)))
        retiring.add(task)
        task.add_done_callback(retiring.discard)

    def register(server: grpc.aio.Server) -> None:
        provider_grpc.add_ProviderServiceServicer_to_server(servicer, server)

    async def close() -> None:
        # Cancelled retirements still close their adapters (see `retire`).
        pending = list(retiring)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await close_adapters(servicer.adapters.values())

    return ServiceDefinition(
        register=register,
        service_names=[SERVICE_NAME],
        on_stop=[close],
        on_reload=[reload],
        gate=gate,
    )


def _load(settings: ServiceSettings) -> tuple[dict[str, ProviderAdapter], ModelLabels]:
    """One adapter per configured provider instance, and the metric labels of the
    catalogue's models; ConfigError for a bad file."""
    config = load_config(settings.config_path)
    adapters = build_adapters(config.providers, os.environ)
    for name, adapter in adapters.items():
        info = adapter.info
        log.info(
            "provider configured",
            extra={
                "provider": name,
                "type": provider_pb2.ProviderType.Name(info.type),
                "base_url": info.base_url,
                "has_credentials": info.has_credentials,
            },
        )
        if isinstance(adapter, UnconfiguredAdapter):
            log.warning(adapter.problem, extra={"provider": name})
    return adapters, ModelLabels(config)


async def close_adapters(adapters: Iterable[ProviderAdapter]) -> None:
    """Closes every client; one failing to close does not keep the others open."""
    pending = list(adapters)
    results = await asyncio.gather(
        *(adapter.close() for adapter in pending), return_exceptions=True
    )
    for adapter, result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            log.warning(
                "closing provider client failed",
                extra={"provider": adapter.info.name, "error": type(result).__name__},
            )
