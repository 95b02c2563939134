"""The `tools:` section of the configuration file: the tool service's registry and limits.

Besides the section's models this module holds the rules every tool obeys wherever it
comes from (this file, a built-in's downstream URL, CreateTool): the URL template
grammar, the host allow-list and what a valid parameters schema is. The tool service
applies them again at call time to the final URL (services/tool/url_guard.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from services.common.breaker_config import BreakerSettings
from services.common.config_base import Strict

TOOL_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH")
# Names the tool service gives its built-in tools (registered when their downstream
# URL is configured); definitions and CreateTool may not take them.
BUILTIN_TOOL_IDS = (
    "search_corpus",
    "get_chunk",
    "review_code",
    "analyze_architecture",
    "generate_documentation",
)
# Read-only toolsets built into the tool service; every tool id `<toolset>_...` is
# reserved for them (definitions and CreateTool may not take one).
TOOLSET_NAMES = ("kubernetes", "prometheus")
# Envoy ends a stream idle for 300 s; a longer tool would never answer.
MAX_TIMEOUT_SECONDS = 300.0
# A result must fit a gRPC message and the public listener's body limit.
MAX_OUTPUT_BYTES_LIMIT = 8 * 1024 * 1024
# Headers the HTTP client derives itself; a tool setting them could smuggle requests.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST_LABELS = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Base URI under which a parameters schema's local references are resolved.
_SCHEMA_URI = "urn:llmgw:tool-parameters"


def reserved_tool_id(tool_id: str) -> str | None:
    """Why `tool_id` is reserved for a built-in tool, or None when it is free."""
    if tool_id in BUILTIN_TOOL_IDS:
        return f"'{tool_id}' is reserved for a built-in tool"
    toolset = next((name for name in TOOLSET_NAMES if tool_id.startswith(f"{name}_")), None)
    if toolset is not None:
        return f"'{tool_id}' is reserved: ids starting with '{toolset}_' name the {toolset} toolset"
    return None


# --- URL templates --------------------------------------------------------------------


@dataclass(frozen=True)
class UrlTemplate:
    """A tool's URL: fixed scheme and authority, `{argument}` placeholders only after it.

    `authority` is `host[:port]` as the template writes it (lower-cased). Placeholders
    cannot be in it, and a filled URL must keep the template's scheme, host and port,
    so no argument can choose where the call goes.
    """

    template: str
    scheme: str
    authority: str
    host: str
    port: int
    placeholders: tuple[str, ...]

    @property
    def downstream(self) -> str:
        """`host:port`: what the circuit breaker and the metrics key by."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_url_template(template: str) -> UrlTemplate:
    """The template's parts; ValueError saying what is wrong otherwise."""
    scheme, sep, remainder = template.partition("://")
    if not sep or scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in template):
        raise ValueError("must not contain whitespace or control characters")
    if "#" in remainder:
        raise ValueError("must not have a fragment (#)")
    cut = min((i for i in (remainder.find("/"), remainder.find("?")) if i >= 0), default=-1)
    authority = remainder if cut < 0 else remainder[:cut]
    rest = "" if cut < 0 else remainder[cut:]
    if "{" in authority or "}" in authority:
        raise ValueError(
            "the host must not contain a {placeholder}: an argument may never choose the host"
        )
    if "@" in authority or "\\" in authority:
        raise ValueError("must not contain user information (@) before the host")
    try:
        parts = urlsplit(f"//{authority}")
        port = parts.port
    except ValueError as error:
        raise ValueError(f"has an invalid host or port: {error}") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("must name a host")
    literal = _PLACEHOLDER.sub("", rest)
    if "{" in literal or "}" in literal:
        raise ValueError("placeholders are {name}, the name a letter or _ then letters, digits, _")
    path = rest.partition("?")[0]
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise ValueError("must not contain '.' or '..' path segments")
    scheme = scheme.lower()
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    return UrlTemplate(
        template=template,
        scheme=scheme,
        authority=authority.lower(),
        host=host.lower(),
        port=port,
        placeholders=tuple(dict.fromkeys(_PLACEHOLDER.findall(rest))),
    )


