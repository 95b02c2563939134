"""Canned gRPC servicers that stand behind Envoy in the data-plane tests.

The request's `model` selects the behaviour, so a test steers a replica through Envoy
without any side channel:

- `status:<CODE>`: abort with that gRPC code and google.rpc.Status details (ErrorInfo,
  BadRequest), before any stream chunk.
- `fail-after:<n>` (stream): send n chunks, then abort with UNAVAILABLE and details.
- `slow:<ms>`: answer after that many milliseconds.
- `block:<ms>`: hold the replica's whole event loop that long (a busy process: calls
  arriving meanwhile wait in gRPC's queue of calls not yet accepted), then echo.
- `hang-once:<key>` (CreateChatCompletion, GetModel): count the call under `key` in
  the directory `$LLMGW_FAKE_CALLS_DIR` (one line per call, naming the replica); the
  first call of a key never answers (a test kills its replica), later ones echo.
- `flags`: the content says which RPC answered and the request's `stream` field.
- `shape`: a response exercising proto3 `optional` and repeated fields (print options).
- anything else: echo the model.

Every response carries the replica name (in `id` and the `x-replica` header) and the
x-request-id the replica saw (`x-seen-request-id`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import chat_pb2
from llmgw.router.v1 import router_service_pb2 as router_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc

CREATED = 1_700_000_000
STREAM_CHUNKS = 5
STREAM_INTERVAL_S = 0.05
CALLS_DIR_ENV = "LLMGW_FAKE_CALLS_DIR"
HANG_ONCE = "hang-once:"


def recorded_calls(calls_dir: Path, key: str) -> list[str]:
    """The replicas that received a `hang-once:<key>` call, in order."""
    path = calls_dir / key
    return path.read_text().split() if path.exists() else []


async def _hang_once(model: str, replica: str) -> None:
    """Records a `hang-once:<key>` call; the first one of its key never returns."""
    calls_dir = Path(os.environ[CALLS_DIR_ENV])
    key = model.removeprefix(HANG_ONCE)
    earlier = recorded_calls(calls_dir, key)
    with (calls_dir / key).open("a") as calls:
        calls.write(f"{replica}\n")
    if not earlier:
        await asyncio.sleep(3600)


def error_status(code: grpc.StatusCode, message: str) -> status_pb2.Status:
    """A google.rpc.Status with the details the gateway's errors carry."""
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason="TEST_REASON", domain="llm-gateway", metadata={"code": code.name}
        )
    )
    bad_request = any_pb2.Any()
    bad_request.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="model", description=message)
            ]
        )
    )
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=message, details=[info, bad_request]
    )


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    await context.abort_with_status(rpc_status.to_status(error_status(code, message)))


def _requested_status(model: str) -> grpc.StatusCode | None:
    if not model.startswith("status:"):
        return None
    return grpc.StatusCode[model.removeprefix("status:")]


