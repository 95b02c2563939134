"""CompatService: the drop-in REST surfaces (Anthropic Messages, OpenAI Responses and
Embeddings). Each RPC hands the caller's body to its surface's translator; the
translators share the router's admission and turn runner (`chat_turns`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2

from llmgw.router.v1 import compat_service_pb2, compat_service_pb2_grpc
from services.common.errors import Unimplemented
from services.router.compat.responses_surface import create_response
from services.router.servicer import RouterServicer


class CompatServicer(compat_service_pb2_grpc.CompatServiceServicer):
    def __init__(self, router: RouterServicer) -> None:
        # Admission, the catalogue snapshot and the backends every surface shares.
        self._router = router

    async def CreateMessage(
        self, request: compat_service_pb2.CreateMessageRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        raise Unimplemented("POST /v1/messages is not implemented yet")
        yield httpbody_pb2.HttpBody()  # pragma: no cover - makes this a generator

    async def CountMessageTokens(
        self,
        request: compat_service_pb2.CountMessageTokensRequest,
        context: grpc.aio.ServicerContext,
    ) -> httpbody_pb2.HttpBody:
        raise Unimplemented("POST /v1/messages/count_tokens is not implemented yet")

    async def CreateResponse(
        self, request: compat_service_pb2.CreateResponseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async for body in create_response(self._router, request, context):
            yield body

    async def CreateOpenAIEmbeddings(
        self,
        request: compat_service_pb2.CreateOpenAIEmbeddingsRequest,
        context: grpc.aio.ServicerContext,
    ) -> httpbody_pb2.HttpBody:
        raise Unimplemented("POST /v1/embeddings is not implemented yet")
