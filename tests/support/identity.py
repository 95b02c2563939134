"""Consumers, groups and keys for tests against a gateway that requires API keys.

Everything is created through the public AdminService with the bootstrap admin key, as
an operator would; names get a fresh suffix so tests sharing one gateway never collide.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata presenting `key`."""
    return (("authorization", f"Bearer {key}"),)


@dataclass(frozen=True)
class Identity:
    """A consumer, its one group and a key issued for it."""

    consumer: str  # consumers/{id}
    group: str  # groups/{id}
    key: str
    key_name: str  # consumers/{id}/keys/{key id}

    @property
    def consumer_id(self) -> str:
        return self.consumer.split("/", 1)[1]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.key)

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


async def create_identity(
    grpc_target: str,
    admin_key: str,
    *,
    group: identity_pb2.Group | None = None,
    consumer: identity_pb2.Consumer | None = None,
    prefix: str = "c",
    extra_groups: Sequence[str] = (),
) -> Identity:
    """A fresh group (`group`'s settings; default: every model, tool and service), a
    consumer in it (plus `extra_groups`), and a key for the consumer."""
    suffix = uuid.uuid4().hex[:10]
    group_id, consumer_id = f"{prefix}-g-{suffix}", f"{prefix}-{suffix}"
    spec = identity_pb2.Group()
    if group is None:
        spec.allowed_models.append("*")
        spec.allowed_tools.append("*")
        spec.allowed_services.extend(["router", "session", "tool"])
    else:
        spec.CopyFrom(group)
    who = identity_pb2.Consumer()
    if consumer is not None:
        who.CopyFrom(consumer)
    who.groups[:] = [f"groups/{group_id}", *extra_groups]
    metadata = bearer(admin_key)
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        admin = identity_grpc.IdentityServiceStub(channel)
        made = await admin.CreateGroup(
            identity_service_pb2.CreateGroupRequest(group=spec, group_id=group_id),
            metadata=metadata,
        )
        await admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(consumer=who, consumer_id=consumer_id),
            metadata=metadata,
        )
        issued = await admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent=f"consumers/{consumer_id}"),
            metadata=metadata,
        )
    return Identity(
        consumer=f"consumers/{consumer_id}",
        group=made.group.name,
        key=issued.secret,
        key_name=issued.api_key.name,
    )
