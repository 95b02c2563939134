"""What the cache did for a request, as reported in metadata and metrics."""

from __future__ import annotations

from enum import StrEnum

# Response metadata key (initial metadata; an HTTP response header behind Envoy).
HEADER = "x-llmgw-cache"


class CacheStatus(StrEnum):
    HIT = "hit"  # answered from the cache, no provider call
    MISS = "miss"  # looked up, nothing usable (absent, unreadable, or Redis failed)
    BYPASS = "bypass"  # the request asked for no cache: neither read nor written
    REFRESH = "refresh"  # the request asked for a fresh answer: not read, written
    OFF = "off"  # the cache does not apply: disabled for the model, or a tool request
