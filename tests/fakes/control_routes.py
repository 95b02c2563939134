"""The `/_fake/*` HTTP endpoints that script a fake running in another process.

POST /_fake/script   JSON list of behaviours, queued in order
POST /_fake/default  one behaviour, used when nothing queued matches
POST /_fake/reset    clears script, default, recordings and counters
GET  /_fake/requests recorded requests, oldest first
GET  /_fake/stats    {"hits", "in_flight", "cancelled"}
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.behaviour import Behaviour
from tests.fakes.state import FakeState
from tests.fakes.wire import JSON, dumps, loads

PREFIX = "/_fake"


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type=JSON)


def _bad_request(message: str) -> web.Response:
    return _json({"error": message}, status=400)


def control_routes(state: FakeState) -> list[web.RouteDef]:
    async def script(request: web.Request) -> web.Response:
        try:
            payload = loads(await request.read())
            if not isinstance(payload, list):
                raise ValueError("expected a JSON list of behaviours")
            behaviours = [Behaviour.from_dict(item) for item in payload]
        except (ValueError, TypeError, KeyError) as error:
            return _bad_request(str(error))
        state.script(behaviours)
        return _json({"queued": len(state.queue)})

    async def default(request: web.Request) -> web.Response:
        try:
            behaviour = Behaviour.from_dict(loads(await request.read()))
        except (ValueError, TypeError, KeyError) as error:
            return _bad_request(str(error))
        state.default = behaviour
        return _json({})

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return _json({})

    async def requests(request: web.Request) -> web.Response:
        return _json([recorded.to_dict() for recorded in state.requests])

    async def stats(request: web.Request) -> web.Response:
        return _json(state.stats().to_dict())

    return [
        web.post(f"{PREFIX}/script", script),
        web.post(f"{PREFIX}/default", default),
        web.post(f"{PREFIX}/reset", reset),
        web.get(f"{PREFIX}/requests", requests),
        web.get(f"{PREFIX}/stats", stats),
    ]
