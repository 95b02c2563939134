"""`llmgw chat`: one chat turn through the router's StreamChatCompletion, tokens printed
as they arrive.

The message comes from the argument, or from stdin when there is none or it is `-`
(`echo hi | llmgw chat`). `--session NAME` makes it a turn of a stored conversation: the session is
created on first use and the gateway adds its history and stores the turn. `--tools FILE`
offers OpenAI function tools (a JSON list, or `{"tools": [...]}`); calls the model makes
are printed, not run. `--json` prints one JSON object per chunk (or, with `--no-stream`,
the final response).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2

from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2, session_service_pb2_grpc
from services.cli.connection import CALL_TIMEOUT, CommandError, Connection, describe, progress
from services.common.session_names import SESSION_ID_PATTERN

# Largest message read from stdin or a tools file (the gateway's own request bound).
MAX_INPUT_BYTES = 8 * 1024 * 1024


def read_message(message: str | None, stdin: TextIO) -> str:
    """The user's message: the argument, or all of stdin for none or `-`."""
    text = stdin.read(MAX_INPUT_BYTES + 1) if message in (None, "-") else message
    if len(text) > MAX_INPUT_BYTES:
        raise CommandError(f"the message is over {MAX_INPUT_BYTES} bytes")
    if not text.strip():
        raise CommandError("no message: give one as an argument or on stdin")
    return text


def session_id(name: str) -> str:
    """The id of `NAME` or `sessions/NAME`, checked as the session service checks it."""
    ident = name.removeprefix("sessions/")
    if not re.fullmatch(SESSION_ID_PATTERN.strip("^$"), ident):
        raise CommandError(f"'{name}': a session id is 1-64 letters, digits, '_' or '-'")
    return ident


def load_tools(path: Path) -> list[Any]:
    """OpenAI function tools from a JSON file, as ChatTool messages."""
    try:
        document = json.loads(path.read_bytes()[: MAX_INPUT_BYTES + 1])
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise CommandError(f"{path} is not JSON: {error}") from None
    if isinstance(document, dict) and "tools" in document:
        document = document["tools"]
    if not isinstance(document, list):
        raise CommandError(f'{path}: expected a JSON list of tools or {{"tools": [...]}}')
    tools = []
    for index, tool in enumerate(document):
        try:
            tools.append(json_format.ParseDict(tool, chat_pb2.ChatTool()))
        except (json_format.ParseError, TypeError, AttributeError) as error:
            raise CommandError(f"{path}: tool {index}: {error}") from None
    return tools


def build_request(args: argparse.Namespace, text: str, tools: list[Any], *, stream: bool) -> Any:
    """The CreateChatCompletionRequest of one turn."""
    messages = []
    if args.system:
        messages.append(
            chat_pb2.ChatMessage(role="system", content=struct_pb2.Value(string_value=args.system))
        )
    messages.append(chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text)))
    request = chat_pb2.CreateChatCompletionRequest(
        model=args.model, messages=messages, tools=tools, stream=stream
    )
    if stream:
        request.stream_options.include_usage = True
    if args.session:
        request.gateway.session = f"sessions/{session_id(args.session)}"
    return request


def as_json(message: Any) -> str:
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))


def tool_call_line(call: Any) -> str:
    return f"-> tool call {call.function.name}({call.function.arguments})"


class ToolCalls:
    """Streamed tool calls put back together: the name comes in the first fragment of
    each call (by index), the arguments in pieces after it."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str, list[str]]] = {}

    def add(self, call: Any) -> None:
        index = call.index if call.HasField("index") else len(self._calls)
        name, pieces = self._calls.setdefault(index, (call.function.name, []))
        if call.function.name and not name:
            self._calls[index] = (call.function.name, pieces)
        pieces.append(call.function.arguments)

    def lines(self) -> list[str]:
        return [
            f"-> tool call {name}({''.join(pieces)})"
            for _, (name, pieces) in sorted(self._calls.items())
        ]


class Chat:
    """One `llmgw chat` invocation: whom it asks and where it writes."""

    def __init__(self, connection: Connection, out: TextIO, err: TextIO) -> None:
        self._connection = connection
        self._out = out
        self._err = err
        self._tool_calls = ToolCalls()

    def run(self, args: argparse.Namespace, stdin: TextIO) -> int:
        text = read_message(args.message, stdin)
        tools = load_tools(Path(args.tools)) if args.tools else []
        request = build_request(args, text, tools, stream=not args.no_stream)
        with self._connection.channel() as channel:
            if args.session:
                self._ensure_session(channel, request.gateway.session)
            stub = router_service_pb2_grpc.RouterServiceStub(channel)
            if args.no_stream:
                return self._unary(stub, request)
            return self._stream(stub, request)

    def _ensure_session(self, channel: grpc.Channel, name: str) -> None:
        """Creates the session on first use; an existing one is used as it is."""
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        request = session_service_pb2.CreateSessionRequest(
            session=session_service_pb2.Session(), session_id=name.removeprefix("sessions/")
        )
        try:
            stub.CreateSession(request, timeout=CALL_TIMEOUT, metadata=self._connection.metadata())
        except grpc.RpcError as error:
            if not (
                isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.ALREADY_EXISTS
            ):
                raise

    def _unary(self, stub: Any, request: Any) -> int:
        with progress("waiting for the answer", self._err):
            reply = stub.CreateChatCompletion(request, metadata=self._connection.metadata())
        if self._connection.as_json:
            self._out.write(as_json(reply) + "\n")
            return 0
        for choice in reply.choices:
            self._out.write(choice.message.content.rstrip("\n") + "\n")
            for call in choice.message.tool_calls:
                self._out.write(tool_call_line(call) + "\n")
        return 0

    def _stream(self, stub: Any, request: Any) -> int:
        call = stub.StreamChatCompletion(request, metadata=self._connection.metadata())
        wrote_text = False
        self._tool_calls = ToolCalls()
        try:
            with progress("waiting for the first token", self._err) as indicator:
                for chunk in call:
                    indicator.stop()
                    if chunk.HasField("error"):
                        return self._stream_failed(chunk.error, wrote_text)
                    if self._connection.as_json:
                        self._out.write(as_json(chunk) + "\n")
                        self._out.flush()
                        continue
                    wrote_text = self._render_chunk(chunk) or wrote_text
        except KeyboardInterrupt:
            call.cancel()
            raise
        calls = self._tool_calls.lines()
        if wrote_text or calls:
            self._out.write("\n".join(([""] if wrote_text else []) + calls) + "\n")
            self._out.flush()
        return 0

    def _render_chunk(self, chunk: Any) -> bool:
        """Writes a chunk's text (and tool calls, tool progress) as it comes; True when
        it wrote text that needs a final newline."""
        wrote = False
        if chunk.HasField("tool_progress"):
            step = chunk.tool_progress
            self._err.write(
                f"[tool {step.tool_name}: {step.state}{' ' + step.error if step.error else ''}]\n"
            )
        for choice in chunk.choices:
            if choice.delta.content:
                self._out.write(choice.delta.content)
                self._out.flush()
                wrote = True
            for call in choice.delta.tool_calls:
                self._tool_calls.add(call)
        return wrote

    def _stream_failed(self, status: status_pb2.Status, wrote_text: bool) -> int:
        """A stream that failed after it started: the status travels in the last chunk."""
        if wrote_text:
            self._out.write("\n")
            self._out.flush()
        if self._connection.as_json:
            self._out.write(json.dumps({"error": json_format.MessageToDict(status)}) + "\n")
        self._err.write(f"llmgw: {describe(status)}\n")
        return status.code or grpc.StatusCode.UNKNOWN.value[0]
