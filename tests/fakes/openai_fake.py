"""A fake of OpenAI's Chat Completions API (`/v1/chat/completions`, `/v1/models`) and
its Embeddings API (`/v1/embeddings`).

Error bodies follow what api.openai.com sends, which differs from the HTTP status
names: a bad key is `type: invalid_request_error, code: invalid_api_key`, an unknown
model `invalid_request_error / model_not_found`, a rate limit `requests /
rate_limit_exceeded`. A behaviour's `error_type` / `error_code` override these.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from tests.fakes.behaviour import (
    FINISH_CONTENT_FILTER,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_STOP_SEQUENCE,
    FINISH_TOOL_CALLS,
    Behaviour,
)
from tests.fakes.embeddings import (
    DEFAULT_DIMENSIONS,
    MAX_DIMENSIONS,
    base64_vector,
    input_texts,
    input_tokens,
    vector_for,
)
from tests.fakes.server import Call, FakeServer, Handler, token_counts
from tests.fakes.streaming import Frame
from tests.fakes.wire import JSON, dumps, json_type_name, new_id, sse, unix_now

_FINISH = {
    FINISH_STOP: "stop",
    FINISH_LENGTH: "length",
    FINISH_TOOL_CALLS: "tool_calls",
    FINISH_CONTENT_FILTER: "content_filter",
    FINISH_STOP_SEQUENCE: "stop",
}

_FINGERPRINT = "fp_fake0001"
_MODEL_CREATED = 1_700_000_000
_KEYS_URL = "https://platform.openai.com/account/api-keys"
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"

# status -> (type, code, message); `{model}` is filled with the requested model.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    408: ("invalid_request_error", None, "Request timed out."),
    409: ("invalid_request_error", None, "Another request is in progress."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: ("server_error", None, _SERVER_ERROR),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}


def error_body(error_type: str, message: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _mask(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 7 else "*" * len(key)


class FakeOpenAI(FakeServer):
    protocol = "openai"
    completion_path = "/v1/chat/completions"
    embeddings_path = "/v1/embeddings"
    base_path = "/v1"
    default_models = ("gpt-4o-mini", "gpt-4o")

    def _headers(self, behaviour: Behaviour | None = None) -> dict[str, str]:
        headers = {"x-request-id": new_id("req_", 32)}
        if behaviour is not None and behaviour.headers:
            headers.update(behaviour.headers)
        return headers

    def _error(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        behaviour: Behaviour | None = None,
    ) -> web.Response:
        return web.Response(
            status=status,
            body=dumps(error_body(error_type, message, code, param)),
            content_type=JSON,
            headers=self._headers(behaviour),
        )

    # Non-completion endpoints.

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", "/v1/models", self._list_models), ("GET", "/v1/models/{id}", self._model)]

    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "openai"}

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        data = [self._model_object(model) for model in self.models]
        return web.Response(
            body=dumps({"object": "list", "data": data}),
            content_type=JSON,
            headers=self._headers(),
        )

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["id"]
        if model not in self.models:
            return self._error(
                404,
                "invalid_request_error",
                f"The model '{model}' does not exist",
                code="model_not_found",
                param="model",
            )
        return web.Response(
            body=dumps(self._model_object(model)), content_type=JSON, headers=self._headers()
        )

    # Request checks.

    def check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self._error(
                401,
                "invalid_request_error",
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
                f"You can obtain an API key from {_KEYS_URL}.",
            )
        if key.strip() != self.api_key:
            return self._error(
                401,
                "invalid_request_error",
                f"Incorrect API key provided: {_mask(key.strip())}. "
                f"You can find your API key at {_KEYS_URL}.",
                code="invalid_api_key",
            )
        return None

    def invalid_json(self) -> web.Response:
        return self._error(
            400,
            "invalid_request_error",
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
        )

    def validate(self, request: web.Request, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self.invalid_json()
        model = body.get("model")
        if model is None:
            return self._error(400, "invalid_request_error", "you must provide a model parameter")
        if not isinstance(model, str):
            return self._invalid_type("model", "a string", model)
        messages = body.get("messages")
        if messages is None:
            return self._error(
                400,
                "invalid_request_error",
                "Missing required parameter: 'messages'.",
                code="missing_required_parameter",
                param="messages",
            )
        if not isinstance(messages, list):
            return self._invalid_type("messages", "an array", messages)
        if not messages:
            return self._error(
                400,
                "invalid_request_error",
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                code="empty_array",
                param="messages",
            )
        return None

    def validate_embeddings(self, request: web.Request, body: Any) -> web.Response | None:
        """OpenAI's checks of an embeddings request: `input` a string or a non-empty list
        of strings, `encoding_format` float or base64, `dimensions` 1 to the model's size."""
        if not isinstance(body, dict):
            return self.invalid_json()
        model = body.get("model")
        if model is None:
            return self._error(400, "invalid_request_error", "you must provide a model parameter")
        if not isinstance(model, str):
            return self._invalid_type("model", "a string", model)
        if "input" not in body:
            return self._error(
                400,
                "invalid_request_error",
                "Missing required parameter: 'input'.",
                code="missing_required_parameter",
                param="input",
            )
        if input_texts(body["input"]) is None:
            return self._error(
                400,
                "invalid_request_error",
                "'$.input' is invalid. Please check the API reference: "
                "https://platform.openai.com/docs/api-reference.",
                param="input",
            )
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return self._error(
                400,
                "invalid_request_error",
                f"Invalid value for 'encoding_format': {encoding!r}. "
                "Supported values are: 'float' and 'base64'.",
                code="invalid_value",
                param="encoding_format",
            )
        dimensions = body.get("dimensions")
        if dimensions is not None and (
            not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS
        ):
            return self._error(
                400,
                "invalid_request_error",
                f"Invalid value for 'dimensions' = {dimensions}. "
                f"Must be between 1 and {MAX_DIMENSIONS}.",
                code="invalid_value",
                param="dimensions",
            )
        return None

    def _invalid_type(self, param: str, expected: str, value: Any) -> web.Response:
        return self._error(
            400,
            "invalid_request_error",
            f"Invalid type for '{param}': expected {expected}, "
            f"but got {json_type_name(value)} instead.",
            code="invalid_type",
            param=param,
        )

    def not_found(self, request: web.Request) -> web.Response:
        return self._error(
            404, "invalid_request_error", f"Invalid URL ({request.method} {request.path})"
        )

    def is_stream(self, body: Mapping[str, Any]) -> bool:
        return body.get("stream") is True

    # Answers.

    def scripted_error(self, call: Call, behaviour: Behaviour) -> web.Response:
        status = behaviour.status
        fallback = ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
        error_type, code, message = _ERRORS.get(status, fallback)
        return self._error(
            status,
            behaviour.error_type or error_type,
            behaviour.error_message or message.format(model=call.model),
            code=behaviour.error_code or code,
            behaviour=behaviour,
        )

    def _tool_calls(self, behaviour: Behaviour) -> list[dict[str, Any]]:
        return [
            {
                "id": spec.id or new_id("call_"),
                "type": "function",
                "function": {"name": spec.name, "arguments": spec.arguments},
            }
            for spec in behaviour.tool_calls
        ]

    def unary(self, call: Call, behaviour: Behaviour) -> web.Response:
        text = behaviour.resolved_text
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if behaviour.tool_calls and not text else text,
            "refusal": None,
            "annotations": [],
        }
        if behaviour.tool_calls:
            message["tool_calls"] = self._tool_calls(behaviour)
        finish = behaviour.resolved_finish
        body = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": unix_now(),
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _FINISH.get(finish, finish),
                }
            ],
            "usage": _usage(*token_counts(call, behaviour)),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
        return web.Response(body=dumps(body), content_type=JSON, headers=self._headers(behaviour))

    def embed(self, call: Call, behaviour: Behaviour) -> web.Response:
        body = call.body
        texts = input_texts(body["input"]) or []
        dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            values = vector_for(text, dimensions)
            embedding: Any = base64_vector(values) if as_base64 else values
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = input_tokens(texts, behaviour)
        answer = {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.Response(body=dumps(answer), content_type=JSON, headers=self._headers(behaviour))

    def stream_headers(self, behaviour: Behaviour) -> dict[str, str]:
        headers = self._headers(behaviour)
        headers["Content-Type"] = "text/event-stream; charset=utf-8"
        headers["Cache-Control"] = "no-cache"
        return headers

    def stream_frames(self, call: Call, behaviour: Behaviour) -> Iterator[Frame]:
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": unix_now(),
            "model": call.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            obj = {**base, "choices": [choice]}
            if include_usage:
                obj["usage"] = None
            return sse(obj)

        text = behaviour.resolved_text
        yield Frame(chunk({"role": "assistant", "content": "" if text else None, "refusal": None}))
        for piece in behaviour.pieces:
            yield Frame(chunk({"content": piece}), piece=True)
        for index, spec in enumerate(behaviour.tool_calls):
            opening = {
                "index": index,
                "id": spec.id or new_id("call_"),
                "type": "function",
                "function": {"name": spec.name, "arguments": ""},
            }
            yield Frame(chunk({"tool_calls": [opening]}))
            for fragment in spec.fragments:
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                yield Frame(chunk(delta), piece=True)
        finish = behaviour.resolved_finish
        yield Frame(chunk({}, _FINISH.get(finish, finish)), terminal=True)
        if include_usage:
            usage = _usage(*token_counts(call, behaviour))
            yield Frame(sse({**base, "choices": [], "usage": usage}), terminal=True)
        yield Frame(b"data: [DONE]\n\n", terminal=True)

    def stream_error(self, call: Call, behaviour: Behaviour) -> bytes:
        return sse(
            error_body(
                behaviour.error_type or "server_error",
                behaviour.error_message or _SERVER_ERROR,
                behaviour.error_code,
            )
        )
