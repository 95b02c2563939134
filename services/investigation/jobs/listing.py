"""ListInvestigations over the create-time indexes: newest first, filtered here.

The cursor is the last index member examined, (create ms, id): members are ordered by
score, then by id (both descending), so a cursor stays exact when creates share a
millisecond. A call examines a bounded number of members, so a filter matching little
returns a short (even empty) page with a token rather than scanning everything; members
whose record is gone (or, in an owner's index, belongs to someone else now) are skipped
and removed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import InvalidArgument
from services.common.page_tokens import seal, unseal
from services.investigation.jobs import keys
from services.investigation.jobs.records import without_outputs

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Index members examined per call beyond the page itself.
SCAN_SLACK = 1000
# Stored bytes returned per page at most (the first investigation whatever its size).
PAGE_BYTES = 4 * 1024 * 1024
_BATCH = 100
_DOMAIN = b"llmgw.investigation.v1/page-token"

Cursor = tuple[int, bytes]


async def list_page(
    redis: aioredis.Redis,
    owner: str | None,
    *,
    page_size: int,
    page_token: str,
    state: int,
    alert_name: str,
    fingerprint: str,
) -> tuple[list[inv_pb2.Investigation], str]:
    """One page of `owner`'s investigations (None: everybody's) and the next token."""
    size = DEFAULT_PAGE_SIZE if page_size <= 0 else min(page_size, MAX_PAGE_SIZE)
    scope = [owner, state, alert_name, fingerprint]
    cursor = _decode(page_token, scope) if page_token else None
    index = keys.ALL_INDEX if owner is None else keys.owner_index(owner)
    top = "+inf" if cursor is None else cursor[0]
    offset = 0 if cursor is None else await _ties_before(redis, index, cursor)
    found: list[inv_pb2.Investigation] = []
    stale: list[bytes] = []
    scanned, size_bytes = 0, 0
    last = cursor
    while len(found) < size and scanned < size + SCAN_SLACK and size_bytes < PAGE_BYTES:
        batch: Any = await redis.zrevrangebyscore(
            index, top, "-inf", start=offset, num=_BATCH, withscores=True
        )
        if not batch:
            break
        async with redis.pipeline(transaction=False) as pipe:
            for member, _score in batch:
                pipe.hmget(keys.record_key(member.decode()), ["pb", "owner"])
            records: Any = await pipe.execute()
        for (member, score), (pb, record_owner) in zip(batch, records, strict=True):
            offset += 1
            scanned += 1
            last = (int(score), member)
            if pb is None or (owner is not None and record_owner != owner.encode()):
                stale.append(member)
                continue
            inv = inv_pb2.Investigation.FromString(pb)
            if _matches(inv, state, alert_name, fingerprint):
                found.append(without_outputs(inv))
                size_bytes += len(pb)
            if len(found) >= size or size_bytes >= PAGE_BYTES:
                break
    more = last is not None and bool(
        await redis.zrevrangebyscore(index, top, "-inf", start=offset, num=1)
    )
    if stale:
        await redis.zrem(index, *stale)
    token = _encode(scope, last) if more and last is not None else ""
    return found, token


def _matches(inv: inv_pb2.Investigation, state: int, alert_name: str, fingerprint: str) -> bool:
    return (
        (not state or inv.state == state)
        and (not alert_name or inv.alert.alert_name == alert_name)
        and (not fingerprint or inv.alert.fingerprint == fingerprint)
    )


async def _ties_before(redis: aioredis.Redis, index: str, cursor: Cursor) -> int:
    """Members of the cursor's score at or before the cursor in listing order: the
    offset of the next member below `cursor[0]` inclusive."""
    ties: Any = await redis.zrangebyscore(index, cursor[0], cursor[0])
    return sum(1 for member in ties if member >= cursor[1])


def _encode(scope: Sequence[object], cursor: Cursor) -> str:
    return seal(_DOMAIN, json.dumps([*scope, cursor[0], cursor[1].decode()]))


def _decode(token: str, scope: Sequence[object]) -> Cursor:
    """The cursor of a token issued for this very listing (owner and filters)."""
    payload = unseal(_DOMAIN, token)
    try:
        *token_scope, score, member = json.loads(payload or "null")
        if token_scope == list(scope) and isinstance(score, int) and isinstance(member, str):
            return score, member.encode()
    except (TypeError, ValueError):
        pass
    raise InvalidArgument.for_field(
        "page_token", "is not a page token issued for this listing; start over"
    )
