"""OpenAI Responses request (`POST /v1/responses`) -> the router's chat request.

The stateless subset people use: `input` as a string or items (messages,
`function_call`, `function_call_output`; `reasoning` items are dropped), `instructions`,
function tools, `tool_choice`, sampling and `text.format`. Hosted tools (web search,
file search, code interpreter...) run on OpenAI's side and have no equivalent here: they
are refused by name, as is anything else that would change the answer and cannot be
honoured. Fields the SDKs send with neutral values (`include`, `truncation`,
`reasoning`, `prompt_cache_key`...) are accepted. Type errors name the Responses field
(`input[2].content[0].text`, see `responses_input`); the chat request's own checks
follow in admission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2

from llmgw.router.v1 import chat_pb2
from services.common.errors import InvalidArgument
from services.common.status_bounds import clip_chars
from services.common.text_checks import shown
from services.router.compat.responses_input import Reader, input_messages, json_value, string

TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})
TEXT_FORMATS = frozenset({"text", "json_object", "json_schema"})
# The ids the gateway gives a response (`resp_` and 32 hex digits).
RESPONSE_ID = re.compile(r"^resp_[0-9a-f]{32}$")
# An unknown parameter's name is quoted in the error up to this length.
MAX_FIELD_NAME_CHARS = 64

# Accepted and ignored: they tune OpenAI's own service (caching, tiers, what extra
# output to include, tracing ids) without changing the answer the gateway gives.
NEUTRAL_FIELDS = frozenset(
    {
        "include",
        "truncation",
        "reasoning",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "service_tier",
        "safety_identifier",
        "stream_options",
        "max_tool_calls",
        "context_management",
        "moderation",
        "image",
        "access_programs",
        "background_options",
    }
)
# Accepted only when absent, null or false: otherwise they ask for what the gateway
# cannot do (server-side conversations, prompt templates, background runs).
UNSUPPORTED_UNLESS_EMPTY = {
    "conversation": "server-side conversations are not supported; use previous_response_id",
    "prompt": "stored prompt templates are not supported; send instructions and input",
    "background": "background responses are not supported",
}
HANDLED_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "top_logprobs",
        "text",
        "metadata",
        "user",
        "store",
        "stream",
        "previous_response_id",
        "gateway",
    }
)


@dataclass
class ResponsesRequest:
    """The translated request and what the `response` object echoes back."""

    chat: chat_pb2.CreateChatCompletionRequest
    # The messages `input` contributes (without instructions and stored history).
    input_messages: list[chat_pb2.ChatMessage]
    stream: bool
    # `store` as sent (None: not sent, which OpenAI reads as true).
    store: bool | None
    previous_response_id: str | None
    instructions: str | None
    # The request fields the `response` object repeats (tools, tool_choice, text...).
    echo: dict[str, Any] = field(default_factory=dict)


def _tools(reader: Reader, value: object) -> tuple[list[chat_pb2.ChatTool], list[dict[str, Any]]]:
    """Function tools, and their echo; a hosted tool is refused by name."""
    tools: list[chat_pb2.ChatTool] = []
    echo: list[dict[str, Any]] = []
    for i, tool in enumerate(reader.typed(value, "tools", "array") or ()):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            reader.problems.add(path, "must be an object")
            continue
        tool_type = tool.get("type")
        if tool_type != "function":
            reader.problems.add(
                f"{path}.type",
                f"hosted tool {shown(str(tool_type))} is not supported by this gateway; "
                "use function tools",
            )
            continue
        name = string(reader, tool, "name", path)
        description = reader.typed(tool.get("description"), f"{path}.description", "string")
        parameters = reader.typed(tool.get("parameters"), f"{path}.parameters", "object")
        strict = reader.typed(tool.get("strict"), f"{path}.strict", "boolean")
        definition = chat_pb2.ChatFunctionDefinition(name=name, description=description or "")
        if parameters is not None:
            definition.parameters.update(parameters)
        if strict is not None:
            definition.strict = strict
        tools.append(chat_pb2.ChatTool(type="function", function=definition))
        echo.append(
            {
                "type": "function",
                "name": name,
                "description": description,
                "parameters": parameters,
                "strict": strict,
            }
        )
    return tools, echo


def _tool_choice(reader: Reader, value: object) -> tuple[struct_pb2.Value | None, object]:
    if value is None:
        return None, "auto"
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            reader.problems.add("tool_choice", "must be auto, none, required or a function")
            return None, value
        return json_value(value), value
    if isinstance(value, dict) and value.get("type") == "function":
        name = string(reader, value, "name", "tool_choice")
        chosen = {"type": "function", "function": {"name": name}}
        return json_value(chosen), {"type": "function", "name": name}
    kind = value.get("type") if isinstance(value, dict) else None
    reader.problems.add(
        "tool_choice",
        f"tool choice {shown(str(kind))} is not supported by this gateway"
        if kind
        else "must be auto, none, required or {type: function, name}",
    )
    return None, value


def _text_format(
    reader: Reader, value: object
) -> tuple[chat_pb2.ChatResponseFormat | None, dict[str, Any]]:
    """`text.format` -> response_format; the echo keeps OpenAI's shape."""
    text = reader.typed(value, "text", "object") or {}
    verbosity = text.get("verbosity")
    if verbosity not in (None, "medium"):
        reader.problems.add("text.verbosity", "only medium (the default) is supported")
    fmt = reader.typed(text.get("format"), "text.format", "object") or {"type": "text"}
    kind = fmt.get("type")
    echo: dict[str, Any] = {"format": {"type": kind}, "verbosity": verbosity or "medium"}
    if kind not in TEXT_FORMATS:
        reader.problems.add("text.format.type", "must be text, json_object or json_schema")
        return None, echo
    out = chat_pb2.ChatResponseFormat(type=kind)
    if kind == "json_schema":
        name = string(reader, fmt, "name", "text.format")
        schema = reader.typed(fmt.get("schema"), "text.format.schema", "object", nullable=False)
        strict = reader.typed(fmt.get("strict"), "text.format.strict", "boolean")
        description = reader.typed(fmt.get("description"), "text.format.description", "string")
        out.json_schema.name = name
        out.json_schema.description = description or ""
        if schema is not None:
            out.json_schema.schema.update(schema)
        if strict is not None:
            out.json_schema.strict = strict
        echo["format"] = {
            "type": kind,
            "name": name,
            "schema": schema,
            "strict": strict,
            "description": description,
        }
    return out, echo


