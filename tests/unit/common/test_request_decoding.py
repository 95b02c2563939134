"""A request protobuf cannot decode is INVALID_ARGUMENT naming the too-deep field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from services.common.errors import RemoteError, find_detail
from services.common.interceptors import ServerInterceptor
from services.common.request_decoding import find_deep_field
from services.common.struct_checks import MAX_JSON_DEPTH


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _request(levels: int) -> chat_pb2.CreateChatCompletionRequest:
    request = chat_pb2.CreateChatCompletionRequest(model="m")
    request.tools.add(type="function").function.name = "plain"
    deep = request.tools.add(type="function")
    deep.function.name = "deep"
    deep.function.parameters.update(_nested(levels))
    return request


class _Router(router_service_pb2_grpc.RouterServiceServicer):
    async def CreateChatCompletion(self, request: Any, context: Any) -> Any:
        return chat_pb2.CreateChatCompletionResponse(id="ok")

    async def StreamChatCompletion(self, request: Any, context: Any) -> Any:
        yield chat_pb2.StreamChatCompletionResponse(id="ok")


@pytest.fixture
async def stub() -> AsyncIterator[router_service_pb2_grpc.RouterServiceStub]:
    server = grpc.aio.server(interceptors=[ServerInterceptor("router", False, None)])
    router_service_pb2_grpc.add_RouterServiceServicer_to_server(_Router(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield router_service_pb2_grpc.RouterServiceStub(channel)
    await server.stop(0)


def test_the_walker_names_the_deep_field() -> None:
    data = _request(40).SerializeToString()
    descriptor = chat_pb2.CreateChatCompletionRequest.DESCRIPTOR
    assert find_deep_field(descriptor, data) == "tools[1].function.parameters"
    assert find_deep_field(descriptor, _request(MAX_JSON_DEPTH).SerializeToString()) is None


async def test_an_undecodable_request_is_invalid_argument(
    stub: router_service_pb2_grpc.RouterServiceStub,
) -> None:
    assert (await stub.CreateChatCompletion(_request(3))).id == "ok"
    for call in (stub.CreateChatCompletion, stub.StreamChatCompletion):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            result = call(_request(40))
            if hasattr(result, "__aiter__"):
                async for _ in result:
                    pass
            else:
                await result
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        status = RemoteError.from_rpc_error(caught.value).status
        bad = find_detail(status, error_details_pb2.BadRequest)
        assert bad is not None
        assert [v.field for v in bad.field_violations] == ["tools[1].function.parameters"]
