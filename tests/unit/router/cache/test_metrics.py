"""`count` records one request's cache status under its model."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.router.cache.metrics import count
from services.router.cache.status import CacheStatus


def _requests(model: str, status: str) -> float:
    labels = {"model": model, "status": status}
    return REGISTRY.get_sample_value("llmgw_cache_requests_total", labels) or 0.0


def test_count_labels_by_model_and_status() -> None:
    before_hit, before_off = _requests("m-count", "hit"), _requests("m-count", "off")
    count("m-count", CacheStatus.HIT)
    count("m-count", CacheStatus.HIT)
    count("m-count", "off")
    assert _requests("m-count", "hit") - before_hit == 2
    assert _requests("m-count", "off") - before_off == 1
