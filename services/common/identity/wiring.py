"""Builds a service's internal keys and authentication gate from its settings."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from services.common.identity.assertion import MIN_SECRET_BYTES, InternalKeys
from services.common.identity.cache import PrincipalCache
from services.common.identity.gate import Gate
from services.common.identity.store import IdentityStore
from services.common.settings import ServiceSettings, SettingsError, is_loopback

log = logging.getLogger("llmgw.identity")


def internal_keys(settings: ServiceSettings) -> InternalKeys:
    """The keys that mint and verify this service's principal assertions; every service
    needs them, whatever the auth mode (the gate refuses calls without a proof)."""
    if settings.internal_secret is None:
        raise SettingsError(
            f"invalid {settings.service} settings: LLMGW_INTERNAL_SECRET is required (at "
            f"least {MIN_SECRET_BYTES} random bytes, the same for every service of the "
            "gateway): it signs the calls services make to each other. `llmgw up` "
            "generates one per stack"
        )
    return InternalKeys(
        settings.internal_secret.get_secret_value(), settings.replica or settings.service
    )


def build_gate(
    settings: ServiceSettings,
    redis: aioredis.Redis | None,
    keys: InternalKeys | None = None,
    *,
    load_principals: bool = True,
) -> Gate:
    """The gate of a service: API keys checked when authentication is required.

    Off is refused on any address but loopback: a service reachable from the network
    must check keys. `load_principals` False (the provider): calls are admitted on the
    strength of their assertion alone, and no Redis is needed.
    """
    keys = keys or internal_keys(settings)
    if settings.auth == "off" and not is_loopback(settings.host):
        raise SettingsError(
            f"invalid {settings.service} settings: LLMGW_AUTH=off is allowed only on "
            f"loopback, and this service listens on {settings.host}; set "
            "LLMGW_AUTH=required"
        )
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    if not load_principals:
        return Gate(keys, None, load_principals=False)
    if settings.auth == "off":
        return Gate(keys, None, admin_key=admin_key)
    if redis is None:
        raise SettingsError(
            f"invalid {settings.service} settings: LLMGW_AUTH=required needs "
            "LLMGW_REDIS_URL (API keys are kept in Redis)"
        )
    log.info(
        "API keys required on every public RPC%s",
        " (bootstrap admin key set)" if admin_key else "",
    )
    return Gate(keys, PrincipalCache(IdentityStore(redis)), admin_key=admin_key)
