"""The router's current catalogue, reloaded from the configuration file without restart.

A reload re-reads the file and swaps the catalogue whole, or, when the file is invalid
or unreadable, keeps the old one and says why (one field violation per problem). A
reload asked of one replica (the admin RPC) is announced in Redis; every replica's
watcher notices within a second and reloads from its own file, so all replicas serve
the same catalogue without the caller reaching each one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import redis.asyncio as aioredis
from redis import exceptions as redis_exceptions

from services.common.errors import FieldViolation, InvalidArgument, Unavailable
from services.common.gateway_config import ConfigError, GatewayConfig, load_config
from services.common.tasks import cancel_and_wait
from services.router.catalog import Catalog

log = logging.getLogger("llmgw.router.catalog")

# The version of the last catalogue a replica was asked to load, and a counter bumped
# by every announcement (so reloading an unchanged file still reaches every replica:
# one of them may have missed the previous one).
VERSION_KEY = "llmgw:catalog:version"
GENERATION_KEY = "llmgw:catalog:generation"
POLL_INTERVAL = 1.0
KEPT = "the previous catalogue stays in service"

Announcement = tuple[str, int]


def config_version(config: GatewayConfig) -> str:
    """A short hash of the configuration's content, the same in every process."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class CatalogStore:
    """Holds `current` (and its `version`); `reload` replaces both or neither."""

    def __init__(
        self,
        config_path: Path | None,
        redis: aioredis.Redis | None,
        environ: Mapping[str, str] = os.environ,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._path = config_path
        self._redis = redis
        self._environ = environ
        self._poll_interval = poll_interval
        # The first load raises ConfigError: an invalid file must stop the process.
        config = load_config(config_path, environ)
        self.current = Catalog(config)
        self.version = config_version(config)
        self._subscribers: list[Callable[[Catalog], None]] = []
        self._lock = asyncio.Lock()
        self._seen: Announcement | None = None
        self._watcher: asyncio.Task[None] | None = None

    def subscribe(self, callback: Callable[[Catalog], None]) -> None:
        """`callback` gets every catalogue a reload installs."""
        self._subscribers.append(callback)

    async def reload(self, *, broadcast: bool) -> Catalog:
        """Re-read the file; with `broadcast`, every replica is told to reload too.

        Raises InvalidArgument (the old catalogue kept) when the file is invalid or
        unreadable, Unavailable when this replica reloaded but Redis could not carry
        the announcement (retrying is safe).
        """
        async with self._lock:
            try:
                config = load_config(self._path, self._environ)
            except ConfigError as error:
                raise self._rejected(error) from None
            catalog = Catalog(config)
            self.current = catalog
            self.version = config_version(config)
            for callback in self._subscribers:
                try:
                    callback(catalog)
                except Exception:
                    log.exception("catalogue subscriber failed")
            log.info(
                "catalogue loaded",
                extra={"version": self.version, "models": len(config.models)},
            )
            if broadcast and self._redis is not None:
                await self._announce()
            return catalog

    def _rejected(self, error: ConfigError) -> InvalidArgument:
        violations = [
            # A problem of the whole file (unreadable, not YAML) is the `config` field.
            FieldViolation(path or "config", self._without_directories(message))
            for path, message in error.violations
        ]
        shown = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
        more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
        return InvalidArgument(f"configuration not reloaded, {KEPT}: {shown}{more}", violations)

    def _without_directories(self, message: str) -> str:
        """Callers see the file's name, not where it lives on the machine."""
        if self._path is None:
            return message
        for form in {str(self._path), str(self._path.resolve())}:
            message = message.replace(form, self._path.name)
        return message

    async def _announce(self) -> None:
        assert self._redis is not None
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(VERSION_KEY, self.version)
                pipe.incr(GENERATION_KEY)
                _, generation = await pipe.execute()
        except (redis_exceptions.RedisError, OSError) as error:
            raise Unavailable(
                "the catalogue was reloaded on this router replica, but the other replicas "
                f"could not be told (Redis: {type(error).__name__}); retry the reload"
            ) from None
        # Our own announcement: the watcher must not reload for it once more.
        self._seen = (self.version, int(generation))

    # Watcher ---------------------------------------------------------------------

    def start(self) -> None:
        """Follow announcements from other replicas (no-op without Redis)."""
        if self._redis is not None and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._watcher is not None:
            await cancel_and_wait(self._watcher)
            self._watcher = None

    async def _watch(self) -> None:
        failing = False
        while True:
            try:
                await self.check_announcement()
                if failing:
                    log.info("catalogue watcher: Redis reachable again")
                failing = False
            except (redis_exceptions.RedisError, OSError) as error:
                if not failing:
                    log.warning(
                        "catalogue watcher: Redis unavailable, retrying every %.0fs",
                        self._poll_interval,
                        extra={"error": type(error).__name__},
                    )
                failing = True
            except Exception:
                log.exception("catalogue watcher failed; retrying")
            await asyncio.sleep(self._poll_interval)

    async def check_announcement(self) -> bool:
        """Reload from the file if another replica announced a reload; True if it did.

        The first announcement seen only counts when its version differs from ours (it
        may predate this process, which loaded the file moments ago).
        """
        assert self._redis is not None
        version, generation = await self._redis.mget(VERSION_KEY, GENERATION_KEY)
        if version is None:
            return False
        seen: Announcement = (_text(version), int(generation or 0))
        first = self._seen is None
        if seen == self._seen or (first and seen[0] == self.version):
            self._seen = seen
            return False
        self._seen = seen
        try:
            await self.reload(broadcast=False)
        except InvalidArgument as error:
            log.error("announced reload failed: %s", error.message)
        return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
