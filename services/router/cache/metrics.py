"""Response cache metrics: what the cache did per request, Redis failures, bytes stored."""

from __future__ import annotations

from prometheus_client import Counter

from services.router.cache.status import CacheStatus

REQUESTS = Counter(
    "llmgw_cache_requests_total",
    "Chat completions and embeddings requests by public model and cache status (hit, miss, "
    "bypass, refresh, off).",
    ["model", "status"],
)
ERRORS = Counter(
    "llmgw_cache_errors_total",
    "Cache operations that failed (get, put: Redis errors; decode: unreadable entries). "
    "A failed get is served as a miss, a failed put is dropped.",
    ["operation"],
)
STORED_BYTES = Counter(
    "llmgw_cache_stored_bytes_total",
    "Bytes of answers written to the cache.",
)


def count(model: str, status: CacheStatus | str) -> None:
    """One request's cache status; call once per chat completion."""
    REQUESTS.labels(model, str(status)).inc()
