"""What a chat turn spent and kept: each model call counted (tokens, cost, the
deployment's reservation), the request's usage recorded and its own reservations
settled, the finished turn saved to its session, and the completion counted.

Apart from the turn runner so that the runner only says what happens in which order;
a cache hit and a live answer are accounted by the same functions.
"""

from __future__ import annotations

import logging

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.common.context import annotate
from services.common.errors import GatewayError
from services.common.idempotency.request_ids import derived
from services.router.limits.limiter import NO_ADJUSTMENTS
from services.router.metrics import COMPLETIONS, COST, SESSION_APPENDS, TOKENS, TOOL_LOOP_ITERATIONS
from services.router.routing.engine import Lease
from services.router.turn import add_usage
from services.router.turn_context import TurnContext
from services.router.usage.cost import cost_nanos, to_currency
from services.router.usage.recorder import UsageRecord

logger = logging.getLogger(__name__)

# Appending a finished turn to its session (the answer is already paid for).
SESSION_SAVE_TIMEOUT = 10.0
# The provider label of completions answered from the response cache.
CACHE_PROVIDER = "cache"


def record_tokens(model: str, provider: str, usage: common_pb2.Usage) -> None:
    TOKENS.labels(model, provider, "input").inc(usage.input_tokens)
    TOKENS.labels(model, provider, "output").inc(usage.output_tokens)
    if usage.cached_input_tokens:
        TOKENS.labels(model, provider, "cached_input").inc(usage.cached_input_tokens)


async def count_call(ctx: TurnContext, lease: Lease, usage: common_pb2.Usage) -> None:
    """One model call answered with `usage`: its deployment's reservation settled, its
    tokens and cost added to the turn's."""
    decision, turn = ctx.decision, ctx.turn
    candidate = lease.candidate
    await ctx.quota.settle_call(candidate.deployment, candidate.key, usage)
    record_tokens(decision.model_label, decision.provider, usage)
    add_usage(turn.usage, usage)
    cost = cost_nanos(candidate.deployment, usage)
    turn.cost_nanos += cost
    COST.labels(decision.model_label, decision.provider).inc(to_currency(cost))
    if turn.loop is not None:
        turn.loop.iteration += 1


async def account(
    ctx: TurnContext, model: str, *, cache_hit: bool = False, settle: bool = True
) -> None:
    """Records the request's usage and cost for its consumer and groups (an answer
    from the response cache spent no tokens) and, with `settle`, settles its
    reservations to them in the same call."""
    turn = ctx.turn
    ctx.accounted = True
    record = UsageRecord(model, turn.usage, turn.cost_nanos, cache_hit=cache_hit)
    await ctx.backends.usage.record(
        ctx.subjects,
        record,
        ctx.quota.settlement(turn.usage, turn.cost_nanos) if settle else NO_ADJUSTMENTS,
    )


async def finish(ctx: TurnContext, *, abandoned: bool) -> None:
    """After every request, answered or not: model calls that completed before a
    failure (a tool loop's earlier rounds) were paid for, so they are recorded and
    their usage settled; what is still reserved is released, or kept as estimated
    when the client went away (what an unfinished call spent is unknown)."""
    turn = ctx.turn
    if not ctx.accounted and (turn.usage.input_tokens or turn.usage.output_tokens):
        model = ctx.decision.model or ctx.resolved.name
        await account(ctx, model, settle=not abandoned)
    await ctx.quota.close(abandoned=abandoned)


async def save(
    ctx: TurnContext, final: common_pb2.Message, finish_reason: int
) -> list[tuple[str, str]]:
    """Appends the finished turn to its session. The answer was produced and is
    returned either way; a failure is reported in `x-llmgw-session-saved`."""
    turn = ctx.turn
    if not turn.session:
        return []
    request_id = derived(turn.request_id, "session") if turn.request_id else ""
    try:
        await ctx.backends.sessions.append(
            turn.session,
            turn.to_append(final, finish_reason),
            SESSION_SAVE_TIMEOUT,
            request_id,
        )
    except GatewayError as error:
        SESSION_APPENDS.labels("failed").inc()
        logger.warning(
            "completion answered but not saved to %s: %s %s",
            turn.session,
            error.code.name,
            error,
        )
        return [("x-llmgw-session-saved", "false")]
    SESSION_APPENDS.labels("saved").inc()
    return [("x-llmgw-session-saved", "true")]


def counted(ctx: TurnContext, code: grpc.StatusCode) -> None:
    """A live turn ended with `code`: its completion, route and tool iterations."""
    decision, turn = ctx.decision, ctx.turn
    annotate(route=decision.log_fields())
    COMPLETIONS.labels(
        decision.model_label or ctx.resolved.label,
        decision.provider,
        str(ctx.streaming).lower(),
        code.name,
    ).inc()
    if turn.loop is not None:
        TOOL_LOOP_ITERATIONS.observe(turn.loop.iteration)


def counted_hit(ctx: TurnContext) -> None:
    """A turn answered from the response cache."""
    COMPLETIONS.labels(ctx.resolved.label, CACHE_PROVIDER, str(ctx.streaming).lower(), "OK").inc()
