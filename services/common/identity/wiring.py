"""Builds a service's authentication gate from its settings."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from services.common.identity.cache import PrincipalCache
from services.common.identity.gate import Gate
from services.common.identity.store import IdentityStore
from services.common.settings import ServiceSettings, SettingsError, is_loopback

log = logging.getLogger("llmgw.identity")


def build_gate(settings: ServiceSettings, redis: aioredis.Redis | None) -> Gate | None:
    """The gate of a service with public RPCs; None while authentication is off.

    Off is refused on any address but loopback: a service reachable from the network
    must check keys.
    """
    if settings.auth == "off":
        if not is_loopback(settings.host):
            raise SettingsError(
                f"invalid {settings.service} settings: LLMGW_AUTH=off is allowed only on "
                f"loopback, and this service listens on {settings.host}; set "
                "LLMGW_AUTH=required"
            )
        return None
    if redis is None:
        raise SettingsError(
            f"invalid {settings.service} settings: LLMGW_AUTH=required needs "
            "LLMGW_REDIS_URL (API keys are kept in Redis)"
        )
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    log.info(
        "API keys required on every public RPC%s",
        " (bootstrap admin key set)" if admin_key else "",
    )
    return Gate(PrincipalCache(IdentityStore(redis)), admin_key=admin_key)
