"""One chat request's rate-limit and budget reservations, from admission to settlement.

The request's own reservation (consumer, groups, budgets) is taken after the request is
validated and before any provider call, and again (tokens and cost only) before each
further model call of a tool loop; each deployment's reservation is
taken before each call to it (a refusal there moves on to the next deployment). A
successful call settles its deployment's reservation to the call's real tokens; the
finished request settles its own to the sum of its calls and their cost. Whatever is
still open when the request ends is released when it failed (its tokens and cost are
given back, its request count is kept) and kept as estimated when the client went away
(what the provider spent is then unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.common.gateway_config import Deployment, ProviderConfig
from services.common.rate_limits import Limit
from services.common.rate_limits import subject as subject_of
from services.router.limits.errors import DeploymentLimited, RateLimited
from services.router.limits.headers import quota_metadata
from services.router.limits.limiter import (
    NO_ADJUSTMENTS,
    Adjustments,
    RateLimiter,
    Reservation,
    joint_settlement,
    settlement,
)
from services.router.routing.plan import Candidate
from services.router.usage.cost import cost_nanos


def total_tokens(usage: common_pb2.Usage) -> int:
    return usage.input_tokens + usage.output_tokens


class RequestQuota:
    """The reservations of one request; `close()` must run when the request ends."""

    def __init__(
        self,
        limiter: RateLimiter | None,
        reservation: Reservation | None,
        *,
        limits: Sequence[Limit] = (),
        tokens_estimate: int = 0,
    ) -> None:
        self._limiter = limiter
        # One per model call: the first counts the request, later ones (a tool loop's
        # rounds) only their tokens and cost.
        self._own: list[Reservation] = [reservation] if reservation is not None else []
        self._per_call_limits = [limit for limit in limits if limit.unit != "requests"]
        self._tokens_estimate = tokens_estimate
        self._deployments: dict[str, Reservation] = {}

    @classmethod
    async def admit(
        cls,
        limiter: RateLimiter | None,
        limits: Sequence[Limit],
        tokens_estimate: int,
        cost_estimate: int,
    ) -> RequestQuota:
        """Reserves the request against `limits`: RESOURCE_EXHAUSTED (RateLimited) when
        one has no room, UNAVAILABLE when they cannot be checked."""
        if limiter is None or not limits:
            return cls(limiter, None, tokens_estimate=tokens_estimate)
        reservation = await limiter.acquire(limits, tokens_estimate, cost_estimate)
        return cls(limiter, reservation, limits=limits, tokens_estimate=tokens_estimate)

    @property
    def reserves_calls(self) -> bool:
        """Whether each model call reserves tokens or cost against the request's limits."""
        return self._limiter is not None and bool(self._own) and bool(self._per_call_limits)

    async def next_call(self, tokens_estimate: int, cost_estimate: int) -> None:
        """Reserves a further model call of the request (the tool loop's next round)
        like the first: RESOURCE_EXHAUSTED when its tokens or cost no longer fit."""
        self._tokens_estimate = tokens_estimate
        if self._limiter is not None and self.reserves_calls:
            self._own.append(
                await self._limiter.acquire(self._per_call_limits, tokens_estimate, cost_estimate)
            )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """`x-ratelimit-*` for the response (empty when no limit counted the request)."""
        return quota_metadata(self._own[0].quota) if self._own else ()

    async def admit_deployment(self, candidate: Candidate) -> None:
        """Reserves one call against the deployment's limits; DeploymentLimited when
        they have no room."""
        config = candidate.deployment.rate_limits
        if self._limiter is None or config is None:
            return
        limits = config.limits("deployment", subject_of("deployment", candidate.label))
        try:
            reservation = await self._limiter.acquire(limits, self._tokens_estimate)
        except RateLimited as refused:
            raise DeploymentLimited(refused.refusals, refused.quota) from None
        previous = self._deployments.pop(candidate.key, None)
        if previous is not None:
            await self._limiter.release(previous)
        self._deployments[candidate.key] = reservation

    async def settle_call(self, deployment: Deployment, key: str, usage: common_pb2.Usage) -> None:
        """A call to `deployment` answered with `usage`."""
        reservation = self._deployments.pop(key, None)
        if reservation is not None and self._limiter is not None:
            await self._limiter.settle(reservation, total_tokens(usage))

    def settlement(self, usage: common_pb2.Usage, cost: int) -> Adjustments:
        """The request finished having used `usage` at `cost` nano-units: the counter
        corrections that settle its own reservation, for the usage recorder to apply in
        the call that records the request (one Redis call instead of two)."""
        if not self._own:
            return NO_ADJUSTMENTS
        return joint_settlement(self._own, total_tokens(usage), cost)

    async def close(self, *, abandoned: bool = False) -> None:
        """Releases whatever was not settled (safe after settle). `abandoned`: the
        client went away, so what a started call used is unknown; the estimates stay
        counted rather than letting a disconnecting client spend more than its limits."""
        if self._limiter is None:
            return
        reservations = [*self._deployments.values(), *self._own]
        self._deployments.clear()
        for reservation in reservations:
            if abandoned:
                settlement(reservation, reservation.tokens_estimate)  # closes it as reserved
            else:
                await self._limiter.release(reservation)


# A provider instance the configuration no longer names (the call then fails anyway).
DEFAULT_OUTPUT_LIMIT = 4096


def output_limit(deployment: Deployment, providers: Mapping[str, ProviderConfig]) -> int:
    """The most one call to `deployment` generates when the request names no limit: the
    deployment's `max_output_tokens`, else its provider's `default_max_tokens`. The
    router sends it as the call's max_tokens, so what it reserves is what the call may
    spend."""
    if deployment.max_output_tokens:
        return deployment.max_output_tokens
    provider = providers.get(deployment.provider)
    return provider.default_max_tokens if provider is not None else DEFAULT_OUTPUT_LIMIT


def cost_estimate(deployments: Sequence[Deployment], prompt_tokens: int, output: int) -> int:
    """The most a request could cost on any of `deployments` (nano-units): budgets are
    reserved for the dearest deployment the request may reach."""
    usage = common_pb2.Usage(input_tokens=prompt_tokens, output_tokens=output)
    return max((cost_nanos(d, usage) for d in deployments), default=0)
