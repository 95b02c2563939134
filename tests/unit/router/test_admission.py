"""Admission of one chat request: usage subjects, cache namespace, model ACL on aliases
and fallbacks, plan filtering by provider, and the limits and budgets it counts against."""

from __future__ import annotations

import pytest

from llmgw.identity.v1 import identity_pb2
from services.common.cache_config import CacheConfig
from services.common.errors import PermissionDenied
from services.common.gateway_config import Deployment
from services.common.identity.principal import Principal
from services.common.limits_config import RateLimitConfig, RateLimitsConfig
from services.common.rate_limits import NANOS_PER_UNIT, Limit
from services.router.admission import (
    cache_namespace,
    check_model,
    check_tools,
    permitted,
    request_limits,
    usage_subjects,
)
from services.router.cache.store import SHARED_NAMESPACE, ResponseCache
from services.router.catalog import ResolvedModel
from services.router.routing.plan import Candidate, Plan

_RL = identity_pb2.RateLimit


def group(group_id: str, **fields: object) -> identity_pb2.Group:
    return identity_pb2.Group(name=f"groups/{group_id}", **fields)  # type: ignore[arg-type]


def principal(
    *groups: identity_pb2.Group, consumer_id: str = "alice", **fields: object
) -> Principal:
    consumer = identity_pb2.Consumer(
        name=f"consumers/{consumer_id}",
        groups=[g.name for g in groups],
        **fields,  # type: ignore[arg-type]
    )
    return Principal(
        consumer=consumer, groups=tuple(groups), key_name=f"consumers/{consumer_id}/keys/k1"
    )


def deployment(provider: str, model: str) -> Deployment:
    return Deployment(provider=provider, model=model)


# A model `gpt` (alias `fast`) on openai and azure, falling back to `claude` on anthropic.
GPT_OPENAI = Candidate("gpt", deployment("openai", "gpt-4o"), False, "gpt")
GPT_AZURE = Candidate("gpt", deployment("azure", "gpt-4o"), False, "gpt")
CLAUDE = Candidate("claude", deployment("anthropic", "claude-3"), True, "claude")
PLAN = Plan("gpt", "priority", (GPT_OPENAI, GPT_AZURE, CLAUDE), "gpt")
RESOLVED = ResolvedModel(name="gpt", deployments=(GPT_OPENAI.deployment, GPT_AZURE.deployment))


def providers(plan: Plan) -> list[str]:
    return [c.deployment.provider for c in plan.candidates]


# -- usage subjects and cache namespace ----------------------------------------------


def test_usage_is_recorded_for_the_consumer_and_each_group() -> None:
    who = principal(group("eng"), group("ml"))
    assert usage_subjects(who) == ["consumers/alice", "groups/eng", "groups/ml"]
    assert usage_subjects(principal()) == ["consumers/alice"]


def test_usage_without_authentication_is_the_anonymous_consumer() -> None:
    assert usage_subjects(None) == ["consumers/anonymous"]


def test_the_cache_namespace_is_the_first_group_unless_shared() -> None:
    cache = ResponseCache(None, CacheConfig(enabled=True))
    assert cache_namespace(principal(group("eng"), group("ml")), cache) == "groups/eng"
    sharing = group("eng", shared_cache=True)
    assert cache_namespace(principal(sharing, group("ml")), cache) == SHARED_NAMESPACE
    assert cache_namespace(principal(), cache) == SHARED_NAMESPACE
    assert cache_namespace(None, cache) == SHARED_NAMESPACE


def test_a_shared_cache_puts_every_group_in_one_namespace() -> None:
    cache = ResponseCache(None, CacheConfig(enabled=True, shared=True))
    assert cache_namespace(principal(group("eng")), cache) == SHARED_NAMESPACE


# -- model access ----------------------------------------------------------------------


def test_without_authentication_every_model_and_deployment_is_reachable() -> None:
    check_model(None, "anything", RESOLVED)
    assert permitted(None, "gpt", PLAN) is PLAN


def test_a_model_is_allowed_by_its_name_or_the_alias_it_was_requested_by() -> None:
    check_model(principal(group("g", allowed_models=["gpt"])), "fast", RESOLVED)
    check_model(principal(group("g", allowed_models=["fast"])), "fast", RESOLVED)
    check_model(principal(group("g", allowed_models=["gp*"])), "", RESOLVED)


