"""A `Tool` message as a `ToolDefinition`: the file's rules applied to CreateTool.

One set of rules (services/common/tool_config.py) judges tools from the file and from
the API; here its findings are renamed to the request's fields (`http.url_template` ->
`tool.http.url_template`, `timeout_seconds` -> `tool.timeout`, ...).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from pydantic import ValidationError

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.struct_checks import check_json
from services.common.text_checks import check_count, check_string_map, check_text
from services.common.tool_config import HostAllowList, ToolDefinition
from services.common.validation import Violations
from services.tool.names import tool_name
from services.tool.schema import normalize

_FIELDS = {
    "name": "tool_id",
    "timeout_seconds": "tool.timeout",
    "retry": "tool.retry_policy",
    "retry.initial_backoff_seconds": "tool.retry_policy.initial_backoff",
    "retry.max_backoff_seconds": "tool.retry_policy.max_backoff",
}
_MISSING = {
    "tool.description": "is required: what the tool does, for the model to read",
    "tool.parameters": "is required: the JSON Schema of the arguments object",
    "tool.http": "is required: the tool needs an executor",
}


# What one registered tool may hold: it is stored, listed to every caller that may use it,
# and its schema and description go to the model with every call that offers it.
MAX_DESCRIPTION_CHARS = 4096
MAX_SCHEMA_BYTES = 64 * 1024
MAX_URL_TEMPLATE_CHARS = 2048
MAX_HEADERS = 32
MAX_HEADER_NAME_CHARS = 256
MAX_HEADER_VALUE_CHARS = 8192
MAX_ALLOWED_CONSUMERS = 1000
MAX_CONSUMER_NAME_CHARS = 128


def _bounds(violations: Violations, tool: tool_pb2.Tool) -> bool:
    """Sizes first: the file's rules then judge only a tool of sane size."""
    ok = check_text(violations, "tool.description", tool.description, MAX_DESCRIPTION_CHARS)
    if tool.HasField("parameters"):
        ok &= check_json(violations, "tool.parameters", tool.parameters, max_bytes=MAX_SCHEMA_BYTES)
    if tool.HasField("http"):
        ok &= check_text(
            violations,
            "tool.http.url_template",
            tool.http.url_template,
            MAX_URL_TEMPLATE_CHARS,
            single_line=True,
        )
        ok &= check_string_map(
            violations,
            "tool.http.headers",
            tool.http.headers,
            max_entries=MAX_HEADERS,
            max_key_chars=MAX_HEADER_NAME_CHARS,
            max_value_chars=MAX_HEADER_VALUE_CHARS,
        )
    if check_count(
        violations, "tool.allowed_consumers", tool.allowed_consumers, MAX_ALLOWED_CONSUMERS
    ):
        for i, consumer in enumerate(tool.allowed_consumers):
            ok &= check_text(
                violations,
                f"tool.allowed_consumers[{i}]",
                consumer,
                MAX_CONSUMER_NAME_CHARS,
                single_line=True,
            )
    else:
        ok = False
    return ok


def _field(path: str) -> str:
    if path in _FIELDS:
        return _FIELDS[path]
    head, _, rest = path.partition(".")
    if head == "allowed_consumers" and rest.isdigit():
        return f"tool.allowed_consumers[{rest}]"
    if head in _FIELDS:
        return f"{_FIELDS[head]}.{rest}"
    return f"tool.{path}" if path else "tool"


def _document(tool_id: str, tool: tool_pb2.Tool) -> dict[str, Any]:
    """The message as the file would write it; unset fields are left out."""
    doc: dict[str, Any] = {"name": tool_id}
    if tool.description:
        doc["description"] = tool.description
    if tool.HasField("parameters"):
        doc["parameters"] = normalize(json_format.MessageToDict(tool.parameters))
    if tool.HasField("http"):
        doc["http"] = {
            "method": tool.http.method,
            "url_template": tool.http.url_template,
            "headers": dict(tool.http.headers),
            "json_body": tool.http.json_body,
        }
    if tool.HasField("timeout"):
        doc["timeout_seconds"] = tool.timeout.ToNanoseconds() / 1e9
    if tool.HasField("retry_policy"):
        policy = tool.retry_policy
        retry: dict[str, Any] = {}
        if policy.max_attempts:
            retry["max_attempts"] = policy.max_attempts
        if policy.HasField("initial_backoff"):
            retry["initial_backoff_seconds"] = policy.initial_backoff.ToNanoseconds() / 1e9
        if policy.HasField("max_backoff"):
            retry["max_backoff_seconds"] = policy.max_backoff.ToNanoseconds() / 1e9
        doc["retry"] = retry
    if tool.allowed_consumers:
        doc["allowed_consumers"] = list(tool.allowed_consumers)
    if tool.max_output_bytes:
        doc["max_output_bytes"] = tool.max_output_bytes
    return doc


def _report(violations: Violations, error: ValidationError) -> None:
    for problem in error.errors():
        path = ".".join(str(p) for p in problem["loc"])
        if path == "name":
            continue  # the tool id: `check_tool_id` reports it in the request's words
        if problem["type"] == "missing":
            field = _field(path)
            violations.add(field, _MISSING.get(field, "is required"))
            continue
        message = str(problem["msg"]).removeprefix("Value error, ")
        # Cross-field checks report "relative.path: problem" parts joined by "; ".
        for part in message.split("; "):
            where, sep, said = part.partition(": ")
            if sep and " " not in where:
                violations.add(_field(".".join(x for x in (path, where) if x)), said)
            else:
                violations.add(_field(path), part)


def check_tool(
    violations: Violations, tool_id: str, tool: tool_pb2.Tool, allow: HostAllowList
) -> ToolDefinition | None:
    """The definition CreateTool registers, or None with the problems added."""
    if tool.name and tool.name != tool_name(tool_id):
        violations.add("tool.name", f"must be empty or {tool_name(tool_id)}")
    if not _bounds(violations, tool):
        return None
    try:
        definition = ToolDefinition.model_validate(_document(tool_id, tool))
    except ValidationError as error:
        _report(violations, error)
        return None
    refusal = allow.refusal(definition.http.template)
    if refusal is not None:
        violations.add("tool.http.url_template", refusal)
        return None
    return definition


def load_stored(tool_id: str, tool: tool_pb2.Tool) -> ToolDefinition:
    """A stored run-time tool read back; ValueError when it no longer passes the rules."""
    try:
        return ToolDefinition.model_validate(_document(tool_id, tool))
    except ValidationError as error:
        raise ValueError(f"stored tool '{tool_id}' is invalid: {error}") from None


def stored_form(tool_id: str, tool: tool_pb2.Tool) -> tool_pb2.Tool:
    """What Redis keeps: the request's tool with its name and source set. Defaults are
    applied when it is loaded, so a changed default reaches run-time tools too."""
    stored = tool_pb2.Tool()
    stored.CopyFrom(tool)
    stored.name = tool_name(tool_id)
    stored.source = tool_pb2.TOOL_SOURCE_RUNTIME
    return stored
