"""A fake of Anthropic's Messages API (`/v1/messages`, `/v1/models`)."""

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
from tests.fakes.server import Call, FakeServer, Handler, token_counts
from tests.fakes.streaming import Frame
from tests.fakes.wire import JSON, dumps, new_id, sse

_FINISH = {
    FINISH_STOP: "end_turn",
    FINISH_LENGTH: "max_tokens",
    FINISH_TOOL_CALLS: "tool_use",
    FINISH_CONTENT_FILTER: "refusal",
    FINISH_STOP_SEQUENCE: "stop_sequence",
}

_MODEL_CREATED = "2025-01-01T00:00:00Z"

# status -> (error type, message); `{model}` is filled with the requested model.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per "
        "minute. Please reduce the request rate or try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(error_type: str, message: str, error_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": new_id("req_")}


def _display_name(model: str) -> str:
    """`claude-sonnet-4-6` -> `Claude Sonnet 4.6`."""
    words: list[str] = []
    for part in model.split("-"):
        if part.isdigit() and words and words[-1][-1].isdigit():
            words[-1] += "." + part
        else:
            words.append(part.capitalize())
    return " ".join(words)


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


class FakeAnthropic(FakeServer):
    protocol = "anthropic"
    completion_path = "/v1/messages"
    default_models = ("claude-sonnet-4-6", "claude-haiku-4-5")

    def _headers(self, behaviour: Behaviour | None = None) -> dict[str, str]:
        headers = {"request-id": new_id("req_")}
        if behaviour is not None and behaviour.headers:
            headers.update(behaviour.headers)
        return headers

    def _error(
        self,
        status: int,
        error_type: str,
        message: str,
        error_code: str | None = None,
        behaviour: Behaviour | None = None,
    ) -> web.Response:
        return web.Response(
            status=status,
            body=dumps(error_body(error_type, message, error_code)),
            content_type=JSON,
            headers=self._headers(behaviour),
        )

    # Non-completion endpoints.

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", "/v1/models", self._list_models), ("GET", "/v1/models/{id}", self._model)]

    def _model_object(self, model: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model,
            "display_name": _display_name(model),
            "created_at": _MODEL_CREATED,
        }

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        body = {
            "data": [self._model_object(model) for model in self.models],
            "has_more": False,
            "first_id": self.models[0] if self.models else None,
            "last_id": self.models[-1] if self.models else None,
        }
        return web.Response(body=dumps(body), content_type=JSON, headers=self._headers())

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["id"]
        if model not in self.models:
            return self._error(404, "not_found_error", f"model: {model}")
        return web.Response(
            body=dumps(self._model_object(model)), content_type=JSON, headers=self._headers()
        )

    # Request checks.

    def check_auth(self, request: web.Request) -> web.Response | None:
        # The API takes `x-api-key`; the official SDK sends its key as a Bearer token.
        if self.api_key is not None:
            key = request.headers.get("x-api-key")
            if key is None:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                key = token.strip() if scheme.lower() == "bearer" else None
            if key is None:
                return self._error(401, "authentication_error", "x-api-key header is required")
            if key != self.api_key:
                return self._error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return self._error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        return None

    def invalid_json(self) -> web.Response:
        return self._error(
            400,
            "invalid_request_error",
            "There was an issue with the format of your request: the body is not valid JSON",
        )

    def validate(self, request: web.Request, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self.invalid_json()
        checks = (
            ("model", str, "a valid string"),
            ("max_tokens", int, "a valid integer"),
            ("messages", list, "a valid list"),
        )
        for field, kind, expected in checks:
            value = body.get(field)
            if value is None:
                return self._error(400, "invalid_request_error", f"{field}: Field required")
            if not isinstance(value, kind) or isinstance(value, bool):
                return self._error(
                    400, "invalid_request_error", f"{field}: Input should be {expected}"
                )
        if body["max_tokens"] < 1:
            return self._error(
                400,
                "invalid_request_error",
                "max_tokens: Input should be greater than or equal to 1",
            )
        if not body["messages"]:
            return self._error(
                400, "invalid_request_error", "messages: at least one message is required"
            )
        return None

    def not_found(self, request: web.Request) -> web.Response:
        return self._error(404, "not_found_error", "Not Found")

    def is_stream(self, body: Mapping[str, Any]) -> bool:
        return body.get("stream") is True

    # Answers.

    def scripted_error(self, call: Call, behaviour: Behaviour) -> web.Response:
        status = behaviour.status
        fallback = ("api_error" if status >= 500 else "invalid_request_error", "Error.")
        error_type, message = _ERRORS.get(status, fallback)
        return self._error(
            status,
            behaviour.error_type or error_type,
            behaviour.error_message or message.format(model=call.model),
            behaviour.error_code,
            behaviour,
        )

    def _stop(self, call: Call, behaviour: Behaviour) -> tuple[str, str | None]:
        finish = behaviour.resolved_finish
        sequence = None
        if finish == FINISH_STOP_SEQUENCE:
            sequences = call.body.get("stop_sequences")
            sequence = sequences[0] if isinstance(sequences, list) and sequences else None
        return _FINISH.get(finish, finish), sequence

    def _tool_ids(self, behaviour: Behaviour) -> list[str]:
        return [spec.id or new_id("toolu_") for spec in behaviour.tool_calls]

    def unary(self, call: Call, behaviour: Behaviour) -> web.Response:
        content: list[dict[str, Any]] = []
        if behaviour.resolved_text:
            content.append({"type": "text", "text": behaviour.resolved_text})
        for spec, tool_id in zip(behaviour.tool_calls, self._tool_ids(behaviour), strict=True):
            content.append(
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": spec.name,
                    "input": spec.arguments_object,
                }
            )
        stop_reason, stop_sequence = self._stop(call, behaviour)
        body = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": _usage(*token_counts(call, behaviour)),
        }
        return web.Response(body=dumps(body), content_type=JSON, headers=self._headers(behaviour))

    def stream_headers(self, behaviour: Behaviour) -> dict[str, str]:
        headers = self._headers(behaviour)
        headers["Content-Type"] = "text/event-stream; charset=utf-8"
        headers["Cache-Control"] = "no-cache"
        return headers

    def stream_frames(self, call: Call, behaviour: Behaviour) -> Iterator[Frame]:
        input_tokens, output_tokens = token_counts(call, behaviour)
        message: dict[str, Any] = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(input_tokens, 1),
        }
        yield Frame(sse({"type": "message_start", "message": message}, "message_start"))
        ping = Frame(sse({"type": "ping"}, "ping"))
        index = 0
        if behaviour.pieces:
            block = {"type": "text", "text": ""}
            yield _block_start(index, block)
            yield ping
            for piece in behaviour.pieces:
                yield _block_delta(index, {"type": "text_delta", "text": piece}, piece=True)
            yield _block_stop(index)
            index += 1
        else:
            yield ping
        for spec, tool_id in zip(behaviour.tool_calls, self._tool_ids(behaviour), strict=True):
            yield _block_start(
                index, {"type": "tool_use", "id": tool_id, "name": spec.name, "input": {}}
            )
            yield _block_delta(index, {"type": "input_json_delta", "partial_json": ""})
            for fragment in spec.fragments:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                yield _block_delta(index, delta, piece=True)
            yield _block_stop(index)
            index += 1
        stop_reason, stop_sequence = self._stop(call, behaviour)
        message_delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": {"output_tokens": output_tokens},
        }
        yield Frame(sse(message_delta, "message_delta"), terminal=True)
        yield Frame(sse({"type": "message_stop"}, "message_stop"), terminal=True)

    def stream_error(self, call: Call, behaviour: Behaviour) -> bytes:
        body = error_body(
            behaviour.error_type or "overloaded_error",
            behaviour.error_message or "Overloaded",
            behaviour.error_code,
        )
        return sse(body, "error")


def _block_start(index: int, block: dict[str, Any]) -> Frame:
    event = {"type": "content_block_start", "index": index, "content_block": block}
    return Frame(sse(event, "content_block_start"))


def _block_delta(index: int, delta: dict[str, Any], *, piece: bool = False) -> Frame:
    event = {"type": "content_block_delta", "index": index, "delta": delta}
    return Frame(sse(event, "content_block_delta"), piece=piece)


def _block_stop(index: int) -> Frame:
    return Frame(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