def test_a_model_no_group_allows_is_refused_by_the_requested_name() -> None:
    who = principal(group("g", allowed_models=["claude"]))
    with pytest.raises(PermissionDenied) as caught:
        check_model(who, "fast", RESOLVED)
    assert str(caught.value) == "model 'fast' is not allowed for consumers/alice"
    with pytest.raises(PermissionDenied, match="model 'gpt'"):
        check_model(who, "", RESOLVED)


def test_a_consumer_in_no_group_may_use_no_model() -> None:
    with pytest.raises(PermissionDenied):
        check_model(principal(), "gpt", RESOLVED)


def test_deployments_on_providers_the_group_does_not_pair_with_the_model_are_dropped() -> None:
    who = principal(group("g", allowed_models=["gpt", "claude"], allowed_providers=["azure"]))
    kept = permitted(who, "gpt", PLAN)
    assert kept.candidates == (GPT_AZURE,)
    assert (kept.model, kept.strategy) == ("gpt", "priority")


def test_a_fallback_model_needs_its_own_permission() -> None:
    only_gpt = principal(group("g", allowed_models=["gpt"]))
    assert permitted(only_gpt, "gpt", PLAN).candidates == (GPT_OPENAI, GPT_AZURE)
    # The alias a request used covers the primary model, never its fallbacks.
    via_alias = principal(group("g", allowed_models=["fast"]))
    assert permitted(via_alias, "fast", PLAN).candidates == (GPT_OPENAI, GPT_AZURE)
    both = principal(group("g", allowed_models=["gpt", "claude"]))
    assert permitted(both, "gpt", PLAN) is PLAN


def test_models_and_providers_are_paired_within_one_group_only() -> None:
    # Group a allows gpt on openai only; group b allows any provider, but for claude. gpt
    # on azure is dropped: a's model is never combined with b's open provider list.
    who = principal(
        group("a", allowed_models=["gpt"], allowed_providers=["openai"]),
        group("b", allowed_models=["claude"]),
    )
    assert providers(permitted(who, "gpt", PLAN)) == ["openai", "anthropic"]


def test_a_plan_with_nothing_reachable_is_refused() -> None:
    who = principal(group("g", allowed_models=["gpt"], allowed_providers=["bedrock"]))
    with pytest.raises(PermissionDenied) as caught:
        permitted(who, "fast", PLAN)
    assert "model 'fast' is not allowed for consumers/alice on any provider" in str(caught.value)


# -- limits and budgets -----------------------------------------------------------------


def test_file_limits_are_looked_up_by_consumer_and_group_id() -> None:
    config = RateLimitsConfig(
        consumers={"alice": RateLimitConfig(requests_per_minute=10)},
        groups={"eng": RateLimitConfig(tokens_per_day=5000), "ml": RateLimitConfig()},
    )
    found = request_limits(principal(group("eng"), group("ml")), config)
    assert found == [
        Limit("consumer", "consumers/alice", "requests", "minute", 10),
        Limit("group", "groups/eng", "tokens", "day", 5000),
    ]
    assert request_limits(principal(group("ml"), consumer_id="bob"), config) == []


def test_without_authentication_the_anonymous_consumers_file_limits_apply() -> None:
    config = RateLimitsConfig(
        consumers={
            "anonymous": RateLimitConfig(requests_per_hour=100),
            "alice": RateLimitConfig(requests_per_minute=1),
        }
    )
    assert request_limits(None, config) == [
        Limit("consumer", "consumers/anonymous", "requests", "hour", 100)
    ]


def test_resource_limits_become_limits_and_incomplete_ones_are_ignored() -> None:
    eng = group(
        "eng",
        limits=[
            _RL(unit=_RL.UNIT_TOKENS, window=_RL.WINDOW_HOUR, limit=20_000),
            _RL(unit=_RL.UNIT_UNSPECIFIED, window=_RL.WINDOW_HOUR, limit=5),
            _RL(unit=_RL.UNIT_REQUESTS, window=_RL.WINDOW_UNSPECIFIED, limit=5),
            _RL(unit=_RL.UNIT_REQUESTS, window=_RL.WINDOW_MINUTE, limit=0),
        ],
    )
    who = principal(
        eng,
        limits=[
            _RL(unit=_RL.UNIT_REQUESTS, window=_RL.WINDOW_MINUTE, limit=30),
            _RL(unit=_RL.UNIT_REQUESTS, window=_RL.WINDOW_DAY, limit=1000),
        ],
    )
    assert request_limits(who, RateLimitsConfig()) == [
        Limit("consumer", "consumers/alice", "requests", "minute", 30),
        Limit("consumer", "consumers/alice", "requests", "day", 1000),
        Limit("group", "groups/eng", "tokens", "hour", 20_000),
    ]


