"""Run-time tools in Redis, shared by every tool replica.

One hash, `llmgw:tools:runtime`, maps each tool id to its serialized `Tool`; a version
key beside it gets a fresh random value in the same transaction as every change, so a
replica learns that something changed with one GET and reloads the hash only then.
Random values (not a counter) also reveal a Redis that restarted empty.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2

TOOLS_KEY = "llmgw:tools:runtime"
VERSION_KEY = "llmgw:tools:runtime:version"


@dataclass(frozen=True)
class Snapshot:
    """The hash as of `version` ("" when Redis has no version yet)."""

    version: str
    tools: dict[str, bytes]


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class RuntimeStore:
    """Redis operations; every method may raise redis errors (the caller reports them)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def version(self) -> str:
        return _text(await self._client.get(VERSION_KEY))

    async def snapshot(self) -> Snapshot:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(VERSION_KEY)
            pipe.hgetall(TOOLS_KEY)
            version, tools = await pipe.execute()
        return Snapshot(
            version=_text(version),
            tools={_text(key): bytes(value) for key, value in tools.items()},
        )

    async def create(self, tool_id: str, tool: tool_pb2.Tool) -> bool:
        """False when the id is taken already (nothing is changed then)."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(TOOLS_KEY, tool_id, tool.SerializeToString())
            pipe.set(VERSION_KEY, uuid.uuid4().hex)
            created, _ = await pipe.execute()
        return bool(created)

    async def delete(self, tool_id: str) -> bool:
        """False when there was no such run-time tool."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(TOOLS_KEY, tool_id)
            pipe.set(VERSION_KEY, uuid.uuid4().hex)
            deleted, _ = await pipe.execute()
        return bool(deleted)
