"""Conversion between a session's metadata hash (layout in `keys.py`) and `Session`."""

from __future__ import annotations

import json
from collections.abc import Mapping

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.session_names import session_name

Meta = Mapping[bytes, bytes]


def encode_context(context: struct_pb2.Struct) -> bytes:
    return context.SerializeToString(deterministic=True)


def encode_labels(labels: Mapping[str, str]) -> bytes:
    return json.dumps(dict(sorted(labels.items())), ensure_ascii=False).encode()


def timestamp_from_us(micros: int) -> timestamp_pb2.Timestamp:
    seconds, rest = divmod(micros, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=rest * 1000)


def duration_from_ms(millis: int) -> duration_pb2.Duration:
    seconds, rest = divmod(millis, 1000)
    return duration_pb2.Duration(seconds=seconds, nanos=rest * 1_000_000)


def meta_from_reply(flat: list[bytes]) -> dict[bytes, bytes]:
    """An HGETALL reply (`field, value, field, value, ...`) as a mapping."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def etag_of(meta: Meta) -> str:
    """`<create_us>.<rev>`, as `lua/common.lua` builds it (rev 0: written before revisions
    were counted)."""
    return f"{meta[b'create_us'].decode()}.{meta.get(b'rev', b'0').decode()}"


def session_from_meta(session_id: str, meta: Meta) -> session_pb2.Session:
    """The basic view of a session (no messages)."""
    session = session_pb2.Session(
        name=session_name(session_id),
        owner=meta.get(b"owner", b"").decode(),
        system_prompt=meta.get(b"system_prompt", b"").decode(),
        ttl=duration_from_ms(int(meta[b"ttl_ms"])),
        message_count=int(meta[b"count"]),
        create_time=timestamp_from_us(int(meta[b"create_us"])),
        update_time=timestamp_from_us(int(meta[b"update_us"])),
        expire_time=timestamp_from_us(int(meta[b"expire_us"])),
        etag=etag_of(meta),
    )
    context = meta.get(b"context", b"")
    if context:
        session.context.MergeFromString(context)
    session.labels.update(json.loads(meta.get(b"labels", b"{}") or b"{}"))
    return session
