"""Rules for messages stored in a session: one field violation per problem."""

from __future__ import annotations

from collections.abc import Sequence

from llmgw.common.v1 import chat_pb2
from services.common.text_checks import MAX_ID_CHARS, MAX_NAME_CHARS, check_text
from services.common.validation import Violations

_ROLES = frozenset(chat_pb2.Role.values())


def check_messages(
    violations: Violations, field: str, messages: Sequence[chat_pb2.Message], max_bytes: int
) -> None:
    """`messages` must be non-empty and every message well-formed and within `max_bytes`."""
    if not messages:
        violations.add(field, "at least one message is required")
    for i, message in enumerate(messages):
        check_message(violations, f"{field}[{i}]", message, max_bytes)


def check_message(
    violations: Violations, field: str, message: chat_pb2.Message, max_bytes: int
) -> None:
    size = message.ByteSize()
    if size > max_bytes:
        violations.add(field, f"is {size} bytes serialized; at most {max_bytes} are allowed")
    role = message.role
    if role == chat_pb2.ROLE_UNSPECIFIED:
        violations.add(f"{field}.role", "is required")
    elif role not in _ROLES:
        violations.add(f"{field}.role", f"unknown role {role}")
    for k, part in enumerate(message.content):
        kind = part.WhichOneof("part")
        if kind is None:
            violations.add(f"{field}.content[{k}]", "must set text or image_url")
        elif kind == "image_url" and not part.image_url.url:
            violations.add(f"{field}.content[{k}].image_url.url", "is required")
    if message.tool_calls and role != chat_pb2.ROLE_ASSISTANT:
        violations.add(f"{field}.tool_calls", "only assistant messages may call tools")
    check_text(violations, f"{field}.name", message.name, MAX_NAME_CHARS, single_line=True)
    for j, call in enumerate(message.tool_calls):
        where = f"{field}.tool_calls[{j}]"
        check_text(violations, f"{where}.id", call.id, MAX_ID_CHARS, required=True)
        check_text(violations, f"{where}.name", call.name, MAX_NAME_CHARS, required=True)
    if role == chat_pb2.ROLE_TOOL:
        if not message.tool_call_id:
            violations.add(f"{field}.tool_call_id", "is required for tool messages")
        else:
            check_text(violations, f"{field}.tool_call_id", message.tool_call_id, MAX_ID_CHARS)
    elif message.tool_call_id:
        violations.add(f"{field}.tool_call_id", "only tool messages answer a tool call")
    # An assistant message that only calls tools is the one message without content.
    if not message.content and not (role == chat_pb2.ROLE_ASSISTANT and message.tool_calls):
        violations.add(f"{field}.content", "is required")
