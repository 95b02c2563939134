"""`llmgw models`, `llmgw sessions list|get|delete`, `llmgw usage`, `llmgw keys
list|create|revoke`: one gRPC call each through the gateway's public listener, printed
as a table (services/cli/tables.py) or, with `--json`, as the reply's JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, TextIO

from google.protobuf import duration_pb2, json_format

from llmgw.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from llmgw.router.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    router_service_pb2,
    router_service_pb2_grpc,
)
from llmgw.session.v1 import session_service_pb2, session_service_pb2_grpc
from services.cli import tables
from services.cli.connection import CALL_TIMEOUT, CommandError, Connection, while_waiting


def resource(kind: str, name: str) -> str:
    """`kind/name` whether the user typed the id or the full name."""
    if not name or "/" in name.removeprefix(f"{kind}/"):
        raise CommandError(f"'{name}': use an id or {kind}/ID")
    return name if name.startswith(f"{kind}/") else f"{kind}/{name}"


def key_name(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "consumers" or parts[2] != "keys" or not all(parts):
        raise CommandError(f"'{name}': use consumers/CONSUMER/keys/KEY (as `keys list` shows)")
    return name


class Resources:
    """The one-call commands of one invocation: whom they ask and where they write."""

    def __init__(self, connection: Connection, out: TextIO, err: TextIO) -> None:
        self._connection = connection
        self._out = out
        self._err = err

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        return while_waiting(
            "waiting for the gateway",
            lambda: method(request, timeout=CALL_TIMEOUT, metadata=self._connection.metadata()),
            self._err,
        )

    def _show(self, reply: Any, render: Callable[[Any], str]) -> int:
        if self._connection.as_json:
            document = json_format.MessageToDict(reply, preserving_proto_field_name=True)
            self._out.write(json.dumps(document, indent=2) + "\n")
        else:
            self._out.write(render(reply))
        return 0

    def models(self, channel: Any) -> int:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        reply = self._call(stub.ListModels, router_service_pb2.ListModelsRequest())
        return self._show(reply, tables.models_table)

    def sessions(self, channel: Any, args: argparse.Namespace) -> int:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        if args.action == "list":
            request = session_service_pb2.ListSessionsRequest(
                page_size=args.page_size, page_token=args.page_token
            )
            reply = self._call(stub.ListSessions, request)
            if reply.next_page_token and not self._connection.as_json:
                self._err.write(f"(more: --page-token {reply.next_page_token})\n")
            return self._show(reply, tables.sessions_table)
        name = resource("sessions", args.name)
        if args.action == "get":
            request = session_service_pb2.GetSessionRequest(
                name=name, view=session_service_pb2.SESSION_VIEW_FULL
            )
            reply = self._call(stub.GetSession, request)
            return self._show(reply, lambda r: tables.session_detail(r.session))
        self._call(stub.DeleteSession, session_service_pb2.DeleteSessionRequest(name=name))
        if self._connection.as_json:
            self._out.write(json.dumps({"deleted": name}) + "\n")
        else:
            self._out.write(f"deleted {name}\n")
        return 0

    def usage(self, channel: Any, args: argparse.Namespace) -> int:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        request = admin_service_pb2.GetUsageRequest(
            subject=args.subject,
            start_date=args.start or "",
            end_date=args.end or "",
            model=args.model,
        )
        reply = self._call(stub.GetUsage, request)
        return self._show(reply, lambda r: tables.usage_table(r, args.group_by))

    def keys(self, channel: Any, args: argparse.Namespace) -> int:
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        if args.action == "revoke":
            request = identity_service_pb2.RevokeApiKeyRequest(name=key_name(args.name))
            reply = self._call(stub.RevokeApiKey, request)
            return self._show(reply, lambda r: f"revoked {r.api_key.name}\n")
        parent = resource("consumers", args.consumer)
        if args.action == "list":
            request = identity_service_pb2.ListApiKeysRequest(
                parent=parent, page_size=args.page_size, page_token=args.page_token
            )
            reply = self._call(stub.ListApiKeys, request)
            if reply.next_page_token and not self._connection.as_json:
                self._err.write(f"(more: --page-token {reply.next_page_token})\n")
            return self._show(reply, tables.keys_table)
        request = identity_service_pb2.CreateApiKeyRequest(parent=parent)
        if args.ttl:
            request.ttl.CopyFrom(duration_pb2.Duration(seconds=int(args.ttl)))
        reply = self._call(stub.CreateApiKey, request)
        self._show(reply, lambda r: f"{r.api_key.name}\n{r.secret}\n")
        self._err.write("(the secret is shown this once: store it now)\n")
        return 0
