"""Investigations through Envoy, on a gateway that requires keys, with two investigation
replicas, the Kubernetes toolset over the fake Kubernetes API (a crash-looping pod) and a
scripted model: REST and gRPC, events streamed and resumed, evidence verified, owner
isolation, limits giving partial results, cancel, a takeover after kill -9, the
Alertmanager webhook's dedup, and follow-up questions kept in a session."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from eval.scoring import evidence_valid, stored_evidence
from llmgw.identity.v1 import identity_pb2
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.investigation.v1 import investigation_service_pb2_grpc as inv_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.launcher.stack import REPO_ROOT
from tests.fakes import Behaviour, ToolCallSpec
from tests.support.gateway import DEFAULT_ADMIN_KEY, Gateway, running_gateway
from tests.support.identity import Identity, create_identity

pytestmark = pytest.mark.integration

MODEL = "investigator"
UPSTREAM_MODEL = "inv-model"
SLOW_MODEL = "slow-investigator"
SLOW_UPSTREAM = "inv-slow-model"
NS = "shop"
POD = "payments-5c8d7f9b6-x2x7q"
KUBE_TOKEN = "fake-kube-token-0123456789"
FINAL = {
    inv_pb2.INVESTIGATION_STATE_SUCCEEDED,
    inv_pb2.INVESTIGATION_STATE_FAILED,
    inv_pb2.INVESTIGATION_STATE_CANCELLED,
}


def _kubeconfig(path: Path, port: int) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "reader", "user": {"token": KUBE_TOKEN}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "reader"}}],
                "current-context": "fake",
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fake Kubernetes API (crash-looping payments pod) and a kubeconfig for it."""
    run_dir = tmp_path_factory.mktemp("kube")
    port_file = run_dir / "kube.port"
    log = (run_dir / "kube.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.kubernetes_fake",
            "--scenario",
            "crashloop",
            "--token",
            KUBE_TOKEN,
            "--port-file",
            str(port_file),
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, (run_dir / "kube.log").read_text()
            assert time.monotonic() < deadline, "the fake Kubernetes API did not start"
            time.sleep(0.05)
        yield _kubeconfig(run_dir / "kubeconfig", int(port_file.read_text()))
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _configure(document: dict[str, Any]) -> None:
    openai = [d for m in document["models"] for d in m["deployments"] if d["provider"] == "openai"]
    assert openai
    document["models"].append(
        {"name": MODEL, "deployments": [{"provider": "openai", "model": UPSTREAM_MODEL}]}
    )
    document["models"].append(
        {"name": SLOW_MODEL, "deployments": [{"provider": "openai", "model": SLOW_UPSTREAM}]}
    )
    document["investigations"] = {
        "default_model": MODEL,
        "claim_idle_seconds": 3,
        "heartbeat_seconds": 0.5,
        "context_cache_seconds": 0,
    }


@pytest.fixture(scope="module")
def igw(tmp_path_factory: pytest.TempPathFactory, kube: Path) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("investigations"),
        replicas={"investigation": 2},
        configure=_configure,
        env=lambda fakes: {"LLMGW_AUTH": "required", "KUBECONFIG": str(kube)},
    ) as gateway:
        yield gateway


@pytest.fixture
def gw(igw: Gateway) -> Gateway:
    igw.reset_fakes()
    return igw


def _group() -> identity_pb2.Group:
    return identity_pb2.Group(
        allowed_models=["*"], allowed_services=["router", "investigation", "session"]
    )


@pytest.fixture
async def alice(gw: Gateway) -> Identity:
    return await create_identity(gw.grpc_target, DEFAULT_ADMIN_KEY, group=_group(), prefix="inv")


@pytest.fixture
async def bob(gw: Gateway) -> Identity:
    return await create_identity(gw.grpc_target, DEFAULT_ADMIN_KEY, group=_group(), prefix="inv")


@pytest.fixture
async def rest(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=60) as client:
        yield client


