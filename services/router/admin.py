"""AdminService: catalogue reload, routing state and usage.

Consumers, groups and keys are not built yet: those RPCs answer UNIMPLEMENTED through the
shared unimplemented servicer, as every unbuilt part of the API does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc

from llmgw.router.v1 import admin_service_pb2, admin_service_pb2_grpc
from services.common.unimplemented import unimplemented_servicer
from services.router.catalog_store import CatalogStore, config_version
from services.router.usage.recorder import UsageRecorder
from services.router.usage.report import usage_report

SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
PENDING_NOTE = "consumers, groups and keys arrive with access control"

# Every deployment's state, or one model's (NOT_FOUND for a model not served).
RoutingState = Callable[[str], Awaitable[list[admin_service_pb2.DeploymentState]]]


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        store: CatalogStore,
        routing_state: RoutingState,
        usage: UsageRecorder,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._routing_state = routing_state
        self._usage = usage
        self._clock = clock
        # Bound per instance: the generated registration looks each method up by name.
        pending = unimplemented_servicer(
            admin_service_pb2_grpc.AdminServiceServicer, SERVICE, PENDING_NOTE
        )
        for method in SERVICE.methods:
            if method.name not in vars(AdminServicer):
                setattr(self, method.name, getattr(pending, method.name))

    async def ReloadCatalog(
        self, request: admin_service_pb2.ReloadCatalogRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ReloadCatalogResponse:
        catalog = await self._store.reload(broadcast=True)
        return admin_service_pb2.ReloadCatalogResponse(
            model_count=len(catalog.entries),
            deployment_count=sum(len(entry.deployments) for entry in catalog.entries),
            version=config_version(catalog.config),
        )

    async def GetRoutingState(
        self, request: admin_service_pb2.GetRoutingStateRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetRoutingStateResponse:
        deployments = await self._routing_state(request.model)
        return admin_service_pb2.GetRoutingStateResponse(deployments=deployments)

    async def GetUsage(
        self, request: admin_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetUsageResponse:
        return await usage_report(self._usage, request, self._clock())
