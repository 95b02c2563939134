"""`llmgw investigate`: run an investigation through the gateway from a terminal or a
script, and get, list, cancel or question existing ones.

Progress goes to stderr and the result to stdout, so `llmgw investigate ... --json | jq`
works; the exit status says how it ended (EXIT_* below) so scripts need not parse it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

import httpx

from services.launcher import investigate_args, investigate_render
from services.launcher.investigate_client import (
    FINAL_STATES,
    GatewayHTTPError,
    InvestigationClient,
)

EXIT_COMPLETE = 0
EXIT_FAILED = 1  # failed, or cancelled
EXIT_USAGE = 2  # a usage error, or the gateway refused or could not be reached
EXIT_PARTIAL = 3  # succeeded, but a limit stopped it (the result says which)
EXIT_INTERRUPTED = 130

Json = dict[str, Any]


def exit_code(investigation: Json) -> int:
    """How an investigation ended, as an exit status (0 while it has not ended yet)."""
    state = investigation.get("state")
    if state in ("INVESTIGATION_STATE_FAILED", "INVESTIGATION_STATE_CANCELLED"):
        return EXIT_FAILED
    if state == "INVESTIGATION_STATE_SUCCEEDED":
        result = investigation.get("result") or {}
        partial = result.get("completeness") == "COMPLETENESS_PARTIAL"
        return EXIT_PARTIAL if partial else EXIT_COMPLETE
    return EXIT_COMPLETE


class Investigate:
    """One `llmgw investigate` invocation: where it writes and whom it asks."""

    def __init__(
        self, client: InvestigationClient, *, as_json: bool, out: TextIO, err: TextIO
    ) -> None:
        self._client = client
        self._json = as_json
        self._out = out
        self._err = err

    def _show(self, investigation: Json) -> int:
        if self._json:
            self._out.write(json.dumps(investigation, indent=2) + "\n")
        else:
            self._out.write(investigate_render.render_result(investigation))
        return exit_code(investigation)

    def _note(self, line: str) -> None:
        self._err.write(line + "\n")
        self._err.flush()

    def run(self, body: Json, investigation_id: str, *, wait: bool) -> int:
        created = self._client.create(body, investigation_id)
        name = str(created["name"])
        if not wait:
            if self._json:
                self._out.write(json.dumps(created, indent=2) + "\n")
            else:
                self._out.write(name + "\n")
            return EXIT_COMPLETE
        self._note(f"==> {name} created ({investigate_render.state_of(created)})")
        return self._follow(name, 0)

    def _follow(self, name: str, after: int) -> int:
        """Progress lines until `name` ends, then the stored investigation."""
        try:
            for event in self._client.follow(name, after):
                line = investigate_render.event_line(event)
                if line is not None:
                    self._note(line)
        except KeyboardInterrupt:
            self._note(
                f"!! interrupted; {name} goes on in the gateway "
                f"(`llmgw investigate get {name} --follow`, `llmgw investigate cancel {name}`)"
            )
            return EXIT_INTERRUPTED
        # The stored resource, not the result event: it has usage, cost and times too.
        return self._show(self._client.get(name))

    def get(self, name: str, *, follow: bool = False) -> int:
        if follow:
            return self._follow(name, 0)
        return self._show(self._client.get(name))

    def cancel(self, name: str) -> int:
        cancelled = self._client.cancel(name)
        self._show(cancelled)
        if cancelled.get("state") not in FINAL_STATES:
            self._note(
                f"(cancelling: its worker stops it in a moment; "
                f"`llmgw investigate get {name} --follow` waits for it)"
            )
        return EXIT_COMPLETE

    def list(self, args: argparse.Namespace) -> int:
        state = f"INVESTIGATION_STATE_{args.state.upper()}" if args.state else ""
        page = self._client.list(
            page_size=args.page_size,
            state=state,
            alert_name=args.filter_alert_name,
            page_token=args.page_token,
        )
        if self._json:
            self._out.write(json.dumps(page, indent=2) + "\n")
            return EXIT_COMPLETE
        for investigation in page.get("investigations") or []:
            self._out.write(investigate_render.render_summary_line(investigation) + "\n")
        if page.get("next_page_token"):
            self._note(f"(more: --page-token {page['next_page_token']})")
        return EXIT_COMPLETE

    def ask(self, name: str, question: str, model: str) -> int:
        answer = self._client.chat(name, question, model)
        if self._json:
            self._out.write(json.dumps(answer, indent=2) + "\n")
        else:
            self._out.write(str(answer.get("answer", "")).rstrip() + "\n")
            self._note(f"(session {answer.get('session', '')})")
        return EXIT_COMPLETE


def dispatch(command: Investigate, args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action == "get":
        return command.get(investigate_args.resource_name(args.name), follow=args.follow)
    if action == "list":
        return command.list(args)
    if action == "cancel":
        return command.cancel(investigate_args.resource_name(args.name))
    if action == "ask":
        return command.ask(investigate_args.resource_name(args.name), args.question, args.ask_model)
    return command.run(investigate_args.investigation_body(args), args.id, wait=not args.no_wait)


def main(
    args: argparse.Namespace,
    *,
    running_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Runs `llmgw investigate` as parsed; `running_url` is the public URL of the stack
    `llmgw up` runs here, if any. Refusals print the gateway's message and exit 2."""
    err = err or sys.stderr
    if getattr(args, "action", None) is None and not args.alert_name:
        err.write(
            "llmgw investigate: error: --alert-name is required to start an investigation "
            "(or name an action: get, list, cancel, ask)\n"
        )
        return EXIT_USAGE
    url, key, as_json = investigate_args.connection(args, running_url)
    with InvestigationClient(url, key, transport=transport) as client:
        command = Investigate(client, as_json=as_json, out=out or sys.stdout, err=err)
        try:
            return dispatch(command, args)
        except GatewayHTTPError as error:
            err.write(f"!! {error}\n")
            return EXIT_USAGE