@pytest.fixture
async def channel(gw: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as opened:
        yield opened


def _alert_body(**extra: Any) -> dict[str, Any]:
    return {
        "alert": {
            "alert_name": "KubePodCrashLooping",
            "namespace": NS,
            "labels": {"pod": POD, "container": "api", "severity": "critical"},
            "annotations": {"summary": "payments api is crash looping"},
        },
        **extra,
    }


def _conclusion() -> str:
    return json.dumps(
        {
            "summary": "The payments api exits at start: its configuration lacks a key.",
            "root_cause": "PAYMENT_API_KEY is not set, so the api exits at start.",
            "root_cause_evidence": [
                {
                    "tool_call_id": "{{cite:required key PAYMENT_API_KEY is not set}}",
                    "excerpt": "required key PAYMENT_API_KEY is not set",
                }
            ],
            "findings": [
                {
                    "title": "deployment payments has no available replica",
                    "detail": "its only pod crash-loops",
                    "evidence": [
                        {
                            "tool_call_id": "{{cite:MinimumReplicasUnavailable}}",
                            "excerpt": "MinimumReplicasUnavailable",
                        }
                    ],
                },
                {
                    "title": "the node's disk is full",
                    "detail": "an invented claim",
                    "evidence": [
                        {"tool_call_id": "{{cite:payments}}", "excerpt": "no space left on device"}
                    ],
                },
            ],
            "recommendations": ["Set PAYMENT_API_KEY in the payments configuration."],
            "confidence": 0.9,
        }
    )


def _script(gw: Gateway, model: str = UPSTREAM_MODEL, *, delay: float = 0.0) -> None:
    """The model lists the deployments, then concludes citing what it read."""
    gw.fakes["openai"].control().set_conversation(
        model,
        [
            Behaviour(
                tool_calls=[ToolCallSpec("kubernetes_list_deployments", '{"namespace": "shop"}')],
                delay=delay,
            ),
            Behaviour(text=_conclusion(), delay=delay),
        ],
    )


async def _events(
    rest: httpx.AsyncClient, name: str, who: Identity, after: int = 0
) -> list[dict[str, Any]]:
    """The investigation's events over SSE, until its final state."""
    events: list[dict[str, Any]] = []
    async with rest.stream(
        "GET", f"/v1/{name}:streamEvents", params={"after_sequence": after}, headers=who.headers
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip():
                events.append(json.loads(line[5:])["event"])
    return events


async def _wait_state(
    stub: inv_grpc.InvestigationServiceStub, name: str, who: Identity, states: Collection[int]
) -> inv_pb2.Investigation:
    deadline = time.monotonic() + 60
    while True:
        got = await stub.GetInvestigation(
            inv_pb2.GetInvestigationRequest(name=name), metadata=who.metadata, timeout=10
        )
        if got.investigation.state in states:
            return got.investigation
        assert time.monotonic() < deadline, f"still {got.investigation.state}"
        await asyncio.sleep(0.1)


def _check_evidence(result: inv_pb2.InvestigationResult) -> None:
    """Every stored evidence item quotes the output of the call it names, by the eval's
    own check (eval/scoring.py), which is independent of the service's."""
    calls = {c.id: c for c in result.tool_calls}
    items = stored_evidence(result)
    assert items
    for item in items:
        assert evidence_valid(item, calls), item


async def test_rest_create_stream_and_get_an_evidence_backed_result(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity, channel: grpc.aio.Channel
) -> None:
    _script(gw)
    created = await rest.post("/v1/investigations", json=_alert_body(), headers=alice.headers)
    assert created.status_code == 200, created.text
    body = created.json()["investigation"]
    assert body["state"] == "INVESTIGATION_STATE_QUEUED" and body["owner"] == alice.consumer
    name = body["name"]
    events = await _events(rest, name, alice)
    sequences = [int(e["sequence"]) for e in events]
    assert sequences == list(range(1, len(events) + 1))
    assert events[-1]["state"] == "INVESTIGATION_STATE_SUCCEEDED"
    assert "result" in events[-2]
    tools = [e["tool_call"]["tool"] for e in events if "tool_call" in e]
    assert "kubernetes_describe_pod" in tools and "kubernetes_list_deployments" in tools
    assert any(e.get("finding", {}).get("origin") == "analyzer:crash_loop" for e in events)

    stub = inv_grpc.InvestigationServiceStub(channel)
    got = (
        await stub.GetInvestigation(
            inv_pb2.GetInvestigationRequest(name=name), metadata=alice.metadata, timeout=10
        )
    ).investigation
    result = got.result
    assert got.state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED
    assert result.completeness == inv_pb2.COMPLETENESS_COMPLETE
    assert result.root_cause.startswith("PAYMENT_API_KEY is not set")
    assert [r.title for r in result.rejected_claims] == ["the node's disk is full"]
    assert result.confidence == pytest.approx(0.72)
    # The crash-loop analyzer rests its own root cause on the same log line.
    assert result.root_cause_support == inv_pb2.ROOT_CAUSE_SUPPORT_CORROBORATED
    assert result.root_cause_analyzer == "analyzer:crash_loop"
    titles = [f.title for f in result.findings if f.origin == "model"]
    assert titles == ["deployment payments has no available replica"]
    _check_evidence(result)
    assert got.usage.total_tokens > 0 and result.model == MODEL
    # The model read every context output and made one call of its own.
    model_calls = [c for c in result.tool_calls if c.requested_by == "model"]
    assert [c.tool for c in model_calls] == ["kubernetes_list_deployments"]
    assert model_calls[0].step == 1
    # The model calls' usage is recorded under the investigation too (admins read it).
    usage = await rest.get(
        "/v1/usage",
        params={"subject": name},
        headers={"authorization": f"Bearer {DEFAULT_ADMIN_KEY}"},
    )
    assert usage.status_code == 200, usage.text
    totals = usage.json()["totals"]
    assert int(totals["requests"]) == 2
    assert int(totals["input_tokens"]) + int(totals["output_tokens"]) == got.usage.total_tokens
    own = await rest.get("/v1/usage", params={"subject": name}, headers=alice.headers)
    assert own.status_code == 403
    # Resuming after a sequence gives the rest only.
    tail = await _events(rest, name, alice, after=len(events) - 2)
    assert [int(e["sequence"]) for e in tail] == sequences[-2:]


async def test_a_chat_caller_cannot_tag_usage_to_an_investigation(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity
) -> None:
    subject = "investigations/tagged-by-hand"
    chat = await rest.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers={**alice.headers, "x-llmgw-investigation": subject},
    )
    assert chat.status_code == 200, chat.text
    usage = await rest.get(
        "/v1/usage",
        params={"subject": subject},
        headers={"authorization": f"Bearer {DEFAULT_ADMIN_KEY}"},
    )
    assert int(usage.json()["totals"].get("requests", 0)) == 0


async def test_another_consumer_sees_nothing(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity, bob: Identity
) -> None:
    gw.fakes["openai"].control().set_conversation(UPSTREAM_MODEL, [Behaviour(text=_conclusion())])
    created = await rest.post("/v1/investigations", json=_alert_body(), headers=alice.headers)
    name = created.json()["investigation"]["name"]
    for method, path in (
        ("GET", f"/v1/{name}"),
        ("GET", f"/v1/{name}:streamEvents"),
        ("POST", f"/v1/{name}:cancel"),
        ("POST", f"/v1/{name}:chat"),
    ):
        body = {"message": "why?"} if path.endswith(":chat") else ({} if method == "POST" else None)
        response = await rest.request(method, path, json=body, headers=bob.headers)
        assert response.status_code == 404, (path, response.text)
        assert name in response.json()["message"]
    listed = await rest.get("/v1/investigations", headers=bob.headers)
    assert listed.json().get("investigations", []) == []
    mine = await rest.get("/v1/investigations", headers=alice.headers)
    assert name in [i["name"] for i in mine.json()["investigations"]]


async def test_grpc_run_streams_to_the_result_and_stores_it(
    gw: Gateway, alice: Identity, channel: grpc.aio.Channel
) -> None:
    _script(gw)
    stub = inv_grpc.InvestigationServiceStub(channel)
    spec = inv_pb2.Investigation(
        alert=inv_pb2.Alert(alert_name="KubePodCrashLooping", namespace=NS, labels={"pod": POD})
    )
    events = [
        r.event
        async for r in stub.RunInvestigation(
            inv_pb2.RunInvestigationRequest(investigation=spec, investigation_id="run-one-x"),
            metadata=alice.metadata,
            timeout=60,
        )
    ]
    assert events[0].state == inv_pb2.INVESTIGATION_STATE_QUEUED
    assert events[-1].state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED
    assert events[-2].WhichOneof("event") == "result"
    stored = await _wait_state(stub, "investigations/run-one-x", alice, FINAL)
    assert stored.result == events[-2].result


async def test_limits_give_a_partial_result_never_an_error(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity, channel: grpc.aio.Channel
) -> None:
    _script(gw)
    created = await rest.post(
        "/v1/investigations", json=_alert_body(limits={"max_tokens": 1}), headers=alice.headers
    )
    stub = inv_grpc.InvestigationServiceStub(channel)
    done = await _wait_state(stub, created.json()["investigation"]["name"], alice, FINAL)
    assert done.state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED
    assert done.result.completeness == inv_pb2.COMPLETENESS_PARTIAL
    assert done.result.partial_reason == inv_pb2.PARTIAL_REASON_TOKEN_BUDGET
    # What the analyzers established stays.
    assert any(f.origin == "analyzer:crash_loop" for f in done.result.findings)
    assert done.result.root_cause and done.result.confidence <= 0.6

    refused = await rest.post(
        "/v1/investigations", json=_alert_body(limits={"max_steps": 1000}), headers=alice.headers
    )
    assert refused.status_code == 400 and "investigation.limits.max_steps" in refused.text


async def test_cancel_a_running_investigation(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity, channel: grpc.aio.Channel
) -> None:
    _script(gw, SLOW_UPSTREAM, delay=30)
    created = await rest.post(
        "/v1/investigations", json=_alert_body(model=SLOW_MODEL), headers=alice.headers
    )
    name = created.json()["investigation"]["name"]
    stub = inv_grpc.InvestigationServiceStub(channel)
    await _wait_state(stub, name, alice, {inv_pb2.INVESTIGATION_STATE_RUNNING})
    started = time.monotonic()
    await rest.post(f"/v1/{name}:cancel", json={}, headers=alice.headers)
    done = await _wait_state(stub, name, alice, FINAL)
    assert time.monotonic() - started < 10
    assert done.state == inv_pb2.INVESTIGATION_STATE_CANCELLED
    assert done.result.partial_reason == inv_pb2.PARTIAL_REASON_CANCELLED


async def test_kill_9_of_the_worker_is_taken_over_without_repeating_calls(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity, channel: grpc.aio.Channel
) -> None:
    _script(gw, SLOW_UPSTREAM, delay=2)
    created = await rest.post(
        "/v1/investigations", json=_alert_body(model=SLOW_MODEL), headers=alice.headers
    )
    name = created.json()["investigation"]["name"]
    stub = inv_grpc.InvestigationServiceStub(channel)
    await _wait_state(stub, name, alice, {inv_pb2.INVESTIGATION_STATE_RUNNING})
    client = aioredis.from_url(gw.stack.redis_url)
    try:
        pending = await client.xpending_range("inv:queue", "workers", "-", "+", 10)
    finally:
        await client.aclose()
    holders = {
        str(p["consumer"], "utf-8") if isinstance(p["consumer"], bytes) else str(p["consumer"])
        for p in pending
    }
    replicas = gw.stack.replicas["investigation"]
    victims = [r for r in replicas if any(h.endswith(f"-{r.process.pid}") for h in holders)]
    assert len(victims) == 1, holders
    victims[0].process.kill()
    done = await _wait_state(stub, name, alice, FINAL)
    assert done.state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED and done.attempts == 2
    events = await _events(rest, name, alice)
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert any(e.get("progress", {}).get("stage") == "resumed" for e in events)
    calls = [
        (c.tool, json.dumps(dict(c.arguments), sort_keys=True)) for c in done.result.tool_calls
    ]
    assert len(calls) == len(set(calls)), "a tool call was repeated after the takeover"
    assert [c.id for c in done.result.tool_calls] == [f"c{i}" for i in range(1, len(calls) + 1)]
    _check_evidence(done.result)


async def test_alertmanager_webhook_opens_dedups_and_resolves(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity
) -> None:
    gw.fakes["openai"].control().set_conversation(UPSTREAM_MODEL, [Behaviour(text=_conclusion())])
    fingerprint = f"{time.time_ns():016x}"[-16:]
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "KubePodCrashLooping",
            "namespace": NS,
            "pod": POD,
            "severity": "critical",
        },
        "annotations": {"summary": "crash looping"},
        "startsAt": "2026-01-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }
    payload = {"version": "4", "status": "firing", "receiver": "llmgw", "alerts": [alert, alert]}
    first = await rest.post("/v1/alertmanager/webhook", json=payload, headers=alice.headers)
    assert first.status_code == 200, first.text
    outcomes = [r["outcome"] for r in first.json()["results"]]
    assert outcomes == ["WEBHOOK_OUTCOME_OPENED", "WEBHOOK_OUTCOME_DEDUPLICATED"]
    opened = first.json()["investigations"][0]
    assert opened["alert"]["source"] == "alertmanager"
    assert opened["alert"]["fingerprint"] == fingerprint
    assert opened["alert"]["priority"] == "PRIORITY_CRITICAL"  # from its severity label
    resolved = {**alert, "status": "resolved", "endsAt": "2026-01-01T11:00:00Z"}
    second = await rest.post(
        "/v1/alertmanager/webhook",
        json={**payload, "status": "resolved", "alerts": [resolved]},
        headers=alice.headers,
    )
    assert second.json()["results"][0]["outcome"] == "WEBHOOK_OUTCOME_RESOLVED"
    got = await rest.get(f"/v1/{opened['name']}", headers=alice.headers)
    assert got.json()["investigation"]["duplicate_alerts"] == 1
    assert got.json()["investigation"]["alert"]["resolved_at"].startswith("2026-01-01T11:00:00")
    bad = await rest.post(
        "/v1/alertmanager/webhook", json={**payload, "version": "3"}, headers=alice.headers
    )
    assert bad.status_code == 400 and "version" in bad.text


