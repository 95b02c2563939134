"""The command line of `llmgw investigate`, and the CreateInvestigation body its flags
make.

  llmgw investigate --alert-name NAME [--namespace NS] [--label k=v ...] [...]
  llmgw investigate get NAME [--follow] | list | cancel NAME | ask NAME "question"

The connection flags (`--url`, `--api-key`, `--json`) are accepted before or after the
action, so they carry SUPPRESS defaults and `connection()` fills them in afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

TOOLSETS = ("kubernetes", "prometheus")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
DEFAULT_URL = "http://localhost:8080"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def pair(text: str) -> tuple[str, str]:
    """`key=value` (the value may hold `=`; the key may not be empty)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"'{text}': use KEY=VALUE")
    return key.strip(), value


def duration(text: str) -> str:
    """`120s`, `2m`, `1h`, `1500ms` or bare seconds, as a JSON Duration (`"120s"`)."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"'{text}': use a duration such as 90s, 5m or 1h")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': must be more than zero")
    return f"{seconds:g}s"


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': use a whole number >= 1")
    return int(text)


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="the gateway's public URL (default: $LLMGW_URL, else the stack `llmgw up` "
        f"runs, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        help="API key of a consumer allowed the `investigation` service (default: "
        "$LLMGW_API_KEY; not needed while authentication is off)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the REST JSON of the resource instead of text",
    )


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """`investigate` under `llmgw`'s sub-commands (`commands` is their action)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "investigate",
        help="investigate an alert through the gateway (and get, list, cancel, ask)",
        description="Start an investigation of an alert, follow its progress (stderr) and "
        "print its result (stdout). Exit status: 0 complete, 3 partial (a limit stopped "
        "it), 1 failed or cancelled, 2 a usage error or a refusal of the gateway.",
    )
    _connection_flags(parser)
    parser.add_argument("--alert-name", help="the alert's name (Prometheus `alertname`)")
    parser.add_argument("--namespace", default="", help="Kubernetes namespace concerned")
    parser.add_argument(
        "--label", type=pair, action="append", default=[], metavar="K=V", help="alert label"
    )
    parser.add_argument(
        "--annotation",
        type=pair,
        action="append",
        default=[],
        metavar="K=V",
        help="alert annotation (summary, description, runbook_url...)",
    )
    parser.add_argument("--model", default="", help="model to use; `none`: analyzers only")
    parser.add_argument(
        "--toolset",
        choices=TOOLSETS,
        action="append",
        default=[],
        help="toolset it may use (repeatable; default: every configured one)",
    )
    parser.add_argument("--max-steps", type=positive, help="model steps at most")
    parser.add_argument("--time-limit", type=duration, help="wall-clock limit (120s, 5m)")
    parser.add_argument("--max-tokens", type=positive, help="tokens of all model calls at most")
    parser.add_argument("--id", default="", help="investigation id (default: generated)")
    parser.add_argument(
        "--no-wait", action="store_true", help="print the created investigation and return"
    )
    actions = parser.add_subparsers(dest="action", metavar="{get,list,cancel,ask}")
    get = actions.add_parser("get", help="show an investigation (its result once finished)")
    get.add_argument("name", help="investigations/{id} or the id")
    get.add_argument(
        "--follow", action="store_true", help="print its progress and wait until it ends"
    )
    listing = actions.add_parser("list", help="list your investigations, newest first")
    listing.add_argument("--state", choices=STATES, default="")
    listing.add_argument("--alert-name", dest="filter_alert_name", default="")
    listing.add_argument("--page-size", type=positive, default=0)
    listing.add_argument("--page-token", default="")
    cancel = actions.add_parser("cancel", help="cancel a queued or running investigation")
    cancel.add_argument("name")
    ask = actions.add_parser("ask", help="ask a follow-up question about an investigation")
    ask.add_argument("name")
    ask.add_argument("question")
    ask.add_argument("--model", dest="ask_model", default="", help="model to answer with")
    for sub in (get, listing, cancel, ask):
        _connection_flags(sub)
    return parser


def connection(args: argparse.Namespace, running_url: str | None) -> tuple[str, str, bool]:
    """(url, api key, json) from the flags, the environment and the running stack."""
    url = getattr(args, "url", None) or os.environ.get("LLMGW_URL") or running_url or DEFAULT_URL
    key = getattr(args, "api_key", None) or os.environ.get("LLMGW_API_KEY", "")
    return url, key, bool(getattr(args, "json", False))


def resource_name(text: str) -> str:
    """`investigations/{id}` from either the name or the bare id."""
    return text if text.startswith("investigations/") else f"investigations/{text}"


def investigation_body(args: argparse.Namespace) -> dict[str, Any]:
    """The Investigation (REST JSON) the flags describe; the gateway checks it."""
    alert: dict[str, Any] = {"alert_name": args.alert_name}
    if args.namespace:
        alert["namespace"] = args.namespace
    if args.label:
        alert["labels"] = dict(args.label)
    if args.annotation:
        alert["annotations"] = dict(args.annotation)
    body: dict[str, Any] = {"alert": alert}
    if args.toolset:
        body["toolsets"] = list(dict.fromkeys(args.toolset))
    if args.model:
        body["model"] = args.model
    limits: dict[str, Any] = {}
    if args.max_steps:
        limits["max_steps"] = args.max_steps
    if args.time_limit:
        limits["time_limit"] = args.time_limit
    if args.max_tokens:
        limits["max_tokens"] = str(args.max_tokens)
    if limits:
        body["limits"] = limits
    return body
