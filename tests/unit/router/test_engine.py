"""The attempt loop against scripted attempts, local breakers and real statistics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import grpc
import pytest

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import (
    GatewayError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from services.common.gateway_config import (
    BreakerConfig,
    Deployment,
    RetryConfig,
    RoutingConfig,
)
from services.router.routing.breaker import BreakerRegistry
from services.router.routing.decision import RouteDecision
from services.router.routing.engine import RoutingEngine
from services.router.routing.plan import Candidate, Plan
from services.router.routing.stats import StatsTable

_R = error_reason_pb2
Script = dict[str, list[GatewayError | str]]


def _config(**retries: float) -> RoutingConfig:
    return RoutingConfig(
        retries=RetryConfig(**{"backoff_initial": 0.01, "jitter": 0, **retries}),  # type: ignore[arg-type]
        breaker=BreakerConfig(consecutive_failures=3, open_seconds=60),
    )


def _plan(*deployments: Deployment, fallback: Iterable[Deployment] = ()) -> Plan:
    candidates = [Candidate("m", d, False, "m") for d in deployments]
    candidates += [Candidate("f", d, True, "f") for d in fallback]
    return Plan(model="m", strategy="priority", candidates=tuple(candidates), model_label="m")


def _dep(name: str, **fields: object) -> Deployment:
    return Deployment(provider="p", model=name, **fields)  # type: ignore[arg-type]


def _unavailable() -> Unavailable:
    return Unavailable("down", reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE)


class Upstreams:
    """Answers each attempt from a per-deployment script; records the calls."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[tuple[str, float]] = []

    async def __call__(self, candidate: Candidate, timeout: float | None) -> str:
        self.calls.append((candidate.deployment.model, time.monotonic()))
        queue = self.script.get(candidate.deployment.model) or ["ok"]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, GatewayError):
            raise answer
        return f"{answer} from {candidate.deployment.model}"

    def called(self) -> list[str]:
        return [name for name, _ in self.calls]


def _engine(config: RoutingConfig | None = None) -> RoutingEngine:
    config = config or _config()
    return RoutingEngine(BreakerRegistry(None, config.breaker), StatsTable(0.3), config)


async def _run(
    engine: RoutingEngine, plan: Plan, upstreams: Callable[..., object], deadline: float | None
) -> tuple[str, RouteDecision]:
    decision = RouteDecision("m", "priority")
    result, lease = await engine.call(plan, decision, upstreams, deadline)  # type: ignore[arg-type]
    await lease.succeed()
    return result, decision


async def test_a_failing_primary_falls_back_at_once_without_waiting() -> None:
    upstreams = Upstreams({"a": [_unavailable()]})
    started = time.monotonic()
    result, decision = await _run(
        _engine(_config(backoff_initial=5.0)), _plan(_dep("a"), _dep("b")), upstreams, None
    )
    assert result == "ok from b"
    assert time.monotonic() - started < 1.0
    assert upstreams.called() == ["a", "b"]
    assert decision.route == "fallback" and decision.attempts == 2
    assert ("x-llmgw-route-trail", "p/a=UPSTREAM_UNAVAILABLE") in decision.metadata()
    assert ("x-llmgw-deployment", "p/b") in decision.metadata()


async def test_a_single_deployment_is_retried_after_its_retry_after() -> None:
    limited = ResourceExhausted(
        "slow down", reason=_R.ERROR_REASON_UPSTREAM_RATE_LIMITED, retry_after=0.3
    )
    upstreams = Upstreams({"a": [limited, "ok"]})
    result, decision = await _run(_engine(), _plan(_dep("a")), upstreams, None)
    assert result == "ok from a"
    (_, first), (_, second) = upstreams.calls
    assert second - first >= 0.3
    assert decision.route == "retry"


async def test_a_retry_after_beyond_the_deadline_fails_now_with_the_upstream_error() -> None:
    limited = ResourceExhausted(
        "slow down", reason=_R.ERROR_REASON_UPSTREAM_RATE_LIMITED, retry_after=1.0
    )
    engine = _engine()
    upstreams = Upstreams({"a": [limited, "ok"]})
    started = time.monotonic()
    with pytest.raises(ResourceExhausted) as caught:
        await _run(engine, _plan(_dep("a")), upstreams, engine.clock() + 0.5)
    assert time.monotonic() - started < 0.2
    assert caught.value.retry_after == 1.0
    assert upstreams.called() == ["a"]


@pytest.mark.parametrize(
    "error",
    [
        InvalidArgument("no", reason=_R.ERROR_REASON_CONTENT_FILTERED),
        InvalidArgument("bad", reason=_R.ERROR_REASON_UPSTREAM_INVALID_REQUEST),
    ],
)
async def test_caller_and_policy_errors_never_retry_or_fall_back(error: GatewayError) -> None:
    upstreams = Upstreams({"a": [error]})
    with pytest.raises(InvalidArgument):
        await _run(_engine(), _plan(_dep("a"), fallback=[_dep("b")]), upstreams, None)
    assert upstreams.called() == ["a"]


