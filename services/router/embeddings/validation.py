"""What an embeddings request must hold before anything is looked up or reserved.

Bounds follow OpenAI's `/v1/embeddings`: at most 2,048 texts a request, none empty.
The router also bounds the total size (Envoy bounds the body too), so a reservation
estimate and a cache key are never computed over unbounded input.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from services.common.validation import Violations

MAX_INPUTS = 2048
# Characters across all texts of one request (OpenAI's limit is 300,000 tokens).
MAX_TOTAL_CHARS = 4_000_000
MAX_DIMENSIONS = 16_384
MAX_USER_CHARS = 256
# About four characters a token (routing/token_estimate's rule), plus one per text.
CHARS_PER_TOKEN = 4


def check(request: embeddings_pb2.CreateEmbeddingsRequest, *, input_field: str = "input") -> None:
    """INVALID_ARGUMENT naming every field that is wrong (OpenAI's field names)."""
    problems = Violations()
    if not request.model:
        problems.add("model", "required")
    count = len(request.input)
    if count == 0:
        problems.add(input_field, "required: at least one text")
    elif count > MAX_INPUTS:
        problems.add(input_field, f"at most {MAX_INPUTS} texts per request, got {count}")
    else:
        empty = next((i for i, text in enumerate(request.input) if not text), None)
        if empty is not None:
            problems.add(f"{input_field}[{empty}]", "must not be empty")
        total = sum(len(text) for text in request.input)
        if total > MAX_TOTAL_CHARS:
            problems.add(input_field, f"at most {MAX_TOTAL_CHARS} characters in all, got {total}")
    if request.dimensions < 0:
        problems.add(
            "dimensions",
            f"must not be negative (0: the model's own length), got {request.dimensions}",
        )
    elif request.dimensions > MAX_DIMENSIONS:
        problems.add("dimensions", f"at most {MAX_DIMENSIONS}, got {request.dimensions}")
    if len(request.user) > MAX_USER_CHARS:
        problems.add("user", f"at most {MAX_USER_CHARS} characters")
    problems.raise_if_any()


def estimate_tokens(texts: Sequence[str]) -> int:
    """Input tokens reserved against limits before the provider counts them."""
    return sum(len(text.encode("utf-8", "surrogatepass")) // CHARS_PER_TOKEN + 1 for text in texts)
