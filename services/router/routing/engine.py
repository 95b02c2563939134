"""The attempt loop: walks a plan, calling deployments until one answers.

Order of calls. The plan's candidates are tried in order; a candidate whose breaker is
open or whose concurrency cap is full is passed over without a call. A retryable failure
puts the deployment back in the queue with a backoff (honouring Retry-After), so the
other candidates are tried first and a flaky deployment costs the caller no wait while
a healthy one exists; with a single deployment the retry simply waits. Waits never run
past the caller's deadline: a retry that could not start in time is given up at once and
the caller gets the last failure (with its RetryInfo), not a DEADLINE_EXCEEDED later.

Every attempt feeds the deployment's breaker and statistics. A successful attempt
returns a `Lease`: unary calls finish it at once, streams when the stream ends, so a
stream holds its concurrency slot and reports its own outcome and latency.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError, ResourceExhausted, Unavailable
from services.common.gateway_config import RoutingConfig
from services.router.limits.errors import DeploymentLimited
from services.router.routing import metrics
from services.router.routing.breaker import Admission, BreakerRegistry, Outcome
from services.router.routing.classify import (
    Disposition,
    counts_against_deployment,
    disposition,
    failure_label,
)
from services.router.routing.decision import RouteDecision
from services.router.routing.plan import Candidate, Plan
from services.router.routing.stats import StatsTable

T = TypeVar("T")

# A retry that cannot start this long before the caller's deadline is not attempted.
MIN_ATTEMPT_SECONDS = 0.05
# A DEADLINE_EXCEEDED this close to the caller's deadline is the caller's, not the upstream's.
DEADLINE_SLACK = 0.02
# RetryInfo sent when every deployment is at its concurrency cap.
BUSY_RETRY_SECONDS = 1.0


@dataclass
class _Queued:
    not_before: float
    order: int
    candidate: Candidate
    tries: int = 0


@dataclass
class Lease:
    """A successful attempt's hold on its deployment until the answer is complete."""

    engine: RoutingEngine
    candidate: Candidate
    admission: Admission
    started: float
    first_event: float | None = None
    _done: bool = field(default=False, repr=False)

    def first_token(self) -> None:
        if self.first_event is None:
            self.first_event = self.engine.clock()

    async def succeed(self) -> None:
        if self._done:
            return
        self._done = True
        now = self.engine.clock()
        ttft = None if self.first_event is None else self.first_event - self.started
        self.engine.stats.end(
            self.candidate.key, success=True, latency=now - self.started, ttft=ttft
        )
        await self.engine.breakers.record(
            self.candidate.key, Outcome.SUCCESS, probe=self.admission.probe
        )

    async def fail(self, error: BaseException) -> None:
        """The answer broke after it started (a stream failing mid-way, a cancellation)."""
        if self._done:
            return
        self._done = True
        self.engine.stats.end(self.candidate.key, success=False)
        outcome = Outcome.NEUTRAL
        if isinstance(error, GatewayError):
            kind = disposition(error, caller_deadline_passed=False)
            if counts_against_deployment(error, kind):
                outcome = Outcome.FAILURE
            label = failure_label(error)
        else:
            label = "CANCELLED"
        metrics.ATTEMPTS.labels(self.candidate.model_label, self.candidate.label, label).inc()
        await self.engine.breakers.record(self.candidate.key, outcome, probe=self.admission.probe)


