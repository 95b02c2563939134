"""Embeddings in the response cache: the exact key of a request and the stored form.

The key hashes the resolved public model, the requested dimensions and every text, each
length-prefixed so no two requests share a canonical form; `user` is left out (it does
not change the vectors). Its domain string differs from the chat key's, so an embeddings
entry can never be read as a chat answer or the reverse.

Stored form: the magic `LGWE`, a version byte, the answering provider's name
(length-prefixed), then the serialized `CreateEmbeddingsResponse`. `decode` returns
None for anything else.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2

KEY_VERSION = 1
MAGIC = b"LGWE"
FORMAT_VERSION = 1
_LENGTH = struct.Struct(">I")


def embeddings_key(model: str, texts: Sequence[str], dimensions: int) -> str:
    """Hex SHA-256 of the request's canonical form for the public `model`."""
    digest = hashlib.sha256()
    digest.update(f"llmgw-embeddings-key/v{KEY_VERSION}\n{dimensions}\n{len(texts)}\n".encode())
    for part in (model, *texts):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(_LENGTH.pack(len(data)))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class CachedEmbeddings:
    """One answer as cached: the response as the caller got it, and who answered."""

    response: embeddings_pb2.CreateEmbeddingsResponse
    provider: str


def encode(entry: CachedEmbeddings) -> bytes:
    provider = entry.provider.encode()
    return b"".join(
        (
            MAGIC,
            bytes((FORMAT_VERSION,)),
            _LENGTH.pack(len(provider)),
            provider,
            entry.response.SerializeToString(),
        )
    )


def decode(value: bytes) -> CachedEmbeddings | None:
    """The stored entry, or None for a value in another format."""
    head = len(MAGIC) + 1
    if len(value) < head + _LENGTH.size or value[: len(MAGIC)] != MAGIC:
        return None
    if value[len(MAGIC)] != FORMAT_VERSION:
        return None
    (size,) = _LENGTH.unpack_from(value, head)
    start = head + _LENGTH.size
    if start + size > len(value):
        return None
    try:
        provider = value[start : start + size].decode()
        response = embeddings_pb2.CreateEmbeddingsResponse.FromString(value[start + size :])
    except (UnicodeDecodeError, DecodeError):
        return None
    return CachedEmbeddings(response, provider)