def test_file_and_resource_limits_on_one_subject_share_its_counter() -> None:
    config = RateLimitsConfig(consumers={"alice": RateLimitConfig(requests_per_minute=10)})
    who = principal(limits=[_RL(unit=_RL.UNIT_REQUESTS, window=_RL.WINDOW_MINUTE, limit=3)])
    file_limit, own_limit = request_limits(who, config)
    assert file_limit.counter == own_limit.counter
    assert (file_limit.limit, own_limit.limit) == (10, 3)


def test_budgets_become_daily_and_monthly_cost_limits_with_a_soft_threshold() -> None:
    who = principal(
        group("eng", budget=identity_pb2.Budget(monthly_limit=100.0)),
        budget=identity_pb2.Budget(daily_limit=0.1, monthly_limit=2.5, soft_threshold=0.8),
    )
    assert request_limits(who, RateLimitsConfig()) == [
        Limit("consumer", "consumers/alice", "cost", "day", 100_000_000, soft=80_000_000),
        Limit("consumer", "consumers/alice", "cost", "month", 2_500_000_000, soft=2_000_000_000),
        Limit("group", "groups/eng", "cost", "month", 100 * NANOS_PER_UNIT),
    ]


@pytest.mark.parametrize("threshold", [0.0, 1.0, 1.5, -0.2])
def test_a_soft_threshold_outside_zero_to_one_sets_no_warning(threshold: float) -> None:
    who = principal(budget=identity_pb2.Budget(daily_limit=5.0, soft_threshold=threshold))
    (budget,) = request_limits(who, RateLimitsConfig())
    assert (budget.limit, budget.soft) == (5 * NANOS_PER_UNIT, None)


def test_no_budget_or_one_below_a_nano_unit_adds_no_limit() -> None:
    assert request_limits(principal(budget=identity_pb2.Budget()), RateLimitsConfig()) == []
    tiny = identity_pb2.Budget(daily_limit=1e-12, monthly_limit=-1.0)
    assert request_limits(principal(budget=tiny), RateLimitsConfig()) == []


def test_every_source_of_limits_is_combined() -> None:
    config = RateLimitsConfig(
        consumers={"alice": RateLimitConfig(requests_per_day=50)},
        groups={"eng": RateLimitConfig(requests_per_minute=5)},
    )
    eng = group(
        "eng",
        limits=[_RL(unit=_RL.UNIT_TOKENS, window=_RL.WINDOW_MINUTE, limit=900)],
        budget=identity_pb2.Budget(daily_limit=3.0),
    )
    who = principal(
        eng,
        limits=[_RL(unit=_RL.UNIT_REQUESTS, window=_RL.WINDOW_HOUR, limit=20)],
        budget=identity_pb2.Budget(monthly_limit=7.0),
    )
    described = [(lim.subject, lim.describe()) for lim in request_limits(who, config)]
    assert described == [
        ("consumers/alice", "50 requests per day"),
        ("consumers/alice", "20 requests per hour"),
        ("consumers/alice", "budget of 7 per month"),
        ("groups/eng", "5 requests per minute"),
        ("groups/eng", "900 tokens per minute"),
        ("groups/eng", "budget of 3 per day"),
    ]


def test_gateway_tools_need_the_tool_acl_unless_authentication_is_off() -> None:
    alice = principal(identity_pb2.Group(name="groups/g", allowed_tools=["weather", "search_*"]))
    check_tools(alice, ["weather", "search_corpus"])
    check_tools(None, ["anything"])
    with pytest.raises(
        PermissionDenied, match="tool 'get_chunk' is not allowed for consumers/alice"
    ):
        check_tools(alice, ["weather", "get_chunk"])
