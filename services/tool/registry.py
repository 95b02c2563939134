"""Every tool this replica can run: built-in and file tools (static), run-time tools
(Redis), all looked up in memory so requests never wait on Redis.

A background task checks the run-time version every `refresh_interval` seconds and
reloads the hash when it changed, so a tool registered or deleted on any replica is
seen here within that interval (plus one Redis round trip). A change made through this
replica applies here at once. While Redis is unreachable the last run-time tools seen
stay in service and static tools are unaffected; CreateTool and DeleteTool answer
UNAVAILABLE. A static tool shadows a run-time tool of the same id (the file may gain
one after the run-time tool was registered). Without a store (no Redis configured)
there are no run-time tools and CreateTool and DeleteTool answer FAILED_PRECONDITION.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

from google.protobuf.message import DecodeError
from redis.exceptions import RedisError

from llmgw.common.v1 import error_reason_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound, Unavailable
from services.common.tasks import cancel_and_wait
from services.common.tool_config import HostAllowList, ToolDefinition, ToolsConfig
from services.tool.builtins import builtin_definitions
from services.tool.entries import Entry, ToolEntry, build_entry, build_toolset_entry
from services.tool.names import RESOURCE_TYPE, tool_name
from services.tool.runtime_store import RuntimeStore
from services.tool.tool_checks import load_stored, stored_form
from services.tool.toolsets.base import Toolset

log = logging.getLogger("llmgw.tool.registry")

REFRESH_INTERVAL = 0.25
RETRY_AFTER_SECONDS = 1.0
# What "Redis cannot be used" looks like.
UNREACHABLE = (RedisError, OSError, TimeoutError)

# Per file tool: its header values as written (`${NAME}` kept), by tool id.
HeaderTemplates = Mapping[str, Mapping[str, str]]


def static_entries(
    tools: ToolsConfig, headers: HeaderTemplates, toolsets: Sequence[Toolset] = ()
) -> dict[str, Entry]:
    entries: dict[str, Entry] = {
        d.name: build_entry(d, tool_pb2.TOOL_SOURCE_BUILTIN, tools)
        for d in builtin_definitions(tools.downstream)
    }
    for toolset in toolsets:
        for tool in toolset.tools():
            entries[tool.name] = build_toolset_entry(toolset, tool, tools.toolsets)
    for definition in tools.definitions:
        entries[definition.name] = build_entry(
            definition, tool_pb2.TOOL_SOURCE_CONFIG, tools, headers.get(definition.name)
        )
    return entries


@contextlib.asynccontextmanager
async def _store_errors() -> AsyncIterator[None]:
    try:
        yield
    except UNREACHABLE as error:
        log.warning("tool store unavailable: %s: %s", type(error).__name__, error)
        raise Unavailable(
            "the tool registry's store is unavailable; retry later",
            retry_after=RETRY_AFTER_SECONDS,
        ) from None


class ToolRegistry:
    def __init__(
        self,
        store: RuntimeStore | None,
        tools: ToolsConfig,
        headers: HeaderTemplates | None = None,
        *,
        refresh_interval: float = REFRESH_INTERVAL,
        toolsets: Sequence[Toolset] = (),
    ) -> None:
        self._store = store
        self._refresh_interval = refresh_interval
        self._config = tools
        self._allow = tools.allow_list
        # Built once at start (their clients live as long as the service).
        self._toolsets = tuple(toolsets)
        self._static = static_entries(tools, headers or {}, self._toolsets)
        self._runtime: dict[str, ToolEntry] = {}
        # What each run-time entry was compiled from: unchanged tools are not recompiled.
        self._sources: dict[str, bytes] = {}
        self._version: str | None = None
        # Bumped by every change made through this replica; a refresh that raced one
        # is dropped (its snapshot may predate the change) and retried next interval.
        self._changes = 0
        self._reachable = True
        self._task: asyncio.Task[None] | None = None

    def reconfigure(self, tools: ToolsConfig, headers: HeaderTemplates | None = None) -> None:
        """A reloaded `tools:` section: its file and built-in tools, allow-list and
        defaults replace the old ones at once; run-time tools are compiled again against
        it on the next refresh (their hosts are checked on every call anyway). The
        toolsets keep running; their timeout and result cap follow the new section."""
        self._config = tools
        self._allow = tools.allow_list
        self._static = static_entries(tools, headers or {}, self._toolsets)
        self._runtime = {}
        self._sources = {}
        self._version = None

    @property
    def allow_list(self) -> HostAllowList:
        return self._allow

    # Lookups (no I/O) -----------------------------------------------------------------

    def get(self, tool_id: str) -> Entry | None:
        return self._static.get(tool_id) or self._runtime.get(tool_id)

    def require(self, tool_id: str) -> Entry:
        entry = self.get(tool_id)
        if entry is None:
            raise not_found(tool_id)
        return entry

    def entries(self) -> list[Entry]:
        """Every tool, sorted by id (which sorts by name)."""
        merged: dict[str, Entry] = {**self._runtime, **self._static}
        return [merged[key] for key in sorted(merged)]

    # Changes ------------------------------------------------------------------------

    async def create(
        self, tool_id: str, tool: tool_pb2.Tool, definition: ToolDefinition
    ) -> ToolEntry:
        if tool_id in self._static:
            raise already_exists(tool_id, "from the configuration file or built in")
        store = self._require_store()
        stored = stored_form(tool_id, tool)
        async with _store_errors():
            created = await store.create(tool_id, stored)
        if not created:
            raise already_exists(tool_id, "registered at run time")
        entry = build_entry(definition, tool_pb2.TOOL_SOURCE_RUNTIME, self._config)
        # The version stays as last seen: the next refresh reloads the hash whole, so
        # changes other replicas made meanwhile are not skipped.
        self._changes += 1
        self._runtime = {**self._runtime, tool_id: entry}
        return entry

    async def delete(self, tool_id: str) -> None:
        if tool_id in self._static:
            source = self._static[tool_id].source
            origin = "built in" if source == tool_pb2.TOOL_SOURCE_BUILTIN else "configured"
            raise FailedPrecondition(
                f"tool '{tool_name(tool_id)}' is {origin}; change the configuration file "
                "to remove it"
            )
        store = self._require_store()
        async with _store_errors():
            deleted = await store.delete(tool_id)
        if not deleted:
            raise not_found(tool_id)
        self._changes += 1
        self._runtime = {k: v for k, v in self._runtime.items() if k != tool_id}

    def _require_store(self) -> RuntimeStore:
        if self._store is None:
            raise FailedPrecondition(
                "run-time tools need Redis, and this tool service has none "
                "(LLMGW_REDIS_URL); add tools to the configuration file instead"
            )
        return self._store

    # Run-time tools from Redis ------------------------------------------------------

    async def refresh(self) -> bool:
        """Reloads the run-time tools if they changed; True when they did. Raises the
        Redis error when Redis cannot be reached."""
        if self._store is None:
            return False
        changes = self._changes
        if self._version is not None and await self._store.version() == self._version:
            return False
        snapshot = await self._store.snapshot()
        if changes != self._changes:
            return False
        self._runtime = self._compile(snapshot.tools)
        self._sources = snapshot.tools
        self._version = snapshot.version
        return True

    def _compile(self, stored: Mapping[str, bytes]) -> dict[str, ToolEntry]:
        entries = {}
        for tool_id, raw in stored.items():
            if tool_id in self._static:
                log.warning("run-time tool %s is shadowed by a configured tool", tool_id)
                continue
            known = self._runtime.get(tool_id)
            if known is not None and self._sources.get(tool_id) == raw:
                entries[tool_id] = known
                continue
            try:
                definition = load_stored(tool_id, tool_pb2.Tool.FromString(raw))
            except (DecodeError, ValueError) as error:
                log.warning("run-time tool %s skipped: %s", tool_id, error)
                continue
            entries[tool_id] = build_entry(definition, tool_pb2.TOOL_SOURCE_RUNTIME, self._config)
        return entries

    async def _poll(self) -> None:
        while True:
            try:
                await self.refresh()
            except UNREACHABLE as error:
                if self._reachable:
                    log.warning(
                        "cannot refresh run-time tools (%s); serving the last ones seen", error
                    )
                self._reachable = False
            else:
                if not self._reachable:
                    log.info("run-time tools refreshed again")
                self._reachable = True
            await asyncio.sleep(self._refresh_interval)

    def start(self) -> None:
        if self._store is None:
            return
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="tool-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None


def not_found(tool_id: str) -> NotFound:
    return NotFound(
        f"tool '{tool_name(tool_id)}' not found",
        reason=error_reason_pb2.ERROR_REASON_TOOL_NOT_FOUND,
        resource_type=RESOURCE_TYPE,
        resource_name=tool_name(tool_id),
    )


def already_exists(tool_id: str, how: str) -> AlreadyExists:
    return AlreadyExists(f"tool '{tool_name(tool_id)}' exists already ({how})")
