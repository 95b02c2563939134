"""RouterService: the public chat API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.common.v1 import error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common import genai_spans
from services.common.caller import current_principal
from services.common.channels import remaining_timeout
from services.common.context import annotate, request_id
from services.common.errors import (
    GatewayError,
    InvalidArgument,
    QuotaViolation,
    ResourceExhausted,
    as_gateway_error,
)
from services.common.idempotency.request_ids import derived
from services.common.idempotency.run import once, once_streamed, request_scope
from services.common.idempotency.store import IdempotencyStore, Scope
from services.common.identity import acl
from services.common.identity.principal import Principal
from services.common.session_client import MAX_HISTORY_MESSAGES, SessionClient
from services.common.session_names import parse_session_name
from services.common.tool_client import ToolClient
from services.common.validation import Violations
from services.router import chat_response, chat_spans
from services.router.admission import (
    cache_namespace,
    check_model,
    check_tools,
    investigation_subjects,
    permitted,
    request_limits,
    usage_subjects,
)
from services.router.cache.entry import CachedAnswer, from_events, from_response, to_response
from services.router.cache.key import cache_key, cacheable
from services.router.cache.policy import OPTION_FIELD as CACHE_OPTION_FIELD
from services.router.cache.policy import CachePolicy, check_mode
from services.router.cache.store import ResponseCache
from services.router.cache.use import CacheUse
from services.router.catalog import Catalog, ResolvedModel
from services.router.chat_request import to_complete_request
from services.router.gen_ai_metrics import Attempt, RequestTiming
from services.router.history import compose, history_bytes
from services.router.limits.errors import RateLimited
from services.router.limits.limiter import NO_ADJUSTMENTS, RateLimiter
from services.router.metrics import (
    ACTIVE_STREAMS,
    COMPLETIONS,
    COST,
    SESSION_APPENDS,
    TIME_TO_FIRST_TOKEN,
    TOKENS,
    TOOL_LOOP_CALLS,
    TOOL_LOOP_ITERATIONS,
)
from services.router.models import ModelDirectory
from services.router.provider_client import ProviderClient
from services.router.quota import RequestQuota, cost_estimate, output_limit
from services.router.routing.decision import RouteDecision
from services.router.routing.engine import Lease
from services.router.routing.layer import RoutingLayer
from services.router.routing.plan import Candidate, Plan
from services.router.routing.strategies import STRATEGIES, OrderingInput
from services.router.routing.token_estimate import (
    estimate_output_tokens,
    estimate_prompt_tokens,
)
from services.router.stream_assembly import StreamAssembly
from services.router.tokenizer import PromptCounter
from services.router.tool_loop import (
    DEFAULT_MAX_ITERATIONS,
    MAX_GATEWAY_TOOLS,
    MAX_ITERATIONS_LIMIT,
    STARTED,
    TOOL_ID,
    ToolLoop,
)
from services.router.turn import Turn, add_usage
from services.router.usage.cost import cost_nanos, to_currency
from services.router.usage.recorder import UsageRecord, UsageRecorder

logger = logging.getLogger(__name__)

# Used when the caller sets no deadline: long generations must still end.
DEFAULT_TIMEOUT_SECONDS = 600.0
# The provider label of completions answered from the response cache.
CACHE_PROVIDER = "cache"
# Appending a finished turn to its session (the answer is already paid for).
SESSION_SAVE_TIMEOUT = 10.0


STRATEGY_NAMES = ", ".join(sorted(STRATEGIES))


def _gateway_options(request: chat_pb2.CreateChatCompletionRequest, problems: Violations) -> None:
    """Validates the gateway options; refuses those whose capability is not built yet."""
    options = request.gateway
    if options.routing_strategy and options.routing_strategy not in STRATEGIES:
        problems.add(
            "gateway.routing_strategy",
            f"unknown strategy '{options.routing_strategy}' (one of {STRATEGY_NAMES})",
        )
    if options.session:
        parse_session_name(problems, "gateway.session", options.session)
    if not 0 <= options.history_window <= MAX_HISTORY_MESSAGES:
        problems.add("gateway.history_window", f"must be in [0, {MAX_HISTORY_MESSAGES}]")
    elif options.history_window and not options.session:
        problems.add("gateway.history_window", "needs gateway.session")
    if len(options.tools) > MAX_GATEWAY_TOOLS:
        problems.add("gateway.tools", f"at most {MAX_GATEWAY_TOOLS} tools")
    own = {tool.function.name for tool in request.tools}
    seen: set[str] = set()
    for i, name in enumerate(options.tools):
        where = f"gateway.tools[{i}]"
        if TOOL_ID.fullmatch(name) is None:
            problems.add(where, f"'{name}' is not a tool id ({TOOL_ID.pattern})")
        elif name in seen:
            problems.add(where, f"'{name}' is listed twice")
        elif name in own:
            problems.add(where, f"'{name}' is also one of the request's own tools")
        seen.add(name)
    if not 0 <= options.max_iterations <= MAX_ITERATIONS_LIMIT:
        problems.add("gateway.max_iterations", f"must be in [0, {MAX_ITERATIONS_LIMIT}]")
    elif options.max_iterations and not options.tools:
        problems.add("gateway.max_iterations", "needs gateway.tools")
    problem = check_mode(options.cache)
    if problem is not None:
        problems.add(CACHE_OPTION_FIELD, problem)


def _record_usage(model: str, provider: str, usage: common_pb2.Usage) -> None:
    TOKENS.labels(model, provider, "input").inc(usage.input_tokens)
    TOKENS.labels(model, provider, "output").inc(usage.output_tokens)
    if usage.cached_input_tokens:
        TOKENS.labels(model, provider, "cached_input").inc(usage.cached_input_tokens)


def _visible(event: provider_pb2.StreamCompleteResponse) -> bool:
    """Whether the event becomes a chunk the client sees (the point of no fallback)."""
    return (
        event.WhichOneof("event") is not None
        or event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    )


@dataclass
class _Prepared:
    # The catalogue and configuration the request was planned with, start to end.
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
        return self.aimed(self.upstream, candidate, self.output_limits)

    @staticmethod
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


@dataclass
class _OpenStream:
    """A provider stream that has produced its first visible event."""

    events: AsyncGenerator[provider_pb2.StreamCompleteResponse, None]
    buffered: list[provider_pb2.StreamCompleteResponse]
    # The attempt's timing, ended when the stream does (`_relay`).
    call: Attempt

    async def all(self) -> AsyncIterator[provider_pb2.StreamCompleteResponse]:
        for event in self.buffered:
            yield event
        async for event in self.events:
            yield event


def _complete(finish_reason: int) -> bool:
    """An answer the model finished on its own terms: the only kind the cache keeps."""
    return finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)


def _cached_metadata(cached: CachedAnswer) -> tuple[tuple[str, str], ...]:
    """Where a cached answer came from, in the routing headers' terms."""
    return (
        ("x-llmgw-model", cached.model),
        ("x-llmgw-provider", cached.provider),
        ("x-llmgw-route", "cache"),
    )


