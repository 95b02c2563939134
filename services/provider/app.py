"""Wires the Provider service: configuration, one adapter per provider instance, the
servicer, and closing every client on stop."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable

import grpc

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.gateway_config import load_config
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.registry import build_adapters
from services.provider.adapters.unconfigured import UnconfiguredAdapter
from services.provider.servicer import ProviderServicer

SERVICE_NAME = provider_pb2.DESCRIPTOR.services_by_name["ProviderService"].full_name

log = logging.getLogger("llmgw.provider")


async def build(settings: ServiceSettings) -> ServiceDefinition:
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
    servicer = ProviderServicer(adapters)

    def register(server: grpc.aio.Server) -> None:
        provider_grpc.add_ProviderServiceServicer_to_server(servicer, server)

    async def close() -> None:
        await close_adapters(adapters.values())

    return ServiceDefinition(register=register, service_names=[SERVICE_NAME], on_stop=[close])


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
