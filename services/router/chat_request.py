"""The public (OpenAI-shaped) chat request: validation and translation.

`to_complete_request` checks every field the way OpenAI documents it, collecting one
field violation per problem (paths use the JSON names: `messages[2].content[0].type`),
and produces the normalised `CompleteRequest` the Provider service speaks.
"""

from __future__ import annotations

import re

from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from services.common.struct_checks import check_json
from services.common.text_checks import (
    MAX_ID_CHARS,
    MAX_MODEL_NAME_CHARS,
    MAX_NAME_CHARS,
    check_count,
    check_string_map,
    check_text,
    shown,
)
from services.common.validation import Violations

ROLES = {
    "system": common_pb2.ROLE_SYSTEM,
    "developer": common_pb2.ROLE_DEVELOPER,
    "user": common_pb2.ROLE_USER,
    "assistant": common_pb2.ROLE_ASSISTANT,
    "tool": common_pb2.ROLE_TOOL,
}
TOOL_CHOICE_MODES = {
    "auto": common_pb2.ToolChoice.MODE_AUTO,
    "none": common_pb2.ToolChoice.MODE_NONE,
    "required": common_pb2.ToolChoice.MODE_REQUIRED,
}
RESPONSE_FORMATS = {
    "text": common_pb2.ResponseFormat.TYPE_TEXT,
    "json_object": common_pb2.ResponseFormat.TYPE_JSON_OBJECT,
    "json_schema": common_pb2.ResponseFormat.TYPE_JSON_SCHEMA,
}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_STOP_SEQUENCES = 4
# OpenAI's own limits on `metadata`: 16 pairs, keys of 64 and values of 512 characters.
MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
# `logit_bias` maps token ids (decimal strings) to a bias.
MAX_LOGIT_BIAS_ENTRIES = 1024
MAX_TOKEN_ID_CHARS = 16
# Each stop sequence is sent to the provider with every call.
MAX_STOP_CHARS = 1024
MAX_TOOLS = 128


def _kind(value: struct_pb2.Value) -> str:
    return value.WhichOneof("kind") or "null_value"


def _content_parts(
    value: struct_pb2.Value, path: str, problems: Violations
) -> list[common_pb2.ContentPart]:
    """A string, an array of parts, or null -> normalised parts."""
    kind = _kind(value)
    if kind == "null_value":
        return []
    if kind == "string_value":
        return [common_pb2.ContentPart(text=value.string_value)]
    if kind != "list_value":
        problems.add(path, "must be a string, an array of content parts, or null")
        return []
    parts: list[common_pb2.ContentPart] = []
    for i, item in enumerate(value.list_value.values):
        where = f"{path}[{i}]"
        if _kind(item) != "struct_value":
            problems.add(where, "must be an object with a `type`")
            continue
        fields = item.struct_value.fields
        part_type = fields["type"].string_value if "type" in fields else ""
        if part_type in ("text", "input_text"):
            if "text" not in fields or _kind(fields["text"]) != "string_value":
                problems.add(f"{where}.text", "required for a text part")
                continue
            parts.append(common_pb2.ContentPart(text=fields["text"].string_value))
        elif part_type == "image_url":
            image = fields["image_url"].struct_value.fields if "image_url" in fields else {}
            url = image["url"].string_value if "url" in image else ""
            if not url:
                problems.add(f"{where}.image_url.url", "required for an image_url part")
                continue
            detail = image["detail"].string_value if "detail" in image else ""
            parts.append(
                common_pb2.ContentPart(image_url=common_pb2.ImageUrl(url=url, detail=detail))
            )
        else:
            problems.add(
                f"{where}.type",
                f"unsupported content part type {shown(part_type)} (use 'text' or 'image_url')",
            )
    return parts


