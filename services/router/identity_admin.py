"""The AdminService RPCs for consumers, groups and API keys, over an `IdentityStore`.

Translates request protos into store calls and store results into response protos:
`Duration`s become seconds, `FieldMask.paths` the store's update mask. Every check of a
caller's input is the store's (names, ids, fields, groups that must exist) except the
durations' signs, checked here so both bad durations of a rotation show at once.
Errors are the shared `GatewayError`s; nothing here catches them.

Whether the caller may do this (admin role) is for the caller of these methods to decide
(`AdminServicer`, once the authentication interceptor exists); nothing here checks it.
"""

from __future__ import annotations

from google.protobuf import duration_pb2

from llmgw.identity.v1 import identity_service_pb2
from services.common.identity.store import IdentityStore
from services.common.identity.validation import MAX_KEY_DURATION_SECONDS
from services.common.validation import Violations

_NANOS_PER_SECOND = 1_000_000_000


class IdentityAdmin:
    """One method per RPC, each taking its request and returning its response.

    `default_overlap_seconds` is how long a rotated key keeps working when the request
    names no overlap (or a zero one: ending the old key at once is what revoke is for).
    """

    def __init__(self, store: IdentityStore, *, default_overlap_seconds: float) -> None:
        if default_overlap_seconds <= 0:
            raise ValueError("default_overlap_seconds must be positive")
        self._store = store
        self._default_overlap = default_overlap_seconds

    # -- consumers ------------------------------------------------------------------

    async def create_consumer(
        self, request: identity_service_pb2.CreateConsumerRequest
    ) -> identity_service_pb2.CreateConsumerResponse:
        consumer = await self._store.create_consumer(request.consumer, request.consumer_id)
        return identity_service_pb2.CreateConsumerResponse(consumer=consumer)

    async def get_consumer(
        self, request: identity_service_pb2.GetConsumerRequest
    ) -> identity_service_pb2.GetConsumerResponse:
        return identity_service_pb2.GetConsumerResponse(
            consumer=await self._store.get_consumer(request.name)
        )

    async def list_consumers(
        self, request: identity_service_pb2.ListConsumersRequest
    ) -> identity_service_pb2.ListConsumersResponse:
        consumers, token = await self._store.list_consumers(request.page_size, request.page_token)
        return identity_service_pb2.ListConsumersResponse(
            consumers=consumers, next_page_token=token
        )

    async def update_consumer(
        self, request: identity_service_pb2.UpdateConsumerRequest
    ) -> identity_service_pb2.UpdateConsumerResponse:
        consumer = await self._store.update_consumer(
            request.consumer, list(request.update_mask.paths)
        )
        return identity_service_pb2.UpdateConsumerResponse(consumer=consumer)

    async def delete_consumer(
        self, request: identity_service_pb2.DeleteConsumerRequest
    ) -> identity_service_pb2.DeleteConsumerResponse:
        await self._store.delete_consumer(request.name)
        return identity_service_pb2.DeleteConsumerResponse()

    # -- groups ---------------------------------------------------------------------

    async def create_group(
        self, request: identity_service_pb2.CreateGroupRequest
    ) -> identity_service_pb2.CreateGroupResponse:
        group = await self._store.create_group(request.group, request.group_id)
        return identity_service_pb2.CreateGroupResponse(group=group)

    async def get_group(
        self, request: identity_service_pb2.GetGroupRequest
    ) -> identity_service_pb2.GetGroupResponse:
        return identity_service_pb2.GetGroupResponse(
            group=await self._store.get_group(request.name)
        )

    async def list_groups(
        self, request: identity_service_pb2.ListGroupsRequest
    ) -> identity_service_pb2.ListGroupsResponse:
        groups, token = await self._store.list_groups(request.page_size, request.page_token)
        return identity_service_pb2.ListGroupsResponse(groups=groups, next_page_token=token)

    async def update_group(
        self, request: identity_service_pb2.UpdateGroupRequest
    ) -> identity_service_pb2.UpdateGroupResponse:
        group = await self._store.update_group(request.group, list(request.update_mask.paths))
        return identity_service_pb2.UpdateGroupResponse(group=group)

    async def delete_group(
        self, request: identity_service_pb2.DeleteGroupRequest
    ) -> identity_service_pb2.DeleteGroupResponse:
        """FAILED_PRECONDITION while a consumer is still a member."""
        await self._store.delete_group(request.name)
        return identity_service_pb2.DeleteGroupResponse()

    # -- keys -----------------------------------------------------------------------

    async def create_api_key(
        self, request: identity_service_pb2.CreateApiKeyRequest
    ) -> identity_service_pb2.CreateApiKeyResponse:
        """The only answer that carries the new key's secret."""
        violations = Violations()
        ttl = _seconds(violations, request.ttl, "ttl") if request.HasField("ttl") else None
        violations.raise_if_any()
        issued = await self._store.create_key(request.parent, ttl)
        return identity_service_pb2.CreateApiKeyResponse(
            api_key=issued.api_key, secret=issued.secret
        )

    async def list_api_keys(
        self, request: identity_service_pb2.ListApiKeysRequest
    ) -> identity_service_pb2.ListApiKeysResponse:
        keys, token = await self._store.list_keys(
            request.parent, request.page_size, request.page_token
        )
        return identity_service_pb2.ListApiKeysResponse(api_keys=keys, next_page_token=token)

    async def rotate_api_key(
        self, request: identity_service_pb2.RotateApiKeyRequest
    ) -> identity_service_pb2.RotateApiKeyResponse:
        violations = Violations()
        overlap = _seconds(violations, request.overlap, "overlap") or self._default_overlap
        ttl = _seconds(violations, request.ttl, "ttl") if request.HasField("ttl") else None
        violations.raise_if_any()
        rotated = await self._store.rotate_key(request.name, overlap, ttl)
        return identity_service_pb2.RotateApiKeyResponse(
            api_key=rotated.api_key,
            secret=rotated.secret,
            previous_api_key=rotated.previous_api_key,
        )

    async def revoke_api_key(
        self, request: identity_service_pb2.RevokeApiKeyRequest
    ) -> identity_service_pb2.RevokeApiKeyResponse:
        return identity_service_pb2.RevokeApiKeyResponse(
            api_key=await self._store.revoke_key(request.name)
        )


def _seconds(violations: Violations, duration: duration_pb2.Duration, field: str) -> float:
    """The duration in seconds; a violation on `field` (and 0) when it is negative, longer
    than `MAX_KEY_DURATION_SECONDS` (an expiry past year 9999 is no timestamp) or not a
    well-formed Duration (nanos out of range, or of the other sign than seconds)."""
    seconds, nanos = duration.seconds, duration.nanos
    if abs(nanos) >= _NANOS_PER_SECOND or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        violations.add(field, "is not a valid duration")
        return 0.0
    if seconds < 0 or nanos < 0:
        violations.add(field, "must not be negative")
        return 0.0
    if seconds + nanos / _NANOS_PER_SECOND > MAX_KEY_DURATION_SECONDS:
        violations.add(field, f"must be at most {MAX_KEY_DURATION_SECONDS}s (ten years)")
        return 0.0
    return seconds + nanos / _NANOS_PER_SECOND