async def test_follow_up_questions_are_kept_in_a_session(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity, channel: grpc.aio.Channel
) -> None:
    _script(gw)
    created = await rest.post("/v1/investigations", json=_alert_body(), headers=alice.headers)
    name = created.json()["investigation"]["name"]
    stub = inv_grpc.InvestigationServiceStub(channel)
    await _wait_state(stub, name, alice, FINAL)
    gw.fakes["openai"].control().set_conversation(
        UPSTREAM_MODEL, [Behaviour(text="Because PAYMENT_API_KEY is missing.")]
    )
    first = await rest.post(f"/v1/{name}:chat", json={"message": "why?"}, headers=alice.headers)
    assert first.status_code == 200, first.text
    assert first.json()["answer"] == "Because PAYMENT_API_KEY is missing."
    session = first.json()["session"]
    second = await rest.post(
        f"/v1/{name}:chat", json={"message": "and then?"}, headers=alice.headers
    )
    assert second.json()["session"] == session
    sessions = session_grpc.SessionServiceStub(channel)
    held = await sessions.GetSession(
        session_pb2.GetSessionRequest(
            name=session, view=session_pb2.SESSION_VIEW_FULL, message_limit=100
        ),
        metadata=alice.metadata,
        timeout=10,
    )
    assert len(held.session.messages) == 4
    assert "PAYMENT_API_KEY" in held.session.system_prompt
    last = gw.fakes["openai"].control().completions()[-1].json
    assert "[c" in json.dumps(last["messages"][0])
    got = await rest.get(f"/v1/{name}", headers=alice.headers)
    assert got.json()["investigation"]["session"] == session
    # An operator who may read every investigation asks in a conversation of their own;
    # the investigation keeps naming its owner's.
    gw.fakes["openai"].control().set_conversation(UPSTREAM_MODEL, [Behaviour(text="Same.")])
    operator = await rest.post(
        f"/v1/{name}:chat", json={"message": "why?"}, headers=gw.admin_headers
    )
    assert operator.status_code == 200, operator.text
    assert operator.json()["session"] != session
    got = await rest.get(f"/v1/{name}", headers=alice.headers)
    assert got.json()["investigation"]["session"] == session


async def test_caller_mistakes_are_precise_400s(
    gw: Gateway, rest: httpx.AsyncClient, alice: Identity
) -> None:
    cases = [
        ({"alert": {}}, "investigation.alert.alert_name"),
        (_alert_body(toolsets=["ssh"]), "investigation.toolsets[0]"),
        ({"alert": {"alert_name": "A", "namespace": "Not_A_Namespace"}}, "namespace"),
        ({"alert": {"alert_name": "A", "labels": {"bad-key": "x"}}}, "labels"),
    ]
    for body, field in cases:
        response = await rest.post("/v1/investigations", json=body, headers=alice.headers)
        assert response.status_code == 400, (body, response.text)
        assert field in response.text
    taken = await rest.post(
        "/v1/investigations?investigation_id=same-id-1", json=_alert_body(), headers=alice.headers
    )
    again = await rest.post(
        "/v1/investigations?investigation_id=same-id-1", json=_alert_body(), headers=alice.headers
    )
    assert taken.status_code == 200 and again.status_code == 409
