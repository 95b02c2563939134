"""Envoy's bound listeners (admin /listeners) and the launcher's retry on a port in use."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.launcher.envoy_config import DEFAULT_DESCRIPTOR, render
from services.launcher.envoy_process import (
    EnvoyError,
    ListenerAddress,
    configured_listeners,
    missing_listeners,
    parse_listeners,
)
from services.launcher.processes import ChildProcess, ProcessError, free_port
from services.launcher.stack import BIND_ATTEMPTS, Replica, Stack, StackOptions, _bindable
from services.launcher.topology import Endpoint, load_topology, local_placement

# What Envoy 1.40 answers on /listeners?format=json for the local config.
ADMIN_ANSWER = {
    "listener_statuses": [
        {
            "name": "public",
            "local_address": {"socket_address": {"address": "127.0.0.1", "port_value": 24055}},
        },
        {
            "name": "internal",
            "local_address": {"socket_address": {"address": "127.0.0.1", "port_value": 25312}},
        },
    ]
}

EXPECTED = {
    "public": ListenerAddress("public", "127.0.0.1", 24055),
    "internal": ListenerAddress("internal", "127.0.0.1", 25312),
}


# --- the admin answer -----------------------------------------------------------------


def test_parse_listeners_reads_each_bound_address() -> None:
    assert parse_listeners(json.dumps(ADMIN_ANSWER)) == EXPECTED


def test_parse_listeners_leaves_out_listeners_without_a_socket_address() -> None:
    answer = {
        "listener_statuses": [
            *ADMIN_ANSWER["listener_statuses"],
            {"name": "uds", "local_address": {"pipe": {"path": "/tmp/envoy.sock"}}},
        ]
    }
    assert set(parse_listeners(json.dumps(answer))) == {"public", "internal"}


def test_parse_listeners_of_an_envoy_without_listeners_is_empty() -> None:
    assert parse_listeners("{}") == {}
    assert parse_listeners('{"listener_statuses": []}') == {}


@pytest.mark.parametrize(
    "body",
    [
        "public::127.0.0.1:24055",  # the text format, not JSON
        "[]",
        '{"listener_statuses": [{"local_address": {}}]}',  # no name
        '{"listener_statuses": [{"name": "public", "local_address": '
        '{"socket_address": {"port_value": "http"}}}]}',
    ],
)
def test_parse_listeners_rejects_an_unexpected_answer(body: str) -> None:
    with pytest.raises(EnvoyError, match="unexpected admin /listeners answer"):
        parse_listeners(body)


# --- the rendered config --------------------------------------------------------------


def test_configured_listeners_are_the_rendered_public_internal_and_ops_ones() -> None:
    topology = load_topology()
    placement = local_placement(
        topology, public_port=18080, internal_port=18081, ops_port=19902, admin_port=19901
    )
    config = render(topology, placement, "local", DEFAULT_DESCRIPTOR)
    assert configured_listeners(config) == {
        "public": ListenerAddress("public", "127.0.0.1", 18080),
        "internal": ListenerAddress("internal", "127.0.0.1", 18081),
        "ops": ListenerAddress("ops", "127.0.0.1", 19902),
    }


# --- which listener is missing --------------------------------------------------------


def test_nothing_is_missing_when_every_listener_is_bound_on_its_port() -> None:
    extra = {**EXPECTED, "debug": ListenerAddress("debug", "127.0.0.1", 1)}
    assert missing_listeners(EXPECTED, EXPECTED) == []
    assert missing_listeners(EXPECTED, extra) == []


def test_a_listener_absent_from_the_admin_answer_is_missing() -> None:
    bound = {"public": EXPECTED["public"]}
    assert missing_listeners(EXPECTED, bound) == [EXPECTED["internal"]]
    assert missing_listeners(EXPECTED, {}) == [EXPECTED["public"], EXPECTED["internal"]]


def test_a_listener_on_another_port_is_missing() -> None:
    # e.g. another Envoy answering on our admin port, with listeners of the same names.
    bound = {**EXPECTED, "internal": ListenerAddress("internal", "127.0.0.1", 25313)}
    assert missing_listeners(EXPECTED, bound) == [EXPECTED["internal"]]


def test_a_listener_configured_on_port_0_may_hold_any_port() -> None:
    expected = {"public": ListenerAddress("public", "127.0.0.1", 0)}
    assert missing_listeners(expected, EXPECTED) == []
    assert missing_listeners(expected, {}) == [expected["public"]]


# --- the port probe -------------------------------------------------------------------


@pytest.fixture
def held() -> Iterator[socket.socket]:
    """A port another process took after the launcher picked it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_bindable_tells_a_free_port_from_a_held_one(held: socket.socket) -> None:
    assert not _bindable(Endpoint("127.0.0.1", held.getsockname()[1]))
    assert _bindable(Endpoint("127.0.0.1", free_port()))


