"""The session service's Lua scripts (`lua/common.lua` + `lua/<name>.lua`)."""

from __future__ import annotations

from services.common.lua_scripts import LuaScript
from services.common.redis_metrics import RedisOperation


def _script(name: str) -> LuaScript:
    """A script timed as the operation `session_<name>`."""
    return LuaScript(__package__, name, timed=RedisOperation("session", f"session_{name}"))


class Scripts:
    """Every script the store runs."""

    def __init__(self) -> None:
        self.create = _script("create")
        self.read = _script("read")
        self.update = _script("update")
        self.clear = _script("clear")
        self.delete = _script("delete")
        self.append = _script("append")
        self.list = _script("list")
        self.sweep = _script("sweep")