async def test_refused_credentials_move_on_without_retrying_that_deployment() -> None:
    refused = Unavailable("key", reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED)
    missing = NotFound("gone", reason=_R.ERROR_REASON_UPSTREAM_MODEL_NOT_FOUND)
    upstreams = Upstreams({"a": [refused], "b": [missing]})
    engine = _engine(_config(attempts_per_deployment=3))
    with pytest.raises(NotFound):
        await _run(engine, _plan(_dep("a"), _dep("b")), upstreams, None)
    assert upstreams.called() == ["a", "b"]


async def test_context_overflow_falls_back_only_to_larger_windows() -> None:
    too_long = InvalidArgument("long", reason=_R.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED)
    upstreams = Upstreams({"small": [too_long]})
    plan = _plan(
        _dep("small", context_window=8000),
        fallback=[_dep("same", context_window=8000), _dep("large", context_window=200_000)],
    )
    result, decision = await _run(_engine(), plan, upstreams, None)
    assert result == "ok from large"
    assert upstreams.called() == ["small", "large"]
    assert decision.route == "fallback_model" and decision.model == "f"
    assert any(e.outcome == "context_window" for e in decision.trail)


async def test_open_breakers_short_circuit_and_name_the_reopen_time() -> None:
    engine = _engine()
    upstreams = Upstreams({"a": [_unavailable()], "b": [_unavailable()]})
    plan = _plan(_dep("a"), _dep("b"))
    for _ in range(2):  # each request calls a, b, then a and b again after a backoff
        with pytest.raises(Unavailable):
            await _run(engine, plan, upstreams, None)
    assert len(upstreams.calls) == 6  # the third failure of each opened its breaker
    with pytest.raises(Unavailable) as caught:
        await _run(engine, plan, upstreams, None)
    assert len(upstreams.calls) == 6
    assert caught.value.reason == _R.ERROR_REASON_CIRCUIT_OPEN
    assert caught.value.retry_after is not None and 55 < caught.value.retry_after <= 60


async def test_a_healthy_fallback_model_answers_while_the_model_is_open() -> None:
    engine = _engine()
    upstreams = Upstreams({"a": [_unavailable()]})
    plan = _plan(_dep("a"), fallback=[_dep("b")])
    for _ in range(3):
        await _run(engine, plan, upstreams, None)
    before = len(upstreams.calls)
    result, decision = await _run(engine, plan, upstreams, None)
    assert result == "ok from b"
    assert upstreams.called()[before:] == ["b"]
    assert decision.trail[0].outcome == "circuit_open"


async def test_a_full_deployment_is_skipped_and_all_full_is_resource_exhausted() -> None:
    engine = _engine()
    gate = asyncio.Event()

    async def slow(candidate: Candidate, timeout: float | None) -> str:
        await gate.wait()
        return candidate.deployment.model

    plan = _plan(_dep("a", max_concurrency=1), _dep("b", max_concurrency=1))
    first = asyncio.create_task(_run(engine, plan, slow, None))
    second = asyncio.create_task(_run(engine, plan, slow, None))
    await asyncio.sleep(0.01)
    with pytest.raises(ResourceExhausted) as caught:
        await _run(engine, plan, slow, None)
    assert caught.value.reason == _R.ERROR_REASON_LIMIT_EXCEEDED
    assert caught.value.retry_after
    gate.set()
    assert {(await first)[0], (await second)[0]} == {"a", "b"}
    assert engine.stats.get("p/a").in_flight == 0


async def test_attempts_stop_at_max_attempts() -> None:
    upstreams = Upstreams({name: [_unavailable()] for name in "abcdef"})
    engine = _engine(_config(max_attempts=3))
    with pytest.raises(Unavailable):
        await _run(engine, _plan(*(_dep(n) for n in "abcdef")), upstreams, None)
    assert upstreams.called() == ["a", "b", "c"]


async def test_a_cancelled_attempt_releases_its_slot_and_blames_no_one() -> None:
    engine = _engine()

    async def hang(candidate: Candidate, timeout: float | None) -> str:
        await asyncio.sleep(60)
        return "never"

    task = asyncio.create_task(_run(engine, _plan(_dep("a", max_concurrency=1)), hang, None))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.stats.get("p/a").in_flight == 0
    assert engine.breakers.view("p/a").consecutive_failures == 0


async def test_the_callers_deadline_is_fatal_not_a_deployment_failure() -> None:
    engine = _engine()

    late_error = type("Late", (GatewayError,), {"code": grpc.StatusCode.DEADLINE_EXCEEDED})

    async def expire(candidate: Candidate, timeout: float | None) -> str:
        assert timeout is not None
        await asyncio.sleep(timeout)
        raise late_error("deadline passed")

    with pytest.raises(GatewayError) as caught:
        await _run(engine, _plan(_dep("a"), _dep("b")), expire, engine.clock() + 0.1)
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert engine.breakers.view("p/a").consecutive_failures == 0
