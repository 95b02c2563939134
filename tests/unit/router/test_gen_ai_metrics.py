"""The router's GenAI histograms and gateway overhead, observed by the chat handlers
themselves (called directly, against a scripted provider client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from services.common.errors import GatewayError, Unavailable
from services.common.gateway_config import parse_config
from services.common.upstream_timing import DURATION_TRAILER, FIRST_TOKEN_TRAILER, UpstreamTiming
from services.router.cache.store import ResponseCache
from services.router.catalog import Catalog
from services.router.routing.breaker import BreakerRegistry
from services.router.routing.layer import RoutingLayer
from services.router.servicer import RouterServicer
from services.router.usage.recorder import UsageRecorder
from tests.support.servicer_context import FakeContext

# Seconds the scripted upstream takes before its answer (before its first event).
UPSTREAM_DELAY = 0.05


class ScriptedProvider:
    """The ProviderClient calls the servicer makes: each deployment answers, or fails
    with the error queued for its upstream model, and reports its upstream time as
    the provider service does (`report`: False reports none)."""

    def __init__(self, *, report: bool = True, output_tokens: int = 5) -> None:
        self.report = report
        self.output_tokens = output_tokens
        self.failures: dict[str, list[GatewayError]] = {}

    def _fail(self, model: str) -> None:
        queued = self.failures.get(model)
        if queued:
            raise queued.pop(0)

    async def complete(
        self,
        request: provider_pb2.CompleteRequest,
        timeout: float | None,
        timing: UpstreamTiming | None = None,
    ) -> provider_pb2.CompleteResponse:
        self._fail(request.model)
        await asyncio.sleep(UPSTREAM_DELAY)
        if timing is not None and self.report:
            timing.read([(DURATION_TRAILER, f"{UPSTREAM_DELAY:.6f}")])
        return provider_pb2.CompleteResponse(
            message=common_pb2.Message(
                role=common_pb2.ROLE_ASSISTANT, content=[common_pb2.ContentPart(text="hello")]
            ),
            finish_reason=common_pb2.FINISH_REASON_STOP,
            usage=common_pb2.Usage(input_tokens=12, output_tokens=self.output_tokens),
            provider=request.provider,
        )

    async def stream(
        self,
        request: provider_pb2.CompleteRequest,
        timeout: float | None,
        timing: UpstreamTiming | None = None,
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        self._fail(request.model)
        await asyncio.sleep(UPSTREAM_DELAY)
        for _ in range(self.output_tokens):
            yield provider_pb2.StreamCompleteResponse(text="x")
        yield provider_pb2.StreamCompleteResponse(finish_reason=common_pb2.FINISH_REASON_STOP)
        yield provider_pb2.StreamCompleteResponse(
            usage=common_pb2.Usage(input_tokens=12, output_tokens=self.output_tokens)
        )
        if timing is not None and self.report:
            timing.read(
                [
                    (DURATION_TRAILER, f"{UPSTREAM_DELAY:.6f}"),
                    (FIRST_TOKEN_TRAILER, f"{UPSTREAM_DELAY:.6f}"),
                ]
            )


CONFIG = {
    "providers": {"oa": {"type": "openai"}, "an": {"type": "anthropic"}},
    "models": [
        {
            "name": "mini",
            "routing": "priority",
            "deployments": [
                {"provider": "an", "model": "claude-x"},
                {"provider": "oa", "model": "gpt-4o-mini"},
            ],
        }
    ],
    "prefixes": [{"prefix": "gpt-", "provider": "oa"}],
    "routing": {"retries": {"attempts_per_deployment": 1}},
}


def _servicer(provider: ScriptedProvider) -> RouterServicer:
    catalog = Catalog(parse_config(CONFIG))
    client = cast(Any, provider)
    return RouterServicer(
        catalog,
        client,
        RoutingLayer(catalog, client, BreakerRegistry(None, catalog.config.routing.breaker)),
        sessions=cast(Any, None),
        tools=cast(Any, None),
        cache=ResponseCache(None, catalog.config.cache),
        usage=UsageRecorder(None),
    )


def _request(model: str = "mini") -> chat_pb2.CreateChatCompletionRequest:
    request = chat_pb2.CreateChatCompletionRequest(
        model=model, messages=[chat_pb2.ChatMessage(role="user")]
    )
    request.messages[0].content.string_value = "hi"
    return request


class Samples:
    """Sample values of the registry, read as differences from a starting point."""

    def __init__(self) -> None:
        self._start: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._start = self._all()

    @staticmethod
    def _all() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in REGISTRY.collect()
            for sample in family.samples
        }

    def delta(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self._all().get(key, 0.0) - self._start.get(key, 0.0)


@pytest.fixture
def samples() -> Iterator[Samples]:
    yield Samples()


def _client(error: str = "", provider: str = "openai", model: str = "mini") -> dict[str, str]:
    return {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": provider,
        "gen_ai_request_model": model,
        "error_type": error,
    }


def _tokens(kind: str, provider: str = "anthropic") -> dict[str, str]:
    return {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": provider,
        "gen_ai_request_model": "mini",
        "gen_ai_token_type": kind,
    }


async def test_a_unary_call_is_one_client_observation_with_its_tokens(samples: Samples) -> None:
    await _servicer(ScriptedProvider()).CreateChatCompletion(_request(), FakeContext())
    duration = "gen_ai_client_operation_duration_seconds"
    assert samples.delta(f"{duration}_count", **_client(provider="anthropic")) == 1
    assert samples.delta(f"{duration}_sum", **_client(provider="anthropic")) >= UPSTREAM_DELAY
    assert samples.delta("gen_ai_client_token_usage_sum", **_tokens("input")) == 12
    assert samples.delta("gen_ai_client_token_usage_sum", **_tokens("output")) == 5
    assert samples.delta("gen_ai_client_token_usage_count", **_tokens("output")) == 1


async def test_a_failed_attempt_is_observed_with_its_status_code(samples: Samples) -> None:
    provider = ScriptedProvider()
    provider.failures["claude-x"] = [Unavailable("upstream down")]
    await _servicer(provider).CreateChatCompletion(_request(), FakeContext())
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert samples.delta(duration, **_client("UNAVAILABLE", provider="anthropic")) == 1
    assert samples.delta(duration, **_client("", provider="openai")) == 1
    assert samples.delta(duration, **_client("", provider="anthropic")) == 0


async def test_a_callers_model_name_is_never_a_label(samples: Samples) -> None:
    servicer = _servicer(ScriptedProvider())
    await servicer.CreateChatCompletion(_request("gpt-made-up-by-caller"), FakeContext())
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert samples.delta(duration, **_client(model="other")) == 1
    for family in REGISTRY.collect():
        for sample in family.samples:
            assert "made-up" not in repr(sample.labels), sample


async def test_unary_overhead_excludes_the_reported_upstream_time(samples: Samples) -> None:
    context = FakeContext()
    await _servicer(ScriptedProvider()).CreateChatCompletion(_request(), context)
    overhead = samples.delta("llmgw_gateway_overhead_seconds_sum", operation="chat")
    assert samples.delta("llmgw_gateway_overhead_seconds_count", operation="chat") == 1
    # The upstream's 50 ms are not the gateway's.
    assert 0 <= overhead < UPSTREAM_DELAY
    # The provider's timing stays between the router and the provider.
    assert not any(key.startswith("x-llmgw-upstream") for key, _ in context.trailing)


async def test_without_a_report_the_whole_attempt_counts_as_upstream(samples: Samples) -> None:
    await _servicer(ScriptedProvider(report=False)).CreateChatCompletion(_request(), FakeContext())
    assert samples.delta("llmgw_gateway_overhead_seconds_count", operation="chat") == 1
    assert samples.delta("llmgw_gateway_overhead_seconds_sum", operation="chat") < UPSTREAM_DELAY


async def test_a_caller_cannot_claim_upstream_time(samples: Samples) -> None:
    """Timing sent by the caller is not read: only the provider call's trailers are (a
    claimed upstream time of 0 s, if believed, would make the whole call overhead)."""
    context = FakeContext(((DURATION_TRAILER, "0"), (FIRST_TOKEN_TRAILER, "0")))
    await _servicer(ScriptedProvider(report=False)).CreateChatCompletion(_request(), context)
    overhead = samples.delta("llmgw_gateway_overhead_seconds_sum", operation="chat")
    assert samples.delta("llmgw_gateway_overhead_seconds_count", operation="chat") == 1
    assert 0 <= overhead < UPSTREAM_DELAY


async def _stream(servicer: RouterServicer, context: FakeContext) -> list[Any]:
    return [chunk async for chunk in servicer.StreamChatCompletion(_request(), context)]


async def test_a_stream_observes_ttft_tpot_and_overhead(samples: Samples) -> None:
    provider = ScriptedProvider(output_tokens=5)
    context = FakeContext()
    await _stream(_servicer(provider), context)
    server = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "mini"}
    ttft = "gen_ai_server_time_to_first_token_seconds"
    assert samples.delta(f"{ttft}_count", **server) == 1
    assert samples.delta(f"{ttft}_sum", **server) >= UPSTREAM_DELAY
    assert samples.delta("gen_ai_server_time_per_output_token_seconds_count", **server) == 1
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert samples.delta(duration, **_client(provider="anthropic")) == 1
    assert samples.delta("gen_ai_client_token_usage_sum", **_tokens("output")) == 5
    assert samples.delta("llmgw_gateway_overhead_seconds_count", operation="chat_stream") == 1
    overhead = samples.delta("llmgw_gateway_overhead_seconds_sum", operation="chat_stream")
    assert 0 <= overhead < UPSTREAM_DELAY
    assert not any(key.startswith("x-llmgw-upstream") for key, _ in context.trailing)


async def test_a_stream_of_one_token_has_no_time_per_token(samples: Samples) -> None:
    await _stream(_servicer(ScriptedProvider(output_tokens=1)), FakeContext())
    server = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "mini"}
    assert samples.delta("gen_ai_server_time_to_first_token_seconds_count", **server) == 1
    assert samples.delta("gen_ai_server_time_per_output_token_seconds_count", **server) == 0


async def test_stream_overhead_needs_the_upstream_first_token_time(samples: Samples) -> None:
    await _stream(_servicer(ScriptedProvider(report=False)), FakeContext())
    assert samples.delta("llmgw_gateway_overhead_seconds_count", operation="chat_stream") == 0
