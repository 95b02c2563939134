"""A fake of the downstream services behind the built-in tools, scriptable per test.

One server speaks both services' contracts (the tool service's `search_url` and
`agents_url` may both point at it) plus a weather endpoint for file-defined tools:

- `POST /search` `{"query": str, "top_k": int 1..50, default 5}` ->
  `{"results": [{"chunk_id", "score", "text", "source"}]}`
- `GET /chunks/{chunk_id}` -> `{"chunk_id", "text", "source", "metadata"}`; 404 if unknown
- `POST /review` `{"code": str, "language"?: str, "focus"?: str}` ->
  `{"summary", "findings": [{"severity", "line", "message"}]}`
- `POST /architecture` `{"description": str, "components"?: [str]}` ->
  `{"summary", "recommendations": [str]}`
- `POST /documentation` `{"code": str, "format"?: "markdown" | "rst"}` -> `{"documentation"}`
- `GET /weather/{city}` -> `{"city", "temperature_c", "conditions"}`

Errors are JSON, `{"error": {"code": <HTTP status>, "message": str}}`: 400 for a body
that is not JSON, 422 for a body that breaks the contract (unknown fields included),
404 for an unknown chunk or path, 401 when the fake has an `api_key` and the request's
`Authorization: Bearer` differs.

Scripting (`DownstreamBehaviour`): queued behaviours answer the next matching requests
(`path` None matches every path) `times` times each; `set_default(b, path=...)` answers
every request of a path (or, without one, every request) nothing queued matched. A
behaviour can delay, answer a status with a JSON error body and headers (Retry-After),
replace or pad the body, answer non-JSON text, or break the connection. Control
endpoints live under `/_fake/` as for the provider fakes; `/_fake/stats` adds
`hits_by_path` and `peak_in_flight`; recorded requests keep the path as sent
(percent-encoded, with its query).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.control import AsyncControlClient, ControlClient
from tests.fakes.control_routes import PREFIX
from tests.fakes.server import ServedFake
from tests.fakes.state import RecordedRequest
from tests.fakes.streaming import abort_connection
from tests.fakes.wire import JSON, dumps, loads

CORPUS: dict[str, dict[str, Any]] = {
    "routing-1": {
        "text": "The router picks a deployment per request and retries transient failures "
        "with backoff; circuit breakers skip deployments that keep failing.",
        "source": "docs/routing.md",
        "metadata": {"section": "Routing", "position": 1},
    },
    "sessions-1": {
        "text": "Sessions keep a conversation's history in Redis with a time to live, "
        "so every router replica sees the same messages.",
        "source": "docs/sessions.md",
        "metadata": {"section": "Sessions", "position": 1},
    },
    "tools-1": {
        "text": "Tools have a JSON Schema for their arguments; the tool service validates "
        "every call and runs it against a downstream HTTP service with a timeout.",
        "source": "docs/tools.md",
        "metadata": {"section": "Tools", "position": 1},
    },
    "envoy-1": {
        "text": "Envoy transcodes REST to gRPC, balances the replicas and checks their "
        "health, so a failing replica stops receiving requests.",
        "source": "docs/envoy.md",
        "metadata": {"section": "Envoy", "position": 1},
    },
}

_MESSAGES = {
    400: "the request body is not valid JSON",
    401: "missing or invalid credentials",
    403: "forbidden",
    404: "not found",
    408: "request timeout",
    409: "conflict",
    422: "the request does not match the contract",
    429: "rate limit exceeded; retry later",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
_WORD = re.compile(r"[a-z0-9]+")
_CONDITIONS = ("sunny", "cloudy", "rain", "snow", "windy")


class ContractError(Exception):
    """A request that breaks the contract: answered 422 with this message."""


@dataclass(frozen=True)
class DownstreamBehaviour:
    """The answer to matching requests.

    `status` other than 200 answers `{"error": {"code", "message"}}` (message: `message`
    or a standard one). `body` replaces a 200 answer's JSON, `text` answers text/plain
    instead, `pad_to` pads the normal JSON answer (a `padding` field) to at least that
    many bytes. `delay` holds the answer; `break_connection` aborts the TCP connection
    without answering. `headers` go on the answer (e.g. `retry-after`).
    """

    path: str | None = None
    status: int = 200
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1
    body: Any = None
    text: str | None = None
    pad_to: int | None = None
    break_connection: bool = False

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("times must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            default = spec.default_factory() if callable(spec.default_factory) else spec.default
            if value != default:
                out[spec.name] = dict(value) if isinstance(value, Mapping) else value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> DownstreamBehaviour:
        if not isinstance(data, Mapping):
            raise ValueError("a behaviour is a JSON object")
        unknown = set(data) - {spec.name for spec in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown behaviour fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class DownstreamStats:
    """`hits`: API requests (control endpoints excluded); `hits_by_path`: per request
    path (decoded); `peak_in_flight`: most requests answered at once since the reset;
    `cancelled`: requests whose client went away before the answer."""

    hits: int
    hits_by_path: dict[str, int]
    in_flight: int
    peak_in_flight: int
    cancelled: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DownstreamStats:
        return cls(
            hits=data["hits"],
            hits_by_path=dict(data["hits_by_path"]),
            in_flight=data["in_flight"],
            peak_in_flight=data["peak_in_flight"],
            cancelled=data["cancelled"],
        )


def matches(pattern: str | None, path: str) -> bool:
    """None matches every path, `/chunks/*` every path under /chunks/, else exactly."""
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return pattern == path


class _State:
    def __init__(self, record: bool) -> None:
        self.record_enabled = record
        # Answers still running; a reset does not change that.
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        # [behaviour, answers left]
        self.queue: list[list[Any]] = []
        self.defaults: dict[str | None, DownstreamBehaviour] = {}
        self.requests: list[RecordedRequest] = []
        self.hits = 0
        self.hits_by_path: dict[str, int] = {}
        self.peak_in_flight = self.in_flight
        self.cancelled = 0
        self.last_cancelled_at: float | None = None

    def take(self, path: str) -> DownstreamBehaviour | None:
        for item in self.queue:
            behaviour: DownstreamBehaviour = item[0]
            if matches(behaviour.path, path):
                item[1] -= 1
                if item[1] == 0:
                    self.queue.remove(item)
                return behaviour
        if path in self.defaults:
            return self.defaults[path]
        patterns = [p for p in self.defaults if p is not None and matches(p, path)]
        return self.defaults[max(patterns, key=len)] if patterns else self.defaults.get(None)

    def stats(self) -> dict[str, Any]:
        # The provider fakes' keys too, so FakeControl.stats() reads this fake as well.
        return {
            "hits": self.hits,
            "hits_by_path": dict(self.hits_by_path),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "cancelled": self.cancelled,
            "hits_by_model": {},
            "last_cancelled_at": self.last_cancelled_at,
        }


def _json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type=JSON, headers=headers)


def error_response(
    status: int, message: str | None = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    text = message or _MESSAGES.get(status, "error")
    return _json({"error": {"code": status, "message": text}}, status, headers)


# --- The contract ----------------------------------------------------------------------


def _fields(body: Any, required: dict[str, type], optional: dict[str, type]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ContractError("the body must be a JSON object")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise ContractError(f"unknown fields: {', '.join(unknown)}")
    for name, kind in {**required, **optional}.items():
        if name not in body:
            if name in required:
                raise ContractError(f"'{name}' is required")
            continue
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ContractError(f"'{name}' must be of type {kind.__name__}")
    for name in required:
        if isinstance(body[name], str) and not body[name].strip():
            raise ContractError(f"'{name}' must not be empty")
    return body


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def search(body: Any) -> dict[str, Any]:
    fields = _fields(body, {"query": str}, {"top_k": int})
    top_k = fields.get("top_k", 5)
    if not 1 <= top_k <= 50:
        raise ContractError("'top_k' must be between 1 and 50")
    query = _words(fields["query"])
    scored = []
    for chunk_id, chunk in CORPUS.items():
        overlap = len(query & _words(chunk["text"]))
        if overlap:
            scored.append((round(overlap / len(query), 4), chunk_id))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return {
        "results": [
            {
                "chunk_id": chunk_id,
                "score": score,
                "text": CORPUS[chunk_id]["text"],
                "source": CORPUS[chunk_id]["source"],
            }
            for score, chunk_id in scored[:top_k]
        ]
    }


def review(body: Any) -> dict[str, Any]:
    fields = _fields(body, {"code": str}, {"language": str, "focus": str})
    findings = []
    lines = fields["code"].splitlines()
    for number, line in enumerate(lines, start=1):
        if "eval(" in line or "exec(" in line:
            findings.append(
                {"severity": "high", "line": number, "message": "dynamic code execution"}
            )
        if "TODO" in line:
            findings.append({"severity": "info", "line": number, "message": "unfinished work"})
        if len(line) > 100:
            findings.append({"severity": "low", "line": number, "message": "line too long"})
    language = fields.get("language", "code")
    focus = f" with a focus on {fields['focus']}" if "focus" in fields else ""
    return {
        "summary": f"Reviewed {len(lines)} lines of {language}{focus}: {len(findings)} finding(s).",
        "findings": findings,
    }


def architecture(body: Any) -> dict[str, Any]:
    fields = _fields(body, {"description": str}, {"components": list})
    components = fields.get("components", [])
    if not all(isinstance(c, str) for c in components):
        raise ContractError("'components' must be a list of strings")
    recommendations = [f"Give {c} a health check and a timeout on every call." for c in components]
    recommendations.append("Keep state in one store so replicas stay interchangeable.")
    return {
        "summary": f"A system of {len(components)} component(s): "
        f"{fields['description'].strip()[:80]}",
        "recommendations": recommendations,
    }


def documentation(body: Any) -> dict[str, Any]:
    fields = _fields(body, {"code": str}, {"format": str})
    style = fields.get("format", "markdown")
    if style not in ("markdown", "rst"):
        raise ContractError("'format' must be markdown or rst")
    names = re.findall(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", fields["code"], re.MULTILINE)
    if style == "markdown":
        lines = ["# API", "", *(f"- `{name}`" for name in names)]
    else:
        lines = ["API", "===", "", *(f"* ``{name}``" for name in names)]
    return {"documentation": "\n".join(lines) + "\n"}


def chunk(chunk_id: str) -> dict[str, Any] | None:
    found = CORPUS.get(chunk_id)
    return None if found is None else {"chunk_id": chunk_id, **found}


def weather(city: str) -> dict[str, Any]:
    digest = hashlib.sha256(city.lower().encode()).digest()
    return {
        "city": city,
        "temperature_c": round(-5 + digest[0] / 255 * 35, 1),
        "conditions": _CONDITIONS[digest[1] % len(_CONDITIONS)],
    }


_POSTS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "/search": search,
    "/review": review,
    "/architecture": architecture,
    "/documentation": documentation,
}


# --- The server ------------------------------------------------------------------------


class FakeDownstream(ServedFake):
    """Use as `async with FakeDownstream() as fake:`; `fake.url` is the base URL both
    `search_url` and `agents_url` take. Keyword arguments as the provider fakes'."""

    protocol = "downstream"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self._state = _State(record)

    @property
    def url(self) -> str:
        return self.root_url

    # Scripting API.

    def script(self, *behaviours: DownstreamBehaviour) -> None:
        self._state.queue.extend([b, b.times] for b in behaviours)

    def set_default(self, behaviour: DownstreamBehaviour | None, path: str | None = None) -> None:
        """Answers every request of `path` (None: of any path) nothing queued matched;
        None removes that default."""
        if behaviour is None:
            self._state.defaults.pop(path, None)
        else:
            self._state.defaults[path] = behaviour

    def reset(self) -> None:
        self._state.reset()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.requests

    @property
    def hits(self) -> int:
        return self._state.hits

    @property
    def hits_by_path(self) -> dict[str, int]:
        return dict(self._state.hits_by_path)

    def stats(self) -> DownstreamStats:
        return DownstreamStats.from_dict(self._state.stats())

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_routes(_control_routes(self._state))
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # Pipeline.

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        state.hits += 1
        state.hits_by_path[request.path] = state.hits_by_path.get(request.path, 0) + 1
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            raw = await request.read()
            try:
                body = loads(raw) if raw else None
                parsed = True
            except ValueError:
                body, parsed = None, False
            if state.record_enabled:
                headers = {k.lower(): v for k, v in request.headers.items()}
                # As sent: percent-encoding kept, query included.
                state.requests.append(
                    RecordedRequest(request.method, request.raw_path, headers, body)
                )
            rejection = self._check_auth(request)
            if rejection is not None:
                return rejection
            behaviour = state.take(request.path)
            if behaviour is not None and behaviour.delay > 0:
                await asyncio.sleep(behaviour.delay)
            if behaviour is not None and behaviour.break_connection:
                abort_connection(request)
                return web.Response()
            if behaviour is not None and behaviour.status != 200:
                return error_response(behaviour.status, behaviour.message, behaviour.headers)
            if not parsed:
                return error_response(400)
            answer = self._answer(request, body)
            if isinstance(answer, web.Response):
                return answer
            return _shaped(answer, behaviour)
        except asyncio.CancelledError:
            state.cancelled += 1
            state.last_cancelled_at = time.time()
            raise
        finally:
            state.in_flight -= 1

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            return error_response(401)
        return None

    def _answer(self, request: web.Request, body: Any) -> dict[str, Any] | web.Response:
        """The contract's answer: a 200 payload, or an error response."""
        path, method = request.path, request.method
        try:
            if method == "POST" and path in _POSTS:
                return _POSTS[path](body)
            if method == "GET" and path.startswith("/chunks/"):
                chunk_id = path.removeprefix("/chunks/")
                found = chunk(chunk_id)
                if found is None:
                    return error_response(404, f"chunk '{chunk_id}' not found")
                return found
            if method == "GET" and path.startswith("/weather/"):
                return weather(path.removeprefix("/weather/"))
        except ContractError as error:
            return error_response(422, str(error))
        if path in _POSTS or path.startswith(("/chunks/", "/weather/")):
            return error_response(405, f"{method} is not allowed on {path}")
        return error_response(404, f"no such endpoint: {method} {path}")