def _deadline(context: grpc.aio.ServicerContext, clock: float) -> float:
    remaining = remaining_timeout(context, DEFAULT_TIMEOUT_SECONDS)
    return clock + (DEFAULT_TIMEOUT_SECONDS if remaining is None else remaining)


def _context_window(resolved: ResolvedModel) -> int | None:
    """The smallest known context window among the model's deployments."""
    return min((d.context_window for d in resolved.deployments if d.context_window), default=None)


def _request_scope(
    request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
) -> Scope | None:
    """The scope of the request's `gateway.request_id` (or Idempotency-Key header)."""
    violations = Violations()
    where = request_scope(
        violations, "router.ChatCompletion", request, context, field="gateway.request_id"
    )
    violations.raise_if_any()
    return where


class RouterServicer(router_service_pb2_grpc.RouterServiceServicer):
    def __init__(
        self,
        catalog: Catalog,
        provider: ProviderClient,
        routing: RoutingLayer,
        *,
        sessions: SessionClient,
        tools: ToolClient,
        cache: ResponseCache,
        usage: UsageRecorder,
        limiter: RateLimiter | None = None,
        prompt_counter: PromptCounter | None = None,
        once: IdempotencyStore | None = None,
    ) -> None:
        # Request ids of chat completions (None without Redis: refused).
        self._once = once
        self.catalog = catalog
        # None without Redis: limits and budgets are not enforced (logged at start).
        self.limiter = limiter
        self._prompt_counter = prompt_counter or PromptCounter()
        self._cache = cache
        self._usage = usage
        self._provider = provider
        self._routing = routing
        self._sessions = sessions
        self._tools = tools
        self._models = ModelDirectory(provider)

    async def _prepare(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        *,
        streaming: bool,
        timing: RequestTiming,
        request_id: str = "",
    ) -> _Prepared:
        problems = Violations()
        if request.stream and not streaming:
            problems.add("stream", "true needs the streaming RPC (StreamChatCompletion)")
        upstream = to_complete_request(request, problems)
        _gateway_options(request, problems)
        problems.raise_if_any()
        principal = current_principal()
        # One snapshot for the whole request: a reload landing mid-request changes nothing
        # it already decided (a provider it planned on stays configured for it).
        catalog, limiter = self.catalog, self.limiter
        resolved = catalog.resolve(request.model)
        check_model(principal, request.model, resolved)
        options = request.gateway
        check_tools(principal, options.tools)
        upstream.include_usage = streaming
        config = catalog.config
        turn = await self._open_turn(
            request,
            upstream,
            resolved,
            catalog,
            timeout=remaining_timeout(context),
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
            self._routing.plan(
                resolved,
                ordering,
                strategy=options.routing_strategy,
                fallbacks=not options.disable_fallbacks,
                catalog=catalog,
            ),
        )
        cache = self._cache_use(
            catalog, resolved, upstream, turn, mode=options.cache, principal=principal
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
            tokens, cost = self._call_estimate(
                catalog,
                upstream,
                plan,
                output_limits=output_limits,
                prompt_estimate=ordering.prompt_tokens,
                limited=limited,
            )
            quota = await RequestQuota.admit(limiter, limits, tokens, cost)
        except RateLimited:
            COMPLETIONS.labels(
                resolved.label, "", str(streaming).lower(), "RESOURCE_EXHAUSTED"
            ).inc()
            raise
        decision = RouteDecision(resolved.name, plan.strategy)
        return _Prepared(
            catalog,
            resolved,
            upstream,
            plan,
            decision,
            turn,
            cache,
            quota,
            principal,
            output_limits,
            timing,
            [*usage_subjects(principal), *investigation_subjects(context.invocation_metadata())],
        )

    def _call_estimate(
        self,
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
            prompt, _exact = self._prompt_counter.count(
                _Prepared.aimed(upstream, first, output_limits),
                config.providers[first.deployment.provider].type,
            )
        if not output_limits:
            output = int(upstream.max_tokens)
            cost = cost_estimate([c.deployment for c in plan.candidates], prompt, output)
            return prompt + output, cost
        cost = max(
            cost_estimate([c.deployment], prompt, output_limits[c.key]) for c in plan.candidates
        )
        return prompt + max(output_limits.values()), cost

    async def _reserve_next_call(self, prepared: _Prepared) -> None:
        """Before a tool loop's next model call: its tokens and cost, with the tool
        results it now carries, are reserved like the first call's."""
        plan = prepared.plan
        if not (
            prepared.quota.reserves_calls or any(c.deployment.rate_limits for c in plan.candidates)
        ):
            return
        upstream = prepared.upstream
        tokens, cost = self._call_estimate(
            prepared.catalog,
            upstream,
            plan,
            output_limits=prepared.output_limits,
            prompt_estimate=estimate_prompt_tokens(upstream),
            limited=True,
        )
        await prepared.quota.next_call(tokens, cost)

    def _cache_use(
        self,
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
            self._cache,
            decision,
            cache_key(upstream, resolved.name) if used else "",
            cache_namespace(principal, self._cache),
            resolved.label,
        )

    async def _open_turn(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        upstream: provider_pb2.CompleteRequest,
        resolved: ResolvedModel,
        catalog: Catalog,
        *,
        timeout: float | None,
        request_id: str,
    ) -> Turn:
        """Offers the gateway's tools and merges the session's history into `upstream`."""
        options = request.gateway
        turn = Turn(new_turn=list(upstream.messages), request_id=request_id)
        if options.tools:
            turn.loop = ToolLoop(
                await self._load_tools(options.tools, timeout),
                self._tools,
                options.max_iterations or DEFAULT_MAX_ITERATIONS,
                catalog.config.tools.max_calls_per_turn,
                request_id,
            )
            upstream.tools.extend(turn.loop.definitions())
        if not options.session:
            return turn
        config = catalog.config
        fixed = estimate_prompt_tokens(
            provider_pb2.CompleteRequest(tools=upstream.tools)
        ) + estimate_output_tokens(upstream, config.routing.estimated_output_tokens)
        # The session service returns only the history that can fit (not 1,000 messages
        # to trim here): a history of any size still chats.
        session = await self._sessions.load(
            options.session,
            options.history_window or MAX_HISTORY_MESSAGES,
            history_bytes(
                upstream.messages, fixed_tokens=fixed, context_tokens=_context_window(resolved)
            ),
            timeout,
        )
        composition = compose(
            upstream.messages,
            session,
            window=options.history_window,
            fixed_tokens=fixed,
            context_tokens=_context_window(resolved),
        )
        room = config.sessions.max_messages - session.message_count
        if len(composition.new_turn) + 1 > room:
            raise ResourceExhausted(
                f"session '{options.session}' holds {session.message_count} messages; this "
                f"turn would exceed the limit of {config.sessions.max_messages}",
                [
                    QuotaViolation(
                        options.session,
                        f"at most {config.sessions.max_messages} messages per session",
                    )
                ],
                reason=error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED,
            )
        del upstream.messages[:]
        upstream.messages.extend(composition.messages)
        turn.session = options.session
        turn.new_turn = composition.new_turn
        turn.history_used = composition.history_used
        return turn

    async def _load_tools(
        self, names: Sequence[str], timeout: float | None
    ) -> dict[str, tool_pb2.Tool]:
        """The named registered tools; an unknown one is the caller's mistake."""
        results = await asyncio.gather(
            *(self._tools.get(name, timeout) for name in names), return_exceptions=True
        )
        problems = Violations()
        tools: dict[str, tool_pb2.Tool] = {}
        for i, (name, result) in enumerate(zip(names, results, strict=True)):
            if isinstance(result, GatewayError) and result.code is grpc.StatusCode.NOT_FOUND:
                problems.add(f"gateway.tools[{i}]", f"no registered tool '{name}'")
            elif isinstance(result, BaseException):
                raise result
            else:
                tools[name] = result
        problems.raise_if_any()
        return tools

    async def _run_tools(
        self,
        prepared: _Prepared,
        loop: ToolLoop,
        assistant: common_pb2.Message,
        context: grpc.aio.ServicerContext,
    ) -> AsyncGenerator[chat_pb2.ToolProgress, None]:
        """One round of the tool loop; its transcript then feeds the next model call."""
        before = len(loop.transcript)
        # Closed here when our caller closes us: the loop then cancels and awaits its runs.
        async with contextlib.aclosing(loop.execute(assistant, remaining_timeout(context))) as runs:
            async for progress in runs:
                if progress.state != STARTED:
                    TOOL_LOOP_CALLS.labels(progress.tool_name, progress.state).inc()
                yield progress
        prepared.upstream.messages.extend(loop.transcript[before:])

    async def _account(
        self, prepared: _Prepared, model: str, *, cache_hit: bool = False, settle: bool = True
    ) -> None:
        """Records the request's usage and cost for its consumer and groups (an answer
        from the response cache spent no tokens) and, with `settle`, settles its
        reservations to them in the same call."""
        turn = prepared.turn
        prepared.accounted = True
        record = UsageRecord(model, turn.usage, turn.cost_nanos, cache_hit=cache_hit)
        await self._usage.record(
            prepared.subjects,
            record,
            prepared.quota.settlement(turn.usage, turn.cost_nanos) if settle else NO_ADJUSTMENTS,
        )

    async def _finish(self, prepared: _Prepared, *, abandoned: bool) -> None:
        """After every request, answered or not: model calls that completed before a
        failure (a tool loop's earlier rounds) were paid for, so they are recorded and
        their usage settled; what is still reserved is released, or kept as estimated
        when the client went away (what an unfinished call spent is unknown)."""
        turn = prepared.turn
        if not prepared.accounted and (turn.usage.input_tokens or turn.usage.output_tokens):
            model = prepared.decision.model or prepared.resolved.name
            await self._account(prepared, model, settle=not abandoned)
        await prepared.quota.close(abandoned=abandoned)

    async def _save(
        self, turn: Turn, final: common_pb2.Message, finish_reason: int
    ) -> list[tuple[str, str]]:
        """Appends the finished turn to its session. The answer was produced and is
        returned either way; a failure is reported in `x-llmgw-session-saved`."""
        if not turn.session:
            return []
        request_id = derived(turn.request_id, "session") if turn.request_id else ""
        try:
            await self._sessions.append(
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

    async def _count_call(self, prepared: _Prepared, lease: Lease, usage: common_pb2.Usage) -> None:
        decision, turn = prepared.decision, prepared.turn
        candidate = lease.candidate
        await prepared.quota.settle_call(candidate.deployment, candidate.key, usage)
        _record_usage(decision.model_label, decision.provider, usage)
        add_usage(turn.usage, usage)
        cost = cost_nanos(lease.candidate.deployment, usage)
        turn.cost_nanos += cost
        COST.labels(decision.model_label, decision.provider).inc(to_currency(cost))
        if turn.loop is not None:
            turn.loop.iteration += 1

    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        timing = RequestTiming("chat")
        where = _request_scope(request, context)
        request_id = where.request_id if where is not None else ""
        return await once(
            self._once,
            where,
            context,
            chat_pb2.CreateChatCompletionResponse,
            lambda recorder: self._create(request, recorder, request_id, timing),
        )

    async def _create(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        request_id: str,
        timing: RequestTiming,
    ) -> chat_pb2.CreateChatCompletionResponse:
        with genai_spans.chat(request.model, client=False) as span:
            prepared = await self._prepare(
                request, context, streaming=False, timing=timing, request_id=request_id
            )
            abandoned = False
            try:
                reply = await self._complete(prepared, context)
            except asyncio.CancelledError:
                abandoned = True
                raise
            finally:
                chat_spans.routed(span, prepared.catalog, prepared.decision, prepared.turn)
                await self._finish(prepared, abandoned=abandoned)
            chat_spans.answered(span, reply)
            return reply

    async def _complete(
        self, prepared: _Prepared, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        decision, turn = prepared.decision, prepared.turn
        engine = self._routing.engine
        cached = await prepared.cache.lookup()
        if cached is not None:
            answer = to_response(cached)
            await self._account(prepared, cached.model, cache_hit=True)
            saved = await self._save(turn, answer.message, answer.finish_reason)
            context.set_trailing_metadata(
                (
                    *_cached_metadata(cached),
                    *prepared.cache.metadata(),
                    *prepared.quota.metadata(),
                    *turn.metadata(),
                    turn.cost_metadata(),
                    *saved,
                )
            )
            COMPLETIONS.labels(prepared.resolved.label, CACHE_PROVIDER, "false", "OK").inc()
            return chat_response.completion(answer, cached.model)

        providers = prepared.catalog.config.providers

        async def attempt(
            candidate: Candidate, timeout: float | None
        ) -> provider_pb2.CompleteResponse:
            call = prepared.timing.attempt(candidate, providers)
            try:
                response = await self._provider.complete(
                    prepared.target(candidate), timeout, call.upstream
                )
            except BaseException as error:
                call.failed(error)
                raise
            call.succeeded(response.usage if response.HasField("usage") else None)
            return response

        code = grpc.StatusCode.OK
        try:
            while True:
                if turn.loop is not None and turn.loop.iteration:
                    await self._reserve_next_call(prepared)
                result, lease = await engine.call(
                    prepared.plan,
                    decision,
                    attempt,
                    _deadline(context, engine.clock()),
                    admit=prepared.quota.admit_deployment,
                )
                await lease.succeed()
                await self._count_call(prepared, lease, result.usage)
                finish = result.finish_reason
                if not turn.runs_tools(result.message, finish):
                    break
                assert turn.loop is not None
                if turn.loop.at_limit():
                    finish = common_pb2.FINISH_REASON_MAX_ITERATIONS
                    break
                async for _progress in self._run_tools(
                    prepared, turn.loop, result.message, context
                ):
                    pass
        except GatewayError as error:
            code = error.code
            raise
        finally:
            annotate(route=decision.log_fields())
            COMPLETIONS.labels(
                decision.model_label or prepared.resolved.label,
                decision.provider,
                "false",
                code.name,
            ).inc()
            if turn.loop is not None:
                TOOL_LOOP_ITERATIONS.observe(turn.loop.iteration)
        if _complete(finish):
            await prepared.cache.store(from_response(result, decision.model, decision.provider))
        await self._account(prepared, decision.model)
        saved = await self._save(turn, result.message, finish)
        # Trailers, not headers: sending headers apart from the answer would open a window
        # in which this replica dying leaves Envoy a started response it cannot retry.
        context.set_trailing_metadata(
            (
                *decision.metadata(),
                *prepared.cache.metadata(),
                *prepared.quota.metadata(),
                *turn.metadata(),
                turn.cost_metadata(),
                *saved,
            )
        )
        prepared.timing.answered(
            prepared.resolved.label, turn.usage.output_tokens, tools=turn.loop is not None
        )
        return chat_response.completion(
            result, decision.model, finish_reason=finish, total_usage=turn.usage
        )

    async def _open_stream(
        self, prepared: _Prepared, candidate: Candidate, timeout: float | None
    ) -> _OpenStream:
        call = prepared.timing.attempt(candidate, prepared.catalog.config.providers)
        events = self._provider.stream(prepared.target(candidate), timeout, call.upstream)
        buffered: list[provider_pb2.StreamCompleteResponse] = []
        try:
            async for event in events:
                buffered.append(event)
                if _visible(event):
                    break
        except BaseException as error:
            call.failed(error)
            await events.aclose()
            raise
        return _OpenStream(events, buffered, call)

    async def StreamChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        timing = RequestTiming("chat_stream")
        where = _request_scope(request, context)
        request_id = where.request_id if where is not None else ""
        chunks = once_streamed(
            self._once,
            where,
            context,
            chat_pb2.StreamChatCompletionResponse,
            lambda recorder: self._streamed(request, recorder, request_id, timing),
        )
        # Closed here, not left to the garbage collector, when the client goes away.
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def _streamed(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        request_id: str,
        timing: RequestTiming,
    ) -> AsyncGenerator[chat_pb2.StreamChatCompletionResponse, None]:
        with genai_spans.chat(request.model, client=False) as span:
            prepared = await self._prepare(
                request, context, streaming=True, timing=timing, request_id=request_id
            )
            abandoned = False
            try:
                async for chunk in self._stream(prepared, request, context):
                    chat_spans.streamed(span, chunk)
                    yield chunk
            except (asyncio.CancelledError, GeneratorExit):
                abandoned = True
                raise
            finally:
                chat_spans.routed(span, prepared.catalog, prepared.decision, prepared.turn)
                await self._finish(prepared, abandoned=abandoned)

    async def _stream(
        self,
        prepared: _Prepared,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        decision, turn = prepared.decision, prepared.turn
        engine = self._routing.engine
        include_usage = request.stream_options.include_usage
        cached = await prepared.cache.lookup()
        if cached is not None:
            async for chunk in self._replay(cached, prepared, context, include_usage):
                yield chunk
            return
        # The events of an answer the cache will keep (the tool loop is never cached).
        recorded: list[provider_pb2.StreamCompleteResponse] | None = (
            [] if prepared.cache.decision.write else None
        )
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        chunks: chat_response.ChunkBuilder | None = None
        ACTIVE_STREAMS.inc()
        try:
            while True:
                try:
                    if turn.loop is not None and turn.loop.iteration:
                        await self._reserve_next_call(prepared)
                    # Until a call's first visible event, its failure may retry or fall back.
                    opened, lease = await engine.call(
                        prepared.plan,
                        decision,
                        lambda candidate, timeout: self._open_stream(prepared, candidate, timeout),
                        _deadline(context, engine.clock()),
                        admit=prepared.quota.admit_deployment,
                    )
                except GatewayError as error:
                    if chunks is None:
                        raise
                    # A later call of the tool loop: chunks went out already.
                    yield chunks.error(error.to_status())
                    raise
                if chunks is None:
                    lease.first_token()
                    TIME_TO_FIRST_TOKEN.labels(decision.model_label).observe(
                        time.perf_counter() - started
                    )
                    prepared.timing.first_chunk(prepared.resolved.label)
                    await context.send_initial_metadata(
                        (
                            *decision.metadata(),
                            *prepared.cache.metadata(),
                            *prepared.quota.metadata(),
                            *turn.metadata(),
                        )
                    )
                    chunks = chat_response.ChunkBuilder(decision.model)
                assembly = StreamAssembly()
                async for chunk in self._relay(
                    opened, lease, chunks, assembly, turn, recorded=recorded
                ):
                    yield chunk
                await self._count_call(prepared, lease, assembly.usage or common_pb2.Usage())
                answer, finish = assembly.message(), assembly.finish_reason
                if turn.runs_tools(answer, finish):
                    assert turn.loop is not None
                    if not turn.loop.at_limit():
                        running = self._run_tools(prepared, turn.loop, answer, context)
                        async with contextlib.aclosing(running):
                            async for progress in running:
                                yield chunks.progress(progress)
                        continue
                    finish = common_pb2.FINISH_REASON_MAX_ITERATIONS
                for chunk in self._held_back(chunks, assembly, turn):
                    yield chunk
                yield chunks.finish(finish)
                prepared.timing.answered(
                    prepared.resolved.label,
                    turn.usage.output_tokens,
                    tools=turn.loop is not None,
                )
                break
            if recorded is not None and _complete(finish):
                await prepared.cache.store(from_events(recorded, decision.model, decision.provider))
            await self._account(prepared, decision.model)
            saved = await self._save(turn, answer, finish)
            context.set_trailing_metadata((turn.cost_metadata(), *saved))
            if include_usage and (turn.usage.input_tokens or turn.usage.output_tokens):
                yield chunks.usage(turn.usage)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except GatewayError as error:
            code = error.code
            raise
        finally:
            annotate(route=decision.log_fields())
            ACTIVE_STREAMS.dec()
            COMPLETIONS.labels(
                decision.model_label or prepared.resolved.label,
                decision.provider,
                "true",
                code.name,
            ).inc()
            if turn.loop is not None:
                TOOL_LOOP_ITERATIONS.observe(turn.loop.iteration)

    async def _replay(
        self,
        cached: CachedAnswer,
        prepared: _Prepared,
        context: grpc.aio.ServicerContext,
        include_usage: bool,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        """A cached answer as the stream it was (or as a stream, if it was unary)."""
        await context.send_initial_metadata(
            (
                *_cached_metadata(cached),
                *prepared.cache.metadata(),
                *prepared.quota.metadata(),
                *prepared.turn.metadata(),
            )
        )
        chunks = chat_response.ChunkBuilder(cached.model)
        assembly = StreamAssembly()
        for event in cached.events:
            assembly.add(event)
            chunk = chunks.content(event)
            if chunk is not None:
                yield chunk
        yield chunks.finish(assembly.finish_reason)
        await self._account(prepared, cached.model, cache_hit=True)
        saved = await self._save(prepared.turn, assembly.message(), assembly.finish_reason)
        context.set_trailing_metadata(tuple(saved))
        COMPLETIONS.labels(prepared.resolved.label, CACHE_PROVIDER, "true", "OK").inc()
        if include_usage and assembly.usage is not None:
            yield chunks.usage(assembly.usage)

    @staticmethod
    def _held_back(
        chunks: chat_response.ChunkBuilder, assembly: StreamAssembly, turn: Turn
    ) -> list[chat_pb2.StreamChatCompletionResponse]:
        """Tool-call chunks held back while the gateway might have run the calls."""
        if turn.loop is None:
            return []
        return [chunk for event in assembly.tool_events if (chunk := chunks.content(event))]

    async def _relay(
        self,
        opened: _OpenStream,
        lease: Lease,
        chunks: chat_response.ChunkBuilder,
        assembly: StreamAssembly,
        turn: Turn,
        *,
        recorded: list[provider_pb2.StreamCompleteResponse] | None,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        """One model call's stream after its first visible event: never switches
        deployment; a failure ends it with an error chunk and the status. The finish
        chunk is left to the caller (a tool loop goes on after it); so are tool-call
        pieces when the gateway may run the calls itself."""
        try:
            async for event in opened.all():
                assembly.add(event)
                if recorded is not None:
                    recorded.append(event)
                if event.WhichOneof("event") == "tool_call" and turn.loop is not None:
                    continue
                chunk = chunks.content(event)
                if chunk is not None:
                    yield chunk
        except asyncio.CancelledError as cancelled:
            opened.call.failed(cancelled)
            await lease.fail(cancelled)
            raise
        except GeneratorExit as closed:
            # Our caller stopped reading (the client went away).
            opened.call.failed(closed)
            raise
        except Exception as error:
            opened.call.failed(error)
            await lease.fail(error)
            reported = as_gateway_error(error, request_id.get())
            # Chunks went out: an HTTP/1.1 SSE client cannot see the status that ends
            # the RPC; this event tells it (the OpenAI SDK raises it).
            yield chunks.error(reported.to_status())
            raise reported from None
        finally:
            await opened.events.aclose()
        opened.call.succeeded(assembly.usage)
        await lease.succeed()

    async def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        models = await self._models.list(self.catalog)
        principal = current_principal()
        if principal is not None:
            # Only what the caller may use (by name or by one of its aliases).
            models = [
                m
                for m in models
                if any(acl.allows_model(principal, name) for name in (m.id, *m.aliases))
            ]
        return router_service_pb2.ListModelsResponse(object="list", data=models)

    async def GetModel(
        self, request: router_service_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.Model:
        if not request.model:
            raise InvalidArgument.for_field("model", "required")
        # Checked before the lookup: a caller learns nothing of models it may not use.
        check_model(current_principal(), request.model, self.catalog.resolve(request.model))
        return await self._models.get(self.catalog, request.model)
