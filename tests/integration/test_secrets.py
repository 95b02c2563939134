"""No secret appears in what the gateway writes or answers.

A gateway of its own requires keys, logs at DEBUG (the most it ever writes) and keeps its
data in a Redis that needs a password. A representative set of calls (chat unary and
streamed over REST and gRPC, errors of every kind, the admin API, sessions, tools, usage)
runs against it; then every response body and header, every line of every service's log
and of Envoy's (its access log included), every service's metrics and Envoy's, the
rendered Envoy config, the launcher's output and its summary are searched for every
configured secret: the bootstrap admin key,
the internal secret and the edge token derived from it, the Redis password, the fakes'
provider API keys, the tools' header credentials, an issued API key, and anything shaped
like a principal assertion.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format, struct_pb2

from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.identity.assertion import edge_token
from services.launcher.processes import free_port, port_open
from services.launcher.redis_process import redis_process
from services.tool.access import REDACTED_HEADER
from tests.fakes import Behaviour
from tests.support.gateway import FAKE_KEYS, FAKE_WEATHER_KEY, Gateway, running_gateway

pytestmark = pytest.mark.integration

ADMIN_KEY = "secrets-test-admin-key-" + uuid.uuid4().hex
REDIS_PASSWORD = "redis-password-" + uuid.uuid4().hex
LITERAL_TOOL_SECRET = "literal-tool-credential-" + uuid.uuid4().hex
# A principal assertion: `v1.<payload>.<43-character signature>`.
ASSERTION_SHAPE = re.compile(r"v1\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{43}")


@dataclass
class Secured:
    gw: Gateway
    launcher_output: list[str]
    # Every response seen: (what was asked, status, headers and body as text).
    seen: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    run_dir = tmp_path_factory.mktemp("secrets")
    port = free_port()
    redis = redis_process(run_dir / "redis-data", port)
    server = subprocess.Popen(
        [*redis.argv, "--requirepass", REDIS_PASSWORD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if port_open("127.0.0.1", port):
                break
            server.poll()
            assert server.returncode is None, "redis did not start"
            subprocess.run(["sleep", "0.05"], check=True)
        lines: list[str] = []
        with running_gateway(
            run_dir,
            env=lambda fakes: {"LLMGW_AUTH": "required", "LLMGW_ADMIN_KEY": ADMIN_KEY},
            redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
            progress=lines.append,
            log_level="DEBUG",
        ) as gw:
            yield Secured(gw, lines)
    finally:
        server.terminate()
        server.wait(10)


def _record(secured: Secured, what: str, response: httpx.Response) -> httpx.Response:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    secured.seen.append((what, f"{response.status_code}\n{headers}\n{response.text}"))
    return response


async def _rest_calls(secured: Secured) -> str:
    """Drives the REST calls; returns the API key it had issued (a secret too)."""
    gw = secured.gw
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    suffix = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=30) as client:

        async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
            response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
            return _record(secured, f"{method} {path}", response)

        group = await call(
            "POST",
            "/v1/admin/groups",
            params={"group_id": f"g-{suffix}"},
            json={
                "allowed_models": ["*"],
                "allowed_tools": ["*"],
                "allowed_services": ["router", "session", "tool"],
            },
            headers=admin,
        )
        assert group.status_code == 200, group.text
        consumer = await call(
            "POST",
            "/v1/admin/consumers",
            params={"consumer_id": f"c-{suffix}"},
            json={"groups": [f"groups/g-{suffix}"]},
            headers=admin,
        )
        assert consumer.status_code == 200, consumer.text
        # The one answer that carries a secret by design (shown once): not recorded.
        issued = await client.post(f"/v1/admin/consumers/c-{suffix}/keys", json={}, headers=admin)
        assert issued.status_code == 200, issued.text
        key = str(issued.json()["secret"])
        who = {"authorization": f"Bearer {key}"}
        assert (await call("GET", f"/v1/admin/consumers/c-{suffix}/keys", headers=admin)).is_success
        assert (await call("GET", "/v1/admin/routing", headers=admin)).is_success
        assert (await call("POST", "/v1/admin/catalog:reload", json={}, headers=admin)).is_success

        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}
        assert (await call("POST", "/v1/chat/completions", json=chat, headers=who)).is_success
        streamed = await call(
            "POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=who
        )
        assert streamed.is_success and "data:" in streamed.text
        claude = {**chat, "model": "claude-sonnet"}
        assert (await call("POST", "/v1/chat/completions", json=claude, headers=who)).is_success

        # Errors: no key, a wrong key, the admin key's near miss, a bad field, an unknown
        # model, a body that does not decode, an upstream failure.
        statuses = [
            (await call("POST", "/v1/chat/completions", json=chat)).status_code,
            (
                await call(
                    "POST",
                    "/v1/chat/completions",
                    json=chat,
                    headers={"authorization": f"Bearer {key[:-3]}abc"},
                )
            ).status_code,
            (
                await call(
                    "GET", "/v1/admin/consumers", headers={"x-api-key": ADMIN_KEY[:-1] + "x"}
                )
            ).status_code,
            (
                await call(
                    "POST", "/v1/chat/completions", json={**chat, "temperature": 9}, headers=who
                )
            ).status_code,
            (
                await call(
                    "POST", "/v1/chat/completions", json={**chat, "model": "nope"}, headers=who
                )
            ).status_code,
            (await call("GET", "/v1/models/%FF", headers=who)).status_code,
        ]
        assert statuses == [401, 401, 401, 400, 404, 400]
        with gw.fakes["openai"].control() as control:
            control.script(Behaviour(status=400, error_message="upstream refused it"))
        failed = await call("POST", "/v1/chat/completions", json=chat, headers=who)
        assert failed.status_code == 400 and "upstream refused it" in failed.text, failed.text

        # Sessions.
        session = await call("POST", "/v1/sessions", json={}, headers=who)
        name = session.json()["session"]["name"]
        with_session = {**chat, "gateway": {"session": name}}
        assert (
            await call("POST", "/v1/chat/completions", json=with_session, headers=who)
        ).is_success
        assert (await call("GET", f"/v1/{name}/messages", headers=who)).is_success
        assert (await call("GET", "/v1/sessions", headers=who)).is_success

        # Tools, and usage.
        assert (await call("GET", "/v1/tools", headers=who)).is_success
        assert (await call("GET", "/v1/tools/weather", headers=who)).is_success
        executed = await call(
            "POST", "/v1/tools/weather:execute", json={"arguments": {"city": "Oslo"}}, headers=who
        )
        assert executed.is_success, executed.text
        assert (await call("GET", "/v1/usage", headers=who)).is_success
        others = await call("GET", "/v1/usage", params={"subject": "consumers/x"}, headers=admin)
        assert others.is_success
    return key


async def _grpc_calls(secured: Secured, key: str) -> None:
    gw = secured.gw
    who = (("authorization", f"Bearer {key}"),)
    admin = (("authorization", f"Bearer {ADMIN_KEY}"),)
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        router = router_service_pb2_grpc.RouterServiceStub(channel)
        request = chat_pb2.CreateChatCompletionRequest(
            model="gpt-4o-mini",
            messages=[
                chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="Hi"))
            ],
        )
        reply = await router.CreateChatCompletion(request, metadata=who, timeout=10)
        secured.seen.append(("grpc CreateChatCompletion", str(reply)))
        async for chunk in router.StreamChatCompletion(request, metadata=who, timeout=10):
            secured.seen.append(("grpc StreamChatCompletion", str(chunk)))

        # A tool with a credential written literally in its definition.
        tools = tool_grpc.ToolServiceStub(channel)
        tool = tool_pb2.Tool(
            description="A tool with a pasted credential.",
            http=tool_pb2.HttpExecutor(
                method="GET",
                url_template=gw.fakes["downstream"].root_url + "/weather/{city}",
                headers={"X-Api-Key": LITERAL_TOOL_SECRET, "X-Weather": "${FAKE_WEATHER_KEY}"},
            ),
        )
        json_format.ParseDict(
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            tool.parameters,
        )
        tool_id = f"pasted_{uuid.uuid4().hex[:8]}"
        created = await tools.CreateTool(
            tool_pb2.CreateToolRequest(tool_id=tool_id, tool=tool), metadata=admin, timeout=10
        )
        fetched = await tools.GetTool(
            tool_pb2.GetToolRequest(name=f"tools/{tool_id}"), metadata=admin, timeout=10
        )
        listed = await tools.ListTools(
            tool_pb2.ListToolsRequest(page_size=1000), metadata=who, timeout=10
        )
        for what, message in (("CreateTool", created), ("GetTool", fetched), ("ListTools", listed)):
            secured.seen.append((f"grpc {what}", str(message)))
        assert dict(fetched.tool.http.headers) == {
            "X-Api-Key": REDACTED_HEADER,
            "X-Weather": "${FAKE_WEATHER_KEY}",
        }
        ran = await tools.ExecuteTool(
            tool_pb2.ExecuteToolRequest(
                name=f"tools/{tool_id}",
                arguments=struct_pb2.Struct(fields={"city": struct_pb2.Value(string_value="Rome")}),
            ),
            metadata=who,
            timeout=10,
        )
        secured.seen.append(("grpc ExecuteTool", str(ran)))


def _metrics(gw: Gateway) -> list[tuple[str, str]]:
    """Every replica's Prometheus metrics, and Envoy's."""
    pages = [
        (f"{replica.name} /metrics", f"http://127.0.0.1:{replica.metrics_port}/metrics")
        for replicas in gw.stack.replicas.values()
        for replica in replicas
    ]
    pages.append(("envoy /stats/prometheus", f"{gw.admin_url}/stats/prometheus"))
    return [(name, httpx.get(url, timeout=10).text) for name, url in pages]


def _written(gw: Gateway) -> list[tuple[str, str]]:
    """Everything the gateway itself wrote under its run directory: each service's log,
    Envoy's log (its access log included) and its rendered config."""
    run_dir = Path(gw.stack.options.run_dir)
    files = [
        path
        for path in sorted((run_dir / "logs").glob("*.log"))
        if not path.name.startswith("fake-")
    ]
    files.append(run_dir / "envoy.yaml")
    return [(str(path.name), path.read_text(errors="replace")) for path in files]


