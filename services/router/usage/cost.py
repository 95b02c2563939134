"""What one model call cost, from the deployment's price table and the usage reported.

Prices are per million tokens. Cost is kept as an integer number of nano-units of the
currency (1e-9), computed in decimal: sums over millions of requests stay exact to far
below a cent, which floats would not.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.common.gateway_config import Deployment

NANOS = 1_000_000_000
_PER_TOKEN_NANOS = Decimal(NANOS) / Decimal(1_000_000)


@lru_cache(maxsize=1024)
def _per_token(price: float) -> Decimal:
    """A price per million tokens as nano-units per token, exactly (prices come from the
    configuration: few distinct values, converted once each)."""
    return Decimal(str(price)) * _PER_TOKEN_NANOS


def cost_nanos(deployment: Deployment, usage: common_pb2.Usage) -> int:
    """Input tokens served from the provider's prompt cache are billed at the cached-input
    price (the input price when the table has none); the rest at the input price."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_price = (
        deployment.input_price
        if deployment.cached_input_price is None
        else deployment.cached_input_price
    )
    total = (
        _per_token(deployment.input_price) * (usage.input_tokens - cached)
        + _per_token(cached_price) * cached
        + _per_token(deployment.output_price) * usage.output_tokens
    )
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_currency(nanos: int) -> float:
    return nanos / NANOS
