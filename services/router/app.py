"""Wiring of the router process: RouterService and AdminService."""

from __future__ import annotations

import grpc

from llmgw.router.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    router_service_pb2_grpc,
)
from services.common.channels import internal_channel
from services.common.gateway_config import load_config
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.common.unimplemented import unimplemented_servicer
from services.router.catalog import Catalog
from services.router.provider_client import ProviderClient
from services.router.servicer import RouterServicer

ROUTER_SERVICE = "llmgw.router.v1.RouterService"
ADMIN_SERVICE = "llmgw.router.v1.AdminService"
# The router describes the whole public API through reflection, so `grpcurl` pointed at
# Envoy's public listener (which routes reflection here) can list and call every service.
PUBLIC_SERVICES = (
    ROUTER_SERVICE,
    ADMIN_SERVICE,
    "llmgw.session.v1.SessionService",
    "llmgw.tool.v1.ToolService",
    "llmgw.investigation.v1.InvestigationService",
)


def _load_public_descriptors() -> None:
    """Import every public service's stubs so reflection can describe them."""
    from llmgw.investigation.v1 import investigation_service_pb2  # noqa: F401, PLC0415
    from llmgw.session.v1 import session_service_pb2  # noqa: F401, PLC0415
    from llmgw.tool.v1 import tool_service_pb2  # noqa: F401, PLC0415


async def build(settings: ServiceSettings) -> ServiceDefinition:
    catalog = Catalog(load_config(settings.config_path))
    channel = internal_channel(settings.internal_target)
    servicer = RouterServicer(catalog, ProviderClient(channel))
    admin = unimplemented_servicer(
        admin_service_pb2_grpc.AdminServiceServicer,
        admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
        "catalogue reload, routing state, consumers, keys and usage arrive with routing "
        "and access control",
    )
    _load_public_descriptors()

    def register(server: grpc.aio.Server) -> None:
        router_service_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)

    async def close() -> None:
        await channel.close()

    return ServiceDefinition(
        register=register,
        service_names=[ROUTER_SERVICE, ADMIN_SERVICE],
        extra_reflection_names=PUBLIC_SERVICES,
        on_stop=[close],
    )