def _message(message: chat_pb2.ChatMessage, index: int, problems: Violations) -> common_pb2.Message:
    path = f"messages[{index}]"
    role = ROLES.get(message.role)
    if role is None:
        problems.add(
            f"{path}.role",
            f"{shown(message.role)} is not a role (use system, developer, user, assistant or tool)"
            if message.role
            else "required",
        )
        role = common_pb2.ROLE_UNSPECIFIED
    check_text(problems, f"{path}.name", message.name, MAX_NAME_CHARS, single_line=True)
    out = common_pb2.Message(role=role, name=message.name)
    has_content = message.HasField("content") and _kind(message.content) != "null_value"
    if has_content:
        check_json(problems, f"{path}.content", message.content)
    out.content.extend(_content_parts(message.content, f"{path}.content", problems))
    if role == common_pb2.ROLE_ASSISTANT:
        for j, call in enumerate(message.tool_calls):
            where = f"{path}.tool_calls[{j}]"
            if not call.id:
                problems.add(f"{where}.id", "required")
            else:
                check_text(problems, f"{where}.id", call.id, MAX_ID_CHARS, single_line=True)
            if call.HasField("type") and call.type != "function":
                problems.add(f"{where}.type", "must be 'function'")
            if not call.function.name:
                problems.add(f"{where}.function.name", "required")
            else:
                check_text(
                    problems,
                    f"{where}.function.name",
                    call.function.name,
                    MAX_NAME_CHARS,
                    single_line=True,
                )
            out.tool_calls.append(
                common_pb2.ToolCall(
                    id=call.id, name=call.function.name, arguments=call.function.arguments or "{}"
                )
            )
        if not has_content and not message.tool_calls:
            problems.add(f"{path}.content", "an assistant message needs content or tool_calls")
    elif message.tool_calls:
        problems.add(f"{path}.tool_calls", "only assistant messages carry tool calls")
    if role == common_pb2.ROLE_TOOL:
        if not message.tool_call_id:
            problems.add(f"{path}.tool_call_id", "required for a tool message")
        else:
            check_text(
                problems,
                f"{path}.tool_call_id",
                message.tool_call_id,
                MAX_ID_CHARS,
                single_line=True,
            )
        out.tool_call_id = message.tool_call_id
    needs_content = (common_pb2.ROLE_SYSTEM, common_pb2.ROLE_DEVELOPER, common_pb2.ROLE_USER)
    if role in needs_content and not has_content:
        problems.add(f"{path}.content", "required")
    return out


def _tools(request: chat_pb2.CreateChatCompletionRequest, problems: Violations) -> set[str]:
    names: set[str] = set()
    check_count(problems, "tools", request.tools, MAX_TOOLS)
    for i, tool in enumerate(request.tools):
        where = f"tools[{i}]"
        if tool.type != "function":
            problems.add(f"{where}.type", "must be 'function'")
        name = tool.function.name
        if not TOOL_NAME.match(name):
            problems.add(f"{where}.function.name", "must match ^[a-zA-Z0-9_-]{1,64}$")
        elif name in names:
            problems.add(f"{where}.function.name", f"duplicate tool name '{name}'")
        names.add(name)
        if tool.function.HasField("parameters"):
            check_json(problems, f"{where}.function.parameters", tool.function.parameters)
    return names


def _tool_choice(
    value: struct_pb2.Value, tool_names: set[str], problems: Violations
) -> common_pb2.ToolChoice | None:
    kind = _kind(value)
    if kind == "null_value":
        return None
    if not check_json(problems, "tool_choice", value):
        return None
    if kind == "string_value":
        mode = TOOL_CHOICE_MODES.get(value.string_value)
        if mode is None:
            problems.add("tool_choice", "must be 'none', 'auto', 'required' or a function object")
            return None
        if mode == common_pb2.ToolChoice.MODE_REQUIRED and not tool_names:
            problems.add("tool_choice", "'required' needs at least one tool in `tools`")
        return common_pb2.ToolChoice(mode=mode)
    if kind == "struct_value":
        fields = value.struct_value.fields
        function = fields["function"].struct_value.fields if "function" in fields else {}
        name = function["name"].string_value if "name" in function else ""
        if not name:
            problems.add("tool_choice.function.name", "required")
        elif name not in tool_names:
            problems.add("tool_choice.function.name", f"{shown(name)} is not one of `tools`")
        return common_pb2.ToolChoice(mode=common_pb2.ToolChoice.MODE_TOOL, tool_name=name)
    problems.add("tool_choice", "must be a string or an object")
    return None


def _stop(value: struct_pb2.Value, problems: Violations) -> list[str]:
    kind = _kind(value)
    if kind == "null_value":
        return []
    if kind == "string_value":
        if not check_text(problems, "stop", value.string_value, MAX_STOP_CHARS):
            return []
        return [value.string_value] if value.string_value else []
    if kind == "list_value":
        if not check_json(problems, "stop", value):
            return []
        stops = []
        for i, item in enumerate(value.list_value.values):
            if _kind(item) != "string_value" or not item.string_value:
                problems.add(f"stop[{i}]", "must be a non-empty string")
            elif check_text(problems, f"stop[{i}]", item.string_value, MAX_STOP_CHARS):
                stops.append(item.string_value)
        if len(stops) > MAX_STOP_SEQUENCES:
            problems.add("stop", f"at most {MAX_STOP_SEQUENCES} sequences")
        return stops
    problems.add("stop", "must be a string or an array of strings")
    return []


