"""Redis Lua scripts run with EVALSHA and loaded again after NOSCRIPT.

A script is a package's `lua/common.lua`, then any pieces it borrows from other packages
(`lua/<piece>.lua` there), then its own `lua/<name>.lua`. Redis keeps loaded
scripts only in memory, so after a restart (or SCRIPT FLUSH) EVALSHA answers NOSCRIPT;
the script is then loaded and run once more, which is safe because NOSCRIPT means it
never ran.

A script built with a `RedisOperation` (`timed`) is timed on every call, the NOSCRIPT
reload included (`services/common/redis_metrics.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.common.redis_metrics import RedisOperation

ScriptArg = str | bytes | int | float


class LuaScript:
    """One script of `package`, identified by the SHA1 of its full text."""

    def __init__(
        self,
        package: str,
        name: str,
        *,
        borrowed: Sequence[tuple[str, str]] = (),
        timed: RedisOperation | None = None,
    ) -> None:
        """`borrowed`: (package, piece) pairs whose `lua/<piece>.lua` defines functions
        this script calls, so one function is written once for every script using it.
        `timed`: the operation each call is measured as."""
        lua = resources.files(package).joinpath("lua")
        self.name = name
        self.timed = timed
        parts = [lua.joinpath("common.lua").read_text()]
        parts += [
            resources.files(other).joinpath("lua", f"{piece}.lua").read_text()
            for other, piece in borrowed
        ]
        parts.append(lua.joinpath(f"{name}.lua").read_text())
        self.text = "\n".join(parts)
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    async def __call__(
        self, client: aioredis.Redis, keys: Sequence[str], args: Sequence[ScriptArg]
    ) -> Any:
        if self.timed is None:
            return await self._run(client, keys, args)
        with self.timed.timed():
            return await self._run(client, keys, args)

    async def _run(
        self, client: aioredis.Redis, keys: Sequence[str], args: Sequence[ScriptArg]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)
