"""The `cache:` section: opt-in defaults, bounds, unknown keys refused, per-model overrides."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.cache_config import CacheConfig
from services.common.gateway_config import ConfigError, parse_config

PROVIDERS: dict[str, Any] = {"p": {"type": "openai"}}
MODEL: dict[str, Any] = {"name": "m", "deployments": [{"provider": "p", "model": "x"}]}


def _problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return dict(caught.value.violations)


def test_defaults_leave_the_cache_off() -> None:
    cache = parse_config({}).cache
    assert cache == CacheConfig()
    assert cache.enabled is False
    assert (cache.ttl_seconds, cache.shared, cache.max_entry_bytes) == (3600, False, 1_048_576)
    assert cache.key_prefix == "llmgw:cache"


def test_a_full_section_loads() -> None:
    cache = parse_config(
        {
            "cache": {
                "enabled": True,
                "ttl_seconds": 60,
                "shared": True,
                "max_entry_bytes": 4096,
                "key_prefix": "gw:c",
            }
        }
    ).cache
    assert cache == CacheConfig(
        enabled=True, ttl_seconds=60, shared=True, max_entry_bytes=4096, key_prefix="gw:c"
    )


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"ttl_seconds": 0}, "cache.ttl_seconds"),
        ({"ttl_seconds": -5}, "cache.ttl_seconds"),
        ({"max_entry_bytes": 0}, "cache.max_entry_bytes"),
        ({"key_prefix": ""}, "cache.key_prefix"),
        ({"ttl": 60}, "cache.ttl"),
    ],
)
def test_invalid_values_are_named(section: dict[str, Any], path: str) -> None:
    assert path in _problems({"cache": section})


def test_per_model_overrides_load() -> None:
    config = parse_config(
        {"providers": PROVIDERS, "models": [{**MODEL, "cache": True, "cache_ttl_seconds": 30}]}
    )
    entry = config.models[0]
    assert (entry.cache, entry.cache_ttl_seconds) == (True, 30)
    default = parse_config({"providers": PROVIDERS, "models": [MODEL]}).models[0]
    assert (default.cache, default.cache_ttl_seconds) == (None, None)


def test_per_model_ttl_must_be_positive() -> None:
    problems = _problems({"providers": PROVIDERS, "models": [{**MODEL, "cache_ttl_seconds": 0}]})
    assert "models.0.cache_ttl_seconds" in problems
