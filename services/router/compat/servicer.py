"""CompatService: the drop-in REST surfaces (Anthropic Messages, OpenAI Responses and
Embeddings). Each RPC hands the caller's body to its surface's translator; the
translators share the router's admission and turn runner (`chat_turns`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2

from llmgw.router.v1 import compat_service_pb2, compat_service_pb2_grpc
from services.router.compat import anthropic_surface, embeddings_surface, responses_surface
from services.router.servicer import RouterServicer


class CompatServicer(compat_service_pb2_grpc.CompatServiceServicer):
    def __init__(self, router: RouterServicer) -> None:
        # Admission, the catalogue snapshot and the backends every surface shares.
        self._router = router

    async def CreateMessage(
        self, request: compat_service_pb2.CreateMessageRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async with contextlib.aclosing(
            anthropic_surface.create_message(self._router, request, context)
        ) as bodies:
            async for body in bodies:
                yield body

    async def CountMessageTokens(
        self,
        request: compat_service_pb2.CountMessageTokensRequest,
        context: grpc.aio.ServicerContext,
    ) -> httpbody_pb2.HttpBody:
        return await anthropic_surface.count_tokens(self._router, request, context)

    async def CreateResponse(
        self, request: compat_service_pb2.CreateResponseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async with contextlib.aclosing(
            responses_surface.create_response(self._router, request, context)
        ) as bodies:
            async for body in bodies:
                yield body

    async def CreateOpenAIEmbeddings(
        self,
        request: compat_service_pb2.CreateOpenAIEmbeddingsRequest,
        context: grpc.aio.ServicerContext,
    ) -> httpbody_pb2.HttpBody:
        return await embeddings_surface.create(self._router, request.body, context)
