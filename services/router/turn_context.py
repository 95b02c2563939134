"""One chat turn's snapshot, taken once when the router admits the request: the
catalogue and configuration it was planned with, whom it is for, its route plan, turn,
cache use, reservations and timing. Everything after admission (`turn_runner`,
`turn_accounting`) reads this snapshot, never the servicer's current catalogue, so a
reload landing mid-request changes nothing the request already decided (a provider it
planned on stays configured for it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from services.common.caller import current_principal
from services.common.channels import remaining_timeout
from services.common.identity.principal import Principal
from services.common.session_client import SessionClient
from services.common.tool_client import ToolClient
from services.router.admission import (
    cache_namespace,
    check_model,
    check_tools,
    investigation_subjects,
    permitted,
    request_limits,
    usage_subjects,
)
from services.router.cache.key import cache_key, cacheable
from services.router.cache.policy import CachePolicy
from services.router.cache.store import ResponseCache
from services.router.cache.use import CacheUse
from services.router.catalog import Catalog, ResolvedModel
from services.router.gen_ai_metrics import RequestTiming
from services.router.limits.errors import RateLimited
from services.router.limits.limiter import RateLimiter
from services.router.metrics import COMPLETIONS
from services.router.provider_client import ProviderClient
from services.router.quota import RequestQuota, cost_estimate, output_limit
from services.router.routing.decision import RouteDecision
from services.router.routing.layer import RoutingLayer
from services.router.routing.plan import Candidate, Plan
from services.router.routing.strategies import OrderingInput
from services.router.routing.token_estimate import (
    estimate_output_tokens,
    estimate_prompt_tokens,
)
from services.router.tokenizer import PromptCounter
from services.router.turn import Turn
from services.router.turn_setup import open_turn
from services.router.usage.recorder import UsageRecorder

# Used when the caller sets no deadline: long generations must still end.
DEFAULT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class ChatBackends:
    """What a chat turn calls: fixed for the servicer's life (unlike the catalogue)."""

    provider: ProviderClient
    routing: RoutingLayer
    sessions: SessionClient
    tools: ToolClient
    cache: ResponseCache
    usage: UsageRecorder
    prompt_counter: PromptCounter


@dataclass
class TurnContext:
    backends: ChatBackends
    # The RPC (or its idempotency recorder): read for its deadline only; what goes out
    # on it is the surface's to send.
    rpc: grpc.aio.ServicerContext
    streaming: bool
    catalog: Catalog
    resolved: ResolvedModel
    upstream: provider_pb2.CompleteRequest
    plan: Plan
    decision: RouteDecision
    turn: Turn
    cache: CacheUse
    quota: RequestQuota
    principal: Principal | None
    # The max_tokens each deployment is sent when the caller named none (empty when it
    # did): what the reservations count on, so a call cannot generate more.
    output_limits: Mapping[str, int]
    # Its times, from the moment the router took it (gen_ai_metrics).
    timing: RequestTiming
    # Whom the request's usage is recorded for (usage_subjects, plus the investigation
    # a vouched call works for).
    subjects: Sequence[str] = ()
    # Set once the request's usage was recorded.
    accounted: bool = False

    def target(self, candidate: Candidate) -> provider_pb2.CompleteRequest:
        """The upstream request for one attempt (attempts run one after another)."""
        return aimed(self.upstream, candidate, self.output_limits)

    def remaining(self) -> float | None:
        """What is left of the RPC's deadline (None: the caller set none)."""
        return remaining_timeout(self.rpc)

    def deadline(self) -> float:
        """The turn's deadline on the routing engine's clock."""
        engine = self.backends.routing.engine
        remaining = remaining_timeout(self.rpc, DEFAULT_TIMEOUT_SECONDS)
        return engine.clock() + (DEFAULT_TIMEOUT_SECONDS if remaining is None else remaining)


def aimed(
    upstream: provider_pb2.CompleteRequest,
    candidate: Candidate,
    output_limits: Mapping[str, int],
) -> provider_pb2.CompleteRequest:
    upstream.provider = candidate.deployment.provider
    upstream.model = candidate.deployment.model
    limit = output_limits.get(candidate.key)
    if limit is not None:
        upstream.max_tokens = limit
    return upstream