# --- Host allow-list ------------------------------------------------------------------


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostRule:
    """One allow-list entry: `host`, `host:port`, `*.suffix` (optionally `:port`), or an
    IP literal (IPv6 in brackets when a port is given)."""

    host: str
    wildcard: bool
    port: int | None

    def allows(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            # A pattern names DNS names; an IP literal is allowed only by its own entry.
            return not _is_ip(host) and host.endswith("." + self.host)
        return host == self.host


def parse_host_rule(entry: str) -> HostRule:
    text = entry.strip().lower()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"'{entry}' is not a host name")
    port: int | None = None
    if text.startswith("["):
        host, sep, after = text[1:].partition("]")
        if not sep or (after and not after.startswith(":")):
            raise ValueError(f"'{entry}': an IPv6 literal is written [address] or [address]:port")
        port_text = after[1:] if after else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"'{entry}': the port must be a number from 1 to 65535")
        port = int(port_text)
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host.rstrip(".")
    if _is_ip(name):
        if wildcard:
            raise ValueError(f"'{entry}': a wildcard applies to DNS names, not IP addresses")
    elif not _HOST_LABELS.match(name):
        raise ValueError(f"'{entry}' is not a host name, host:port, *.suffix pattern or IP address")
    return HostRule(host=name, wildcard=wildcard, port=port)


class HostAllowList:
    """The hosts tools may call; empty allows none."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = tuple(entries)
        self._rules = tuple(parse_host_rule(entry) for entry in entries)

    def allows(self, host: str, port: int) -> bool:
        name = host.lower().rstrip(".")
        return any(rule.allows(name, port) for rule in self._rules)

    def refusal(self, template: UrlTemplate) -> str | None:
        """Why the template's host may not be called, or None when it may."""
        if self.allows(template.host, template.port):
            return None
        listed = ", ".join(self.entries) or "none"
        return f"host '{template.authority}' is not in tools.allowed_hosts (allowed: {listed})"


# --- Parameters schemas ---------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def parameters_problem(schema: Any) -> str | None:
    """Why `schema` cannot be a tool's parameters schema, or None.

    It must be a valid JSON Schema (draft 2020-12) of `type: object`. References must
    stay inside the schema (`#...`): the service never fetches a schema from elsewhere.
    """
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    if schema.get("type") != "object":
        return "must be a JSON Schema with type: object (tools take an arguments object)"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(p) for p in error.absolute_path)
        return f"is not a valid JSON Schema{f' at {where}' if where else ''}: {error.message}"
    refs = list(_refs(schema))
    remote = next((ref for ref in refs if not ref.startswith("#")), None)
    if remote is not None:
        return f"$ref '{remote}' leaves the schema; only local references (#...) are allowed"
    resolver = (
        Registry()
        .with_resource(_SCHEMA_URI, DRAFT202012.create_resource(schema))
        .resolver(_SCHEMA_URI)
    )
    for ref in refs:
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return f"$ref '{ref}' points to nothing in the schema"
    return None


def required_properties(schema: dict[str, Any]) -> set[str]:
    required = schema.get("required", [])
    return {name for name in required if isinstance(name, str)}


# --- Section models -------------------------------------------------------------------


class ToolRetryConfig(Strict):
    """Retries of transient failures (connection errors, timeouts of one attempt,
    HTTP 408/429/500/502/503/504), with exponential jittered backoff."""

    # Attempts in all, the first included (1: no retry).
    max_attempts: int = Field(default=3, ge=1, le=10)
    initial_backoff_seconds: float = Field(default=0.1, ge=0, le=60)
    max_backoff_seconds: float = Field(default=2.0, ge=0, le=60)

    @model_validator(mode="after")
    def _order(self) -> ToolRetryConfig:
        if self.initial_backoff_seconds > self.max_backoff_seconds:
            raise ValueError(
                f"initial_backoff_seconds: {self.initial_backoff_seconds} exceeds "
                f"max_backoff_seconds ({self.max_backoff_seconds})"
            )
        return self