class FakeRouter(router_grpc.RouterServiceServicer):
    def __init__(self, replica: str) -> None:
        self.replica = replica

    async def _headers(self, context: grpc.aio.ServicerContext) -> None:
        seen = dict(context.invocation_metadata() or ()).get("x-request-id", "")
        await context.send_initial_metadata(
            (("x-replica", self.replica), ("x-seen-request-id", str(seen)))
        )

    async def CreateChatCompletion(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
    ) -> chat_pb2.CreateChatCompletionResponse:
        code = _requested_status(request.model)
        if code is not None:
            await _abort(context, code, f"canned {code.name} for {request.model}")
        if request.model.startswith("slow:"):
            await asyncio.sleep(int(request.model.removeprefix("slow:")) / 1000)
        if request.model.startswith("block:"):
            # Holding the whole loop is the point: a busy replica.
            time.sleep(int(request.model.removeprefix("block:")) / 1000)  # noqa: ASYNC251
        if request.model.startswith(HANG_ONCE):
            await _hang_once(request.model, self.replica)
        await self._headers(context)
        if request.model == "shape":
            return self._shape()
        content = f"echo:{request.model}"
        if request.model == "flags":
            content = f"unary stream={str(request.stream).lower()}"
        return chat_pb2.CreateChatCompletionResponse(
            id=f"chatcmpl-{self.replica}",
            object="chat.completion",
            created=CREATED,
            model=request.model,
            choices=[
                chat_pb2.ChatCompletionChoice(
                    index=0,
                    message=chat_pb2.ChatCompletionMessage(role="assistant", content=content),
                    finish_reason="stop",
                )
            ],
            usage=chat_pb2.CompletionUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3),
        )

    def _shape(self) -> chat_pb2.CreateChatCompletionResponse:
        # Unset: message.content, message.refusal, finish_reason, system_fingerprint,
        # usage, tool call `type`. Explicitly set to zero values: tool call `index` (0)
        # and function `arguments` (""). `created` stays 0 (a plain proto3 scalar).
        call = chat_pb2.ChatToolCall(
            index=0, id="call_1", function=chat_pb2.ChatFunctionCall(name="f", arguments="")
        )
        return chat_pb2.CreateChatCompletionResponse(
            id=f"chatcmpl-{self.replica}",
            object="chat.completion",
            model="shape",
            choices=[
                chat_pb2.ChatCompletionChoice(
                    index=0,
                    message=chat_pb2.ChatCompletionMessage(role="assistant", tool_calls=[call]),
                )
            ],
        )

    def _chunk(
        self, request: chat_pb2.CreateChatCompletionRequest, i: int
    ) -> chat_pb2.StreamChatCompletionResponse:
        last = i == STREAM_CHUNKS - 1
        content = f"tok{i}"
        if request.model == "flags":
            content = f"stream stream={str(request.stream).lower()}"
        choice = chat_pb2.ChatCompletionChunkChoice(
            index=0, delta=chat_pb2.ChatCompletionDelta(content=content)
        )
        if i == 0:
            choice.delta.role = "assistant"
        if last:
            choice.finish_reason = "stop"
        return chat_pb2.StreamChatCompletionResponse(
            id=f"chatcmpl-{self.replica}",
            object="chat.completion.chunk",
            created=CREATED,
            model=request.model,
            choices=[choice],
        )

    async def StreamChatCompletion(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        code = _requested_status(request.model)
        if code is not None:
            await _abort(context, code, f"canned {code.name} for {request.model}")
        await self._headers(context)
        fail_after = None
        if request.model.startswith("fail-after:"):
            fail_after = int(request.model.removeprefix("fail-after:"))
        for i in range(STREAM_CHUNKS):
            if i == fail_after:
                await _abort(context, grpc.StatusCode.UNAVAILABLE, "provider failed mid-stream")
            if i:
                await asyncio.sleep(STREAM_INTERVAL_S)
            yield self._chunk(request, i)

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ListModelsResponse:
        await self._headers(context)
        # `aliases` empty and `context_window` zero: how do empty repeated and zero
        # scalars print?
        return router_pb2.ListModelsResponse(
            object="list",
            data=[router_pb2.Model(id="echo", object="model", created=CREATED, owned_by="test")],
        )

    async def GetModel(
        self, request: router_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.Model:
        code = _requested_status(request.model)
        if code is not None:
            await _abort(context, code, f"canned {code.name} for {request.model}")
        if request.model.startswith(HANG_ONCE):
            await _hang_once(request.model, self.replica)
        await self._headers(context)
        return router_pb2.Model(id=request.model, object="model", created=CREATED)


class FakeProvider(provider_grpc.ProviderServiceServicer):
    def __init__(self, replica: str) -> None:
        self.replica = replica

    async def ListProviders(
        self, request: provider_pb2.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.ListProvidersResponse:
        return provider_pb2.ListProvidersResponse(
            providers=[provider_pb2.ProviderInfo(name=f"fake-{self.replica}")]
        )
