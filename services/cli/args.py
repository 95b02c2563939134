"""The command lines of `llmgw chat|models|sessions|usage|keys`, and their dispatch.

  llmgw chat [MESSAGE|-] [--model M] [--session NAME] [--tools FILE] [--system TEXT]
             [--no-stream]
  llmgw models
  llmgw sessions list [--page-size N] [--page-token T] | get NAME | delete NAME
  llmgw usage [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--group-by model|day]
              [--subject consumers/C|groups/G] [--model M]
  llmgw keys list --consumer C | create --consumer C [--ttl 30d] | revoke NAME

Each takes `--target`, `--api-key`, `--json` (services/cli/connection.py, which also
documents the exit status).
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from typing import Any, TextIO

from services.cli.chat import Chat
from services.cli.connection import Connection, add_connection_flags, run_reporting
from services.cli.resources import Resources

COMMANDS = ("chat", "models", "sessions", "usage", "keys")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def day(text: str) -> str:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': use a date YYYY-MM-DD") from None
    return text


def seconds(text: str) -> int:
    """`90s`, `15m`, `12h`, `30d` as seconds (more than zero)."""
    match = _DURATION.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"'{text}': use a duration such as 12h or 30d")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': use a whole number >= 1")
    return int(text)


def _action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A sub-action (`sessions list`...), which takes the connection flags too."""
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    add_connection_flags(parser)
    return parser


def add_parsers(commands: Any) -> None:
    """The client commands under `llmgw`'s sub-commands (`commands` is their action)."""
    chat = commands.add_parser(
        "chat",
        help="one chat turn, streamed as it is generated",
        description="Send MESSAGE (or stdin, for none or '-') and print the answer as it "
        "arrives. Exit status: the gRPC status code (0 OK, 5 NOT_FOUND, 14 UNAVAILABLE...).",
    )
    add_connection_flags(chat)
    chat.add_argument("message", nargs="?", help="the message; stdin when absent or '-'")
    chat.add_argument("--model", default="", help="model or alias (default: the gateway's)")
    chat.add_argument("--session", default="", help="a session to continue (created if new)")
    chat.add_argument("--tools", default="", help="a JSON file of OpenAI function tools")
    chat.add_argument("--system", default="", help="a system message")
    chat.add_argument("--no-stream", action="store_true", help="ask for the whole answer at once")

    models = commands.add_parser("models", help="the models the gateway serves")
    add_connection_flags(models)

    sessions = commands.add_parser("sessions", help="stored conversations: list, get, delete")
    add_connection_flags(sessions)
    actions = sessions.add_subparsers(dest="action", required=True)
    listing = _action(actions, "list", "your sessions")
    listing.add_argument("--page-size", type=count, default=0)
    listing.add_argument("--page-token", default="")
    _action(actions, "get", "a session with its messages").add_argument("name")
    _action(actions, "delete", "delete a session").add_argument("name")

    usage = commands.add_parser("usage", help="requests, tokens and cost over a period")
    add_connection_flags(usage)
    usage.add_argument("--start", type=day, default=None, help="first day (default 30 days ago)")
    usage.add_argument("--end", type=day, default=None, help="last day, inclusive (default today)")
    usage.add_argument("--group-by", choices=("model", "day"), default="model")
    usage.add_argument("--subject", default="", help="consumers/C or groups/G (admin)")
    usage.add_argument("--model", default="", help="only this model")

    keys = commands.add_parser("keys", help="a consumer's API keys (admin key needed)")
    add_connection_flags(keys)
    actions = keys.add_subparsers(dest="action", required=True)
    for name, help_text in (("list", "a consumer's keys"), ("create", "issue a key")):
        parser = _action(actions, name, help_text)
        parser.add_argument("--consumer", required=True, help="consumer id or consumers/ID")
        if name == "list":
            parser.add_argument("--page-size", type=count, default=0)
            parser.add_argument("--page-token", default="")
        else:
            parser.add_argument("--ttl", type=seconds, default=0, help="e.g. 30d (default none)")
    _action(actions, "revoke", "revoke a key at once").add_argument(
        "name", help="consumers/C/keys/K"
    )


def main(
    args: argparse.Namespace,
    *,
    running_target: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Runs one client command as parsed; its exit status (connection.py's mapping)."""
    out, err = out or sys.stdout, err or sys.stderr
    connection = Connection.of(args, running_target)

    def body() -> int:
        if args.command == "chat":
            return Chat(connection, out, err).run(args, stdin or sys.stdin)
        resources = Resources(connection, out, err)
        with connection.channel() as channel:
            if args.command == "models":
                return resources.models(channel)
            if args.command == "sessions":
                return resources.sessions(channel, args)
            if args.command == "usage":
                return resources.usage(channel, args)
            return resources.keys(channel, args)

    return run_reporting(body, err)
