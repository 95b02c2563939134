"""Wiring of the tool service: settings and configuration in, a ServiceDefinition out.

Redis holds the run-time tools; when it is configured it is a required dependency
(readiness is NOT_SERVING while it is unreachable). The built-in and file tools are
served from memory whatever Redis does; without Redis they are the only tools. The
read-only toolsets (services/tool/toolsets) are built at start from the environment
(KUBECONFIG...) and `tools.toolsets`. SIGHUP reloads the `tools:` section (file and
built-in tools, allow-list, defaults, toolset limits); an invalid file keeps the tools
being served. The downstream breakers and which toolsets run keep their settings until
a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os

import grpc

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.gateway_config import load_config
from services.common.idempotency.wiring import idempotency_store
from services.common.identity.wiring import build_gate
from services.common.redis_store import create_redis, redis_check
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.tool.breakers import DownstreamBreakers
from services.tool.config_headers import file_header_templates
from services.tool.executor_http import HttpExecutor
from services.tool.executor_toolset import ToolsetExecutor
from services.tool.registry import UNREACHABLE, ToolRegistry
from services.tool.runtime_store import RuntimeStore
from services.tool.servicer import ToolServicer
from services.tool.toolsets import build_toolsets

log = logging.getLogger("llmgw.tool")

SERVICE_NAME: str = tool_pb2.DESCRIPTOR.services_by_name["ToolService"].full_name


async def build(settings: ServiceSettings) -> ServiceDefinition:
    """The tool service; fails fast on an invalid `tools:` section or a toolset that is
    switched on but cannot be configured (ToolsetConfigError names the variable)."""
    tools = load_config(settings.config_path).tools
    toolsets = build_toolsets(tools.toolsets, os.environ)
    for toolset in toolsets:
        log.info("toolset %s enabled (backend %s)", toolset.name, toolset.backend)
    client = create_redis(settings.redis_url) if settings.redis_url else None
    gate = build_gate(settings, client)
    if client is None:
        log.warning("no Redis (LLMGW_REDIS_URL): run-time tool registration is off")
    store = RuntimeStore(client) if client is not None else None
    registry = ToolRegistry(
        store, tools, file_header_templates(settings.config_path), toolsets=toolsets
    )
    try:
        await registry.refresh()
    except UNREACHABLE as error:
        log.warning("Redis unreachable at start (%s); run-time tools load once it answers", error)
    registry.start()
    breakers = DownstreamBreakers(tools.breaker)
    executor = HttpExecutor(breakers, lambda: registry.allow_list)
    servicer = ToolServicer(
        registry,
        executor,
        once=idempotency_store(settings, client) if client is not None else None,
        toolsets=ToolsetExecutor(breakers),
    )

    def register(server: grpc.aio.Server) -> None:
        tool_grpc.add_ToolServiceServicer_to_server(servicer, server)

    async def close() -> None:
        await registry.stop()
        await executor.close()
        for toolset in toolsets:
            await toolset.close()
        if client is not None:
            await client.aclose()

    async def reload() -> None:
        fresh = load_config(settings.config_path).tools
        registry.reconfigure(fresh, file_header_templates(settings.config_path))
        with contextlib.suppress(*UNREACHABLE):
            await registry.refresh()
        log.info("tools reloaded: %d tools", len(registry.entries()))

    return ServiceDefinition(
        register=register,
        service_names=[SERVICE_NAME],
        checks=[redis_check(client)] if client is not None else [],
        on_stop=[close],
        on_reload=[reload],
        gate=gate,
    )