def _gateway(reader: Reader, value: object, chat: chat_pb2.CreateChatCompletionRequest) -> None:
    """The gateway's own options (`extra_body={"gateway": {...}}`), as on chat."""
    if value is None:
        return
    try:
        json_format.ParseDict(value, chat.gateway)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        reader.problems.add("gateway", f"invalid gateway options: {str(exc)[:200]}")


# The JSON types of the neutral fields that are echoed back or commonly sent.
NEUTRAL_TYPES = {
    "include": "array",
    "reasoning": "object",
    "prompt_cache_key": "string",
    "service_tier": "string",
    "safety_identifier": "string",
    "stream_options": "object",
}
TRUNCATION = frozenset({"auto", "disabled"})


def _refuse_unsupported(reader: Reader, body: dict[str, Any]) -> None:
    for key, value in body.items():
        if key == "truncation":
            if value is not None and value not in TRUNCATION:
                reader.problems.add(key, "must be auto or disabled")
            continue
        if key in NEUTRAL_TYPES:
            reader.typed(value, key, NEUTRAL_TYPES[key])
            continue
        if key in HANDLED_FIELDS or key in NEUTRAL_FIELDS:
            continue
        if key in UNSUPPORTED_UNLESS_EMPTY:
            if value not in (None, False, {}, ""):
                reader.problems.add(key, UNSUPPORTED_UNLESS_EMPTY[key])
            continue
        reader.problems.add(clip_chars(key, MAX_FIELD_NAME_CHARS), "unknown parameter")


