"""Who a verified API key belongs to: the consumer, its groups and the key itself."""

from __future__ import annotations

from dataclasses import dataclass

from llmgw.identity.v1 import identity_pb2


@dataclass(frozen=True)
class Principal:
    """The result of a successful key lookup.

    `groups` holds the consumer's groups that exist (a group deleted since the consumer
    named it grants nothing). `expire_time` is the key's expiry in unix seconds (None:
    never), so a cached principal stops working when its key does. The protos are
    shared with the cache: treat them as read-only.
    """

    consumer: identity_pb2.Consumer
    groups: tuple[identity_pb2.Group, ...]
    key_name: str
    expire_time: float | None = None

    @property
    def name(self) -> str:
        """`consumers/{consumer}`: what error messages and logs name."""
        return self.consumer.name

    def expired(self, now: float) -> bool:
        return self.expire_time is not None and now >= self.expire_time
