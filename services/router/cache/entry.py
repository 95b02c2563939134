"""A cached answer, its conversions from and to provider results, and its stored form.

The canonical form of an answer is a list of stream events, so a streaming request that
hits replays the same chunk shape as a live stream, and a unary request assembles the
same events into a `CompleteResponse`. A unary answer becomes events with its text in
word-sized pieces.

Stored form (`encode`): the magic `LGWC`, a version byte, a 4-byte big-endian length and
a JSON header (model, provider, created, system fingerprint), then each event as a 4-byte
length and its serialized protobuf. `decode` returns None for anything else.
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass
from typing import cast

import orjson
from google.protobuf.message import DecodeError

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.router.stream_assembly import StreamAssembly

MAGIC = b"LGWC"
FORMAT_VERSION = 1
_LENGTH = struct.Struct(">I")
_PREFIX = len(MAGIC) + 1
# Split before every run of non-space that follows a space: "Hello, world" -> "Hello, ",
# "world". Joining the pieces gives the text back exactly.
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


@dataclass(frozen=True)
class CachedAnswer:
    """One complete answer as it is cached.

    `events` carry no response id or provider model name (a replay gets the router's
    own id and the public model); `model` is the public model that answered.
    """

    events: list[provider_pb2.StreamCompleteResponse]
    model: str
    provider: str
    created: float
    system_fingerprint: str = ""


def from_response(
    response: provider_pb2.CompleteResponse,
    model: str,
    provider: str,
    *,
    created: float | None = None,
) -> CachedAnswer:
    """A unary answer as the events a stream of it would have carried: text in
    word-sized pieces, one event per tool call, the refusal, the finish reason, usage."""
    events: list[provider_pb2.StreamCompleteResponse] = []
    text = "".join(p.text for p in response.message.content if p.WhichOneof("part") == "text")
    if text:
        events.extend(provider_pb2.StreamCompleteResponse(text=piece) for piece in _words(text))
    for index, call in enumerate(response.message.tool_calls):
        delta = provider_pb2.ToolCallDelta(
            index=index, id=call.id, name=call.name, arguments=call.arguments
        )
        events.append(provider_pb2.StreamCompleteResponse(tool_call=delta))
    if response.refusal:
        events.append(provider_pb2.StreamCompleteResponse(refusal=response.refusal))
    if response.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
        events.append(provider_pb2.StreamCompleteResponse(finish_reason=response.finish_reason))
    if response.HasField("usage"):
        events.append(provider_pb2.StreamCompleteResponse(usage=response.usage))
    return CachedAnswer(
        events=events,
        model=model,
        provider=provider,
        created=time.time() if created is None else created,
        system_fingerprint=response.system_fingerprint,
    )


def from_events(
    events: list[provider_pb2.StreamCompleteResponse],
    model: str,
    provider: str,
    *,
    created: float | None = None,
) -> CachedAnswer:
    """A complete stream as cached: the events in order, without their id and provider
    model name, and without events that carry nothing (no payload, finish or usage)."""
    kept: list[provider_pb2.StreamCompleteResponse] = []
    for event in events:
        if not _carries_something(event):
            continue
        copy = provider_pb2.StreamCompleteResponse()
        copy.CopyFrom(event)
        copy.ClearField("id")
        copy.ClearField("model")
        kept.append(copy)
    return CachedAnswer(
        events=kept,
        model=model,
        provider=provider,
        created=time.time() if created is None else created,
    )


def to_response(answer: CachedAnswer) -> provider_pb2.CompleteResponse:
    """The answer as a unary result: the assembled message, finish reason, usage (when
    the events carried it), refusal and fingerprint; `model` is the public model, `id`
    is left for the caller."""
    assembly = StreamAssembly()
    for event in answer.events:
        assembly.add(event)
    response = provider_pb2.CompleteResponse(
        model=answer.model,
        provider=answer.provider,
        message=assembly.message(),
        # StreamAssembly keeps the enum as the plain int it is on the wire.
        finish_reason=cast(common_pb2.FinishReason, assembly.finish_reason),
        refusal="".join(assembly.refusal),
        system_fingerprint=answer.system_fingerprint,
    )
    if assembly.usage is not None:
        response.usage.CopyFrom(assembly.usage)
    return response


def encode(answer: CachedAnswer) -> bytes:
    """The stored form (see the module docstring)."""
    header = orjson.dumps(
        {
            "model": answer.model,
            "provider": answer.provider,
            "created": answer.created,
            "system_fingerprint": answer.system_fingerprint,
        }
    )
    parts = [MAGIC, bytes([FORMAT_VERSION]), _LENGTH.pack(len(header)), header]
    for event in answer.events:
        data = event.SerializeToString()
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)


def decode(data: bytes) -> CachedAnswer | None:
    """The answer `encode` stored, or None for anything else (another format version,
    a truncated or foreign value); never raises."""
    if data[: len(MAGIC)] != MAGIC or data[len(MAGIC) : _PREFIX] != bytes([FORMAT_VERSION]):
        return None
    chunks = _chunks(data, _PREFIX)
    if not chunks:
        return None
    try:
        header = orjson.loads(chunks[0])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict):
        return None
    model, provider = header.get("model"), header.get("provider")
    created, fingerprint = header.get("created"), header.get("system_fingerprint", "")
    if not (
        isinstance(model, str)
        and isinstance(provider, str)
        and isinstance(created, int | float)
        and isinstance(fingerprint, str)
    ):
        return None
    events: list[provider_pb2.StreamCompleteResponse] = []
    for chunk in chunks[1:]:
        event = provider_pb2.StreamCompleteResponse()
        try:
            event.ParseFromString(chunk)
        except DecodeError:
            return None
        events.append(event)
    return CachedAnswer(
        events=events,
        model=model,
        provider=provider,
        created=float(created),
        system_fingerprint=fingerprint,
    )


def _chunks(data: bytes, offset: int) -> list[bytes] | None:
    """The length-prefixed chunks from `offset` to the end; None unless they fill the
    value exactly."""
    chunks: list[bytes] = []
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            return None
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            return None
        chunks.append(data[offset : offset + length])
        offset += length
    return chunks


def _words(text: str) -> list[str]:
    return _WORD_START.split(text)


def _carries_something(event: provider_pb2.StreamCompleteResponse) -> bool:
    return (
        event.WhichOneof("event") is not None
        or event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
        or event.HasField("usage")
    )