def to_chat_request(body: dict[str, Any]) -> ResponsesRequest:
    """The translated request; INVALID_ARGUMENT naming every Responses field in error."""
    reader = Reader()
    _refuse_unsupported(reader, body)
    chat = chat_pb2.CreateChatCompletionRequest(
        model=reader.typed(body.get("model"), "model", "string") or ""
    )
    instructions = reader.typed(body.get("instructions"), "instructions", "string")
    messages = input_messages(reader, body.get("input"))
    tools, tools_echo = _tools(reader, body.get("tools"))
    chat.tools.extend(tools)
    choice, choice_echo = _tool_choice(reader, body.get("tool_choice"))
    if choice is not None:
        chat.tool_choice.CopyFrom(choice)
    parallel = reader.typed(body.get("parallel_tool_calls"), "parallel_tool_calls", "boolean")
    if parallel is not None:
        chat.parallel_tool_calls = parallel
    max_output = reader.integer(body.get("max_output_tokens"), "max_output_tokens")
    if max_output is not None:
        chat.max_completion_tokens = max_output
    temperature = reader.typed(body.get("temperature"), "temperature", "number")
    if temperature is not None:
        chat.temperature = float(temperature)
    top_p = reader.typed(body.get("top_p"), "top_p", "number")
    if top_p is not None:
        chat.top_p = float(top_p)
    if reader.integer(body.get("top_logprobs"), "top_logprobs"):
        reader.problems.add("top_logprobs", "log probabilities are not supported")
    response_format, text_echo = _text_format(reader, body.get("text"))
    if response_format is not None and response_format.type != "text":
        chat.response_format.CopyFrom(response_format)
    metadata = reader.typed(body.get("metadata"), "metadata", "object") or {}
    for key, item in metadata.items():
        if isinstance(item, str):
            chat.metadata[key] = item
        else:
            reader.problems.add(f"metadata.{key[:64]}", "must be a string")
    chat.user = reader.typed(body.get("user"), "user", "string") or ""
    stream = reader.typed(body.get("stream"), "stream", "boolean") or False
    store = reader.typed(body.get("store"), "store", "boolean")
    previous = reader.typed(body.get("previous_response_id"), "previous_response_id", "string")
    _gateway(reader, body.get("gateway"), chat)
    reader.problems.raise_if_any()
    if not messages:
        raise InvalidArgument.for_field("input", "required: at least one input item")
    return ResponsesRequest(
        chat=chat,
        input_messages=messages,
        stream=stream,
        store=store,
        previous_response_id=previous,
        instructions=instructions,
        echo={
            "instructions": instructions,
            "metadata": metadata,
            "parallel_tool_calls": True if parallel is None else parallel,
            "tool_choice": choice_echo,
            "tools": tools_echo,
            "temperature": temperature,
            "top_p": top_p,
            "max_output_tokens": max_output,
            "text": text_echo,
            "previous_response_id": previous,
            "store": store is not False,
            "user": chat.user or None,
            "truncation": body.get("truncation") or "disabled",
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "top_logprobs": 0,
            "service_tier": "default",
            "background": False,
        },
    )


def with_history(
    request: ResponsesRequest, history: list[chat_pb2.ChatMessage]
) -> chat_pb2.CreateChatCompletionRequest:
    """The chat request to run: instructions first (they apply to this response only,
    as in OpenAI's API), then the stored conversation, then this request's input."""
    chat = chat_pb2.CreateChatCompletionRequest()
    chat.CopyFrom(request.chat)
    del chat.messages[:]
    if request.instructions:
        chat.messages.append(
            chat_pb2.ChatMessage(role="system", content=json_value(request.instructions))
        )
    chat.messages.extend(history)
    chat.messages.extend(request.input_messages)
    return chat
