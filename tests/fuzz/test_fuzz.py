"""Generated input to every public RPC and REST path, through Envoy: whatever a caller
sends, the answer is never a server fault for the caller's mistake, never shows the
gateway's internals, never hangs, and the stack stays healthy."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.plausible import PLAUSIBLE
from tests.fuzz.strategies import (
    messages,
    query_strings,
    raw_bytes,
    rest_bodies,
    rest_paths,
    texts,
)
from tests.fuzz.surfaces import grpc_methods, rest_rules
from tests.fuzz.verdicts import TALLY, check_grpc, check_rest
from tests.support.gateway import Gateway

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

DEADLINE = 10.0
VERBS = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"]


def _json(document: Any) -> bytes:
    """`document` as JSON; NaN tokens only where it holds NaN (then it is not JSON)."""
    try:
        return json.dumps(document, allow_nan=False).encode()
    except ValueError:
        return json.dumps(document, allow_nan=True).encode()


def _call(
    channel: grpc.Channel,
    path: str,
    streaming: bool,
    payload: bytes,
    metadata: tuple[tuple[str, str], ...],
) -> tuple[grpc.StatusCode, str, Any]:
    identity = lambda data: data  # noqa: E731 - bytes in, bytes out
    try:
        if streaming:
            stream = channel.unary_stream(
                path, request_serializer=identity, response_deserializer=identity
            )
            for _ in stream(payload, timeout=DEADLINE, metadata=metadata):
                pass
        else:
            unary = channel.unary_unary(
                path, request_serializer=identity, response_deserializer=identity
            )
            unary(payload, timeout=DEADLINE, metadata=metadata)
    except grpc.RpcError as error:
        return error.code(), error.details() or "", rpc_status.from_call(error)
    return grpc.StatusCode.OK, "", None


def _grpc_case(gw: Gateway, method: Any, payload: bytes, as_admin: bool, surface: str) -> None:
    metadata = tuple(gw.admin_metadata) if as_admin else ()
    with grpc.insecure_channel(gw.grpc_target) as channel:
        started = time.monotonic()
        code, message, status = _call(
            channel, method.path, method.server_streaming, payload, metadata
        )
    TALLY.count(surface, code.name)
    check_grpc(
        method.service, code, message, status, elapsed=time.monotonic() - started, deadline=DEADLINE
    )


@fuzz_settings("grpc")
@given(data=st.data())
def test_generated_messages_to_every_rpc(fuzz_gateway: Gateway, data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(grpc_methods()), label="method")
    shaped = PLAUSIBLE.get(method.input.full_name)
    request = None
    if shaped is not None and data.draw(st.booleans(), label="plausible"):
        with contextlib.suppress(json_format.ParseError, ValueError, TypeError):
            request = json_format.ParseDict(
                data.draw(shaped, label="shaped"),
                method.request_class()(),
                ignore_unknown_fields=True,
            )
    if request is None:
        request = data.draw(messages(method.input), label="request")
    as_admin = data.draw(st.integers(0, 4), label="as_admin") > 0
    _grpc_case(fuzz_gateway, method, request.SerializeToString(), as_admin, "grpc")


@fuzz_settings("raw")
@given(data=st.data())
def test_raw_bytes_to_every_rpc(fuzz_gateway: Gateway, data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(grpc_methods()), label="method")
    payload = data.draw(raw_bytes(), label="payload")
    _grpc_case(fuzz_gateway, method, payload, data.draw(st.booleans()), "raw")


@fuzz_settings("rest")
@given(data=st.data())
def test_generated_rest_requests(fuzz_gateway: Gateway, data: st.DataObject) -> None:
    gw = fuzz_gateway
    rule = data.draw(st.sampled_from(rest_rules()), label="rule")
    verb = data.draw(st.sampled_from([rule.verb, rule.verb, rule.verb, *VERBS]), label="verb")
    path = data.draw(rest_paths(rule.template), label="path")
    query = data.draw(query_strings(), label="query")
    shaped = PLAUSIBLE.get(rule.method.input.full_name)
    if shaped is not None and rule.body == "*" and data.draw(st.booleans(), label="plausible"):
        document = data.draw(shaped, label="shaped")
        if rule.template == "/v1/chat/completions":
            document["stream"] = data.draw(st.booleans(), label="stream")
        body, content_type = _json(document), "application/json"
    else:
        body, content_type = data.draw(rest_bodies(rule), label="body")
    headers = {"content-type": content_type} if content_type else {}
    if data.draw(st.booleans(), label="as_admin"):
        headers.update(dict(gw.admin_metadata))
    extra = data.draw(
        st.dictionaries(
            st.sampled_from(["idempotency-key", "grpc-timeout", "x-request-id", "accept"]),
            texts().map(lambda t: t[:200]),
            max_size=2,
        ),
        label="headers",
    )
    # What an HTTP client can send: printable ASCII, no surrounding whitespace (a field
    # value's outer whitespace is not part of it; the client library refuses it).
    headers.update(
        {k: v for k, v in extra.items() if v.isprintable() and v.isascii() and v == v.strip()}
    )
    url = f"{path}?{query}" if query else path
    started = time.monotonic()
    with httpx.Client(base_url=gw.public_url, timeout=DEADLINE) as client:
        response = client.request(
            verb, url, content=body if verb not in ("GET", "HEAD") else None, headers=headers
        )
    TALLY.count("rest", str(response.status_code))
    check_rest(
        rule.method.service,
        response.status_code,
        response.content,
        verb,
        elapsed=time.monotonic() - started,
        deadline=DEADLINE,
    )


def test_the_stack_is_healthy_afterwards(fuzz_gateway: Gateway) -> None:
    gw = fuzz_gateway
    for replicas in gw.stack.replicas.values():
        for replica in replicas:
            assert replica.process.returncode is None, f"{replica.name} died"
    with httpx.Client(base_url=gw.public_url, timeout=30) as client:
        answer = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    assert answer.status_code == 200, answer.text
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{gw.stack.ops_url}/ready").status_code == 200
    print("\nfuzz inputs per surface:", dict(TALLY.inputs))
    print("fuzz answers:", dict(sorted(TALLY.answers.items())))
