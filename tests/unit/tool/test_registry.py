"""The registry over a real Redis: static and run-time tools, replicas sharing the
run-time tools, restarts, Redis outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import json_format

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.errors import GatewayError
from services.common.redis_store import create_redis
from services.common.tool_config import BUILTIN_TOOL_IDS, ToolDefinition
from services.common.validation import Violations
from services.tool.registry import ToolRegistry, static_entries
from services.tool.runtime_store import TOOLS_KEY, RuntimeStore
from services.tool.tool_checks import check_tool
from tests.conftest import RedisServer
from tests.fakes import FakeDownstream
from tests.unit.tool.conftest import WEATHER_SCHEMA, tools_config, tools_section

MakeRegistry = Callable[..., ToolRegistry]


@pytest.fixture
async def make_registry(
    redis_server: RedisServer, downstream: FakeDownstream
) -> AsyncIterator[MakeRegistry]:
    """Registries (= tool replicas), each with its own Redis client; stopped after."""
    made: list[tuple[ToolRegistry, aioredis.Redis]] = []

    def make(**section: Any) -> ToolRegistry:
        client = create_redis(redis_server.url)
        registry = ToolRegistry(
            RuntimeStore(client), tools_config(tools_section(downstream, **section))
        )
        made.append((registry, client))
        return registry

    yield make
    for registry, client in made:
        await registry.stop()
        await client.aclose()


def _tool(url: str, description: str = "Echoes the weather.") -> tool_pb2.Tool:
    tool = tool_pb2.Tool(
        description=description,
        http=tool_pb2.HttpExecutor(method="GET", url_template=url + "/weather/{city}"),
    )
    json_format.ParseDict(WEATHER_SCHEMA, tool.parameters)
    return tool


def _definition(registry: ToolRegistry, tool_id: str, tool: tool_pb2.Tool) -> ToolDefinition:
    violations = Violations()
    definition = check_tool(violations, tool_id, tool, registry.allow_list)
    assert definition is not None, violations.items
    return definition


async def _create(registry: ToolRegistry, tool_id: str, tool: tool_pb2.Tool) -> None:
    await registry.create(tool_id, tool, _definition(registry, tool_id, tool))


async def _eventually(condition: Callable[[], bool], within: float) -> float:
    """Seconds until `condition` held; fails after `within`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "not within the time allowed"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_builtins_are_registered_only_with_their_downstream(downstream: FakeDownstream) -> None:
    every = static_entries(tools_config(tools_section(downstream)), {})
    assert set(every) == {*BUILTIN_TOOL_IDS, "weather"}
    search_only = static_entries(
        tools_config(tools_section(downstream, downstream={"search_url": downstream.url})), {}
    )
    assert set(search_only) == {"search_corpus", "get_chunk", "weather"}
    assert search_only["get_chunk"].source == tool_pb2.TOOL_SOURCE_BUILTIN
    assert search_only["weather"].source == tool_pb2.TOOL_SOURCE_CONFIG
    public = search_only["get_chunk"].public
    assert public.http.url_template == downstream.url + "/chunks/{chunk_id}"
    assert public.timeout.ToNanoseconds() == 5 * 10**9
    assert public.max_output_bytes == 65536


def test_file_tools_keep_header_references(downstream: FakeDownstream) -> None:
    definition = {
        "name": "keyed",
        "description": "d",
        "parameters": {"type": "object"},
        "http": {
            "method": "GET",
            "url_template": downstream.url + "/weather/x",
            "headers": {"Authorization": "Bearer expanded-by-the-loader"},
        },
    }
    config = tools_config(tools_section(downstream, definitions=[definition]))
    entry = static_entries(config, {"keyed": {"Authorization": "Bearer ${KEY}"}})["keyed"]
    assert entry.headers == {"Authorization": "Bearer ${KEY}"}
    assert dict(entry.public.http.headers) == {"Authorization": "Bearer ${KEY}"}


async def test_created_tools_reach_every_replica_within_a_second(
    make_registry: MakeRegistry, downstream: FakeDownstream
) -> None:
    first, second = make_registry(), make_registry()
    for registry in (first, second):
        await registry.refresh()
        registry.start()
    await _create(first, "echo", _tool(downstream.url))
    assert first.require("echo").source == tool_pb2.TOOL_SOURCE_RUNTIME
    await _eventually(lambda: second.get("echo") is not None, within=1.0)
    assert second.require("echo").public == first.require("echo").public
    await second.delete("echo")
    assert second.get("echo") is None
    await _eventually(lambda: first.get("echo") is None, within=1.0)


