"""Checks of the requests the Provider service accepts, every problem at once."""

from __future__ import annotations

import re

from llmgw.common.v1 import chat_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.enum_checks import check_enum
from services.common.struct_checks import check_json
from services.common.text_checks import (
    MAX_ID_CHARS,
    MAX_MODEL_NAME_CHARS,
    MAX_NAME_CHARS,
    check_text,
)
from services.common.validation import Violations

_ROLES = frozenset(chat_pb2.Role.values()) - {chat_pb2.ROLE_UNSPECIFIED}
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def validate_provider(name: str) -> None:
    violations = Violations()
    check_text(violations, "provider", name, MAX_NAME_CHARS, required=True, single_line=True)
    violations.raise_if_any()


def validate_complete(request: provider_pb2.CompleteRequest) -> None:
    violations = Violations()
    check_text(
        violations, "provider", request.provider, MAX_NAME_CHARS, required=True, single_line=True
    )
    check_text(
        violations, "model", request.model, MAX_MODEL_NAME_CHARS, required=True, single_line=True
    )
    check_text(violations, "user", request.user, MAX_ID_CHARS, single_line=True)
    violations.require(bool(request.messages), "messages", "at least one message is required")
    for i, message in enumerate(request.messages):
        _message(message, f"messages[{i}]", violations)
    names = set()
    for k, tool in enumerate(request.tools):
        names.add(tool.name)
        if not _TOOL_NAME.fullmatch(tool.name):
            violations.add(f"tools[{k}].name", "must match ^[a-zA-Z0-9_-]{1,64}$")
        if tool.HasField("parameters"):
            check_json(violations, f"tools[{k}].parameters", tool.parameters)
    check_enum(violations, "tool_choice.mode", request.tool_choice.mode, chat_pb2.ToolChoice.Mode)
    fmt = request.response_format
    check_enum(violations, "response_format.type", fmt.type, chat_pb2.ResponseFormat.Type)
    if fmt.HasField("schema"):
        check_json(violations, "response_format.schema", fmt.schema)
    if request.tool_choice.mode == chat_pb2.ToolChoice.MODE_TOOL:
        if not request.tool_choice.tool_name:
            violations.add("tool_choice.tool_name", "required when the mode is MODE_TOOL")
        elif request.tool_choice.tool_name not in names:
            violations.add("tool_choice.tool_name", "must name one of the request's tools")
    if request.HasField("max_tokens") and request.max_tokens <= 0:
        violations.add("max_tokens", "must be positive")
    violations.raise_if_any()


def _message(message: chat_pb2.Message, where: str, violations: Violations) -> None:
    if message.role not in _ROLES:
        violations.add(f"{where}.role", "required: system, user, assistant, tool or developer")
    if message.role == chat_pb2.ROLE_TOOL and not message.tool_call_id:
        violations.add(f"{where}.tool_call_id", "required for a tool message")
    if message.tool_calls and message.role != chat_pb2.ROLE_ASSISTANT:
        violations.add(f"{where}.tool_calls", "only assistant messages carry tool calls")
    check_text(violations, f"{where}.name", message.name, MAX_NAME_CHARS, single_line=True)
    check_text(violations, f"{where}.tool_call_id", message.tool_call_id, MAX_ID_CHARS)
    for j, call in enumerate(message.tool_calls):
        at = f"{where}.tool_calls[{j}]"
        check_text(violations, f"{at}.id", call.id, MAX_ID_CHARS, required=True)
        check_text(violations, f"{at}.name", call.name, MAX_NAME_CHARS, required=True)
    for j, part in enumerate(message.content):
        kind = part.WhichOneof("part")
        if kind is None:
            violations.add(f"{where}.content[{j}]", "must be text or image_url")
        elif kind == "image_url" and not part.image_url.url:
            violations.add(f"{where}.content[{j}].image_url.url", "required")
