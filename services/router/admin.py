"""AdminService: catalogue reload, routing state and usage.

Every RPC needs the admin role, except GetUsage, which any consumer may call for itself
and its own groups (the gate lets GetUsage through as a router call for that reason).
With authentication off the gate admits only the bootstrap admin key to the admin RPCs,
and GetUsage answers the anonymous caller its own usage only. Consumers, groups and keys
are the IdentityService's (`services.router.identity_service`). Any RPC of the proto not
built here answers UNIMPLEMENTED through the shared unimplemented servicer, as every
unbuilt part of the API does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc

from llmgw.router.v1 import admin_service_pb2, admin_service_pb2_grpc
from services.common.caller import current_principal
from services.common.errors import PermissionDenied
from services.common.identity import acl
from services.common.identity.principal import Principal
from services.common.unimplemented import unimplemented_servicer
from services.router.catalog_store import CatalogStore, config_version
from services.router.usage.recorder import ANONYMOUS, UsageRecorder
from services.router.usage.report import usage_report

SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
PENDING_NOTE = "in the proto, not yet built in the router"

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
        require_admin()
        catalog = await self._store.reload(broadcast=True)
        return admin_service_pb2.ReloadCatalogResponse(
            model_count=len(catalog.entries),
            deployment_count=sum(len(entry.deployments) for entry in catalog.entries),
            version=config_version(catalog.config),
        )

    async def GetRoutingState(
        self, request: admin_service_pb2.GetRoutingStateRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetRoutingStateResponse:
        require_admin()
        deployments = await self._routing_state(request.model)
        return admin_service_pb2.GetRoutingStateResponse(deployments=deployments)

    async def GetUsage(
        self, request: admin_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetUsageResponse:
        principal = current_principal()
        if principal is None:
            # Authentication off: the anonymous caller reads its own usage; anyone else's
            # needs the bootstrap admin key, as every other admin RPC does.
            if request.subject not in ("", ANONYMOUS):
                raise PermissionDenied(
                    "reading another subject's usage needs the bootstrap admin key "
                    "(LLMGW_ADMIN_KEY) while authentication is off"
                )
        elif not request.subject:
            request.subject = principal.name
        elif not _own_subject(principal, request.subject):
            acl.require_admin(principal)
        return await usage_report(self._usage, request, self._clock())


def require_admin() -> None:
    """PERMISSION_DENIED unless the caller is an admin (anyone, with authentication off)."""
    principal = current_principal()
    if principal is not None:
        acl.require_admin(principal)


def _own_subject(principal: Principal, subject: str) -> bool:
    """Whether `subject` is the principal itself or one of its groups."""
    return subject == principal.name or any(g.name == subject for g in principal.groups)
