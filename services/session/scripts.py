"""The session service's Lua scripts, run with EVALSHA and reloaded after NOSCRIPT.

Each script is `lua/common.lua` followed by `lua/<name>.lua`. Redis keeps loaded scripts
only in memory, so after a restart (or SCRIPT FLUSH) EVALSHA answers NOSCRIPT; the script
is then loaded again and run once more, which is safe because NOSCRIPT means it never ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

ScriptArg = str | bytes | int


def _source(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


class LuaScript:
    """One script, identified by the SHA1 of its full text."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = _source("common") + "\n" + _source(name)
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    async def __call__(
        self, client: aioredis.Redis, keys: Sequence[str], args: Sequence[ScriptArg]
    ) -> object:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


class Scripts:
    """Every script the store runs."""

    def __init__(self) -> None:
        self.create = LuaScript("create")
        self.read = LuaScript("read")
        self.update = LuaScript("update")
        self.clear = LuaScript("clear")
        self.delete = LuaScript("delete")
        self.append = LuaScript("append")
        self.list = LuaScript("list")
        self.sweep = LuaScript("sweep")
