"""EmbeddingsService: embeddings for gRPC callers, answered by the shared embedder.
The routing, cache and quota headers go out as initial metadata (as a REST caller
gets them through Envoy)."""

from __future__ import annotations

import grpc

from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from llmgw.router.v1 import embeddings_service_pb2_grpc as embeddings_grpc
from services.router.embeddings.embedder import Embedder


class EmbeddingsServicer(embeddings_grpc.EmbeddingsServiceServicer):
    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    async def CreateEmbeddings(
        self, request: embeddings_pb2.CreateEmbeddingsRequest, context: grpc.aio.ServicerContext
    ) -> embeddings_pb2.CreateEmbeddingsResponse:
        embedded = await self._embedder.embed(request, context)
        await context.send_initial_metadata(embedded.metadata)
        return embedded.response