def _response_format(
    request: chat_pb2.CreateChatCompletionRequest, problems: Violations
) -> common_pb2.ResponseFormat | None:
    if not request.HasField("response_format"):
        return None
    fmt = request.response_format
    kind = RESPONSE_FORMATS.get(fmt.type)
    if kind is None:
        problems.add("response_format.type", "must be 'text', 'json_object' or 'json_schema'")
        return None
    out = common_pb2.ResponseFormat(type=kind)
    if kind == common_pb2.ResponseFormat.TYPE_JSON_SCHEMA:
        if not fmt.json_schema.name:
            problems.add("response_format.json_schema.name", "required for json_schema")
        elif not TOOL_NAME.match(fmt.json_schema.name):
            problems.add("response_format.json_schema.name", "must match ^[a-zA-Z0-9_-]{1,64}$")
        if not fmt.json_schema.HasField("schema"):
            problems.add("response_format.json_schema.schema", "required for json_schema")
        else:
            check_json(problems, "response_format.json_schema.schema", fmt.json_schema.schema)
        out.schema_name = fmt.json_schema.name
        out.schema.CopyFrom(fmt.json_schema.schema)
        out.strict = fmt.json_schema.strict
    return out


def _ranges(request: chat_pb2.CreateChatCompletionRequest, problems: Violations) -> None:
    if request.HasField("temperature") and not 0 <= request.temperature <= 2:
        problems.add("temperature", "must be between 0 and 2")
    if request.HasField("top_p") and not 0 <= request.top_p <= 1:
        problems.add("top_p", "must be between 0 and 1")
    if request.HasField("n") and request.n != 1:
        problems.add("n", "only n=1 is supported")
    for name in ("max_tokens", "max_completion_tokens"):
        if request.HasField(name) and getattr(request, name) < 1:
            problems.add(name, "must be at least 1")
    for name in ("presence_penalty", "frequency_penalty"):
        if request.HasField(name) and not -2 <= getattr(request, name) <= 2:
            problems.add(name, "must be between -2 and 2")
    if not check_count(problems, "logit_bias", request.logit_bias, MAX_LOGIT_BIAS_ENTRIES):
        return
    for token, bias in request.logit_bias.items():
        if len(token) > MAX_TOKEN_ID_CHARS or not token.isdecimal():
            problems.add("logit_bias", f"key {shown(token)} is not a token id")
        elif not -100 <= bias <= 100:
            problems.add(f"logit_bias[{token}]", "must be between -100 and 100")


def _caller_strings(request: chat_pb2.CreateChatCompletionRequest, problems: Violations) -> None:
    """Strings the gateway forwards, records or quotes: bounded so none can be huge."""
    check_text(problems, "model", request.model, MAX_MODEL_NAME_CHARS, single_line=True)
    check_text(problems, "user", request.user, MAX_ID_CHARS, single_line=True)
    check_text(
        problems, "gateway.request_id", request.gateway.request_id, MAX_ID_CHARS, single_line=True
    )
    check_string_map(
        problems,
        "metadata",
        request.metadata,
        max_entries=MAX_METADATA_ENTRIES,
        max_key_chars=MAX_METADATA_KEY_CHARS,
        max_value_chars=MAX_METADATA_VALUE_CHARS,
    )


def to_complete_request(
    request: chat_pb2.CreateChatCompletionRequest, problems: Violations
) -> provider_pb2.CompleteRequest:
    """Validate the public request into `problems` and translate what is valid.

    The caller raises `problems` before using the result; `provider` and `model` are
    left for the router to fill from the routing decision.
    """
    if not request.messages:
        problems.add("messages", "must contain at least one message")
    _caller_strings(request, problems)
    out = provider_pb2.CompleteRequest(user=request.user)
    out.messages.extend(_message(m, i, problems) for i, m in enumerate(request.messages))
    _ranges(request, problems)
    tool_names = _tools(request, problems)
    for tool in request.tools:
        out.tools.append(
            common_pb2.ToolDefinition(
                name=tool.function.name,
                description=tool.function.description,
                parameters=tool.function.parameters,
                strict=tool.function.strict,
            )
        )
    choice = _tool_choice(request.tool_choice, tool_names, problems)
    if choice is not None:
        out.tool_choice.CopyFrom(choice)
    if request.HasField("parallel_tool_calls"):
        out.parallel_tool_calls = request.parallel_tool_calls
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed"):
        if request.HasField(name):
            setattr(out, name, getattr(request, name))
    if request.HasField("max_completion_tokens"):
        out.max_tokens = request.max_completion_tokens
    elif request.HasField("max_tokens"):
        out.max_tokens = request.max_tokens
    out.stop.extend(_stop(request.stop, problems))
    fmt = _response_format(request, problems)
    if fmt is not None:
        out.response_format.CopyFrom(fmt)
    out.logit_bias.update(request.logit_bias)
    return out
