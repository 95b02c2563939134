"""Per-deployment circuit breakers whose state router replicas share through Redis.

Each breaker is one Redis hash, `<prefix><key>`, changed only by the Lua scripts in
`lua/` (the state machine of `breaker_machine.py`, run atomically). Each replica keeps a
snapshot of every breaker it uses and answers the common case from it, without I/O:

- `admit` on a CLOSED snapshot, or an OPEN one before its reopen time, is local. Past
  the reopen time, or HALF_OPEN, Redis elects the single probe across all replicas. The
  first admission of a key this replica has not seen yet also asks Redis, so a replica
  joining late does not call a deployment the others have opened.
- `record(SUCCESS)` on a CLOSED snapshot with no consecutive failures is batched; every
  other outcome runs its script at once (with the key's batch, so batched successes
  count in the window before the outcome is judged) and its reply updates the snapshot.
- A background task (`sync_interval`) flushes every batch and reads back every known
  breaker in one script call, so replicas learn each other's transitions within one
  interval. Replies carry the hash's version; an older reply never overwrites a newer
  snapshot (a periodic read that raced no other reply is applied regardless, which also
  repairs a snapshot after Redis lost its data).

Redis unreachable (connection error, timeout, or Redis refusing commands): the registry
logs one WARNING and every breaker runs `BreakerMachine` on this replica's snapshot, with
the same semantics, per replica. Only the sync task (or `refresh`) tries Redis again, so
requests never wait on a dead Redis more than once. The first successful sync logs one
INFO, takes Redis's state, except that a breaker this replica opened during the outage is
opened in Redis too if Redis has it CLOSED. Without Redis at all (`redis=None`) the
registry is purely local.

Layout needs one Redis (or one shard): the sync script takes keys of many breakers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.breaker_machine import (
    Admission,
    BreakerMachine,
    BreakerState,
    BreakerView,
    Outcome,
    window_index,
)
from services.common.gateway_config import BreakerConfig
from services.common.lua_scripts import LuaScript
from services.common.redis_metrics import RedisOperation
from services.router.routing import breaker_metrics as metrics

__all__ = ["Admission", "BreakerRegistry", "BreakerState", "BreakerView", "Outcome"]

log = logging.getLogger("llmgw.breaker")

# What "Redis cannot be used" looks like; the breakers then decide locally.
_UNREACHABLE = (RedisError, OSError, asyncio.TimeoutError)
# The final flush in `close` gives up after this many seconds.
_CLOSE_FLUSH_SECONDS = 1.0
# Hash fields in every script reply, per breaker (lua/common.lua `encode`).
_FIELDS = 8

_ADMITTED = Admission(True, False, BreakerState.CLOSED, 0.0)
_CLOSED_VIEW = BreakerView(BreakerState.CLOSED, 0.0, 0)


def key_ttl_seconds(config: BreakerConfig) -> float:
    """How long a breaker's hash outlives its last write (and a replica's idle snapshot)."""
    return max(config.window_seconds, config.open_seconds, config.probe_timeout) * 4 + 60


def _script(name: str) -> LuaScript:
    """A script timed as the operation `breaker_<name>`."""
    return LuaScript(__package__, name, timed=RedisOperation("router", f"breaker_{name}"))


class _Scripts:
    def __init__(self) -> None:
        self.admit = _script("admit")
        self.record = _script("record")
        self.sync = _script("sync")


@dataclass
class _Batch:
    """Successes not yet sent to Redis: `count` in window `window`, newest at `last_at`."""

    count: int = 0
    window: int = 0
    last_at: float = 0.0


@dataclass
class _Entry:
    machine: BreakerMachine = field(default_factory=BreakerMachine)
    # Version of the Redis hash the snapshot came from (0: none, or the hash is absent).
    version: int = 0
    # Replies applied so far: a sync whose keys got no other reply meanwhile holds the
    # freshest read and is applied whatever its version.
    applied: int = 0
    pending: _Batch = field(default_factory=_Batch)
    # Last admit/record/refresh (registry clock); idle snapshots are dropped.
    used: float = 0.0
    # Opened by this replica while Redis was unreachable: offered to Redis on resync.
    opened_offline: bool = False

    def take_batch(self) -> _Batch:
        batch = self.pending
        self.pending = _Batch(0, batch.window, 0.0)
        return batch


def _parse(fields: Sequence[bytes | str]) -> tuple[BreakerMachine, int]:
    s, r, c, w, t, f, last, v = (float(x) for x in fields)
    machine = BreakerMachine(BreakerState(int(s)), r, int(c), int(w), int(t), int(f), last)
    return machine, int(v)


class BreakerRegistry:
    """Every deployment's breaker on this replica, keyed by an opaque deployment key."""

    def __init__(
        self,
        redis: aioredis.Redis | None,
        config: BreakerConfig,
        *,
        prefix: str = "llmgw:breaker:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._config = config
        self._prefix = prefix
        self._clock = clock
        self._scripts = _Scripts()
        self._entries: dict[str, _Entry] = {}
        self._degraded = False
        self._task: asyncio.Task[None] | None = None

    def configure(self, config: BreakerConfig) -> None:
        """New thresholds (a catalogue reload); every breaker keeps its state."""
        self._config = config

    async def admit(self, key: str) -> Admission:
        """Whether a call to `key` may go ahead now; see the module docstring for I/O."""
        config = self._config
        if not config.enabled:
            return _ADMITTED
        now = self._clock()
        fresh = key not in self._entries
        entry = self._entry(key, now)
        machine = entry.machine
        local = (
            self._redis is None
            or self._degraded
            or (
                not fresh
                and (
                    machine.state is BreakerState.CLOSED
                    or (machine.state is BreakerState.OPEN and now < machine.reopen_at)
                )
            )
        )
        if not local:
            reply = await self._run(self._scripts.admit, [key], [], now)
            if reply is not None:
                allowed, probe, entered = (int(x) for x in reply[:3])
                seen, version = _parse(reply[3:])
                self._apply(key, entry, seen, version)
                if entered:
                    metrics.transition(key, BreakerState(entered))
                if not allowed:
                    metrics.short_circuit(key)
                    return Admission(False, False, seen.state, seen.reopen_at)
                return Admission(True, bool(probe), seen.state, 0.0)
        return self._admit_locally(key, entry, now)

    async def record(self, key: str, outcome: Outcome, *, probe: bool = False) -> None:
        """The outcome of an admitted call; `probe` as the admission said."""
        config = self._config
        if not config.enabled or (outcome is Outcome.NEUTRAL and not probe):
            return
        now = self._clock()
        entry = self._entry(key, now)
        if self._redis is None or self._degraded:
            self._record_locally(key, entry, outcome, now, probe)
            return
        machine = entry.machine
        if (
            outcome is Outcome.SUCCESS
            and not probe
            and machine.state is BreakerState.CLOSED
            and machine.consecutive == 0
        ):
            self._batch_success(entry, now)
            return
        batch = entry.take_batch()
        args = [outcome.value, int(probe), batch.count, batch.window, batch.last_at]
        reply = await self._run(self._scripts.record, [key], args, now)
        if reply is None:
            entry.machine.add_successes(batch.count, batch.window, batch.last_at, now, config)
            self._record_locally(key, entry, outcome, now, probe)
            return
        entered = int(reply[0])
        seen, version = _parse(reply[1:])
        self._apply(key, entry, seen, version)
        if entered:
            metrics.transition(key, BreakerState(entered))

    def view(self, key: str) -> BreakerView:
        """This replica's snapshot of `key` (CLOSED if it has none); no I/O."""
        entry = self._entries.get(key)
        if entry is None or not self._config.enabled:
            return _CLOSED_VIEW
        return entry.machine.view()

    async def refresh(self, keys: Iterable[str]) -> dict[str, BreakerView]:
        """Syncs with Redis now (flushing batches) and returns the views of `keys`; the
        local views if Redis cannot be reached."""
        wanted = list(keys)
        now = self._clock()
        if self._config.enabled:
            for key in wanted:
                self._entry(key, now)
            await self._sync()
        return {key: self.view(key) for key in wanted}

    async def start(self) -> None:
        """Starts the periodic sync (nothing to sync without Redis)."""
        if self._redis is not None and self._task is None:
            self._task = asyncio.create_task(self._sync_forever(), name="breaker-sync")

    async def close(self) -> None:
        """Stops the periodic sync, then flushes batched successes if Redis answers."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        if self._redis is not None and not self._degraded:
            try:
                await asyncio.wait_for(self._sync(), _CLOSE_FLUSH_SECONDS)
            except TimeoutError:
                log.info("circuit breakers: final flush to Redis timed out; batches dropped")

    # -- internals -------------------------------------------------------------------

    def _entry(self, key: str, now: float) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            metrics.observe_state(key, entry.machine.state)
        entry.used = now
        return entry

    def _batch_success(self, entry: _Entry, now: float) -> None:
        window = window_index(now, self._config)
        if window != entry.pending.window:
            # Successes of an ended window no longer matter to any decision.
            entry.pending = _Batch(0, window, 0.0)
        entry.pending.count += 1
        entry.pending.last_at = max(entry.pending.last_at, now)

    def _admit_locally(self, key: str, entry: _Entry, now: float) -> Admission:
        before = entry.machine.state
        admission = entry.machine.admit(now, self._config)
        self._local_change(key, entry, before)
        if not admission.allowed:
            metrics.short_circuit(key)
        return admission

    def _record_locally(
        self, key: str, entry: _Entry, outcome: Outcome, now: float, probe: bool
    ) -> None:
        before = entry.machine.state
        entry.machine.record(outcome, now, self._config, probe=probe)
        self._local_change(key, entry, before)

    def _local_change(self, key: str, entry: _Entry, before: BreakerState) -> None:
        state = entry.machine.state
        if state is before:
            return
        metrics.transition(key, state)
        metrics.observe_state(key, state)
        if self._degraded:
            entry.opened_offline = state is BreakerState.OPEN

    def _apply(
        self,
        key: str,
        entry: _Entry,
        machine: BreakerMachine,
        version: int,
        *,
        regardless: bool = False,
    ) -> None:
        if version < entry.version and not regardless:
            return  # a reply that left Redis before one already applied
        entry.machine = machine
        entry.version = version
        entry.applied += 1
        metrics.observe_state(key, machine.state)

    def _script_args(self, now: float) -> list[int | float]:
        c = self._config
        ttl_ms = math.ceil(key_ttl_seconds(c) * 1000)
        return [
            now,
            c.consecutive_failures,
            c.failure_rate,
            c.min_requests,
            c.window_seconds,
            c.open_seconds,
            c.probe_timeout,
            ttl_ms,
        ]

    async def _run(
        self, script: LuaScript, keys: Sequence[str], args: Sequence[int | float], now: float
    ) -> Any:
        """The script's reply, or None when Redis cannot be used (the registry is then
        degraded: see `_degrade`)."""
        assert self._redis is not None
        try:
            return await script(
                self._redis,
                [self._prefix + key for key in keys],
                [*self._script_args(now), *args],
            )
        except _UNREACHABLE as error:
            self._degrade(error)
            return None

    def _degrade(self, error: BaseException) -> None:
        if self._degraded:
            return
        self._degraded = True
        log.warning(
            "circuit breakers: Redis unreachable (%s: %s); each breaker runs on this "
            "replica's own state until Redis answers again",
            type(error).__name__,
            error,
        )
        now = self._clock()
        for entry in self._entries.values():
            batch = entry.take_batch()
            entry.machine.add_successes(batch.count, batch.window, batch.last_at, now, self._config)

    def _prune(self, now: float) -> None:
        idle_before = now - key_ttl_seconds(self._config)
        for key in [k for k, e in self._entries.items() if e.used < idle_before]:
            del self._entries[key]
            metrics.forget(key)

    async def _sync(self) -> None:
        """Flushes every batch and reads back every known breaker in one round trip;
        while degraded, this is also the attempt to reach Redis again."""
        if self._redis is None or not self._config.enabled:
            return
        now = self._clock()
        self._prune(now)
        recovering = self._degraded
        if not self._entries and not recovering:
            return
        keys = list(self._entries)
        sent: list[tuple[_Batch, int]] = []
        args: list[int | float] = []
        for key in keys:
            entry = self._entries[key]
            batch = entry.take_batch()
            machine = entry.machine
            adopt_until = 0.0
            if recovering and entry.opened_offline and machine.state is BreakerState.OPEN:
                adopt_until = machine.reopen_at
            args += [batch.count, batch.window, batch.last_at, adopt_until]
            sent.append((batch, entry.applied))
        reply = await self._run(self._scripts.sync, keys, args, now)
        if reply is None:
            for key, (batch, _) in zip(keys, sent, strict=True):
                if (unsent := self._entries.get(key)) is not None:
                    unsent.machine.add_successes(
                        batch.count, batch.window, batch.last_at, now, self._config
                    )
            return
        if self._degraded:
            self._degraded = False
            recovering = True
            log.info("circuit breakers: Redis answers again; shared breaker state restored")
        for i, (key, (_, applied)) in enumerate(zip(keys, sent, strict=True)):
            synced = self._entries.get(key)
            if synced is None:
                continue
            machine, version = _parse(reply[i * _FIELDS : (i + 1) * _FIELDS])
            if recovering:
                synced.opened_offline = False
            self._apply(
                key, synced, machine, version, regardless=recovering or synced.applied == applied
            )

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.sync_interval)
            try:
                await self._sync()
            except Exception:
                # Redis being unreachable never gets here (`_run`); this is a bug, and one
                # bad round must not end the sharing of breaker state for good.
                log.exception("circuit breakers: sync failed")
