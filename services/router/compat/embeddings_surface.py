"""OpenAI's `POST /v1/embeddings` as a drop-in: the caller's JSON parsed into a
`CreateEmbeddingsRequest`, answered by the same embedder as EmbeddingsService, written
back in OpenAI's list shape.

`input` is one string or a list of strings; token-id arrays (which OpenAI also takes)
are refused with a 400 that says so: the gateway routes one request to providers with
different tokenizers, so token ids have no single meaning here. `encoding_format` is
`float` (a list of numbers, the default) or `base64` (the vector's little-endian
float32 bytes, as OpenAI sends them; the official Python SDK asks for this by default
and decodes it). Errors name OpenAI's field names.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.api import httpbody_pb2

from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from services.common.errors import InvalidArgument
from services.router.compat.bodies import json_body, json_object
from services.router.embeddings.embedder import Embedder, RouterState

FLOAT, BASE64 = "float", "base64"
ENCODINGS = (FLOAT, BASE64)
TOKEN_ARRAYS = "token arrays are not supported: send the texts as strings"


def parse(body: Mapping[str, Any]) -> tuple[embeddings_pb2.CreateEmbeddingsRequest, str]:
    """(the request, its encoding_format); INVALID_ARGUMENT naming the field."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidArgument.for_field("model", "required: a model name")
    request = embeddings_pb2.CreateEmbeddingsRequest(model=model)
    request.input.extend(_texts(body.get("input")))
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidArgument.for_field("dimensions", "must be an integer of at least 1")
        if dimensions > 2**31 - 1:
            raise InvalidArgument.for_field("dimensions", "too large")
        request.dimensions = dimensions
    encoding = body.get("encoding_format")
    if encoding is None:
        encoding = FLOAT
    if encoding not in ENCODINGS:
        raise InvalidArgument.for_field("encoding_format", "must be 'float' or 'base64'")
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise InvalidArgument.for_field("user", "must be a string")
        request.user = user
    return request, encoding


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidArgument.for_field("input", "required: a string or a list of strings")
    for i, item in enumerate(value):
        if isinstance(item, int | list):
            raise InvalidArgument.for_field("input", TOKEN_ARRAYS)
        if not isinstance(item, str):
            raise InvalidArgument.for_field(f"input[{i}]", "must be a string")
    return value


def encode_vector(values: Sequence[float]) -> str:
    """OpenAI's base64 form: the little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def decode_vector(data: str) -> list[float]:
    """The inverse of `encode_vector` (for tests and clients)."""
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def render(response: embeddings_pb2.CreateEmbeddingsResponse, encoding: str) -> dict[str, Any]:
    """OpenAI's response object; vectors as lists of floats or base64 strings."""
    data = [
        {
            "object": "embedding",
            "index": item.index,
            "embedding": (
                encode_vector(item.embedding) if encoding == BASE64 else list(item.embedding)
            ),
        }
        for item in response.data
    ]
    tokens = response.usage.prompt_tokens
    return {
        "object": "list",
        "data": data,
        "model": response.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


async def create(
    router: RouterState, body: httpbody_pb2.HttpBody, context: grpc.aio.ServicerContext
) -> httpbody_pb2.HttpBody:
    """POST /v1/embeddings. The route, cache and quota headers go out first (Envoy
    passes a response's headers, not its trailers, to REST clients)."""
    request, encoding = parse(json_object(body))
    embedded = await Embedder(router).embed(request, context)
    await context.send_initial_metadata(embedded.metadata)
    return json_body(render(embedded.response, encoding))
