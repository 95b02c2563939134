"""A registered tool, ready to run: its validated definition with every default applied,
its compiled schema, and the `Tool` message ListTools and GetTool return.

An HTTP tool (file, run time, the HTTP built-ins) is a `ToolEntry`; a tool of a
read-only toolset (services/tool/toolsets) is a `ToolsetEntry`, run in process by
services/tool/executor_toolset.py. Both are looked up, listed and access-checked alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf import duration_pb2, json_format, struct_pb2
from jsonschema import Draft202012Validator

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.backoff import Backoff
from services.common.tool_config import (
    BYTES_PER_TOKEN,
    ToolDefinition,
    ToolsConfig,
    ToolsetsConfig,
    UrlTemplate,
)
from services.tool.names import tool_name
from services.tool.toolsets.base import Toolset, ToolsetTool

# Each backoff is scaled by a random factor in [0.8, 1.2] so callers spread out.
BACKOFF_MULTIPLIER = 2.0
BACKOFF_JITTER = 0.2


def duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


@dataclass(frozen=True)
class ToolEntry:
    tool_id: str
    source: tool_pb2.ToolSource
    public: tool_pb2.Tool
    validator: Draft202012Validator
    method: str
    template: UrlTemplate
    # As configured: `${NAME}` references are expanded at call time.
    headers: Mapping[str, str]
    json_body: bool
    # Of one attempt.
    timeout: float
    max_attempts: int
    backoff: Backoff
    max_output_bytes: int

    @property
    def name(self) -> str:
        return self.public.name

    @property
    def has_url_arguments(self) -> bool:
        return bool(self.template.placeholders)


def build_entry(
    definition: ToolDefinition,
    source: tool_pb2.ToolSource,
    tools: ToolsConfig,
    header_templates: Mapping[str, str] | None = None,
) -> ToolEntry:
    """`header_templates` replace the definition's header values (for the file's tools,
    whose loader expanded `${NAME}` already; the service keeps the references)."""
    retry = definition.retry or tools.retry
    timeout = definition.timeout_seconds or tools.default_timeout_seconds
    max_output = definition.max_output_bytes or tools.max_output_bytes
    headers = dict(definition.http.headers)
    if header_templates is not None and set(header_templates) == set(headers):
        headers = dict(header_templates)
    parameters = struct_pb2.Struct()
    json_format.ParseDict(definition.parameters, parameters)
    public = tool_pb2.Tool(
        name=tool_name(definition.name),
        description=definition.description,
        parameters=parameters,
        http=tool_pb2.HttpExecutor(
            method=definition.http.method,
            url_template=definition.http.url_template,
            headers=headers,
            json_body=definition.http.json_body,
        ),
        timeout=duration(timeout),
        retry_policy=tool_pb2.RetryPolicy(
            max_attempts=retry.max_attempts,
            initial_backoff=duration(retry.initial_backoff_seconds),
            max_backoff=duration(retry.max_backoff_seconds),
        ),
        allowed_consumers=definition.allowed_consumers,
        source=source,
        max_output_bytes=max_output,
    )
    return ToolEntry(
        tool_id=definition.name,
        source=source,
        public=public,
        validator=Draft202012Validator(definition.parameters),
        method=definition.http.method,
        template=definition.http.template,
        headers=headers,
        json_body=definition.http.json_body,
        timeout=timeout,
        max_attempts=retry.max_attempts,
        backoff=Backoff(
            retry.initial_backoff_seconds,
            retry.max_backoff_seconds,
            BACKOFF_MULTIPLIER,
            BACKOFF_JITTER,
        ),
        max_output_bytes=max_output,
    )


@dataclass(frozen=True)
class ToolsetEntry:
    """A toolset's tool: built in, read-only, run in this process."""

    tool_id: str
    source: tool_pb2.ToolSource
    public: tool_pb2.Tool
    validator: Draft202012Validator
    toolset: Toolset
    tool: ToolsetTool
    # Of the whole call.
    timeout: float
    # Of the result as compact JSON.
    max_result_bytes: int

    @property
    def name(self) -> str:
        return self.public.name


Entry = ToolEntry | ToolsetEntry


def build_toolset_entry(
    toolset: Toolset, tool: ToolsetTool, config: ToolsetsConfig
) -> ToolsetEntry:
    parameters = struct_pb2.Struct()
    json_format.ParseDict(tool.parameters, parameters)
    public = tool_pb2.Tool(
        name=tool_name(tool.name),
        description=tool.description,
        parameters=parameters,
        toolset=tool_pb2.ToolsetExecutor(
            toolset=toolset.name,
            read_only=True,
            max_result_tokens=config.max_result_tokens,
        ),
        timeout=duration(config.timeout_seconds),
        # Read-only calls of a backend with its own retries: one attempt.
        retry_policy=tool_pb2.RetryPolicy(max_attempts=1),
        source=tool_pb2.TOOL_SOURCE_BUILTIN,
        max_output_bytes=config.max_result_tokens * BYTES_PER_TOKEN,
    )
    return ToolsetEntry(
        tool_id=tool.name,
        source=tool_pb2.TOOL_SOURCE_BUILTIN,
        public=public,
        validator=Draft202012Validator(tool.parameters),
        toolset=toolset,
        tool=tool,
        timeout=config.timeout_seconds,
        max_result_bytes=config.max_result_tokens * BYTES_PER_TOKEN,
    )
