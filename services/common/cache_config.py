"""The `cache:` section of the configuration file: the router's response cache."""

from __future__ import annotations

from pydantic import Field

from services.common.config_base import Strict


class CacheConfig(Strict):
    """The response cache's configuration; a model's `cache` and `cache_ttl_seconds`
    override `enabled` and `ttl_seconds` for that model."""

    # Opt-in: a gateway must not silently answer a sampled request from yesterday.
    enabled: bool = False
    # How long a stored answer is served.
    ttl_seconds: int = Field(default=3600, gt=0)
    # One namespace for every consumer group instead of one per group.
    shared: bool = False
    # Answers whose stored form is larger are not stored (they still reach the caller).
    max_entry_bytes: int = Field(default=1_048_576, gt=0)
    # Redis keys are `{key_prefix}:{namespace}:{hash}`.
    key_prefix: str = Field(default="llmgw:cache", min_length=1)