def _shaped(answer: dict[str, Any], behaviour: DownstreamBehaviour | None) -> web.Response:
    """A 200 answer, reshaped by the behaviour (body, text, padding, headers)."""
    if behaviour is None:
        return _json(answer)
    headers = dict(behaviour.headers)
    if behaviour.text is not None:
        return web.Response(text=behaviour.text, content_type="text/plain", headers=headers)
    payload = behaviour.body if behaviour.body is not None else answer
    if behaviour.pad_to is not None and isinstance(payload, dict):
        size = len(dumps(payload))
        payload = {**payload, "padding": "x" * max(behaviour.pad_to - size, 0)}
    return _json(payload, headers=headers)


# --- Control ---------------------------------------------------------------------------


def _control_routes(state: _State) -> list[web.RouteDef]:
    def bad(message: str) -> web.Response:
        return _json({"error": message}, 400)

    async def script(request: web.Request) -> web.Response:
        try:
            payload = loads(await request.read())
            if not isinstance(payload, list):
                raise ValueError("expected a JSON list of behaviours")
            behaviours = [DownstreamBehaviour.from_dict(item) for item in payload]
        except (ValueError, TypeError) as error:
            return bad(str(error))
        state.queue.extend([b, b.times] for b in behaviours)
        return _json({"queued": len(state.queue)})

    async def default(request: web.Request) -> web.Response:
        try:
            payload = loads(await request.read())
            if not isinstance(payload, dict) or set(payload) - {"behaviour", "path"}:
                raise ValueError('expected {"behaviour": {...} | null, "path": str | null}')
            path = payload.get("path")
            if path is not None and not isinstance(path, str):
                raise ValueError("path must be a string or null")
            item = payload.get("behaviour")
            behaviour = None if item is None else DownstreamBehaviour.from_dict(item)
        except (ValueError, TypeError) as error:
            return bad(str(error))
        if behaviour is None:
            state.defaults.pop(path, None)
        else:
            state.defaults[path] = behaviour
        return _json({})

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return _json({})

    async def requests(request: web.Request) -> web.Response:
        return _json([recorded.to_dict() for recorded in state.requests])

    async def stats(request: web.Request) -> web.Response:
        return _json(state.stats())

    return [
        web.post(f"{PREFIX}/script", script),
        web.post(f"{PREFIX}/default", default),
        web.post(f"{PREFIX}/reset", reset),
        web.get(f"{PREFIX}/requests", requests),
        web.get(f"{PREFIX}/stats", stats),
    ]