class ToolBreakerConfig(BreakerSettings):
    """A circuit breaker per downstream `host:port`, kept by each tool replica."""


class HttpExecutorConfig(Strict):
    """A downstream HTTP call: the arguments fill the URL template's placeholders
    (URL-encoded) and, with `json_body`, are sent as the JSON body."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url_template: str
    # Values may name environment variables as `${NAME}`, expanded at call time.
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: bool = False

    @field_validator("url_template")
    @classmethod
    def _template(cls, value: str) -> str:
        parse_url_template(value)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                problems.append(f"{name}: is not a valid header name")
            elif name.lower() in RESERVED_HEADERS:
                problems.append(f"{name}: is set by the HTTP client and cannot be configured")
            elif any(c in text for c in "\r\n\0"):
                problems.append(f"{name}: the value must not contain line breaks")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _body(self) -> HttpExecutorConfig:
        if self.json_body and self.method not in BODY_METHODS:
            raise ValueError(f"json_body: {self.method} sends no body; use POST, PUT or PATCH")
        return self

    @property
    def template(self) -> UrlTemplate:
        return parse_url_template(self.url_template)


class ToolDefinition(Strict):
    """One tool of the file (CreateTool registers the same shape at run time)."""

    name: str = Field(pattern=TOOL_ID_PATTERN)
    description: str = Field(min_length=1)
    # JSON Schema (draft 2020-12) of the arguments object.
    parameters: dict[str, Any]
    http: HttpExecutorConfig
    # Per attempt; unset: tools.default_timeout_seconds.
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS)
    # Unset: tools.retry. A tool's policy replaces the default as a whole.
    retry: ToolRetryConfig | None = None
    # Consumers who may use the tool (`consumers/alice` or `alice`), on top of their
    # groups' `allowed_tools`; empty: every consumer the groups allow.
    allowed_consumers: list[str] = Field(default_factory=list)
    # Unset: tools.max_output_bytes.
    max_output_bytes: int | None = Field(default=None, gt=0, le=MAX_OUTPUT_BYTES_LIMIT)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = parameters_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("allowed_consumers")
    @classmethod
    def _consumers(cls, value: list[str]) -> list[str]:
        empty = [str(i) for i, consumer in enumerate(value) if not consumer.strip()]
        if empty:
            raise ValueError("; ".join(f"{i}: must not be empty" for i in empty))
        return value

    @model_validator(mode="after")
    def _placeholders(self) -> ToolDefinition:
        required = required_properties(self.parameters)
        missing = [p for p in self.http.template.placeholders if p not in required]
        if missing:
            names = ", ".join(f"{{{p}}}" for p in missing)
            raise ValueError(
                f"http.url_template: placeholder {names} must name a required property of "
                "parameters"
            )
        return self


class DownstreamConfig(Strict):
    """Base URLs of the downstream services behind the built-in tools; a built-in tool
    is registered only when its service's URL is set."""

    # search_corpus (POST /search) and get_chunk (GET /chunks/{chunk_id}).
    search_url: str | None = None
    # review_code, analyze_architecture, generate_documentation.
    agents_url: str | None = None

    @field_validator("search_url", "agents_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        template = parse_url_template(value)
        if template.placeholders or "?" in value or "{" in value:
            raise ValueError("must be a base URL without placeholders or a query")
        return value.rstrip("/")

    def templates(self) -> dict[str, UrlTemplate]:
        urls = {"search_url": self.search_url, "agents_url": self.agents_url}
        return {key: parse_url_template(url) for key, url in urls.items() if url is not None}


MAX_CALLS_PER_TURN_LIMIT = 256
# A toolset result is capped in tokens of about this many bytes each.
BYTES_PER_TOKEN = 4


class ToolsetSwitch(Strict):
    """Whether a toolset runs: `auto` when its environment is set (KUBECONFIG or
    in-cluster credentials; PROMETHEUS_URL), `on` always (a startup error naming the
    variable when it is missing), `off` never."""

    enabled: Literal["auto", "on", "off"] = "auto"

    @field_validator("enabled", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: object) -> object:
        # YAML 1.1 reads a bare on/off as a boolean.
        if isinstance(value, bool):
            return "on" if value else "off"
        return value


class ToolsetsConfig(Strict):
    """The read-only toolsets built into the tool service (services/tool/toolsets)."""

    # A result larger than this many tokens (about 4 bytes each, as compact JSON) is cut:
    # trailing list items dropped, `truncated` and a note saying how to narrow the call.
    max_result_tokens: int = Field(default=4000, ge=100, le=MAX_OUTPUT_BYTES_LIMIT // 4)
    # Of one call, every request to the backend included.
    timeout_seconds: float = Field(default=20.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    kubernetes: ToolsetSwitch = Field(default_factory=ToolsetSwitch)
    prometheus: ToolsetSwitch = Field(default_factory=ToolsetSwitch)

    def switch(self, toolset: str) -> ToolsetSwitch:
        value = getattr(self, toolset)
        assert isinstance(value, ToolsetSwitch), toolset
        return value


class ToolsConfig(Strict):
    """The tool service's configuration."""

    # Hosts tools may call: `host`, `host:port`, `*.suffix`, IP literals. Empty: none.
    allowed_hosts: list[str] = Field(default_factory=list)
    default_timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    max_output_bytes: int = Field(default=65536, gt=0, le=MAX_OUTPUT_BYTES_LIMIT)
    retry: ToolRetryConfig = Field(default_factory=ToolRetryConfig)
    breaker: ToolBreakerConfig = Field(default_factory=ToolBreakerConfig)
    downstream: DownstreamConfig = Field(default_factory=DownstreamConfig)
    definitions: list[ToolDefinition] = Field(default_factory=list)
    # The router's gateway-side tool loop runs at most this many calls of one model turn;
    # the model gets a refusal for each call beyond it (fan-out is bounded per turn).
    max_calls_per_turn: int = Field(default=16, ge=1, le=MAX_CALLS_PER_TURN_LIMIT)
    toolsets: ToolsetsConfig = Field(default_factory=ToolsetsConfig)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        problems = []
        for i, entry in enumerate(value):
            try:
                parse_host_rule(entry)
            except ValueError as error:
                problems.append(f"{i}: {error}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @property
    def allow_list(self) -> HostAllowList:
        return HostAllowList(self.allowed_hosts)

    @model_validator(mode="after")
    def _references(self) -> ToolsConfig:
        problems: list[str] = []
        allow = self.allow_list
        for key, template in self.downstream.templates().items():
            refusal = allow.refusal(template)
            if refusal is not None:
                problems.append(f"downstream.{key}: {refusal}")
        seen: dict[str, int] = {}
        for i, definition in enumerate(self.definitions):
            reserved = reserved_tool_id(definition.name)
            if definition.name in BUILTIN_TOOL_IDS:
                problems.append(f"definitions.{i}.name: '{definition.name}' is a built-in tool")
            elif reserved is not None:
                problems.append(f"definitions.{i}.name: {reserved}")
            elif definition.name in seen:
                problems.append(
                    f"definitions.{i}.name: '{definition.name}' repeats "
                    f"definitions.{seen[definition.name]}"
                )
            seen.setdefault(definition.name, i)
            refusal = allow.refusal(definition.http.template)
            if refusal is not None:
                problems.append(f"definitions.{i}.http.url_template: {refusal}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
