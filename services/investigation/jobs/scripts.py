"""The job store's Lua scripts (`lua/common.lua` + `lua/<name>.lua`), one per atomic step."""

from __future__ import annotations

from services.common.lua_scripts import LuaScript


class Scripts:
    """Every script the job store runs."""

    def __init__(self) -> None:
        package = __package__ or "services.investigation"
        self.create = LuaScript(package, "create")
        self.save = LuaScript(package, "save")
        self.request_cancel = LuaScript(package, "request_cancel")
        self.claim = LuaScript(package, "claim")
        self.heartbeat = LuaScript(package, "heartbeat")
        self.emit = LuaScript(package, "emit")
        self.finish = LuaScript(package, "finish")
