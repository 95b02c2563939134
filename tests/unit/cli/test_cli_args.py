"""`llmgw chat|models|sessions|usage|keys` command lines and the requests they make."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from services.cli.chat import build_request, load_tools, read_message, session_id
from services.cli.connection import DEFAULT_TARGET, CommandError, Connection
from services.cli.resources import key_name, resource
from services.launcher.cli import _parser


def parse(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(list(argv))


def test_chat_flags_parse_before_and_after_the_message() -> None:
    args = parse("chat", "--json", "hi", "--model", "m", "--session", "s1", "--api-key", "k")
    assert (args.message, args.model, args.session, args.json, args.api_key) == (
        "hi",
        "m",
        "s1",
        True,
        "k",
    )


def test_connection_flags_work_on_either_side_of_an_action() -> None:
    before = Connection.of(parse("sessions", "--json", "--target", "h:1", "list"))
    after = Connection.of(parse("sessions", "list", "--json", "--target", "h:1"))
    assert before == after == Connection(target="h:1", api_key="", as_json=True)


def test_target_and_key_fall_back_to_the_environment_then_the_running_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLMGW_TARGET", raising=False)
    monkeypatch.delenv("LLMGW_API_KEY", raising=False)
    assert Connection.of(parse("models")).target == DEFAULT_TARGET
    assert Connection.of(parse("models"), "127.0.0.1:9999").target == "127.0.0.1:9999"
    monkeypatch.setenv("LLMGW_TARGET", "gw:8080")
    monkeypatch.setenv("LLMGW_API_KEY", "secret")
    connection = Connection.of(parse("models"), "127.0.0.1:9999")
    assert connection.target == "gw:8080"
    assert connection.metadata() == (("authorization", "Bearer secret"),)
    assert Connection.of(parse("models", "--target", "x:1")).target == "x:1"


def test_usage_validates_dates_and_grouping(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("usage", "--start", "2026-01-01", "--group-by", "day")
    assert (args.start, args.end, args.group_by) == ("2026-01-01", None, "day")
    for bad in (["--start", "01/02/2026"], ["--group-by", "week"]):
        with pytest.raises(SystemExit):
            parse("usage", *bad)
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_keys_need_a_consumer_and_ttls_are_durations() -> None:
    assert parse("keys", "create", "--consumer", "c1", "--ttl", "30d").ttl == 30 * 86400
    with pytest.raises(SystemExit):
        parse("keys", "list")
    with pytest.raises(SystemExit):
        parse("keys", "create", "--consumer", "c1", "--ttl", "soon")


def test_resource_names() -> None:
    assert resource("sessions", "abc") == resource("sessions", "sessions/abc") == "sessions/abc"
    with pytest.raises(CommandError):
        resource("sessions", "a/b")
    assert key_name("consumers/c/keys/k") == "consumers/c/keys/k"
    with pytest.raises(CommandError):
        key_name("consumers/c")
    assert session_id("sessions/ok_1") == "ok_1"
    with pytest.raises(CommandError):
        session_id("not ok")


def test_message_comes_from_the_argument_or_stdin() -> None:
    assert read_message("hello", io.StringIO("ignored")) == "hello"
    assert read_message(None, io.StringIO("from stdin\n")) == "from stdin\n"
    assert read_message("-", io.StringIO("dash")) == "dash"
    with pytest.raises(CommandError, match="no message"):
        read_message(None, io.StringIO("  \n"))


def test_request_carries_system_session_tools_and_stream_usage(tmp_path: Path) -> None:
    tools_file = tmp_path / "tools.json"
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}},
    }
    tools_file.write_text(json.dumps({"tools": [tool]}))
    tools = load_tools(tools_file)
    args = parse("chat", "--model", "m", "--system", "Be brief.", "--session", "s1", "x")
    request = build_request(args, "Hi", tools, stream=True)
    assert [(m.role, m.content.string_value) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "Hi"),
    ]
    assert request.gateway.session == "sessions/s1"
    assert request.stream and request.stream_options.include_usage
    assert request.tools[0].function.name == "get_weather"
    assert not build_request(parse("chat", "x"), "Hi", [], stream=False).HasField("gateway")


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{", "not JSON"), ('{"a": 1}', "expected a JSON list"), ('[{"nope": 1}]', "tool 0")],
)
def test_bad_tools_files_are_invalid_argument(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "tools.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=problem) as raised:
        load_tools(path)
    assert raised.value.exit_code == 3
    with pytest.raises(CommandError, match="cannot read"):
        load_tools(tmp_path / "missing.json")
