"""Bounds on everything a status carries back to the caller.

A gRPC status travels in HTTP/2 trailers: `grpc-message` (the message, percent-encoded,
so up to three bytes per byte) and `grpc-status-details-bin` (the serialized
`google.rpc.Status`, base64: four bytes per three, the message included again). gRPC's
default metadata limit is 8 KiB, and Envoy answers trailers over its own header limits
by resetting the HTTP/2 connection it shares with the replica, which fails every other
caller's stream on that connection. Messages and details often quote what the caller
sent (a model name, a tool id, a label), so whatever the caller sent, a status stays
small: the message is at most `MAX_MESSAGE_BYTES`, every string of every detail at most
`MAX_DETAIL_STRING_BYTES`, repeated and map fields of a detail at most
`MAX_DETAIL_ENTRIES` entries, and the serialized status at most `MAX_STATUS_BYTES`
(details that do not fit are dropped, the first ones kept). Worst case on the wire:
3 * 512 + 4/3 * 2048, about 4.3 KiB of trailers.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2

MAX_MESSAGE_BYTES = 512
MAX_DETAIL_STRING_BYTES = 256
MAX_DETAIL_ENTRIES = 20
MAX_STATUS_BYTES = 2048

_ELLIPSIS = "…"
_ELLIPSIS_BYTES = len(_ELLIPSIS.encode())


def clip_utf8(text: str, max_bytes: int) -> str:
    """`text` if its UTF-8 form fits in `max_bytes`; else its longest prefix that fits
    with a trailing `…` (never a broken character)."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return text
    room = max(max_bytes - _ELLIPSIS_BYTES, 0)
    return encoded[:room].decode("utf-8", "ignore") + _ELLIPSIS


def clip_chars(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars` characters (the last one a `…` when cut)."""
    return text if len(text) <= max_chars else text[: max(max_chars - 1, 0)] + _ELLIPSIS


def _bound_message(message: Message) -> None:
    """Clips every string of `message` and its submessages in place, and keeps at most
    `MAX_DETAIL_ENTRIES` entries of every repeated or map field."""
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING:
                _bound_map(message, field.name)
        elif field.is_repeated:
            del value[MAX_DETAIL_ENTRIES:]
            if field.type == FieldDescriptor.TYPE_STRING:
                value[:] = [clip_utf8(item, MAX_DETAIL_STRING_BYTES) for item in value]
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    _bound_message(item)
        elif field.type == FieldDescriptor.TYPE_STRING:
            setattr(message, field.name, clip_utf8(value, MAX_DETAIL_STRING_BYTES))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            _bound_message(value)


def _bound_map(message: Message, name: str) -> None:
    """The first entries of a `map<string, string>` (ErrorInfo.metadata), clipped."""
    entries = getattr(message, name)
    kept = [
        (clip_utf8(key, MAX_DETAIL_STRING_BYTES), clip_utf8(value, MAX_DETAIL_STRING_BYTES))
        for key, value in list(entries.items())[:MAX_DETAIL_ENTRIES]
    ]
    entries.clear()
    entries.update(kept)


def bound_detail(detail: Message) -> Message:
    """A copy of `detail` with every string and list bounded."""
    bounded = type(detail)()
    bounded.CopyFrom(detail)
    _bound_message(bounded)
    return bounded


def _fitted(detail: Message, room: int) -> any_pb2.Any | None:
    """`detail` packed in at most `room` bytes (tag and length prefix included), its
    longest repeated field cut down (the first entries kept) as needed; None if even one
    entry is too much."""
    while True:
        packed = any_pb2.Any()
        packed.Pack(detail)
        if packed.ByteSize() + 4 <= room:
            return packed
        longest = max(
            (value for field, value in detail.ListFields() if field.is_repeated),
            key=len,
            default=None,
        )
        if longest is None or len(longest) <= 1:
            return None
        keep = (len(longest) + 1) // 2
        if hasattr(longest, "keys"):
            for key in list(longest.keys())[keep:]:
                del longest[key]
        else:
            del longest[keep:]


def pack_bounded(status: status_pb2.Status, details: list[Message]) -> None:
    """Appends `details` to `status`, each bounded, as long as the status stays within
    `MAX_STATUS_BYTES`; the first details win."""
    for detail in details:
        packed = _fitted(bound_detail(detail), MAX_STATUS_BYTES - status.ByteSize())
        if packed is not None:
            status.details.append(packed)


def bounded_status(status: status_pb2.Status) -> status_pb2.Status:
    """`status` if it is within every bound; else a bounded copy (message clipped, each
    detail of a known type bounded, details that do not fit dropped)."""
    if status.ByteSize() <= MAX_STATUS_BYTES and len(status.message.encode()) <= (
        MAX_MESSAGE_BYTES
    ):
        return status
    out = status_pb2.Status(code=status.code, message=clip_utf8(status.message, MAX_MESSAGE_BYTES))
    for packed in status.details:
        room = MAX_STATUS_BYTES - out.ByteSize()
        if packed.ByteSize() + 4 <= room:
            out.details.append(packed)
            continue
        unpacked = _unpack_known(packed)
        fitted = None if unpacked is None else _fitted(bound_detail(unpacked), room)
        if fitted is not None:
            out.details.append(fitted)
    return out


def _unpack_known(packed: any_pb2.Any) -> Message | None:
    """The detail inside `packed` when its type is in the default pool, else None."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(packed.TypeName())
    except KeyError:
        return None
    detail = message_factory.GetMessageClass(descriptor)()
    return detail if packed.Unpack(detail) else None
