"""Whether one request reads and writes the response cache, and for how long.

| model's cache | cacheable, no gateway tools | gateway.cache | read | write | status if not read |
|---------------|-----------------------------|---------------|------|-------|--------------------|
| off           | any                         | any           | no   | no    | off                |
| on            | no                          | any           | no   | no    | off                |
| on            | yes                         | "" / default  | yes  | yes   | miss               |
| on            | yes                         | bypass        | no   | no    | bypass             |
| on            | yes                         | refresh       | no   | yes   | refresh            |

"Model's cache" is the model's `cache` when set, else `cache.enabled`.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.cache_config import CacheConfig
from services.common.errors import InvalidArgument
from services.common.gateway_config import ModelEntry
from services.router.cache.status import CacheStatus

DEFAULT, BYPASS, REFRESH = "default", "bypass", "refresh"
# Values of the request option `gateway.cache`; empty means `default`.
CACHE_MODES = ("", DEFAULT, BYPASS, REFRESH)
OPTION_FIELD = "gateway.cache"


@dataclass(frozen=True)
class CacheDecision:
    """What the cache does for one request.

    The status to report is `hit` when `read` found an answer, else `status_if_not_read`
    (`miss` when the cache was read; `off`, `bypass` or `refresh` when it was not).
    `ttl` is the lifetime in seconds of an answer written.
    """

    read: bool
    write: bool
    status_if_not_read: CacheStatus
    ttl: int


def check_mode(mode: str) -> str | None:
    """Why `mode` is not a valid `gateway.cache` value, or None when it is."""
    if mode in CACHE_MODES:
        return None
    return f"unknown cache mode '{mode}' (one of default, bypass, refresh)"


class CachePolicy:
    """Decides per request from the configuration, the model and the request."""

    def __init__(self, config: CacheConfig) -> None:
        self._config = config

    def configure(self, config: CacheConfig) -> None:
        """A reloaded configuration; applies to the next decision."""
        self._config = config

    def decide(
        self,
        entry: ModelEntry | None,
        mode: str,
        *,
        runs_gateway_tools: bool,
        cacheable: bool,
    ) -> CacheDecision:
        """The decision for a request to the model `entry` (None: a model outside the
        catalogue, e.g. matched by a prefix rule), with `gateway.cache` = `mode`.

        `cacheable` is `key.cacheable(upstream request)`; a request that runs the
        gateway-side tool loop is never cached. Raises InvalidArgument for an unknown
        mode, whatever the rest (a typo must not pass unnoticed while the cache is off).
        """
        problem = check_mode(mode)
        if problem is not None:
            raise InvalidArgument.for_field(OPTION_FIELD, problem)
        config = self._config
        enabled = config.enabled if entry is None or entry.cache is None else entry.cache
        ttl = (entry.cache_ttl_seconds if entry is not None else None) or config.ttl_seconds
        if not enabled or runs_gateway_tools or not cacheable:
            return CacheDecision(
                read=False, write=False, status_if_not_read=CacheStatus.OFF, ttl=ttl
            )
        if mode == BYPASS:
            return CacheDecision(
                read=False, write=False, status_if_not_read=CacheStatus.BYPASS, ttl=ttl
            )
        if mode == REFRESH:
            return CacheDecision(
                read=False, write=True, status_if_not_read=CacheStatus.REFRESH, ttl=ttl
            )
        return CacheDecision(read=True, write=True, status_if_not_read=CacheStatus.MISS, ttl=ttl)