def test_a_port_shared_with_so_reuseport_counts_as_held() -> None:
    # Envoy would share it (it sets SO_REUSEPORT) and get only part of the connections.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not _bindable(Endpoint("127.0.0.1", sock.getsockname()[1]))


# --- the launcher's decision ----------------------------------------------------------


class ScriptedStack(Stack):
    """A stack whose Envoy tries report the given busy sockets, then success."""

    def __init__(self, options: StackOptions, busy: list[dict[str, Endpoint]]) -> None:
        self.lines: list[str] = []
        super().__init__(options, progress=self.lines.append)
        self.busy = busy
        self.tries: list[dict[str, Endpoint]] = []
        self.started: list[tuple[str, str]] = []
        self._public = Endpoint("127.0.0.1", 18080)
        self._internal = Endpoint("127.0.0.1", 18081)
        self._ops = Endpoint("127.0.0.1", 19902)
        self._admin = Endpoint("127.0.0.1", 19901)
        # Replicas not started: stopping them is a no-op, starting them is recorded.
        self.replicas = {
            "router": [
                Replica("router", i, 0, 0, ChildProcess(name="", argv=[], log_path=Path()))
                for i in range(2)
            ]
        }

    async def _launch_envoy(self) -> dict[str, Endpoint]:
        self.tries.append(self._envoy_sockets())
        return self.busy.pop(0) if self.busy else {}

    async def _start_replica(self, replica: Replica) -> None:
        self.started.append((replica.name, self.internal_target))


def _busy(role: str, port: int) -> dict[str, Endpoint]:
    return {role: Endpoint("127.0.0.1", port)}


async def test_dynamic_ports_move_only_the_busy_listener(tmp_path: Path) -> None:
    stack = ScriptedStack(
        StackOptions(run_dir=tmp_path, dynamic_ports=True), [_busy("public", 18080)]
    )
    await stack._start_envoy()
    assert len(stack.tries) == 2
    assert stack.tries[1]["public"].port != 18080
    assert stack.tries[1]["internal"].port == 18081
    assert stack.tries[1]["admin"].port == 19901
    assert stack.started == []  # the replicas do not know the public port
    assert any("could not listen on 127.0.0.1:18080 (public listener)" in x for x in stack.lines)


async def test_dynamic_ports_move_a_busy_ops_listener_alone(tmp_path: Path) -> None:
    stack = ScriptedStack(StackOptions(run_dir=tmp_path, dynamic_ports=True), [_busy("ops", 19902)])
    await stack._start_envoy()
    assert stack.tries[1]["ops"].port != 19902
    assert stack.tries[1]["public"].port == 18080
    assert stack.started == []
    assert any("could not listen on 127.0.0.1:19902 (ops listener)" in x for x in stack.lines)


async def test_a_moved_internal_listener_restarts_every_replica(tmp_path: Path) -> None:
    stack = ScriptedStack(
        StackOptions(run_dir=tmp_path, dynamic_ports=True), [_busy("internal", 18081)]
    )
    await stack._start_envoy()
    moved = stack.tries[1]["internal"]
    assert moved.port != 18081
    # Replicas read the internal address only at start: each gets the new one.
    assert stack.started == [
        ("router-1", f"127.0.0.1:{moved.port}"),
        ("router-2", f"127.0.0.1:{moved.port}"),
    ]


async def test_fixed_ports_fail_naming_the_port(tmp_path: Path) -> None:
    stack = ScriptedStack(StackOptions(run_dir=tmp_path), [_busy("internal", 18081)])
    with pytest.raises(ProcessError) as error:
        await stack._start_envoy()
    assert "Envoy could not listen on 127.0.0.1:18081 (internal listener): in use?" in str(
        error.value
    )
    assert len(stack.tries) == 1


async def test_a_port_given_explicitly_is_never_moved(tmp_path: Path) -> None:
    options = StackOptions(run_dir=tmp_path, dynamic_ports=True, admin_port=19901)
    stack = ScriptedStack(options, [_busy("admin", 19901)])
    with pytest.raises(ProcessError, match=r"127\.0\.0\.1:19901 \(admin interface\)"):
        await stack._start_envoy()
    assert len(stack.tries) == 1


async def test_dynamic_ports_give_up_after_a_few_attempts(tmp_path: Path) -> None:
    busy = [_busy("public", 18080 + i) for i in range(BIND_ATTEMPTS)]
    stack = ScriptedStack(StackOptions(run_dir=tmp_path, dynamic_ports=True), busy)
    with pytest.raises(ProcessError, match="Envoy could not listen on"):
        await stack._start_envoy()
    assert len(stack.tries) == BIND_ATTEMPTS
