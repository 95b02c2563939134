"""Embeddings metrics. Labels are bounded: the model is `ResolvedModel.label` (a
catalogue name, else `other`), the provider a configured instance (`cache` for a
cache hit), the code a gRPC status code name; never a caller's string."""

from __future__ import annotations

from prometheus_client import Counter

REQUESTS = Counter(
    "llmgw_embeddings_requests_total",
    "Embeddings requests by public model, provider that answered and final status.",
    ["model", "provider", "code"],
)
TOKENS = Counter(
    "llmgw_embeddings_tokens_total",
    "Input tokens of answered embeddings requests by public model and provider.",
    ["model", "provider"],
)
COST = Counter(
    "llmgw_embeddings_cost_total",
    "Cost of embeddings calls (the deployment's input price x the input tokens), in the "
    "price table's currency, by public model and provider.",
    ["model", "provider"],
)
