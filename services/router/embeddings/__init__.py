"""Embeddings: texts in, vectors out, through the same admission, routing, limits,
usage, cache and telemetry as chat (`embedder`), for gRPC callers
(`EmbeddingsService`) and OpenAI's `POST /v1/embeddings` (compat/embeddings_surface)."""
