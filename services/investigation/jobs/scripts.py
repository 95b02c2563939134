"""The job store's Lua scripts (`lua/common.lua` + `lua/<name>.lua`), one per atomic step."""

from __future__ import annotations

from services.common.lua_scripts import LuaScript
from services.common.redis_metrics import RedisOperation


class Scripts:
    """Every script the job store runs."""

    def __init__(self) -> None:
        package = __package__ or "services.investigation"

        def script(name: str) -> LuaScript:
            # Timed as the operation `jobs_<name>`.
            return LuaScript(package, name, timed=RedisOperation("investigation", f"jobs_{name}"))

        self.create = script("create")
        self.save = script("save")
        self.request_cancel = script("request_cancel")
        self.claim = script("claim")
        self.heartbeat = script("heartbeat")
        self.emit = script("emit")
        self.finish = script("finish")
