"""A fake of Ollama's native API (`/api/chat`, `/api/embed`, `/api/tags`, `/api/version`).

Ollama streams NDJSON unless the request says `"stream": false`, sends tool-call
arguments as JSON objects, and reports errors as `{"error": "..."}`. Ollama has no
authentication; when the fake is given an `api_key` it demands `Authorization: Bearer`,
as a proxy in front of Ollama would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from tests.fakes.behaviour import FINISH_LENGTH, Behaviour
from tests.fakes.embeddings import (
    DEFAULT_DIMENSIONS,
    MAX_DIMENSIONS,
    input_texts,
    input_tokens,
    vector_for,
)
from tests.fakes.server import Call, FakeServer, Handler, token_counts
from tests.fakes.streaming import Frame
from tests.fakes.wire import JSON, dumps, ndjson, rfc3339_now

VERSION = "0.12.6"

_MODEL_MODIFIED = "2025-01-01T00:00:00.000000000Z"
_RUN_ERROR = "an error was encountered while running the model"
_ERRORS: dict[int, str] = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: 'model "{model}" not found, try pulling it first',
    429: "too many requests",
    500: _RUN_ERROR,
    503: "server busy, please try again.  maximum pending requests exceeded",
}

# Deterministic timings (nanoseconds) so benchmark outputs compare like with like.
_LOAD_NS = 1_000_000
_PROMPT_NS_PER_TOKEN = 100_000
_EVAL_NS_PER_TOKEN = 1_000_000


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=dumps({"error": message}), content_type=JSON, headers=headers
    )


def _model_entry(model: str) -> dict[str, Any]:
    name = model if ":" in model else f"{model}:latest"
    return {
        "name": name,
        "model": name,
        "modified_at": _MODEL_MODIFIED,
        "size": 2_019_393_189,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


class FakeOllama(FakeServer):
    protocol = "ollama"
    completion_path = "/api/chat"
    embeddings_path = "/api/embed"
    default_models = ("llama3.2:latest",)

    # Non-completion endpoints.

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/tags", self._tags),
            ("GET", "/api/version", self._version),
            ("GET", "/", self._root),
        ]

    async def _tags(self, request: web.Request) -> web.StreamResponse:
        body = {"models": [_model_entry(model) for model in self.models]}
        return web.Response(body=dumps(body), content_type=JSON)

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=dumps({"version": VERSION}), content_type=JSON)

    async def _root(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="Ollama is running")

    # Request checks.

    def check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            return _error(401, "unauthorized")
        return None

    def invalid_json(self) -> web.Response:
        return _error(400, "invalid character looking for beginning of value")

    def validate(self, request: web.Request, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self.invalid_json()
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "model is required")
        messages = body.get("messages")
        if messages is not None and not isinstance(messages, list):
            return _error(400, "json: cannot unmarshal into Go struct field ChatRequest.messages")
        return None

    def validate_embeddings(self, request: web.Request, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self.invalid_json()
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "model is required")
        if input_texts(body.get("input")) is None:
            return _error(400, "invalid input type")
        dimensions = body.get("dimensions")
        if dimensions is not None and (
            not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS
        ):
            return _error(400, f"invalid dimensions: must be between 1 and {MAX_DIMENSIONS}")
        return None

    def not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found")

    def is_stream(self, body: Mapping[str, Any]) -> bool:
        # An empty conversation only loads the model; Ollama answers it with one object.
        return body.get("stream") is not False and bool(body.get("messages"))

    # Answers.

    def scripted_error(self, call: Call, behaviour: Behaviour) -> web.Response:
        message = behaviour.error_message or _ERRORS.get(behaviour.status, "error")
        return _error(behaviour.status, message.format(model=call.model), behaviour.headers)

    def _message(self, content: str, behaviour: Behaviour | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if behaviour is not None:
            calls = []
            for index, spec in enumerate(behaviour.tool_calls):
                call: dict[str, Any] = {
                    "function": {
                        "index": index,
                        "name": spec.name,
                        "arguments": spec.arguments_object,
                    }
                }
                if spec.id is not None:
                    call = {"id": spec.id, **call}
                calls.append(call)
            message["tool_calls"] = calls
        return message

    def _done(self, call: Call, behaviour: Behaviour, message: dict[str, Any]) -> dict[str, Any]:
        prompt, output = token_counts(call, behaviour)
        prompt_ns = prompt * _PROMPT_NS_PER_TOKEN
        eval_ns = output * _EVAL_NS_PER_TOKEN
        return {
            "model": call.model,
            "created_at": rfc3339_now(),
            "message": message,
            "done": True,
            "done_reason": "length" if behaviour.resolved_finish == FINISH_LENGTH else "stop",
            "total_duration": _LOAD_NS + prompt_ns + eval_ns,
            "load_duration": _LOAD_NS,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": prompt_ns,
            "eval_count": output,
            "eval_duration": eval_ns,
        }

    def unary(self, call: Call, behaviour: Behaviour) -> web.Response:
        if not call.body.get("messages"):
            body: dict[str, Any] = {
                "model": call.model,
                "created_at": rfc3339_now(),
                "message": self._message(""),
                "done_reason": "load",
                "done": True,
            }
        else:
            with_tools = behaviour if behaviour.tool_calls else None
            body = self._done(call, behaviour, self._message(behaviour.resolved_text, with_tools))
        headers = behaviour.headers or None
        return web.Response(body=dumps(body), content_type=JSON, headers=headers)

    def embed(self, call: Call, behaviour: Behaviour) -> web.Response:
        """Ollama's `/api/embed` answer: unit vectors, one per input, and the tokens read."""
        texts = input_texts(call.body.get("input")) or []
        dimensions = call.body.get("dimensions") or DEFAULT_DIMENSIONS
        tokens = input_tokens(texts, behaviour)
        prompt_ns = tokens * _PROMPT_NS_PER_TOKEN
        body = {
            "model": call.model,
            "embeddings": [vector_for(text, dimensions) for text in texts],
            "total_duration": _LOAD_NS + prompt_ns,
            "load_duration": _LOAD_NS,
            "prompt_eval_count": tokens,
        }
        return web.Response(body=dumps(body), content_type=JSON, headers=behaviour.headers or None)

    def keepalive_frame(self) -> bytes:
        """NDJSON has no comments; a blank line carries nothing, as a comment does."""
        return b"\n"

    def stream_headers(self, behaviour: Behaviour) -> dict[str, str]:
        headers = dict(behaviour.headers)
        headers["Content-Type"] = "application/x-ndjson"
        return headers

    def stream_frames(self, call: Call, behaviour: Behaviour) -> Iterator[Frame]:
        model = call.model
        for piece in behaviour.pieces:
            line = {
                "model": model,
                "created_at": rfc3339_now(),
                "message": self._message(piece),
                "done": False,
            }
            yield Frame(ndjson(line), piece=True)
        if behaviour.tool_calls:
            line = {
                "model": model,
                "created_at": rfc3339_now(),
                "message": self._message("", behaviour),
                "done": False,
            }
            yield Frame(ndjson(line), piece=True)
        yield Frame(ndjson(self._done(call, behaviour, self._message(""))), terminal=True)

    def stream_error(self, call: Call, behaviour: Behaviour) -> bytes:
        return ndjson({"error": behaviour.error_message or _RUN_ERROR})
