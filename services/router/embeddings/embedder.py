"""One embeddings request, the way a chat turn runs: the caller may use the model
(`admission.check_model`, then `permitted` drops the deployments it may not reach),
its request is reserved against its limits and budgets (`quota.RequestQuota`, the
estimate settled to the provider's count), answered from the response cache or routed
across the model's deployments and fallback models (`RoutingEngine.call`: retries,
breakers, deployment limits), then its usage and cost are recorded for the caller and
its groups (`UsageRecorder`, in the same Redis call that settles the reservation).

The catalogue and limiter are read once, when the request arrives: a reload landing
mid-request changes nothing it already decided.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import embeddings_service_pb2 as embeddings_pb2
from services.common import genai_spans
from services.common.caller import current_principal
from services.common.channels import remaining_timeout
from services.common.errors import GatewayError, Unavailable
from services.common.genai_spans import Recorder, family
from services.router.admission import (
    cache_namespace,
    check_model,
    investigation_subjects,
    permitted,
    request_limits,
    usage_subjects,
)
from services.router.cache.metrics import count as count_cache
from services.router.cache.policy import CachePolicy
from services.router.cache.status import HEADER as CACHE_HEADER
from services.router.cache.status import CacheStatus
from services.router.catalog import Catalog
from services.router.embeddings import metrics
from services.router.embeddings.cached import CachedEmbeddings, decode, embeddings_key, encode
from services.router.embeddings.validation import check, estimate_tokens
from services.router.gen_ai_metrics import RequestTiming
from services.router.limits.errors import RateLimited
from services.router.limits.limiter import RateLimiter
from services.router.quota import RequestQuota, cost_estimate
from services.router.routing.decision import RouteDecision
from services.router.routing.plan import Candidate
from services.router.routing.strategies import OrderingInput
from services.router.turn import COST_TRAILER
from services.router.turn_accounting import CACHE_PROVIDER
from services.router.turn_context import DEFAULT_TIMEOUT_SECONDS, ChatBackends
from services.router.usage.cost import cost_nanos, to_currency
from services.router.usage.recorder import UsageRecord

Metadata = tuple[tuple[str, str], ...]


class RouterState(Protocol):
    """What the embedder reads of the router (RouterServicer): its current catalogue
    and limiter (replaced on reload) and its backends."""

    catalog: Catalog
    limiter: RateLimiter | None

    @property
    def backends(self) -> ChatBackends: ...


@dataclass(frozen=True)
class Embedded:
    """The answer, and the headers it goes out with (route, cache, quota, cost)."""

    response: embeddings_pb2.CreateEmbeddingsResponse
    metadata: Metadata


def _usage(reported: common_pb2.Usage, estimate: int) -> common_pb2.Usage:
    """The provider's count; the estimate when it reported none (a limit must count
    something for every call)."""
    tokens = reported.input_tokens or estimate
    return common_pb2.Usage(input_tokens=tokens, total_tokens=tokens)


def _answer(
    reply: provider_pb2.EmbedResponse, model: str, usage: common_pb2.Usage
) -> embeddings_pb2.CreateEmbeddingsResponse:
    return embeddings_pb2.CreateEmbeddingsResponse(
        object="list",
        data=[
            embeddings_pb2.Embedding(object="embedding", index=i, embedding=vector.values)
            for i, vector in enumerate(reply.embeddings)
        ],
        model=model,
        usage=embeddings_pb2.EmbeddingsUsage(
            prompt_tokens=usage.input_tokens, total_tokens=usage.input_tokens
        ),
    )


class Embedder:
    """Answers embeddings requests for both surfaces (gRPC and REST)."""

    def __init__(self, router: RouterState) -> None:
        self._router = router

    async def embed(
        self,
        request: embeddings_pb2.CreateEmbeddingsRequest,
        rpc: grpc.aio.ServicerContext,
        *,
        input_field: str = "input",
    ) -> Embedded:
        """The vectors of `request`'s texts; errors as EmbeddingsService documents."""
        check(request, input_field=input_field)
        with genai_spans.embeddings(request.model) as span:
            return await _Request(self._router, request, rpc, span).run()


