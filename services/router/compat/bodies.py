"""The raw HTTP bodies of the drop-in surfaces: the caller's JSON in, JSON or
server-sent events out (`google.api.HttpBody`, which Envoy's transcoder passes as is).

Envoy bounds a request body (topology `max_request_body_bytes`) before it gets here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from google.api import httpbody_pb2

from services.common.errors import InvalidArgument

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


def json_object(body: httpbody_pb2.HttpBody) -> dict[str, Any]:
    """The request body as a JSON object; INVALID_ARGUMENT (HTTP 400) when it is not one."""
    media_type = body.content_type.split(";", 1)[0].strip().lower()
    if media_type and media_type != JSON and not media_type.endswith("+json"):
        raise InvalidArgument.for_field("content-type", f"expected {JSON}, got '{media_type[:80]}'")
    if not body.data:
        raise InvalidArgument.for_field("body", "required: a JSON object")
    try:
        parsed = orjson.loads(body.data)
    except orjson.JSONDecodeError as exc:
        # orjson's message names the position, never the body's text.
        raise InvalidArgument.for_field("body", f"not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidArgument.for_field("body", "expected a JSON object")
    return parsed


def json_body(value: Mapping[str, Any]) -> httpbody_pb2.HttpBody:
    """One JSON answer."""
    return httpbody_pb2.HttpBody(content_type=JSON, data=orjson.dumps(value))


def sse_event(data: Mapping[str, Any], event: str | None = None) -> bytes:
    """One server-sent event: an `event:` line when named (Anthropic's and the
    Responses API's streams name every event), then its JSON data."""
    payload = b"data: " + orjson.dumps(data) + b"\n\n"
    if event is None:
        return payload
    return b"event: " + event.encode() + b"\n" + payload


def sse_body(data: bytes) -> httpbody_pb2.HttpBody:
    """Events (one or several, already framed) as one piece of the stream."""
    return httpbody_pb2.HttpBody(content_type=EVENT_STREAM, data=data)
