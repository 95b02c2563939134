"""Authentication settings (LLMGW_AUTH, LLMGW_ADMIN_KEY, LLMGW_INTERNAL_SECRET), what
counts as loopback, and the gate `build_gate` makes of them."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.common.errors import Unauthenticated
from services.common.identity.assertion import MIN_SECRET_BYTES
from services.common.identity.gate import BOOTSTRAP_ADMIN, Gate
from services.common.identity.wiring import build_gate, internal_keys
from services.common.settings import (
    MIN_ADMIN_KEY_LENGTH,
    ServiceSettings,
    SettingsError,
    is_loopback,
    load_settings,
)
from tests.support.trust import TEST_INTERNAL_SECRET, edge_metadata

ADMIN_KEY = "a" * MIN_ADMIN_KEY_LENGTH


def settings(**fields: object) -> ServiceSettings:
    return ServiceSettings.model_validate(
        {
            "service": "router",
            "port": 0,
            "metrics_port": 0,
            "internal_secret": TEST_INTERNAL_SECRET,
            **fields,
        }
    )


def unconnected_redis() -> aioredis.Redis:
    """A client that is never used: the decisions tested here need no Redis round trip
    (connecting would fail, the port is closed)."""
    return aioredis.Redis(host="127.0.0.1", port=1)


# -- parsing --------------------------------------------------------------------------


def test_authentication_is_off_and_there_is_no_admin_key_by_default() -> None:
    loaded = load_settings("router", [], {})
    assert loaded.auth == "off"
    assert loaded.admin_key is None


@pytest.mark.parametrize(("value", "auth"), [("required", "required"), ("REQUIRED", "required"),
                                             ("Off", "off"), ("off", "off")])  # fmt: skip
def test_llmgw_auth_is_case_insensitive(value: str, auth: str) -> None:
    assert load_settings("router", [], {"LLMGW_AUTH": value}).auth == auth


def test_an_unknown_auth_mode_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="LLMGW_AUTH"):
        load_settings("router", [], {"LLMGW_AUTH": "optional"})


def test_a_short_admin_key_is_refused_without_echoing_it() -> None:
    short = "s3cret-" + "x" * (MIN_ADMIN_KEY_LENGTH - 8)
    assert len(short) == MIN_ADMIN_KEY_LENGTH - 1
    with pytest.raises(SettingsError) as caught:
        load_settings("router", [], {"LLMGW_ADMIN_KEY": short})
    message = str(caught.value)
    assert "LLMGW_ADMIN_KEY" in message and f"at least {MIN_ADMIN_KEY_LENGTH}" in message
    assert short not in message


def test_an_admin_key_of_the_minimum_length_is_kept_secret() -> None:
    loaded = load_settings("router", [], {"LLMGW_ADMIN_KEY": ADMIN_KEY})
    assert loaded.admin_key is not None
    assert loaded.admin_key.get_secret_value() == ADMIN_KEY
    assert ADMIN_KEY not in repr(loaded) and ADMIN_KEY not in str(loaded)


def test_an_empty_admin_key_is_no_admin_key() -> None:
    assert load_settings("router", [], {"LLMGW_ADMIN_KEY": ""}).admin_key is None


def test_a_short_internal_secret_is_refused_without_echoing_it() -> None:
    short = "s3cret-" + "x" * (MIN_SECRET_BYTES - 8)
    with pytest.raises(SettingsError) as caught:
        load_settings("router", [], {"LLMGW_INTERNAL_SECRET": short})
    message = str(caught.value)
    assert "LLMGW_INTERNAL_SECRET" in message and f"at least {MIN_SECRET_BYTES} bytes" in message
    assert short not in message


def test_the_internal_secret_is_kept_secret() -> None:
    loaded = load_settings("router", [], {"LLMGW_INTERNAL_SECRET": TEST_INTERNAL_SECRET})
    assert loaded.internal_secret is not None
    assert loaded.internal_secret.get_secret_value() == TEST_INTERNAL_SECRET
    assert TEST_INTERNAL_SECRET not in repr(loaded) and TEST_INTERNAL_SECRET not in str(loaded)


# -- loopback -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "gateway", ""]
)
def test_hosts_that_reach_beyond_this_machine(host: str) -> None:
    assert not is_loopback(host)


# -- build_gate -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_off_on_loopback_builds_a_gate_that_requires_no_keys(host: str) -> None:
    assert not build_gate(settings(host=host), None).required
    assert not build_gate(settings(host=host), unconnected_redis()).required


@pytest.mark.parametrize("auth", ["off", "required"])
def test_every_service_needs_the_internal_secret(auth: str) -> None:
    bare = settings(auth=auth, internal_secret=None)
    for build in (
        lambda: build_gate(bare, unconnected_redis()),
        lambda: build_gate(bare, None, load_principals=False),
        lambda: internal_keys(bare),
    ):
        with pytest.raises(SettingsError, match="LLMGW_INTERNAL_SECRET is required"):
            build()


def test_the_providers_gate_needs_no_redis_even_when_keys_are_required() -> None:
    assert not build_gate(settings(auth="required"), None, load_principals=False).required


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_off_anywhere_but_loopback_is_refused(host: str) -> None:
    with pytest.raises(SettingsError) as caught:
        build_gate(settings(host=host), unconnected_redis())
    message = str(caught.value)
    assert host in message and "LLMGW_AUTH=required" in message


def test_required_needs_redis() -> None:
    with pytest.raises(SettingsError, match="LLMGW_REDIS_URL"):
        build_gate(settings(auth="required"), None)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
async def test_required_builds_a_gate_that_knows_the_admin_key(host: str) -> None:
    gate = build_gate(
        settings(host=host, auth="required", admin_key=ADMIN_KEY), unconnected_redis()
    )
    assert isinstance(gate, Gate) and gate.required
    caller = await gate.admit(
        "admin", [*edge_metadata(), ("authorization", f"Bearer {ADMIN_KEY}")], ""
    )
    assert caller.principal is BOOTSTRAP_ADMIN


async def test_required_without_an_admin_key_admits_no_bootstrap_admin() -> None:
    gate = build_gate(settings(auth="required"), unconnected_redis())
    # Not a well-formed API key: refused before any Redis lookup.
    with pytest.raises(Unauthenticated, match="not valid"):
        await gate.admit("admin", [*edge_metadata(), ("authorization", f"Bearer {ADMIN_KEY}")], "")
