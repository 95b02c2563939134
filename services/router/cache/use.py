"""One request's use of the response cache: the decision, the lookup, the store, and
the status it reports (`x-llmgw-cache`, `llmgw_cache_requests_total`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.router.cache.entry import CachedAnswer
from services.router.cache.metrics import count
from services.router.cache.policy import CacheDecision
from services.router.cache.status import HEADER, CacheStatus
from services.router.cache.store import ResponseCache


@dataclass
class CacheUse:
    cache: ResponseCache
    decision: CacheDecision
    # Empty when the decision neither reads nor writes.
    key: str
    namespace: str
    # The requested model's metric label (`ResolvedModel.label`).
    model: str
    status: CacheStatus = field(init=False)

    def __post_init__(self) -> None:
        self.status = self.decision.status_if_not_read

    async def lookup(self) -> CachedAnswer | None:
        """The cached answer when the decision reads and one is stored; counts the
        request's status either way (once)."""
        found = None
        if self.decision.read:
            found = await self.cache.get(self.namespace, self.key)
            self.status = CacheStatus.HIT if found is not None else CacheStatus.MISS
        count(self.model, self.status)
        return found

    async def store(self, answer: CachedAnswer) -> None:
        """Keeps a complete answer when the decision writes (failures are the cache's
        to log and count; the request has its answer)."""
        if self.decision.write:
            await self.cache.put(self.namespace, self.key, answer, self.decision.ttl)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((HEADER, str(self.status)),)
