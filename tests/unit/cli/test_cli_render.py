"""Tables, error lines, exit codes and the progress indicator of the client commands."""

from __future__ import annotations

import io

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.router.v1 import admin_service_pb2, chat_pb2, router_service_pb2
from llmgw.session.v1 import session_service_pb2
from services.cli import tables
from services.cli.chat import ToolCalls
from services.cli.connection import (
    EXIT_INTERRUPTED,
    CommandError,
    Progress,
    describe,
    run_reporting,
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_table_aligns_columns_and_cuts_long_cells() -> None:
    text = tables.table(("A", "BEE"), [("x", "long " * 20), ("yyyy", 1)])
    lines = text.splitlines()
    assert lines[0] == "A     BEE"
    assert lines[2] == "yyyy  1"
    assert lines[1].endswith("…") and len(lines[1]) == 6 + tables.MAX_CELL


def test_models_table() -> None:
    reply = router_service_pb2.ListModelsResponse(
        data=[router_service_pb2.Model(id="m1", owned_by="p", context_window=8192, aliases=["a"])]
    )
    assert tables.models_table(reply).splitlines()[1].split() == ["m1", "p", "8192", "a"]


def test_session_detail_shows_messages_by_role() -> None:
    session = session_service_pb2.Session(name="sessions/s", message_count=2)
    for role, text in ((common_pb2.ROLE_USER, "hi"), (common_pb2.ROLE_ASSISTANT, "hello")):
        stored = session.messages.add()
        stored.message.role = role
        stored.message.content.add(text=text)
    text = tables.session_detail(session)
    assert "session:  sessions/s" in text
    assert text.endswith("user: hi\nassistant: hello\n")


def test_usage_table_groups_and_totals() -> None:
    totals = admin_service_pb2.UsageTotals(requests=3, input_tokens=10, cost=0.5, currency="USD")
    reply = admin_service_pb2.GetUsageResponse(
        totals=totals,
        by_model=[admin_service_pb2.ModelUsage(model="m1", totals=totals)],
        daily=[admin_service_pb2.DailyUsage(date="2026-12-05", totals=totals)],
        spent_today=0.5,
    )
    by_model = tables.usage_table(reply, "model").splitlines()
    assert by_model[0].split()[0] == "MODEL"
    assert by_model[1].split()[:3] == ["m1", "3", "10"]
    assert by_model[2].split()[0] == "TOTAL"
    assert by_model[1].endswith("0.5000 USD")
    assert tables.usage_table(reply, "day").splitlines()[1].startswith("2026-12-05")


def test_keys_table_states() -> None:
    revoked = identity_pb2.ApiKey(
        name="consumers/c/keys/b", revoke_time=timestamp_pb2.Timestamp(seconds=1)
    )
    reply = identity_service_pb2.ListApiKeysResponse(
        api_keys=[
            identity_pb2.ApiKey(name="consumers/c/keys/a", prefix="llm_a", active=True),
            revoked,
        ]
    )
    rows = [line.split() for line in tables.keys_table(reply).splitlines()[1:]]
    assert rows[0][:3] == ["consumers/c/keys/a", "llm_a", "active"]
    assert rows[1][:2] == ["consumers/c/keys/b", "revoked"]  # (an empty prefix)


def test_describe_names_the_code_reason_and_retry() -> None:
    status = status_pb2.Status(code=8, message="slow down")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="RATE_LIMITED"))
    status.details.add().Pack(
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2))
    )
    assert describe(status) == "RESOURCE_EXHAUSTED: slow down [RATE_LIMITED] (retry after 2s)"


class FailedCall(grpc.RpcError, grpc.Call):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self._code, self._message = code, message

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def _raise(error: BaseException) -> int:
    raise error


def test_exit_code_is_the_grpc_status_and_the_message_one_line() -> None:
    err = io.StringIO()
    code = run_reporting(
        lambda: _raise(FailedCall(grpc.StatusCode.NOT_FOUND, "model 'x' not found")), err
    )
    assert code == 5
    assert err.getvalue() == "llmgw: NOT_FOUND: model 'x' not found\n"
    assert run_reporting(lambda: _raise(CommandError("bad file")), io.StringIO()) == 3
    assert run_reporting(lambda: _raise(KeyboardInterrupt()), io.StringIO()) == EXIT_INTERRUPTED
    assert run_reporting(lambda: 0, io.StringIO()) == 0


def test_progress_only_on_a_terminal_and_erased_when_done() -> None:
    piped = io.StringIO()
    Progress("waiting", piped, interval=0.01).start().stop()
    assert piped.getvalue() == ""
    tty = Tty()
    indicator = Progress("waiting", tty, interval=0.01).start()
    assert indicator.shown.wait(5)
    indicator.stop()
    shown = tty.getvalue()
    assert "waiting" in shown
    assert shown.endswith("\r\033[K")


def test_streamed_tool_call_fragments_are_joined_per_call() -> None:
    calls = ToolCalls()
    for index, name, arguments in ((0, "a", ""), (1, "b", "{}"), (0, "", '{"x"'), (0, "", ": 1}")):
        fragment = chat_pb2.ChatToolCall(index=index)
        fragment.function.arguments = arguments
        if name:
            fragment.function.name = name
        calls.add(fragment)
    assert calls.lines() == ['-> tool call a({"x": 1})', "-> tool call b({})"]
