"""The protocol-independent half of a fake provider: lifecycle, scripting API and the
request pipeline (record, authenticate, validate, pick a behaviour, answer).

A protocol subclass supplies the wire formats through the abstract hooks below.
"""

from __future__ import annotations

import asyncio
import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web

from tests.fakes.behaviour import Behaviour, count_words
from tests.fakes.control_routes import control_routes
from tests.fakes.state import FakeState, FakeStats, RecordedRequest
from tests.fakes.streaming import Frame, abort_connection, write_frames
from tests.fakes.wire import loads

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Generous, as prompts with long contexts are large; aiohttp's default is 1 MiB.
_MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Call:
    """A validated completion request."""

    body: dict[str, Any]
    model: str

    def prompt_words(self) -> int:
        """The default input-token count: words in the messages and system prompt."""
        body = self.body
        return max(count_words(body.get("messages")) + count_words(body.get("system")), 1)


def token_counts(call: Call, behaviour: Behaviour) -> tuple[int, int]:
    """(input, output) tokens to report: the scripted usage, else estimates."""
    if behaviour.usage is not None:
        return behaviour.usage
    return call.prompt_words(), behaviour.default_output_tokens


class ServedFake(ABC):
    """An aiohttp app on `host:port` (0: a free port, known once started), usable as
    `async with`; over HTTPS when given an `ssl_context`. Subclasses build the app."""

    def __init__(self, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    @property
    def root_url(self) -> str:
        """Where the `/_fake/*` control endpoints live."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @abstractmethod
    def build_app(self) -> web.Application: ...

    async def start(self) -> None:
        # handler_cancellation: a client closing its connection cancels the answer at
        # once, which is what `cancelled` / `last_cancelled_at` promise to measure.
        runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class FakeServer(ServedFake):
    """An aiohttp server speaking one provider's protocol, scriptable per test.

    Use as `async with FakeX(...) as fake:`; `fake.url` is the base URL an SDK takes.
    """

    protocol: ClassVar[str]
    completion_path: ClassVar[str]
    # The protocol's embeddings endpoint, answered by `embed` (None: it has none).
    embeddings_path: ClassVar[str | None] = None
    base_path: ClassVar[str] = ""
    default_models: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] | None = None,
        record: bool = True,
    ) -> None:
        """`api_key` None accepts any key; `port` 0 picks a free port; `record` False
        skips keeping requests (for long benchmarks)."""
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.models: tuple[str, ...] = tuple(models) if models else self.default_models
        self._state = FakeState(record=record)

    # Scripting API.

    @property
    def url(self) -> str:
        return self.root_url + self.base_path

    def script(self, *behaviours: Behaviour) -> None:
        """Queues behaviours; each matching completion request consumes the first match."""
        self._state.script(list(behaviours))

    def set_conversation(self, model: str, turns: Sequence[Behaviour]) -> None:
        """Answers `model`'s requests with scripted turns: turn N for a request holding N
        assistant messages, the last turn past the end; `{{cite:NEEDLE}}` in a turn becomes
        the id of the request's `[cN]` tool-output block containing NEEDLE (see
        `tests.fakes.conversation`). Queued behaviours still come first; a conversation
        wins over the defaults. No turns drops the model's conversation.
        """
        self._state.set_conversation(model, turns)

    def set_default(self, *behaviours: Behaviour, model: str | None = None) -> None:
        """The answers when nothing queued matches and the model has no conversation,
        taken in turn and cycling.

        With `model`, they answer only requests for that model and win over the general
        default for them. Each call restarts its rotation; no behaviours drops the model's
        own default (with `model`) or restores the built-in one (without).
        """
        self._state.set_default(behaviours, model)

    def reset(self) -> None:
        self._state.reset()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.requests

    @property
    def hits(self) -> int:
        return self._state.hits

    @property
    def in_flight(self) -> int:
        return self._state.in_flight

    @property
    def cancelled(self) -> int:
        return self._state.cancelled

    @property
    def hits_by_model(self) -> dict[str, int]:
        """A snapshot of completion requests per requested model."""
        return dict(self._state.hits_by_model)

    @property
    def last_cancelled_at(self) -> float | None:
        """`time.time()` when the fake last noticed a client going away mid-answer."""
        return self._state.last_cancelled_at

    def stats(self) -> FakeStats:
        return self._state.stats()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_routes(control_routes(self._state))
        app.router.add_post(self.completion_path, self._completion)
        if self.embeddings_path is not None:
            app.router.add_post(self.embeddings_path, self._embeddings)
        for method, path, handler in self.api_routes():
            app.router.add_route(method, path, self._guarded(handler))
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    # Pipeline.

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        return await self._pipeline(request, self.validate, self._answer_completion)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._pipeline(request, self.validate_embeddings, self._answer_embeddings)

    async def _answer_completion(
        self, request: web.Request, call: Call, behaviour: Behaviour
    ) -> web.StreamResponse:
        if self.is_stream(call.body):
            return await self._stream(request, call, behaviour)
        if behaviour.break_after is not None:
            abort_connection(request)
            return web.Response()
        return self.unary(call, behaviour)

    async def _answer_embeddings(
        self, request: web.Request, call: Call, behaviour: Behaviour
    ) -> web.StreamResponse:
        if behaviour.break_after is not None:
            abort_connection(request)
            return web.Response()
        return self.embed(call, behaviour)

    async def _pipeline(
        self,
        request: web.Request,
        validate: Callable[[web.Request, Any], web.Response | None],
        answer: Callable[[web.Request, Call, Behaviour], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Record, authenticate, validate, pick the behaviour, answer: the same for
        completion and embedding requests, which share the script and the counters."""
        state = self._state
        state.hits += 1
        state.in_flight += 1
        try:
            raw = await request.read()
            try:
                body = loads(raw)
            except ValueError:
                state.record(request.method, request.path, request.headers, None)
                return self.invalid_json()
            state.record(request.method, request.path, request.headers, body)
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                state.count_model(body["model"])
            rejection = self.check_auth(request)
            if rejection is None:
                rejection = validate(request, body)
            if rejection is not None:
                return rejection
            call = Call(body, body["model"])
            behaviour = state.take(call.model, body)
            if behaviour.delay > 0:
                await asyncio.sleep(behaviour.delay)
            if behaviour.is_error:
                return self.scripted_error(call, behaviour)
            return await answer(request, call, behaviour)
        except asyncio.CancelledError:
            # Handler cancellation is on (see `start`), so aiohttp cancels this task as
            # soon as the client closes the connection, even mid-`delay` or between chunks.
            state.note_cancelled()
            raise
        finally:
            state.in_flight -= 1

    async def _stream(
        self, request: web.Request, call: Call, behaviour: Behaviour
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers=self.stream_headers(behaviour))
        try:
            await response.prepare(request)
            if behaviour.keepalive_only is not None:
                while True:
                    await response.write(self.keepalive_frame())
                    await asyncio.sleep(behaviour.keepalive_only)
            await write_frames(
                request,
                response,
                self.stream_frames(call, behaviour),
                behaviour,
                lambda: self.stream_error(call, behaviour),
            )
        except ConnectionResetError:
            self._state.note_cancelled()
        return response

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            self._state.record(request.method, request.path, request.headers, None)
            rejection = self.check_auth(request)
            return rejection if rejection is not None else await handler(request)

        return guarded

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return self.not_found(request)

    # Protocol hooks.

    def keepalive_frame(self) -> bytes:
        """What the protocol sends to keep an idle stream open: an SSE comment."""
        return b": ping\n\n"

    @abstractmethod
    def api_routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path, handler) for the non-completion endpoints, e.g. model listing."""

    @abstractmethod
    def check_auth(self, request: web.Request) -> web.Response | None:
        """An error response when the request's credentials are refused."""

    @abstractmethod
    def validate(self, request: web.Request, body: Any) -> web.Response | None:
        """An error response unless `body` is a completion request with a str `model`."""

    @abstractmethod
    def is_stream(self, body: Mapping[str, Any]) -> bool: ...

    @abstractmethod
    def invalid_json(self) -> web.Response: ...

    @abstractmethod
    def not_found(self, request: web.Request) -> web.Response: ...

    @abstractmethod
    def scripted_error(self, call: Call, behaviour: Behaviour) -> web.Response: ...

    @abstractmethod
    def unary(self, call: Call, behaviour: Behaviour) -> web.Response: ...

    @abstractmethod
    def stream_headers(self, behaviour: Behaviour) -> dict[str, str]: ...

    @abstractmethod
    def stream_frames(self, call: Call, behaviour: Behaviour) -> Iterator[Frame]: ...

    @abstractmethod
    def stream_error(self, call: Call, behaviour: Behaviour) -> bytes:
        """The protocol's in-stream error event."""

    def validate_embeddings(self, request: web.Request, body: Any) -> web.Response | None:
        """An error response unless `body` is an embeddings request with a str `model`;
        protocols with an `embeddings_path` override it."""
        return self.not_found(request)

    def embed(self, call: Call, behaviour: Behaviour) -> web.Response:
        """The answer to a validated embeddings request (see `tests.fakes.embeddings`)."""
        raise NotImplementedError(f"{self.protocol} has no embeddings endpoint")
