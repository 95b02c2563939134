"""Authentication settings (LLMGW_AUTH, LLMGW_ADMIN_KEY), what counts as loopback, and
the gate `build_gate` makes of them."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.common.errors import Unauthenticated
from services.common.identity.gate import BOOTSTRAP_ADMIN, Gate
from services.common.identity.wiring import build_gate
from services.common.settings import (
    MIN_ADMIN_KEY_LENGTH,
    ServiceSettings,
    SettingsError,
    is_loopback,
    load_settings,
)

ADMIN_KEY = "a" * MIN_ADMIN_KEY_LENGTH


def settings(**fields: object) -> ServiceSettings:
    return ServiceSettings.model_validate(
        {"service": "router", "port": 0, "metrics_port": 0, **fields}
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
def test_off_on_loopback_builds_no_gate(host: str) -> None:
    assert build_gate(settings(host=host), None) is None
    assert build_gate(settings(host=host), unconnected_redis()) is None


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
    assert isinstance(gate, Gate)
    caller = await gate.admit("admin", [("authorization", f"Bearer {ADMIN_KEY}")], "")
    assert caller.principal is BOOTSTRAP_ADMIN


async def test_required_without_an_admin_key_admits_no_bootstrap_admin() -> None:
    gate = build_gate(settings(auth="required"), unconnected_redis())
    assert gate is not None
    # Not a well-formed API key: refused before any Redis lookup.
    with pytest.raises(Unauthenticated):
        await gate.admit("admin", [("authorization", f"Bearer {ADMIN_KEY}")], "")