async def test_runtime_tools_survive_a_restart(
    make_registry: MakeRegistry, downstream: FakeDownstream
) -> None:
    await _create(make_registry(), "echo", _tool(downstream.url))
    restarted = make_registry()
    assert restarted.get("echo") is None
    await restarted.refresh()
    listed = [e.tool_id for e in restarted.entries()]
    assert listed == sorted([*BUILTIN_TOOL_IDS, "echo", "weather"])


async def test_ids_are_unique_and_static_tools_stay(
    make_registry: MakeRegistry, downstream: FakeDownstream
) -> None:
    registry = make_registry()
    await _create(registry, "echo", _tool(downstream.url))
    for taken in ("echo", "weather", "search_corpus"):
        with pytest.raises(GatewayError) as caught:
            await _create(registry, taken, _tool(downstream.url, "another"))
        assert caught.value.code is grpc.StatusCode.ALREADY_EXISTS
    for static in ("weather", "get_chunk"):
        with pytest.raises(GatewayError) as refused:
            await registry.delete(static)
        assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(GatewayError) as missing:
        await registry.delete("nothing")
    assert missing.value.code is grpc.StatusCode.NOT_FOUND


async def test_a_concurrent_create_of_one_id_has_one_winner(
    make_registry: MakeRegistry, downstream: FakeDownstream
) -> None:
    first, second = make_registry(), make_registry()
    outcomes = await asyncio.gather(
        _create(first, "echo", _tool(downstream.url, "first")),
        _create(second, "echo", _tool(downstream.url, "second")),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, GatewayError)]
    assert len(failures) == 1 and failures[0].code is grpc.StatusCode.ALREADY_EXISTS


async def test_redis_down_keeps_lookups_and_refuses_changes(
    make_registry: MakeRegistry, redis_server: RedisServer, downstream: FakeDownstream
) -> None:
    registry = make_registry()
    await _create(registry, "echo", _tool(downstream.url))
    await redis_server.process.stop()
    assert registry.require("weather").tool_id == "weather"
    assert registry.require("echo").tool_id == "echo"
    with pytest.raises(GatewayError) as create:
        await _create(registry, "other", _tool(downstream.url))
    assert create.value.code is grpc.StatusCode.UNAVAILABLE
    with pytest.raises(GatewayError) as delete:
        await registry.delete("echo")
    assert delete.value.code is grpc.StatusCode.UNAVAILABLE
    assert create.value.retry_after is not None


async def test_a_stored_tool_that_no_longer_validates_is_skipped(
    make_registry: MakeRegistry, redis_server: RedisServer, downstream: FakeDownstream
) -> None:
    client = create_redis(redis_server.url)
    try:
        await client.hset(TOOLS_KEY, mapping={"garbage": b"\xff\xff", "empty": b""})
    finally:
        await client.aclose()
    registry = make_registry()
    await registry.refresh()
    assert registry.get("garbage") is None and registry.get("empty") is None
    assert registry.get("weather") is not None


async def test_reconfigure_swaps_the_file_tools_and_keeps_the_runtime_ones(
    make_registry: MakeRegistry, downstream: FakeDownstream
) -> None:
    registry = make_registry()
    await registry.refresh()
    await _create(registry, "echo", _tool(downstream.url))
    assert {"weather", "echo"} <= {e.public.name.removeprefix("tools/") for e in registry.entries()}

    # The file now names only the search service and another tool; the allow-list shrinks.
    renamed = {
        "name": "forecast",
        "description": "Tomorrow's weather.",
        "parameters": WEATHER_SCHEMA,
        "http": {"method": "GET", "url_template": downstream.url + "/weather/{city}"},
    }
    registry.reconfigure(
        tools_config(
            tools_section(
                downstream,
                downstream={"search_url": downstream.url},
                definitions=[renamed],
                default_timeout_seconds=2,
            )
        )
    )
    assert registry.get("weather") is None and registry.get("review_code") is None
    assert registry.get("forecast") is not None
    assert await registry.refresh()
    echo = registry.get("echo")
    assert echo is not None and echo.public.timeout.ToNanoseconds() == 2 * 10**9
