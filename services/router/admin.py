"""AdminService: catalogue reload, routing state, usage, and consumers, groups and keys.

Every RPC needs the admin role when authentication is on, except GetUsage, which any
consumer may call for itself and its own groups (the gate lets GetUsage through as a
router call for that reason). The consumer, group and key RPCs are `IdentityAdmin`'s;
they need Redis, so a router without one answers them FAILED_PRECONDITION. Any RPC of
the proto not built here answers UNIMPLEMENTED through the shared unimplemented
servicer, as every unbuilt part of the API does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc

from llmgw.router.v1 import admin_service_pb2, admin_service_pb2_grpc
from services.common.caller import current_principal
from services.common.errors import FailedPrecondition
from services.common.identity import acl
from services.common.identity.principal import Principal
from services.common.unimplemented import unimplemented_servicer
from services.router.catalog_store import CatalogStore, config_version
from services.router.identity_admin import IdentityAdmin
from services.router.usage.recorder import UsageRecorder
from services.router.usage.report import usage_report

SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
PENDING_NOTE = "in the proto, not yet built in the router"
NO_REDIS = "consumers and keys need Redis (LLMGW_REDIS_URL)"

# Every deployment's state, or one model's (NOT_FOUND for a model not served).
RoutingState = Callable[[str], Awaitable[list[admin_service_pb2.DeploymentState]]]


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    """`identity` is None when the router has no Redis."""

    def __init__(
        self,
        store: CatalogStore,
        routing_state: RoutingState,
        usage: UsageRecorder,
        *,
        identity: IdentityAdmin | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._routing_state = routing_state
        self._usage = usage
        self._identity_admin = identity
        self._clock = clock
        # Bound per instance: the generated registration looks each method up by name.
        pending = unimplemented_servicer(
            admin_service_pb2_grpc.AdminServiceServicer, SERVICE, PENDING_NOTE
        )
        for method in SERVICE.methods:
            if method.name not in vars(AdminServicer):
                setattr(self, method.name, getattr(pending, method.name))

    def _identity(self) -> IdentityAdmin:
        _require_admin()
        if self._identity_admin is None:
            raise FailedPrecondition(NO_REDIS)
        return self._identity_admin

    async def ReloadCatalog(
        self, request: admin_service_pb2.ReloadCatalogRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ReloadCatalogResponse:
        _require_admin()
        catalog = await self._store.reload(broadcast=True)
        return admin_service_pb2.ReloadCatalogResponse(
            model_count=len(catalog.entries),
            deployment_count=sum(len(entry.deployments) for entry in catalog.entries),
            version=config_version(catalog.config),
        )

    async def GetRoutingState(
        self, request: admin_service_pb2.GetRoutingStateRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetRoutingStateResponse:
        _require_admin()
        deployments = await self._routing_state(request.model)
        return admin_service_pb2.GetRoutingStateResponse(deployments=deployments)

    async def GetUsage(
        self, request: admin_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetUsageResponse:
        principal = current_principal()
        if principal is not None:
            if not request.subject:
                request.subject = principal.name
            elif not _own_subject(principal, request.subject):
                acl.require_admin(principal)
        return await usage_report(self._usage, request, self._clock())

    # -- consumers, groups and keys -------------------------------------------------

    async def CreateConsumer(
        self, request: admin_service_pb2.CreateConsumerRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.CreateConsumerResponse:
        return await self._identity().create_consumer(request)

    async def GetConsumer(
        self, request: admin_service_pb2.GetConsumerRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetConsumerResponse:
        return await self._identity().get_consumer(request)

    async def ListConsumers(
        self, request: admin_service_pb2.ListConsumersRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListConsumersResponse:
        return await self._identity().list_consumers(request)

    async def UpdateConsumer(
        self, request: admin_service_pb2.UpdateConsumerRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.UpdateConsumerResponse:
        return await self._identity().update_consumer(request)

    async def DeleteConsumer(
        self, request: admin_service_pb2.DeleteConsumerRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.DeleteConsumerResponse:
        return await self._identity().delete_consumer(request)

    async def CreateGroup(
        self, request: admin_service_pb2.CreateGroupRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.CreateGroupResponse:
        return await self._identity().create_group(request)

    async def GetGroup(
        self, request: admin_service_pb2.GetGroupRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.GetGroupResponse:
        return await self._identity().get_group(request)

    async def ListGroups(
        self, request: admin_service_pb2.ListGroupsRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListGroupsResponse:
        return await self._identity().list_groups(request)

    async def UpdateGroup(
        self, request: admin_service_pb2.UpdateGroupRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.UpdateGroupResponse:
        return await self._identity().update_group(request)

    async def DeleteGroup(
        self, request: admin_service_pb2.DeleteGroupRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.DeleteGroupResponse:
        return await self._identity().delete_group(request)

    async def CreateApiKey(
        self, request: admin_service_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.CreateApiKeyResponse:
        return await self._identity().create_api_key(request)

    async def ListApiKeys(
        self, request: admin_service_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.ListApiKeysResponse:
        return await self._identity().list_api_keys(request)

    async def RotateApiKey(
        self, request: admin_service_pb2.RotateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.RotateApiKeyResponse:
        return await self._identity().rotate_api_key(request)

    async def RevokeApiKey(
        self, request: admin_service_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.RevokeApiKeyResponse:
        return await self._identity().revoke_api_key(request)


def _require_admin() -> None:
    principal = current_principal()
    if principal is not None:
        acl.require_admin(principal)


def _own_subject(principal: Principal, subject: str) -> bool:
    """Whether `subject` is the principal itself or one of its groups."""
    return subject == principal.name or any(g.name == subject for g in principal.groups)