class RoutingEngine:
    def __init__(
        self,
        breakers: BreakerRegistry,
        stats: StatsTable,
        config: RoutingConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.breakers = breakers
        self.stats = stats
        self.config = config
        self.clock = clock
        self._rng = rng or random.Random()

    def configure(self, config: RoutingConfig) -> None:
        self.config = config

    async def call(
        self,
        plan: Plan,
        decision: RouteDecision,
        attempt: Callable[[Candidate, float | None], Awaitable[T]],
        deadline: float | None,
        *,
        admit: Callable[[Candidate], Awaitable[None]] | None = None,
    ) -> tuple[T, Lease]:
        """Runs `attempt(candidate, timeout)` until one succeeds; raises the reason none did.

        `deadline` is on this engine's clock (None: no deadline); `timeout` is what
        remains of it for the attempt. The returned lease must be finished by the caller.
        `admit(candidate)` runs before each call (the deployment's rate limits): raising
        DeploymentLimited skips the deployment, as an open circuit does, and when every
        deployment was skipped so, the request is refused with the soonest retry.
        """
        retries = self.config.retries
        queue = [_Queued(0.0, i, c) for i, c in enumerate(plan.candidates)]
        last_error: GatewayError | None = None
        reopen_at: float | None = None
        busy = False
        limited: DeploymentLimited | None = None
        context_floor: int | None = None
        calls = 0
        while queue and calls < retries.max_attempts:
            queue.sort(key=lambda q: (q.not_before, q.order))
            item = queue.pop(0)
            candidate = item.candidate
            deployment = candidate.deployment
            if context_floor is not None and (deployment.context_window or 0) <= context_floor:
                self._skip(decision, candidate, "context_window")
                continue
            wait = item.not_before - self.clock()
            if wait > 0:
                if deadline is not None and item.not_before > deadline - MIN_ATTEMPT_SECONDS:
                    # The queue is sorted: nothing after this one could start in time either.
                    self._skip(decision, candidate, "retry_after_deadline")
                    break
                metrics.RETRY_WAIT.observe(wait)
                await asyncio.sleep(wait)
            admission = await self.breakers.admit(candidate.key)
            if not admission.allowed:
                self._skip(decision, candidate, "circuit_open")
                if admission.reopen_at:
                    reopen_at = min(reopen_at or admission.reopen_at, admission.reopen_at)
                continue
            if not self.stats.try_begin(candidate.key, deployment.max_concurrency):
                if admission.probe:
                    await self.breakers.record(candidate.key, Outcome.NEUTRAL, probe=True)
                self._skip(decision, candidate, "at_capacity")
                busy = True
                continue
            if admit is not None:
                # After the concurrency slot: a deployment skipped as full spends none of
                # its rate limits.
                try:
                    await admit(candidate)
                except DeploymentLimited as refusal:
                    self.stats.cancel(candidate.key)
                    if admission.probe:
                        await self.breakers.record(candidate.key, Outcome.NEUTRAL, probe=True)
                    self._skip(decision, candidate, "rate_limited")
                    if limited is None or (refusal.retry_after or 0) < (limited.retry_after or 0):
                        limited = refusal
                    continue
                except BaseException:
                    self.stats.cancel(candidate.key)
                    raise
            calls += 1
            started = self.clock()
            timeout = None if deadline is None else max(deadline - started, 0.001)
            try:
                result = await attempt(candidate, timeout)
            except GatewayError as error:
                last_error = error
                kind = await self._failed(decision, candidate, admission, error, deadline)
                if kind is Disposition.FATAL:
                    raise
                if kind is Disposition.LARGER_CONTEXT:
                    context_floor = max(context_floor or 0, deployment.context_window or 0)
                elif kind is Disposition.RETRY and item.tries + 1 < retries.attempts_per_deployment:
                    after = error.retry_after
                    if after is None or after <= retries.max_retry_after:
                        delay = retries.backoff.delay(item.tries + 1, after, self._rng)
                        queue.append(
                            _Queued(self.clock() + delay, item.order, candidate, item.tries + 1)
                        )
                continue
            except BaseException:
                # Cancelled by the caller (or a bug): the deployment is not to blame.
                self.stats.end(candidate.key, success=False)
                if admission.probe:
                    await self.breakers.record(candidate.key, Outcome.NEUTRAL, probe=True)
                raise
            decision.answered(
                candidate.model,
                deployment.provider,
                candidate.label,
                fallback_model=candidate.fallback_model,
                model_label=candidate.model_label,
            )
            metrics.ATTEMPTS.labels(candidate.model_label, candidate.label, "ok").inc()
            metrics.ROUTES.labels(
                plan.model_label, candidate.model_label, candidate.label, decision.route
            ).inc()
            return result, Lease(self, candidate, admission, started)
        if last_error is None and limited is not None and reopen_at is None and not busy:
            raise limited
        raise self._exhausted(plan, last_error, reopen_at, busy)

    async def _failed(
        self,
        decision: RouteDecision,
        candidate: Candidate,
        admission: Admission,
        error: GatewayError,
        deadline: float | None,
    ) -> Disposition:
        self.stats.end(candidate.key, success=False)
        passed = deadline is not None and self.clock() >= deadline - DEADLINE_SLACK
        kind = disposition(error, caller_deadline_passed=passed)
        outcome = Outcome.FAILURE if counts_against_deployment(error, kind) else Outcome.NEUTRAL
        await self.breakers.record(candidate.key, outcome, probe=admission.probe)
        label = failure_label(error)
        decision.failed(candidate.model, candidate.label, label)
        metrics.ATTEMPTS.labels(candidate.model_label, candidate.label, label).inc()
        return kind

    @staticmethod
    def _skip(decision: RouteDecision, candidate: Candidate, reason: str) -> None:
        decision.skipped(candidate.model, candidate.label, reason)
        metrics.SKIPS.labels(candidate.model_label, candidate.label, reason).inc()

    def _exhausted(
        self,
        plan: Plan,
        last_error: GatewayError | None,
        reopen_at: float | None,
        busy: bool,
    ) -> GatewayError:
        if last_error is not None:
            return last_error
        where = f"model '{plan.model}'" + (
            " and its fallbacks" if any(c.fallback_model for c in plan.candidates) else ""
        )
        if reopen_at is not None:
            wait = max(0.0, reopen_at - time.time())
            return Unavailable(
                f"every deployment of {where} is failing (circuit open); retry in {wait:.1f}s",
                reason=error_reason_pb2.ERROR_REASON_CIRCUIT_OPEN,
                metadata={"model": plan.model},
                retry_after=wait,
            )
        if busy:
            return ResourceExhausted(
                f"every deployment of {where} is at its concurrency limit; retry shortly",
                reason=error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED,
                metadata={"model": plan.model},
                retry_after=BUSY_RETRY_SECONDS,
            )
        return Unavailable(
            f"no deployment of {where} could be called",
            reason=error_reason_pb2.ERROR_REASON_UPSTREAM_UNAVAILABLE,
            metadata={"model": plan.model},
        )
