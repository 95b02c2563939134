"""A service's request-id store, from its settings."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.common.idempotency.sealing import Sealer
from services.common.idempotency.store import IdempotencyStore
from services.common.settings import ServiceSettings


def idempotency_store(settings: ServiceSettings, redis: aioredis.Redis) -> IdempotencyStore:
    """Outcomes that hold a secret are sealed with a key derived from
    `LLMGW_INTERNAL_SECRET` (every service has one; without it none is kept)."""
    secret = settings.internal_secret
    sealer = Sealer(secret.get_secret_value().encode()) if secret is not None else None
    return IdempotencyStore(redis, sealer=sealer, service=settings.service)