def _default_body(behaviour: DownstreamBehaviour | None, path: str | None) -> dict[str, Any]:
    return {"behaviour": None if behaviour is None else behaviour.to_dict(), "path": path}


class DownstreamControl(ControlClient):
    """Blocking client of a downstream fake in another process."""

    def script(self, *behaviours: DownstreamBehaviour) -> None:
        self._http.post("/script", json=[b.to_dict() for b in behaviours]).raise_for_status()

    def set_default(self, behaviour: DownstreamBehaviour | None, path: str | None = None) -> None:
        self._http.post("/default", json=_default_body(behaviour, path)).raise_for_status()

    def stats(self) -> DownstreamStats:
        return DownstreamStats.from_dict(self._stats_json())


class AsyncDownstreamControl(AsyncControlClient):
    """Asynchronous client (for a fake on the test's own event loop)."""

    async def _post(self, path: str, payload: Any = None) -> None:
        (await self._http.post(path, json=payload)).raise_for_status()

    async def script(self, *behaviours: DownstreamBehaviour) -> None:
        await self._post("/script", [b.to_dict() for b in behaviours])

    async def set_default(
        self, behaviour: DownstreamBehaviour | None, path: str | None = None
    ) -> None:
        await self._post("/default", _default_body(behaviour, path))

    async def stats(self) -> DownstreamStats:
        return DownstreamStats.from_dict(await self._stats_json())
