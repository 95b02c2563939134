"""Embedding requests and answers of the families that have an embeddings API.

OpenAI's `/v1/embeddings` (and compatible servers) is asked for base64: each vector is
its little-endian float32 components, base64-encoded, about a quarter of the JSON float
list on the wire and decoded here with `array` (no numpy). A server that ignores
`encoding_format` and answers float lists is read as well. Ollama's `/api/embed` answers
float lists. Every answer must hold exactly one vector per input text, or it is refused
as malformed: a caller must never get vectors matched to the wrong texts.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from llmgw.common.v1 import chat_pb2, error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import FailedPrecondition
from services.provider.adapters.upstream_errors import malformed

_LITTLE_ENDIAN = sys.byteorder == "little"


def no_embeddings_api(provider: str, family: str) -> FailedPrecondition:
    """The answer of a provider type without an embeddings API."""
    return FailedPrecondition(
        f"provider type {family} has no embeddings API",
        reason=error_reason_pb2.ERROR_REASON_INVALID_REQUEST,
        metadata={"provider": provider},
    )


def decode_vector(value: Any, provider: str) -> array[float]:
    """One vector from a base64 string of little-endian float32s or a list of numbers."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise malformed(provider, "an embedding is not valid base64") from None
        if len(raw) % 4:
            raise malformed(provider, "an embedding's bytes are not float32 components")
        vector = array("f")
        vector.frombytes(raw)
        if not _LITTLE_ENDIAN:
            vector.byteswap()
        return vector
    if isinstance(value, list):
        try:
            return array("f", value)
        except TypeError:
            raise malformed(provider, "an embedding holds a value that is not a number") from None
    raise malformed(provider, "an embedding is neither a list of numbers nor base64")


def _response(
    vectors: Sequence[array[float]], model: str, usage: chat_pb2.Usage | None
) -> provider_pb2.EmbedResponse:
    response = provider_pb2.EmbedResponse(model=model)
    for vector in vectors:
        response.embeddings.add().values.extend(vector)
    if usage is not None:
        response.usage.CopyFrom(usage)
    return response


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_body(request: provider_pb2.EmbedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "input": list(request.input),
        "encoding_format": "base64",
    }
    if request.dimensions:
        body["dimensions"] = request.dimensions
    if request.user:
        body["user"] = request.user
    return body


def openai_answer(
    body: Any, request: provider_pb2.EmbedRequest, provider: str
) -> provider_pb2.EmbedResponse:
    """`{"data": [{"index", "embedding"}], "model", "usage": {"prompt_tokens", ...}}`,
    in index order."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise malformed(provider, "the answer has no data list")
    expected = len(request.input)
    if len(data) != expected:
        raise malformed(provider, f"{len(data)} embeddings answered for {expected} texts")
    slots: list[array[float] | None] = [None] * expected
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise malformed(provider, "an embedding entry is not an object")
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or slots[index] is not None:
            raise malformed(provider, "the embedding indexes do not match the texts")
        slots[index] = decode_vector(item.get("embedding"), provider)
    vectors = [vector for vector in slots if vector is not None]
    usage = None
    counts = body.get("usage")
    if isinstance(counts, dict):
        prompt = _count(counts.get("prompt_tokens"))
        usage = chat_pb2.Usage(
            input_tokens=prompt, total_tokens=_count(counts.get("total_tokens")) or prompt
        )
    model = body.get("model")
    return _response(vectors, model if isinstance(model, str) and model else request.model, usage)


def ollama_body(request: provider_pb2.EmbedRequest) -> dict[str, Any]:
    """Ollama truncates a text longer than the model's context when `truncate` is set,
    as OpenAI-compatible servers do, instead of failing the whole request."""
    body: dict[str, Any] = {"model": request.model, "input": list(request.input), "truncate": True}
    if request.dimensions:
        body["dimensions"] = request.dimensions
    return body


def ollama_answer(
    body: Any, request: provider_pb2.EmbedRequest, provider: str
) -> provider_pb2.EmbedResponse:
    """`{"model", "embeddings": [[...], ...], "prompt_eval_count"}`."""
    embeddings = body.get("embeddings") if isinstance(body, dict) else None
    if not isinstance(embeddings, list):
        raise malformed(provider, "the answer has no embeddings list")
    expected = len(request.input)
    if len(embeddings) != expected:
        raise malformed(provider, f"{len(embeddings)} embeddings answered for {expected} texts")
    vectors = [decode_vector(item, provider) for item in embeddings]
    usage = None
    prompt = _count(body.get("prompt_eval_count"))
    if prompt:
        usage = chat_pb2.Usage(input_tokens=prompt, total_tokens=prompt)
    model = body.get("model")
    return _response(vectors, model if isinstance(model, str) and model else request.model, usage)
