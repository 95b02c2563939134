"""Tool access control: the servicer's methods called directly with the caller set, as
the authenticating interceptor sets it (its own tests cover who the caller is)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

import grpc
import pytest
from google.protobuf import json_format

from llmgw.identity.v1 import identity_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import NotFound, PermissionDenied
from services.common.identity.principal import Principal
from services.common.redis_store import create_redis
from services.tool.access import shown_header
from services.tool.registry import ToolRegistry
from services.tool.runtime_store import RuntimeStore
from services.tool.servicer import ToolServicer
from tests.conftest import RedisServer
from tests.fakes import FakeDownstream
from tests.support.servicer_context import no_context
from tests.unit.tool.conftest import WEATHER_SCHEMA, Harness, MakeHarness

# Sorted by id: "zeta_bob" is the last tool, so a page ending just before it shows
# whether hidden tools count when deciding that another page follows.
ALICE_ONLY = "alice_only"
BOB_ONLY = "zeta_bob"
DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]


def _weather(tool_id: str, url: str, consumers: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "name": tool_id,
        "description": f"Weather for {tool_id}.",
        "parameters": WEATHER_SCHEMA,
        "http": {"method": "GET", "url_template": url + "/weather/{city}"},
        "allowed_consumers": list(consumers),
    }


def _principal(consumer_id: str, tools: Sequence[str] = (), admin: bool = False) -> Principal:
    group = identity_pb2.Group(name=f"groups/{consumer_id}", allowed_tools=tools, admin=admin)
    return Principal(
        consumer=identity_pb2.Consumer(name=f"consumers/{consumer_id}", groups=[group.name]),
        groups=(group,),
        key_name=f"consumers/{consumer_id}/keys/k1",
    )


CONTEXT = cast(grpc.aio.ServicerContext, no_context())


@contextlib.contextmanager
def _as(principal: Principal | None) -> Iterator[None]:
    token = set_caller(Caller(principal=principal))
    try:
        yield
    finally:
        reset_caller(token)


def _call(tool_id: str, **arguments: Any) -> tool_pb2.ExecuteToolRequest:
    call = tool_pb2.ExecuteToolRequest(name=f"tools/{tool_id}")
    call.arguments.update(arguments)
    return call


def _denial(tool_id: str, principal: Principal) -> str:
    return f"tool '{tool_id}' is not allowed for {principal.name}"


@pytest.fixture
async def harness(make_harness: MakeHarness, downstream: FakeDownstream) -> Harness:
    return await make_harness(
        definitions=[
            _weather("weather", downstream.url),
            _weather(ALICE_ONLY, downstream.url, ["consumers/alice"]),
            _weather(BOB_ONLY, downstream.url, ["bob"]),
        ]
    )


@pytest.fixture
def servicer(harness: Harness) -> ToolServicer:
    return ToolServicer(ToolRegistry(None, harness.config), harness.executor)


async def _get(servicer: ToolServicer, principal: Principal | None, tool_id: str) -> tool_pb2.Tool:
    with _as(principal):
        reply = await servicer.GetTool(tool_pb2.GetToolRequest(name=f"tools/{tool_id}"), CONTEXT)
    return reply.tool


async def _execute(
    servicer: ToolServicer, principal: Principal | None, tool_id: str, **arguments: Any
) -> tool_pb2.ExecuteToolResponse:
    with _as(principal):
        return await servicer.ExecuteTool(_call(tool_id, **arguments), CONTEXT)


async def _list(servicer: ToolServicer, principal: Principal | None, page_size: int) -> list[str]:
    """Every page in turn; each page but the last is full."""
    pages: list[list[str]] = []
    token = ""
    with _as(principal):
        while True:
            request = tool_pb2.ListToolsRequest(page_size=page_size, page_token=token)
            reply = await servicer.ListTools(request, CONTEXT)
            pages.append([tool.name.removeprefix("tools/") for tool in reply.tools])
            token = reply.next_page_token
            if not token:
                break
    assert all(len(page) == page_size for page in pages[:-1])
    assert pages[-1] or len(pages) == 1, "a page token was issued but no usable tool followed"
    return [tool_id for page in pages for tool_id in page]


# --- Reading and running one tool -------------------------------------------------------


async def test_a_forbidden_tool_looks_the_same_whether_it_exists_or_not(
    servicer: ToolServicer, downstream: FakeDownstream
) -> None:
    alice = _principal("alice", ["weather"])
    refusals: dict[str, PermissionDenied] = {}
    for tool_id in ("search_corpus", "nothing"):
        with pytest.raises(PermissionDenied) as got:
            await _get(servicer, alice, tool_id)
        assert got.value.message == _denial(tool_id, alice)
        # Arguments that do not match the existing tool's schema change nothing.
        with pytest.raises(PermissionDenied) as executed:
            await _execute(servicer, alice, tool_id, unexpected=1)
        assert executed.value.message == got.value.message
        refusals[tool_id] = executed.value
    existing, unknown = (refusals[t].to_status() for t in ("search_corpus", "nothing"))
    assert existing.code == unknown.code == DENIED
    assert existing.details == unknown.details
    assert downstream.hits == 0


async def test_allowed_consumers_name_consumers_in_either_form(
    servicer: ToolServicer, downstream: FakeDownstream
) -> None:
    everything = ["*"]
    alice, bob = _principal("alice", everything), _principal("bob", everything)
    assert (await _get(servicer, alice, ALICE_ONLY)).name == f"tools/{ALICE_ONLY}"
    assert (await _get(servicer, bob, BOB_ONLY)).name == f"tools/{BOB_ONLY}"
    reply = await _execute(servicer, bob, BOB_ONLY, city="Lima")
    assert reply.result.struct_value.fields["city"].string_value == "Lima"
    for tool_id, outsider in ((ALICE_ONLY, bob), (BOB_ONLY, alice)):
        with pytest.raises(PermissionDenied) as got:
            await _get(servicer, outsider, tool_id)
        assert got.value.message == _denial(tool_id, outsider)
        with pytest.raises(PermissionDenied) as executed:
            await _execute(servicer, outsider, tool_id, city="Lima")
        assert executed.value.message == _denial(tool_id, outsider)
    assert downstream.hits == 1


async def test_an_unknown_tool_the_groups_allow_is_not_found(servicer: ToolServicer) -> None:
    alice = _principal("alice", ["no*"])
    with pytest.raises(NotFound):
        await _get(servicer, alice, "nothing")
    with pytest.raises(NotFound):
        await _execute(servicer, alice, "nothing")


async def test_the_groups_must_allow_a_tool_that_names_the_consumer(
    servicer: ToolServicer,
) -> None:
    alice = _principal("alice", ["weather"])
    with pytest.raises(PermissionDenied) as got:
        await _get(servicer, alice, ALICE_ONLY)
    assert got.value.message == _denial(ALICE_ONLY, alice)


async def test_admins_and_open_gateways_use_every_tool(
    servicer: ToolServicer, downstream: FakeDownstream
) -> None:
    admin = _principal("root", admin=True)  # no allowed_tools at all
    for principal in (admin, None):
        for tool_id in (ALICE_ONLY, BOB_ONLY, "get_chunk"):
            assert (await _get(servicer, principal, tool_id)).name == f"tools/{tool_id}"
        reply = await _execute(servicer, principal, ALICE_ONLY, city="Oslo")
        assert reply.result.struct_value.fields["city"].string_value == "Oslo"
    assert downstream.hits == 2


# --- Listing ----------------------------------------------------------------------------


async def test_list_tools_shows_only_usable_tools_and_pages_over_them(
    servicer: ToolServicer,
) -> None:
    everything = await _list(servicer, None, 100)
    assert {ALICE_ONLY, BOB_ONLY, "weather", "get_chunk"} <= set(everything)
    assert everything[-1] == BOB_ONLY
    assert await _list(servicer, _principal("root", admin=True), 100) == everything

    alice = _principal("alice", ["*"])
    shown = [tool_id for tool_id in everything if tool_id != BOB_ONLY]
    for page_size in (1, 2, 3, 100):
        assert await _list(servicer, alice, page_size) == shown

    partial = _principal("carol", ["weather", ALICE_ONLY, BOB_ONLY, "search_*"])
    assert await _list(servicer, partial, 1) == ["search_corpus", "weather"]
    assert await _list(servicer, _principal("dave"), 10) == []


# --- Batches ----------------------------------------------------------------------------


async def test_each_refused_batch_call_gets_its_own_status(
    servicer: ToolServicer, downstream: FakeDownstream
) -> None:
    alice = _principal("alice", ["weather", ALICE_ONLY, BOB_ONLY])
    request = tool_pb2.BatchExecuteToolsRequest(
        calls=[
            _call("weather", city="Lima"),
            _call(BOB_ONLY, city="Lima"),
            _call("search_corpus", query="x"),
            _call(ALICE_ONLY, city="Quito"),
            _call("nothing"),
        ]
    )
    with _as(alice):
        reply = await servicer.BatchExecuteTools(request, CONTEXT)
    assert [r.index for r in reply.results] == [0, 1, 2, 3, 4]
    assert [r.status.code for r in reply.results] == [0, DENIED, DENIED, 0, DENIED]
    for index, tool_id in ((1, BOB_ONLY), (2, "search_corpus"), (4, "nothing")):
        assert reply.results[index].status.message == _denial(tool_id, alice)
        assert not reply.results[index].HasField("response")
    cities = [reply.results[i].response.result.struct_value.fields["city"] for i in (0, 3)]
    assert [city.string_value for city in cities] == ["Lima", "Quito"]
    assert downstream.hits == 2


# --- Registering and deleting -----------------------------------------------------------


@pytest.fixture
async def runtime_servicer(
    harness: Harness, redis_server: RedisServer
) -> AsyncIterator[ToolServicer]:
    client = create_redis(redis_server.url)
    try:
        registry = ToolRegistry(RuntimeStore(client), harness.config)
        yield ToolServicer(registry, harness.executor)
    finally:
        await client.aclose()


def _runtime_tool(url: str) -> tool_pb2.Tool:
    tool = tool_pb2.Tool(
        description="Weather, registered at run time.",
        http=tool_pb2.HttpExecutor(method="GET", url_template=url + "/weather/{city}"),
    )
    json_format.ParseDict(WEATHER_SCHEMA, tool.parameters)
    return tool


async def test_only_admins_register_and_delete_tools(
    runtime_servicer: ToolServicer, downstream: FakeDownstream
) -> None:
    create = tool_pb2.CreateToolRequest(tool_id="runtime", tool=_runtime_tool(downstream.url))
    delete = tool_pb2.DeleteToolRequest(name="tools/runtime")
    user = _principal("alice", ["*"])
    with _as(user):
        # Refused before the request is judged: a non-admin learns nothing from it.
        for request in (create, tool_pb2.CreateToolRequest()):
            with pytest.raises(PermissionDenied, match="needs the admin role"):
                await runtime_servicer.CreateTool(request, CONTEXT)
    with pytest.raises(NotFound):
        await _get(runtime_servicer, user, "runtime")

    admin = _principal("root", admin=True)
    with _as(admin):
        created = await runtime_servicer.CreateTool(create, CONTEXT)
    assert created.tool.name == "tools/runtime"
    assert (await _get(runtime_servicer, user, "runtime")).name == "tools/runtime"

    with _as(user), pytest.raises(PermissionDenied, match="needs the admin role"):
        await runtime_servicer.DeleteTool(delete, CONTEXT)
    assert (await _get(runtime_servicer, user, "runtime")).name == "tools/runtime"
    with _as(admin):
        await runtime_servicer.DeleteTool(delete, CONTEXT)
    with pytest.raises(NotFound):
        await _get(runtime_servicer, admin, "runtime")


async def test_only_admins_see_who_else_may_use_a_tool(servicer: ToolServicer) -> None:
    alice = _principal("alice", ["*"])
    admin = _principal("root", admin=True)
    assert list((await _get(servicer, alice, ALICE_ONLY)).allowed_consumers) == []
    assert list((await _get(servicer, admin, ALICE_ONLY)).allowed_consumers) == ["consumers/alice"]
    assert list((await _get(servicer, None, ALICE_ONLY)).allowed_consumers) == ["consumers/alice"]
    with _as(alice):
        listed = await servicer.ListTools(tool_pb2.ListToolsRequest(), CONTEXT)
    assert all(not tool.allowed_consumers for tool in listed.tools)
    assert f"tools/{ALICE_ONLY}" in [tool.name for tool in listed.tools]


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("${WEATHER_KEY}", "${WEATHER_KEY}"),
        ("Bearer ${TOKEN}", "Bearer ${TOKEN}"),
        ("${TOKEN:-pasted-default}", "${TOKEN:-[redacted]}"),
        ("sk-pasted-credential", "[redacted]"),
        ("", ""),
    ],
)
def test_header_values_show_references_and_never_a_literal_credential(
    written: str, shown: str
) -> None:
    assert shown_header(written) == shown
