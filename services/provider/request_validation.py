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

# Embedding requests, bounded as OpenAI's `/v1/embeddings` bounds them: at most 2048
# texts, none empty. A text may hold 8192 tokens there; 64 Ki characters leaves room for
# that in any script while keeping one request's texts (`MAX_EMBED_TOTAL_CHARS`, about
# OpenAI's 300,000 tokens a request) within the gRPC message limit.
MAX_EMBED_INPUTS = 2048
MAX_EMBED_INPUT_CHARS = 65_536
MAX_EMBED_TOTAL_CHARS = 2_000_000
# Largest vector length a caller may ask for (the largest models answer 4096).
MAX_EMBED_DIMENSIONS = 16_384
# Per-text violations reported before the rest are summed up, to bound the status.
_MAX_TEXT_VIOLATIONS = 8

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


def validate_embed(request: provider_pb2.EmbedRequest) -> None:
    violations = Violations()
    check_text(
        violations, "provider", request.provider, MAX_NAME_CHARS, required=True, single_line=True
    )
    check_text(
        violations, "model", request.model, MAX_MODEL_NAME_CHARS, required=True, single_line=True
    )
    check_text(violations, "user", request.user, MAX_ID_CHARS, single_line=True)
    texts = request.input
    violations.require(bool(texts), "input", "at least one text is required")
    if len(texts) > MAX_EMBED_INPUTS:
        violations.add("input", f"has {len(texts)} texts; at most {MAX_EMBED_INPUTS} allowed")
    else:
        bad = 0
        for i, text in enumerate(texts):
            if text and len(text) <= MAX_EMBED_INPUT_CHARS:
                continue
            bad += 1
            if bad <= _MAX_TEXT_VIOLATIONS:
                check_text(violations, f"input[{i}]", text, MAX_EMBED_INPUT_CHARS, required=True)
        if bad > _MAX_TEXT_VIOLATIONS:
            violations.add(
                "input", f"{bad - _MAX_TEXT_VIOLATIONS} more texts are empty or too long"
            )
        total = sum(len(text) for text in texts)
        if not bad and total > MAX_EMBED_TOTAL_CHARS:
            violations.add(
                "input", f"holds {total} characters; at most {MAX_EMBED_TOTAL_CHARS} allowed"
            )
    if not 0 <= request.dimensions <= MAX_EMBED_DIMENSIONS:
        violations.add("dimensions", f"must be 0 (the model's own) to {MAX_EMBED_DIMENSIONS}")
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
