"""IdentityService: consumers, groups and API keys, hosted by the router process.

Every RPC needs the admin role (anyone, with authentication off). The work is
`IdentityAdmin`'s; it needs Redis, so a router without one answers FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from llmgw.identity.v1 import identity_service_pb2 as pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as pb2_grpc
from services.common.errors import FailedPrecondition
from services.common.idempotency.run import once, request_scope
from services.common.idempotency.store import IdempotencyStore
from services.common.validation import Violations
from services.router.admin import require_admin
from services.router.identity_admin import IdentityAdmin

SERVICE_NAME = "llmgw.identity.v1.IdentityService"
NO_REDIS = "consumers and keys need Redis (LLMGW_REDIS_URL)"

Context: TypeAlias = grpc.aio.ServicerContext
R = TypeVar("R", bound=Message)


class IdentityServicer(pb2_grpc.IdentityServiceServicer):
    """`admin` is None when the router has no Redis; so is `once` (request ids)."""

    def __init__(self, admin: IdentityAdmin | None, once: IdempotencyStore | None = None) -> None:
        self._admin = admin
        self._once = once

    async def _once_per_id(
        self,
        method: str,
        request: Message,
        context: Context,
        response_type: type[R],
        work: Callable[[], Awaitable[R]],
        *,
        secret: bool = False,
    ) -> R:
        """`work` at most once per caller and request id (AIP-155)."""
        violations = Violations()
        where = request_scope(violations, f"identity.{method}", request, context, secret=secret)
        violations.raise_if_any()
        return await once(self._once, where, context, response_type, lambda _: work())

    def _identity(self) -> IdentityAdmin:
        require_admin()
        if self._admin is None:
            raise FailedPrecondition(NO_REDIS)
        return self._admin

    async def CreateConsumer(
        self, request: pb2.CreateConsumerRequest, context: Context
    ) -> pb2.CreateConsumerResponse:
        identity = self._identity()
        return await self._once_per_id(
            "CreateConsumer",
            request,
            context,
            pb2.CreateConsumerResponse,
            lambda: identity.create_consumer(request),
        )

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
        identity = self._identity()
        return await self._once_per_id(
            "CreateGroup",
            request,
            context,
            pb2.CreateGroupResponse,
            lambda: identity.create_group(request),
        )

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
        identity = self._identity()
        return await self._once_per_id(
            "CreateApiKey",
            request,
            context,
            pb2.CreateApiKeyResponse,
            lambda: identity.create_api_key(request),
            secret=True,
        )

    async def ListApiKeys(
        self, request: pb2.ListApiKeysRequest, context: Context
    ) -> pb2.ListApiKeysResponse:
        return await self._identity().list_api_keys(request)

    async def RotateApiKey(
        self, request: pb2.RotateApiKeyRequest, context: Context
    ) -> pb2.RotateApiKeyResponse:
        identity = self._identity()
        return await self._once_per_id(
            "RotateApiKey",
            request,
            context,
            pb2.RotateApiKeyResponse,
            lambda: identity.rotate_api_key(request),
            secret=True,
        )

    async def RevokeApiKey(
        self, request: pb2.RevokeApiKeyRequest, context: Context
    ) -> pb2.RevokeApiKeyResponse:
        return await self._identity().revoke_api_key(request)