async def test_no_secret_is_ever_written_or_answered(secured: Secured) -> None:
    gw = secured.gw
    key = await _rest_calls(secured)
    await _grpc_calls(secured, key)

    secrets = {
        "the bootstrap admin key": ADMIN_KEY,
        "the internal secret": gw.internal_secret,
        "the edge token": edge_token(gw.internal_secret),
        "the Redis password": REDIS_PASSWORD,
        "the OpenAI key": FAKE_KEYS["openai"],
        "the Anthropic key": FAKE_KEYS["anthropic"],
        "a tool's header credential (environment)": FAKE_WEATHER_KEY,
        "a tool's header credential (literal)": LITERAL_TOOL_SECRET,
        "an issued API key": key,
    }
    written = _written(gw)
    # The scan looks at enough to mean something.
    logs = dict(written)
    assert any('"code":"OK"' in text for name, text in logs.items() if name.startswith("router"))
    assert "upstream_cluster" in logs["envoy.log"]
    assert len(secured.seen) > 30

    metrics = _metrics(gw)
    assert any("llmgw_auth_failures_total" in text for _, text in metrics)
    places = [
        *written,
        *metrics,
        *secured.seen,
        ("launcher output", "\n".join(secured.launcher_output)),
        ("launcher summary", gw.stack.summary()),
    ]
    leaks = [
        f"{what} in {where}"
        for where, text in places
        for what, secret in secrets.items()
        if secret in text
    ]
    leaks += [
        f"a principal assertion in {where}"
        for where, text in places
        if ASSERTION_SHAPE.search(text)
    ]
    assert leaks == []
    # The summary still says where Redis is, without its password.
    assert f"redis://:***@127.0.0.1:{gw.stack.redis_url.rsplit(':', 1)[1]}" in gw.stack.summary()
