"""The `/_fake/*` HTTP endpoints that script a fake running in another process.

POST /_fake/script        JSON list of behaviours, queued in order
POST /_fake/default       {"behaviours": [...], "model": "x" | null}, as `set_default`; a
                          bare behaviour object is still a one-behaviour general default
POST /_fake/conversation  {"model": "x", "turns": [...]}, as `set_conversation`
POST /_fake/reset         clears script, conversations, defaults, recordings and counters
GET  /_fake/requests      recorded requests, oldest first
GET  /_fake/stats         {"hits", "in_flight", "cancelled", "hits_by_model",
                          "last_cancelled_at"}
"""

from __future__ import annotations

from collections.abc import Mapping
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


def parse_default(payload: Any) -> tuple[list[Behaviour], str | None]:
    """(behaviours, model) from a `/_fake/default` body, in either accepted shape."""
    if not isinstance(payload, Mapping) or "behaviours" not in payload:
        return [Behaviour.from_dict(payload)], None
    unknown = set(payload) - {"behaviours", "model"}
    if unknown:
        raise ValueError(f"unknown default fields: {sorted(unknown)}")
    items, model = payload["behaviours"], payload.get("model")
    if not isinstance(items, list):
        raise ValueError("behaviours must be a JSON list")
    if model is not None and not isinstance(model, str):
        raise ValueError("model must be a string or null")
    return [Behaviour.from_dict(item) for item in items], model


def parse_conversation(payload: Any) -> tuple[str, list[Behaviour]]:
    """(model, turns) from a `/_fake/conversation` body."""
    if not isinstance(payload, Mapping):
        raise ValueError('expected a JSON object {"model": ..., "turns": [...]}')
    unknown = set(payload) - {"model", "turns"}
    if unknown:
        raise ValueError(f"unknown conversation fields: {sorted(unknown)}")
    model, turns = payload.get("model"), payload.get("turns")
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string")
    if not isinstance(turns, list):
        raise ValueError("turns must be a JSON list")
    return model, [Behaviour.from_dict(turn) for turn in turns]


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
            behaviours, model = parse_default(loads(await request.read()))
        except (ValueError, TypeError, KeyError) as error:
            return _bad_request(str(error))
        state.set_default(behaviours, model)
        return _json({})

    async def conversation(request: web.Request) -> web.Response:
        try:
            model, turns = parse_conversation(loads(await request.read()))
        except (ValueError, TypeError, KeyError) as error:
            return _bad_request(str(error))
        state.set_conversation(model, turns)
        return _json({"turns": len(turns)})

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
        web.post(f"{PREFIX}/conversation", conversation),
        web.post(f"{PREFIX}/reset", reset),
        web.get(f"{PREFIX}/requests", requests),
        web.get(f"{PREFIX}/stats", stats),
    ]
