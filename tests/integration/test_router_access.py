"""What a consumer may reach through the router, and whose its usage and cache are.

On the secured gateway (keys required, three routers): model and provider ACLs decide
before any provider call, gateway tools need the tool ACL, the model list shows only
what the caller may use, usage is recorded per consumer and per group, and the
response cache keeps one namespace per consumer group unless the group shares it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from llmgw.identity.v1 import identity_pb2
from tests.conftest import SECURED_ADMIN_KEY
from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import Gateway
from tests.support.identity import Identity, create_identity

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(sgw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sgw.public_url, timeout=15) as opened:
        yield opened


def _body(model: str, text: str = "hello", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


async def _member(sgw: Gateway, **group: Any) -> Identity:
    spec = identity_pb2.Group(allowed_services=["router"], **group)
    return await create_identity(sgw.grpc_target, SECURED_ADMIN_KEY, group=spec)


def _completions(sgw: Gateway, kind: str) -> int:
    with sgw.fakes[kind].control() as control:
        return len(control.completions())


async def test_a_model_outside_the_acl_is_refused_before_any_provider_call(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    who = await _member(sgw, allowed_models=["claude-*"])
    refused = await client.post(
        "/v1/chat/completions", json=_body("gpt-4o-mini"), headers=who.headers
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["message"] == (
        f"model 'gpt-4o-mini' is not allowed for {who.consumer}"
    )
    assert _completions(sgw, "openai") == 0
    allowed = await client.post(
        "/v1/chat/completions", json=_body("claude-sonnet"), headers=who.headers
    )
    assert allowed.status_code == 200, allowed.text


async def test_an_alias_grants_the_model_only_by_that_alias(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    who = await _member(sgw, allowed_models=["fast"])
    by_alias = await client.post("/v1/chat/completions", json=_body("fast"), headers=who.headers)
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["model"] == "gpt-4o-mini"
    by_name = await client.post(
        "/v1/chat/completions", json=_body("gpt-4o-mini"), headers=who.headers
    )
    assert by_name.status_code == 403


async def test_provider_restrictions_remove_deployments(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    who = await _member(sgw, allowed_models=["*"], allowed_providers=["anthropic"])
    refused = await client.post(
        "/v1/chat/completions", json=_body("gpt-4o-mini"), headers=who.headers
    )
    assert refused.status_code == 403, refused.text
    assert "on any provider that serves it" in refused.json()["error"]["message"]
    assert _completions(sgw, "openai") == 0
    streamed = await client.post(
        "/v1/chat/completions", json=_body("claude-sonnet", stream=True), headers=who.headers
    )
    assert streamed.status_code == 200
    assert '"finish_reason":"stop"' in streamed.text


async def test_the_model_list_shows_only_allowed_models(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    who = await _member(sgw, allowed_models=["claude-*", "llama"])
    listed = await client.get("/v1/models", headers=who.headers)
    assert listed.status_code == 200, listed.text
    ids = {model["id"] for model in listed.json()["data"]}
    assert {"claude-sonnet", "llama"} <= ids
    assert not ids & {"gpt-4o-mini", "cached-mini"}
    one = await client.get("/v1/models/gpt-4o-mini", headers=who.headers)
    assert one.status_code == 403


async def test_gateway_tools_need_the_tool_acl(sgw: Gateway, client: httpx.AsyncClient) -> None:
    who = await _member(sgw, allowed_models=["*"], allowed_tools=["weather"])
    refused = await client.post(
        "/v1/chat/completions",
        json=_body("gpt-4o-mini", gateway={"tools": ["search_corpus"]}),
        headers=who.headers,
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["message"] == (
        f"tool 'search_corpus' is not allowed for {who.consumer}"
    )
    assert _completions(sgw, "openai") == 0


async def test_usage_is_recorded_for_the_consumer_and_its_group(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    who = await _member(sgw, allowed_models=["*"])
    answered = await client.post(
        "/v1/chat/completions", json=_body("gpt-4o-mini"), headers=who.headers
    )
    assert answered.status_code == 200, answered.text
    for subject in ("", who.consumer, who.group):
        usage = await client.get("/v1/usage", params={"subject": subject}, headers=who.headers)
        assert usage.status_code == 200, usage.text
        assert usage.json()["totals"]["requests"] == "1", subject
    admin = {"authorization": f"Bearer {SECURED_ADMIN_KEY}"}
    anonymous = await client.get(
        "/v1/usage", params={"subject": "consumers/anonymous"}, headers=admin
    )
    assert anonymous.json()["totals"]["requests"] == "0"


async def test_the_cache_keeps_one_namespace_per_group_unless_shared(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    alice = await _member(sgw, allowed_models=["*"])
    bob = await _member(sgw, allowed_models=["*"])
    carol = await _member(sgw, allowed_models=["*"], shared_cache=True)
    dave = await _member(sgw, allowed_models=["*"], shared_cache=True)
    body = _body("cached-mini", f"namespaces {uuid.uuid4().hex}")

    async def status(who: Identity) -> str:
        reply = await client.post("/v1/chat/completions", json=body, headers=who.headers)
        assert reply.status_code == 200, reply.text
        return reply.headers["x-llmgw-cache"]

    assert await status(alice) == "miss"
    assert await status(alice) == "hit"
    assert await status(bob) == "miss"  # another group: another namespace
    assert await status(carol) == "miss"  # the shared namespace is separate from groups'
    assert await status(dave) == "hit"  # both groups share it
    assert _completions(sgw, "openai") == 3


async def test_gateway_tools_run_in_the_tool_service_under_the_callers_key(
    sgw: Gateway, client: httpx.AsyncClient
) -> None:
    """The router runs gateway tools through the Tool service with the caller's key, so
    a loop needs the tool in `allowed_tools` and the `tool` service."""
    call = Behaviour(
        tool_calls=[ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="c1")],
        usage=(10, 4),
    )
    body = _body("gpt-4o-mini", "Weather?", gateway={"tools": ["weather"]})

    allowed = await create_identity(
        sgw.grpc_target,
        SECURED_ADMIN_KEY,
        group=identity_pb2.Group(
            allowed_models=["*"], allowed_tools=["weather"], allowed_services=["router", "tool"]
        ),
    )
    with sgw.fakes["openai"].control() as control:
        control.script(call, Behaviour(text="Mild.", usage=(20, 3)))
    answered = await client.post("/v1/chat/completions", json=body, headers=allowed.headers)
    assert answered.status_code == 200, answered.text
    assert answered.json()["choices"][0]["message"]["content"] == "Mild."
    assert answered.headers["x-llmgw-tool-iterations"] == "2"

    without_service = await _member(sgw, allowed_models=["*"], allowed_tools=["weather"])
    refused = await client.post("/v1/chat/completions", json=body, headers=without_service.headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["message"] == (
        f"the tool service is not allowed for {without_service.consumer}"
    )
