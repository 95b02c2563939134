"""A fake Kubernetes API server over a scenario, faithful enough for `kubectl`.

Read-only: `GET` of `/version`, discovery (`/api`, `/api/v1`, `/apis`,
`/apis/<group>/<version>`), and the resources of tests/fakes/kube_wire.py, listed
cluster-wide (`/api/v1/pods`), per namespace (`/api/v1/namespaces/N/pods`) or read one
by name, with `labelSelector`, `fieldSelector`, `limit` and `continue`; pod logs
(`/api/v1/namespaces/N/pods/P/log` with `container`, `previous`, `tailLines`,
`sinceSeconds`, `limitBytes`, `timestamps`). Lists are JSON, or the `Table` kubectl
asks for with `Accept: application/json;as=Table;...`. This module authenticates,
routes and records; what it answers is made by tests/fakes/kube_listing.py (lists and
gets), tests/fakes/kube_logs.py (logs) and kube_wire.py. Errors are real `kind: Status`
bodies: 404 NotFound, 400 BadRequest (a log that does not exist, a bad selector), 401
Unauthorized (a wrong bearer token, when the fake has one), 403 Forbidden (resources
the test forbids), 405 for any other method.

Tests read `requests` (method, path with query, Accept) and may set `fail_status` (every
API request answered with that status) or `delay` (seconds before each answer).

A fake in another process switches scenario on `POST /_fake/scenario {"name": "oomkilled"}`
(a name of tests/fakes/kube_scenarios only, never a path; 404 for an unknown one, 400 for
a body that is not that object); `GET /_fake/scenario` says which one it serves. Both
answer without the bearer token (they are the test's controls, not the API), and they
are not recorded among `requests`. One fake can so serve a run of scenarios without the
Tool service that reads it being restarted.

HTTPS: given an `ssl_context` (the CLI: `--tls-dir DIR` holding `ca.crt`, `server.crt`,
`server.key`, see tests/fakes/kube_tls.py and tests/support/kube_tls.py), the fake serves TLS and,
when the context asks for client certificates, authenticates as a real API server does
with `--client-ca-file`: the handshake succeeds without a certificate, a request with a
verified one is the user of its CN (`requests[i].user`), and a request with neither it
nor the bearer token is answered 401 (anonymous auth off). One difference: a client
certificate the CA did not sign fails the TLS handshake here (OpenSSL checks what it
asks for), where a real server completes it and answers 401.

`python -m tests.fakes.kubernetes_fake --scenario crashloop --port 0 [--token T]
[--tls-dir DIR]` serves a scenario and prints the bound port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes import kube_listing
from tests.fakes import kube_wire as wire
from tests.fakes.kube_logs import log_body
from tests.fakes.kube_scenario import SCENARIOS, Scenario, load_scenario
from tests.fakes.kube_tls import (
    CA_FILE,
    SERVER_CERT_FILE,
    SERVER_KEY_FILE,
    common_name,
    tls_context,
)
from tests.fakes.server import ServedFake
from tests.fakes.wire import dumps

SERVICE_ACCOUNT = "system:serviceaccount:observability:llm-gateway"
CONTROL_PATH = "/_fake/scenario"
# A scenario name the control endpoint accepts: a file stem, never a path.
_SCENARIO_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    accept: str
    # Who the request authenticated as: the bearer token's service account, a client
    # certificate's CN; "" when the fake checks no credentials or refused them.
    user: str = ""


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json")


class FakeKubernetes(ServedFake):
    def __init__(
        self,
        scenario: Scenario | str | Path = "healthy",
        *,
        token: str | None = None,
        forbidden: frozenset[str] = frozenset(),
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`token`: the bearer token accepted; `ssl_context`: serve HTTPS, and accept
        client certificates when it verifies them. With neither credential configured,
        every request is accepted."""
        super().__init__(host=host, port=port, ssl_context=ssl_context)
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        # What `GET /_fake/scenario` reports: the name or path given, "" for an object.
        self.scenario_name = "" if isinstance(scenario, Scenario) else str(scenario)
        self.token = token
        # Plurals (`pods`, `secrets`...) every request for which is answered 403.
        self.forbidden = set(forbidden)
        self.requests: list[SeenRequest] = []
        self.fail_status: int | None = None
        self.delay = 0.0

    @property
    def url(self) -> str:
        return self.root_url

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(CONTROL_PATH, self._current_scenario)
        app.router.add_post(CONTROL_PATH, self._switch_scenario)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def set_scenario(self, name: str) -> None:
        """Serve the scenario `name` (a file of tests/fakes/kube_scenarios) from now on;
        ValueError for a name that is not one, FileNotFoundError for an unknown one."""
        if _SCENARIO_NAME.fullmatch(name) is None:
            raise ValueError("name must be a scenario name like 'crashloop', not a path")
        if not (SCENARIOS / f"{name}.yaml").is_file():
            raise FileNotFoundError(f"no scenario named {name!r}")
        self.scenario = load_scenario(name)
        self.scenario_name = name

    def paths(self, contains: str = "") -> list[str]:
        return [seen.path for seen in self.requests if contains in seen.path]

    # --- Control ------------------------------------------------------------------------

    async def _current_scenario(self, request: web.Request) -> web.Response:
        return _json({"name": self.scenario_name})

    async def _switch_scenario(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        name = body.get("name") if isinstance(body, dict) and set(body) == {"name"} else None
        if not isinstance(name, str):
            return _json({"error": 'the body must be {"name": "<scenario>"}'}, 400)
        try:
            self.set_scenario(name)
        except ValueError as error:
            return _json({"error": str(error)}, 400)
        except FileNotFoundError as error:
            return _json({"error": str(error)}, 404)
        return _json({"name": name})

    # --- Dispatch -----------------------------------------------------------------------

    @property
    def _checks_client_certs(self) -> bool:
        return self.ssl_context is not None and self.ssl_context.verify_mode != ssl.CERT_NONE

    def _user(self, request: web.Request) -> str | None:
        """Who the request authenticates as ("" when no credential is configured);
        None when it is refused: as a real API server, a verified client certificate
        or the bearer token, either one."""
        if self._checks_client_certs:
            name = common_name(request.get_extra_info("peercert"))
            if name:
                return name
        if self.token is not None:
            if request.headers.get("Authorization") == f"Bearer {self.token}":
                return SERVICE_ACCOUNT
            return None
        return None if self._checks_client_certs else ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        user = self._user(request)
        self.requests.append(SeenRequest(request.method, request.path_qs, accept, user or ""))
        if self.delay:
            await asyncio.sleep(self.delay)
        if user is None:
            return _json(wire.status(401, "Unauthorized", "Unauthorized"), 401)
        if request.method != "GET":
            return _json(
                wire.status(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                ),
                405,
            )
        if self.fail_status is not None:
            code = self.fail_status
            return _json(wire.status(code, "InternalError", "etcdserver: request timed out"), code)
        try:
            return self._route(request, [p for p in request.path.split("/") if p], accept)
        except wire.Refused as refused:
            return _json(refused.body, refused.body["code"])

    def _route(self, request: web.Request, parts: list[str], accept: str) -> web.StreamResponse:
        if parts == ["version"]:
            return _json(wire.VERSION)
        if parts == ["api"]:
            return _json(wire.api_versions(request.host))
        if parts == ["apis"]:
            return _json(wire.api_group_list())
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise wire.no_such_path()
        if not rest:
            resources = wire.api_resource_list(group, version)
            if resources is None:
                raise wire.no_such_path()
            return _json(resources)
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        item = wire.resource(group, version, rest[0])
        if (
            item is None
            or len(rest) > 3
            or (len(rest) == 3 and (item.plural, rest[2]) != ("pods", "log"))
        ):
            raise wire.no_such_path()
        verb = "get" if len(rest) > 1 else "list"
        if item.plural in self.forbidden:
            raise wire.Refused(wire.forbidden(item, verb, namespace, SERVICE_ACCOUNT))
        if len(rest) == 1:
            return _json(
                kube_listing.listing(self.scenario, item, namespace, request.query, accept)
            )
        obj = kube_listing.get(self.scenario, item, rest[1], namespace)
        if len(rest) == 3:
            body = log_body(self.scenario, obj, request.query)
            return web.Response(body=body, content_type="text/plain", charset="utf-8")
        if wire.wants_table(accept):
            include = request.query.get("includeObject", "Metadata")
            current = kube_listing.resource_version(self.scenario)
            return _json(wire.table(item.kind, [obj], current, include))
        return _json(obj)


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeKubernetes(
        args.scenario,
        token=args.token,
        host=args.host,
        port=args.port,
        ssl_context=tls_context(args.tls_dir) if args.tls_dir is not None else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await fake.start()
    try:
        if args.port_file is not None:
            partial = args.port_file.with_name(args.port_file.name + ".partial")
            partial.write_text(f"{fake.port}\n")
            partial.replace(args.port_file)
        print(fake.port, flush=True)
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.kubernetes_fake")
    parser.add_argument("--scenario", default="healthy", help="a name or a YAML path")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--port-file", type=Path, default=None)
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        help=f"serve HTTPS with {CA_FILE}, {SERVER_CERT_FILE}, {SERVER_KEY_FILE} of this "
        "directory, accepting client certificates its CA signed",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
