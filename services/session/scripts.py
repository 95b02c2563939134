"""The session service's Lua scripts (`lua/common.lua` + `lua/<name>.lua`)."""

from __future__ import annotations

from services.common.lua_scripts import LuaScript


class Scripts:
    """Every script the store runs."""

    def __init__(self) -> None:
        self.create = LuaScript(__package__, "create")
        self.read = LuaScript(__package__, "read")
        self.update = LuaScript(__package__, "update")
        self.clear = LuaScript(__package__, "clear")
        self.delete = LuaScript(__package__, "delete")
        self.append = LuaScript(__package__, "append")
        self.list = LuaScript(__package__, "list")
        self.sweep = LuaScript(__package__, "sweep")