async def prepare(
    backends: ChatBackends,
    request: chat_pb2.CreateChatCompletionRequest,
    upstream: provider_pb2.CompleteRequest,
    rpc: grpc.aio.ServicerContext,
    *,
    catalog: Catalog,
    limiter: RateLimiter | None,
    streaming: bool,
    timing: RequestTiming,
    request_id: str = "",
) -> TurnContext:
    """Admits a validated request (`chat_options.validated`): the caller may use its
    model and tools, its turn is opened, its route planned and its first model call
    reserved against the caller's limits. `catalog` and `limiter` are the servicer's
    at this moment, kept for the whole request."""
    principal = current_principal()
    resolved = catalog.resolve(request.model)
    check_model(principal, request.model, resolved)
    resolved.require_kind("chat")
    options = request.gateway
    check_tools(principal, options.tools)
    config = catalog.config
    turn = await open_turn(
        request,
        upstream,
        resolved,
        catalog,
        sessions=backends.sessions,
        tools=backends.tools,
        timeout=remaining_timeout(rpc),
        request_id=request_id,
    )
    ordering = OrderingInput(
        prompt_tokens=estimate_prompt_tokens(upstream),
        output_tokens=estimate_output_tokens(upstream, config.routing.estimated_output_tokens),
        streaming=streaming,
    )
    plan = permitted(
        principal,
        request.model,
        backends.routing.plan(
            resolved,
            ordering,
            strategy=options.routing_strategy,
            fallbacks=not options.disable_fallbacks,
            catalog=catalog,
        ),
    )
    cache = _cache_use(
        backends.cache, catalog, resolved, upstream, turn, mode=options.cache, principal=principal
    )
    output_limits = (
        {}
        if upstream.HasField("max_tokens")
        else {c.key: output_limit(c.deployment, config.providers) for c in plan.candidates}
    )
    limits = request_limits(principal, config.rate_limits)
    try:
        limited = limiter is not None and (
            bool(limits) or any(c.deployment.rate_limits for c in plan.candidates)
        )
        tokens, cost = call_estimate(
            backends.prompt_counter,
            catalog,
            upstream,
            plan,
            output_limits=output_limits,
            prompt_estimate=ordering.prompt_tokens,
            limited=limited,
        )
        quota = await RequestQuota.admit(limiter, limits, tokens, cost)
    except RateLimited:
        COMPLETIONS.labels(resolved.label, "", str(streaming).lower(), "RESOURCE_EXHAUSTED").inc()
        raise
    return TurnContext(
        backends,
        rpc,
        streaming,
        catalog,
        resolved,
        upstream,
        plan,
        RouteDecision(resolved.name, plan.strategy),
        turn,
        cache,
        quota,
        principal,
        output_limits,
        timing,
        [*usage_subjects(principal), *investigation_subjects(rpc.invocation_metadata())],
    )


def call_estimate(
    counter: PromptCounter,
    catalog: Catalog,
    upstream: provider_pb2.CompleteRequest,
    plan: Plan,
    *,
    output_limits: Mapping[str, int],
    prompt_estimate: int,
    limited: bool,
) -> tuple[int, int]:
    """(tokens, nano-units) one model call reserves: its prompt plus the most it may
    generate (the caller's max_tokens, else each deployment's `output_limit`), at the
    dearest deployment it may reach. The prompt is counted with the real tokenizer
    where one exists when limits apply (only then: it costs microseconds per
    request); the routing estimate serves otherwise."""
    config = catalog.config
    prompt = prompt_estimate
    if limited:
        first = plan.candidates[0]
        prompt, _exact = counter.count(
            aimed(upstream, first, output_limits),
            config.providers[first.deployment.provider].type,
        )
    if not output_limits:
        output = int(upstream.max_tokens)
        cost = cost_estimate([c.deployment for c in plan.candidates], prompt, output)
        return prompt + output, cost
    cost = max(cost_estimate([c.deployment], prompt, output_limits[c.key]) for c in plan.candidates)
    return prompt + max(output_limits.values()), cost


async def reserve_next_call(ctx: TurnContext) -> None:
    """Before a tool loop's next model call: its tokens and cost, with the tool
    results it now carries, are reserved like the first call's."""
    plan = ctx.plan
    if not (ctx.quota.reserves_calls or any(c.deployment.rate_limits for c in plan.candidates)):
        return
    upstream = ctx.upstream
    tokens, cost = call_estimate(
        ctx.backends.prompt_counter,
        ctx.catalog,
        upstream,
        plan,
        output_limits=ctx.output_limits,
        prompt_estimate=estimate_prompt_tokens(upstream),
        limited=True,
    )
    await ctx.quota.next_call(tokens, cost)


def _cache_use(
    store: ResponseCache,
    catalog: Catalog,
    resolved: ResolvedModel,
    upstream: provider_pb2.CompleteRequest,
    turn: Turn,
    *,
    mode: str,
    principal: Principal | None,
) -> CacheUse:
    decision = CachePolicy(catalog.config.cache).decide(
        resolved.entry,
        mode,
        runs_gateway_tools=turn.loop is not None,
        cacheable=cacheable(upstream),
    )
    used = decision.read or decision.write
    return CacheUse(
        store,
        decision,
        cache_key(upstream, resolved.name) if used else "",
        cache_namespace(principal, store),
        resolved.label,
    )
