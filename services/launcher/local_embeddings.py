"""The embedded embeddings server: a second llama-server on the same SmolLM2 weights.

llama-server answers `/v1/embeddings` only when started with `--embeddings`, and that mode
serves nothing else, so the local model runs as two processes: the chat server and this
one. Mean pooling over the last hidden layer gives one 576-component vector per text
(normalised to unit length by llama-server's default `--embd-normalize 2`). It is not a
trained embedding model; it makes `/v1/embeddings` answer out of the box, with vectors of a
stable size, and a configured provider replaces it.

Sizing: one slot, one thread, and a 2048-token context and batch. A pooled embedding needs
the whole text in one physical batch, so 2048 tokens is the longest text it embeds (a longer
one is answered with an error naming the batch size). Measured: about 175 MB resident,
healthy about 0.3 s after the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.launcher.localmodel import LlamaServerInstall

# What the services read to put the server in their default catalogue.
EMBEDDINGS_URL_ENV = "LLMGW_LOCAL_EMBEDDINGS_URL"
EMBEDDINGS_MODEL_NAME = "smollm2-135m-embeddings"
# The model's hidden size: the length of every vector it answers.
EMBEDDING_DIMENSIONS = 576
EMBEDDINGS_CTX = 2048
EMBEDDINGS_THREADS = 1


def embeddings_argv(install: LlamaServerInstall, model: Path, host: str, port: int) -> list[str]:
    """The llama-server command line of the embeddings server (OpenAI's `/v1/embeddings`)."""
    return [
        str(install.binary),
        "--model",
        str(model),
        "--alias",
        EMBEDDINGS_MODEL_NAME,
        "--host",
        host,
        "--port",
        str(port),
        "--embeddings",
        "--pooling",
        "mean",
        "--ctx-size",
        str(EMBEDDINGS_CTX),
        "--batch-size",
        str(EMBEDDINGS_CTX),
        "--ubatch-size",
        str(EMBEDDINGS_CTX),
        "--parallel",
        "1",
        "--threads",
        str(EMBEDDINGS_THREADS),
        "--poll",
        "0",
        "--cache-ram",
        "0",
        "--no-webui",
    ]
