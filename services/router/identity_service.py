"""IdentityService: consumers, groups and API keys, hosted by the router process.

Every RPC needs the admin role (anyone, with authentication off). The work is
`IdentityAdmin`'s; it needs Redis, so a router without one answers FAILED_PRECONDITION.
"""

from __future__ import annotations

from typing import TypeAlias

import grpc

from llmgw.identity.v1 import identity_service_pb2 as pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as pb2_grpc
from services.common.errors import FailedPrecondition
from services.router.admin import require_admin
from services.router.identity_admin import IdentityAdmin

SERVICE_NAME = "llmgw.identity.v1.IdentityService"
NO_REDIS = "consumers and keys need Redis (LLMGW_REDIS_URL)"

Context: TypeAlias = grpc.aio.ServicerContext


class IdentityServicer(pb2_grpc.IdentityServiceServicer):
    """`admin` is None when the router has no Redis."""

    def __init__(self, admin: IdentityAdmin | None) -> None:
        self._admin = admin

    def _identity(self) -> IdentityAdmin:
        require_admin()
        if self._admin is None:
            raise FailedPrecondition(NO_REDIS)
        return self._admin

    async def CreateConsumer(
        self, request: pb2.CreateConsumerRequest, context: Context
    ) -> pb2.CreateConsumerResponse:
        return await self._identity().create_consumer(request)

    async def GetConsumer(
        self, request: pb2.GetConsumerRequest, context: Context
    ) -> pb2.GetConsumerResponse:
        return await self._identity().get_consumer(request)

    async def ListConsumers(
        self, request: pb2.ListConsumersRequest, context: Context
    ) -> pb2.ListConsumersResponse:
        return await self._identity().list_consumers(request)

    async def UpdateConsumer(
        self, request: pb2.UpdateConsumerRequest, context: Context
    ) -> pb2.UpdateConsumerResponse:
        return await self._identity().update_consumer(request)

    async def DeleteConsumer(
        self, request: pb2.DeleteConsumerRequest, context: Context
    ) -> pb2.DeleteConsumerResponse:
        return await self._identity().delete_consumer(request)

    async def CreateGroup(
        self, request: pb2.CreateGroupRequest, context: Context
    ) -> pb2.CreateGroupResponse:
        return await self._identity().create_group(request)

    async def GetGroup(
        self, request: pb2.GetGroupRequest, context: Context
    ) -> pb2.GetGroupResponse:
        return await self._identity().get_group(request)

    async def ListGroups(
        self, request: pb2.ListGroupsRequest, context: Context
    ) -> pb2.ListGroupsResponse:
        return await self._identity().list_groups(request)

    async def UpdateGroup(
        self, request: pb2.UpdateGroupRequest, context: Context
    ) -> pb2.UpdateGroupResponse:
        return await self._identity().update_group(request)

    async def DeleteGroup(
        self, request: pb2.DeleteGroupRequest, context: Context
    ) -> pb2.DeleteGroupResponse:
        return await self._identity().delete_group(request)

    async def CreateApiKey(
        self, request: pb2.CreateApiKeyRequest, context: Context
    ) -> pb2.CreateApiKeyResponse:
        return await self._identity().create_api_key(request)

    async def ListApiKeys(
        self, request: pb2.ListApiKeysRequest, context: Context
    ) -> pb2.ListApiKeysResponse:
        return await self._identity().list_api_keys(request)

    async def RotateApiKey(
        self, request: pb2.RotateApiKeyRequest, context: Context
    ) -> pb2.RotateApiKeyResponse:
        return await self._identity().rotate_api_key(request)

    async def RevokeApiKey(
        self, request: pb2.RevokeApiKeyRequest, context: Context
    ) -> pb2.RevokeApiKeyResponse:
        return await self._identity().revoke_api_key(request)
