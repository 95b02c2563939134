"""OpenAI's /v1/embeddings JSON: parsing (errors named by OpenAI's fields), the response
shape, and the base64 encoding the official SDK asks for by default."""

from __future__ import annotations

import base64
import struct
from typing import Any, cast

import orjson
import pytest
from google.api import httpbody_pb2

from llmgw.router.v1 import compat_service_pb2
from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from services.common.errors import InvalidArgument
from services.router.compat.embeddings_surface import (
    TOKEN_ARRAYS,
    decode_vector,
    encode_vector,
    parse,
    render,
)
from services.router.compat.servicer import CompatServicer
from tests.support.servicer_context import FakeContext
from tests.unit.router.test_embeddings import ScriptedEmbeddings, _router


def test_a_string_input_is_one_text_and_options_are_carried() -> None:
    request, encoding = parse(
        {"model": "m", "input": "hello", "dimensions": 3, "encoding_format": "base64", "user": "u"}
    )
    assert list(request.input) == ["hello"]
    assert (request.dimensions, request.user, encoding) == (3, "u", "base64")
    request, encoding = parse({"model": "m", "input": ["a", "b"], "encoding_format": None})
    assert list(request.input) == ["a", "b"] and encoding == "float"
    assert request.dimensions == 0


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"input": "x"}, "model", "required"),
        ({"model": "m"}, "input", "a string or a list of strings"),
        ({"model": "m", "input": [1, 2, 3]}, "input", TOKEN_ARRAYS),
        ({"model": "m", "input": [[1, 2], [3]]}, "input", TOKEN_ARRAYS),
        ({"model": "m", "input": ["a", {"x": 1}]}, "input[1]", "must be a string"),
        ({"model": "m", "input": "a", "dimensions": 0}, "dimensions", "at least 1"),
        ({"model": "m", "input": "a", "dimensions": True}, "dimensions", "at least 1"),
        ({"model": "m", "input": "a", "encoding_format": "int8"}, "encoding_format", "base64"),
        ({"model": "m", "input": "a", "user": 5}, "user", "string"),
    ],
)
def test_bad_fields_are_named_as_openai_names_them(
    body: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse(body)
    [violation] = raised.value.violations
    assert violation.field == field and says in violation.description


def test_base64_is_little_endian_float32_and_round_trips() -> None:
    values = [0.25, -1.5, 3.0e-5]
    encoded = encode_vector(values)
    raw = base64.b64decode(encoded)
    assert raw[:4] == struct.pack("<f", 0.25)
    assert decode_vector(encoded) == [struct.unpack("<f", struct.pack("<f", v))[0] for v in values]


def _response() -> embeddings_pb2.CreateEmbeddingsResponse:
    return embeddings_pb2.CreateEmbeddingsResponse(
        object="list",
        model="embed",
        data=[
            embeddings_pb2.Embedding(object="embedding", index=0, embedding=[0.5, 0.25]),
            embeddings_pb2.Embedding(object="embedding", index=1, embedding=[1.0, -2.0]),
        ],
        usage=embeddings_pb2.EmbeddingsUsage(prompt_tokens=4, total_tokens=4),
    )


def test_the_float_response_is_openais_list_object() -> None:
    assert orjson.loads(orjson.dumps(render(_response(), "float"))) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, 0.25]},
            {"object": "embedding", "index": 1, "embedding": [1.0, -2.0]},
        ],
        "model": "embed",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }


def test_the_base64_response_decodes_to_the_vectors() -> None:
    rendered = render(_response(), "base64")
    assert [decode_vector(d["embedding"]) for d in rendered["data"]] == [[0.5, 0.25], [1.0, -2.0]]


async def test_the_compat_rpc_answers_json_and_sends_the_route_headers() -> None:
    router, _ = _router(ScriptedEmbeddings())
    body = httpbody_pb2.HttpBody(
        content_type="application/json",
        data=orjson.dumps({"model": "embed", "input": ["a", "b"], "dimensions": 2}),
    )
    context = FakeContext()
    answer = await CompatServicer(router).CreateOpenAIEmbeddings(
        compat_service_pb2.CreateOpenAIEmbeddingsRequest(body=body), cast(Any, context)
    )
    assert answer.content_type == "application/json"
    parsed = orjson.loads(answer.data)
    assert parsed["object"] == "list" and parsed["model"] == "embed"
    assert [d["embedding"] for d in parsed["data"]] == [[0.0, 0.5], [1.0, 0.5]]
    assert dict(context.initial)["x-llmgw-provider"] == "oa"