class _Request:
    """One admitted request's state, from admission to accounting."""

    def __init__(
        self,
        router: RouterState,
        request: embeddings_pb2.CreateEmbeddingsRequest,
        rpc: grpc.aio.ServicerContext,
        span: Recorder,
    ) -> None:
        self.catalog = router.catalog
        self.limiter = router.limiter
        self.backends = router.backends
        self.request = request
        self.rpc = rpc
        self.span = span
        self.timing = RequestTiming("embeddings")
        self.estimate = estimate_tokens(request.input)

    async def run(self) -> Embedded:
        request, catalog, backends = self.request, self.catalog, self.backends
        principal = current_principal()
        resolved = catalog.resolve(request.model)
        check_model(principal, request.model, resolved)
        resolved.require_kind("embedding")
        self.label = resolved.label
        plan = permitted(
            principal,
            request.model,
            backends.routing.plan(
                resolved,
                OrderingInput(prompt_tokens=self.estimate, output_tokens=0, streaming=False),
                strategy="",
                fallbacks=True,
                catalog=catalog,
            ),
        )
        decision = CachePolicy(catalog.config.cache).decide(
            resolved.entry, "", runs_gateway_tools=False, cacheable=True
        )
        used = decision.read or decision.write
        key = embeddings_key(resolved.name, request.input, request.dimensions) if used else ""
        namespace = cache_namespace(principal, backends.cache)
        limits = request_limits(principal, catalog.config.rate_limits)
        cost = cost_estimate([c.deployment for c in plan.candidates], self.estimate, 0)
        try:
            quota = await RequestQuota.admit(self.limiter, limits, self.estimate, cost)
        except RateLimited:
            metrics.REQUESTS.labels(self.label, "", "RESOURCE_EXHAUSTED").inc()
            raise
        self.quota = quota
        self.subjects = [
            *usage_subjects(principal),
            *investigation_subjects(self.rpc.invocation_metadata()),
        ]
        self.route = RouteDecision(resolved.name, plan.strategy)
        abandoned = False
        code = grpc.StatusCode.OK
        try:
            status = decision.status_if_not_read
            if decision.read:
                stored = await backends.cache.get_bytes(namespace, key)
                hit = decode(stored) if stored is not None else None
                status = CacheStatus.MISS if hit is None else CacheStatus.HIT
                if hit is not None:
                    count_cache(self.label, status)
                    return await self._replay(hit)
            count_cache(self.label, status)
            reply, lease = await backends.routing.engine.call(
                plan, self.route, self._attempt, self._deadline(), admit=quota.admit_deployment
            )
            await lease.succeed()
            embedded = await self._answered(reply, lease.candidate, status)
            if decision.write:
                entry = CachedEmbeddings(embedded.response, self.route.provider)
                await backends.cache.put_bytes(namespace, key, encode(entry), decision.ttl)
            return embedded
        except (asyncio.CancelledError, GeneratorExit):
            abandoned = True
            code = grpc.StatusCode.CANCELLED
            raise
        except GatewayError as error:
            code = error.code
            raise
        finally:
            await quota.close(abandoned=abandoned)
            if code is not grpc.StatusCode.OK:
                metrics.REQUESTS.labels(self.label, self.route.provider, code.name).inc()

    def _deadline(self) -> float:
        engine = self.backends.routing.engine
        remaining = remaining_timeout(self.rpc, DEFAULT_TIMEOUT_SECONDS)
        return engine.clock() + (DEFAULT_TIMEOUT_SECONDS if remaining is None else remaining)

    async def _attempt(
        self, candidate: Candidate, timeout: float | None
    ) -> provider_pb2.EmbedResponse:
        request = self.request
        call = self.timing.attempt(candidate, self.catalog.config.providers)
        upstream = provider_pb2.EmbedRequest(
            provider=candidate.deployment.provider,
            model=candidate.deployment.model,
            input=request.input,
            dimensions=request.dimensions,
            user=request.user,
        )
        try:
            reply = await self.backends.provider.embed(upstream, timeout, call.upstream)
        except BaseException as error:
            call.failed(error)
            raise
        call.succeeded(reply.usage if reply.HasField("usage") else None)
        return reply

    async def _answered(
        self, reply: provider_pb2.EmbedResponse, candidate: Candidate, status: CacheStatus
    ) -> Embedded:
        """A provider's answer: counted, settled, recorded."""
        route = self.route
        if len(reply.embeddings) != len(self.request.input):
            # The provider broke its contract: never hand out vectors out of step.
            raise Unavailable(
                f"provider '{route.provider}' returned {len(reply.embeddings)} vectors for "
                f"{len(self.request.input)} texts"
            )
        usage = _usage(reply.usage, self.estimate)
        await self.quota.settle_call(candidate.deployment, candidate.key, usage)
        cost = cost_nanos(candidate.deployment, usage)
        await self.backends.usage.record(
            self.subjects,
            UsageRecord(route.model, usage, cost),
            self.quota.settlement(usage, cost),
        )
        metrics.REQUESTS.labels(route.model_label, route.provider, "OK").inc()
        metrics.TOKENS.labels(route.model_label, route.provider).inc(usage.input_tokens)
        metrics.COST.labels(route.model_label, route.provider).inc(to_currency(cost))
        self._spanned(route.provider, route.model, usage.input_tokens)
        metadata = (
            *route.metadata(),
            (CACHE_HEADER, str(status)),
            *self.quota.metadata(),
            (COST_TRAILER, f"{to_currency(cost):.9f}"),
        )
        return Embedded(_answer(reply, route.model, usage), metadata)

    async def _replay(self, hit: CachedEmbeddings) -> Embedded:
        """A cached answer: no provider call, recorded as a hit that spent nothing."""
        response = hit.response
        await self.backends.usage.record(
            self.subjects,
            UsageRecord(response.model, common_pb2.Usage(), 0, cache_hit=True),
            self.quota.settlement(common_pb2.Usage(), 0),
        )
        metrics.REQUESTS.labels(self.label, CACHE_PROVIDER, "OK").inc()
        self._spanned("", response.model, 0)
        metadata = (
            ("x-llmgw-model", response.model),
            ("x-llmgw-provider", hit.provider),
            ("x-llmgw-route", "cache"),
            (CACHE_HEADER, str(CacheStatus.HIT)),
            *self.quota.metadata(),
            (COST_TRAILER, f"{0:.9f}"),
        )
        return Embedded(response, metadata)

    def _spanned(self, provider: str, model: str, input_tokens: int) -> None:
        span = self.span
        if not span.recording:
            return
        if provider:
            config = self.catalog.config.providers.get(provider)
            span.provider(provider, family(config.type) if config else provider)
        span.response_model(model)
        span.usage(input_tokens, 0)
