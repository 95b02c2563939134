"""What authentication, rate limits with budgets, and the response cache cost.

A second gateway requires API keys (LLMGW_AUTH=required). Three callers, provisioned
through the admin API, send the benchmark's request with wrk at concurrency 1 and 16:
- `auth`: a consumer with no limits (key lookup from the per-replica cache, the
  service and model ACLs);
- `auth + limits + budget`: a consumer with request and token limits per minute and a
  daily budget (one Lua call to reserve; the settlement rides on the usage record's call;
  the prompt counted with the tokenizer);
- `... + cache hit`: the same consumer asking a cached model the same question, so every
  request after the first is answered from Redis without an upstream call.
The router's CPU per request is measured for each, to set against the open gateway's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.cpu import CpuMeter
from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.idempotency.store import Attempt, IdempotencyStore, Outcome, Scope
from services.common.identity.assertion import EDGE_TOKEN_HEADER, InternalKeys, edge_token
from services.common.identity.cache import PrincipalCache
from services.common.identity.gate import Gate
from services.common.identity.store import IdentityStore
from services.common.rate_limits import Limit
from services.common.redis_store import create_redis
from services.router.limits.limiter import RateLimiter, settlement
from services.router.tokenizer import PromptCounter
from services.router.usage.recorder import UsageRecord, UsageRecorder
from tests.support.gateway import running_gateway
from tests.support.identity import bearer

ADMIN_KEY = "bench-admin-key-0123456789abcdef"
# Signs the assertions of the steps measured alone (the gateway has its own).
ASSERTION_SECRET = "bench-internal-secret-0123456789abcdef"
# Far above anything a benchmark run reaches: the limits are counted, never hit.
_LIMITS = [
    identity_pb2.RateLimit(
        unit=identity_pb2.RateLimit.UNIT_REQUESTS,
        window=identity_pb2.RateLimit.WINDOW_MINUTE,
        limit=10**9,
    ),
    identity_pb2.RateLimit(
        unit=identity_pb2.RateLimit.UNIT_TOKENS,
        window=identity_pb2.RateLimit.WINDOW_MINUTE,
        limit=10**12,
    ),
]
_BUDGET = identity_pb2.Budget(daily_limit=1_000_000, soft_threshold=0.9)
CACHED_MODEL = "cached-mini"


@dataclass(frozen=True)
class Variant:
    name: str
    consumer: str
    model: str


VARIANTS = (
    Variant("auth", "plain", "gpt-4o-mini"),
    Variant("auth + limits + budget", "limited", "gpt-4o-mini"),
    Variant("auth + limits + budget, cache hits", "limited", CACHED_MODEL),
)


async def _provision(target: str) -> dict[str, str]:
    """A group allowing everything, two consumers in it, a key for each."""
    metadata = bearer(ADMIN_KEY)
    keys: dict[str, str] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        admin = identity_grpc.IdentityServiceStub(channel)
        await admin.CreateGroup(
            identity_service_pb2.CreateGroupRequest(
                group=identity_pb2.Group(allowed_models=["*"], allowed_services=["router"]),
                group_id="bench",
            ),
            metadata=metadata,
        )
        for consumer_id, limited in (("plain", False), ("limited", True)):
            consumer = identity_pb2.Consumer(groups=["groups/bench"])
            if limited:
                consumer.limits.extend(_LIMITS)
                consumer.budget.CopyFrom(_BUDGET)
            await admin.CreateConsumer(
                identity_service_pb2.CreateConsumerRequest(
                    consumer=consumer, consumer_id=consumer_id
                ),
                metadata=metadata,
            )
            issued = await admin.CreateApiKey(
                identity_service_pb2.CreateApiKeyRequest(parent=f"consumers/{consumer_id}"),
                metadata=metadata,
            )
            keys[consumer_id] = issued.secret
    return keys


async def _cpu_us(step: Any, calls: int) -> float:
    for _ in range(100):
        await step()
    started = time.process_time()
    for _ in range(calls):
        await step()
    return (time.process_time() - started) / calls * 1e6


async def _cpu_us_together(step: Any, calls: int, width: int) -> float:
    """CPU per call of `width` calls made at once, as concurrent requests make them."""
    for _ in range(10):
        await asyncio.gather(*(step() for _ in range(width)))
    rounds = max(1, calls // width)
    started = time.process_time()
    for _ in range(rounds):
        await asyncio.gather(*(step() for _ in range(width)))
    return (time.process_time() - started) / (rounds * width) * 1e6


async def component_costs(redis_url: str, key: str, calls: int = 2000) -> dict[str, float]:
    """CPU microseconds of each added step, measured alone in this process against the
    gateway's Redis: what the router runs per request for each feature."""
    redis = create_redis(redis_url)
    try:
        keys = InternalKeys(ASSERTION_SECRET, "bench")
        gate = Gate(keys, PrincipalCache(IdentityStore(redis)))
        metadata = (
            ("authorization", f"Bearer {key}"),
            ("x-llmgw-client-address", "127.0.0.1"),
            (EDGE_TOKEN_HEADER, edge_token(ASSERTION_SECRET)),
        )
        limiter = RateLimiter(redis)
        limits = [
            Limit("consumer", "consumers/bench-probe", "requests", "minute", 10**12),
            Limit("consumer", "consumers/bench-probe", "tokens", "minute", 10**15),
            Limit("consumer", "consumers/bench-probe", "cost", "day", 10**18),
        ]
        counter = PromptCounter()
        counter.warm()
        request = provider_pb2.CompleteRequest(
            model="gpt-4o-mini",
            messages=[
                common_pb2.Message(
                    role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="Hello")]
                )
            ],
        )

        async def admit() -> None:
            await gate.admit("router", metadata, "ipv4:127.0.0.1:1")

        async def reserve() -> None:
            await limiter.acquire(limits, 100, 1000)

        recorder = UsageRecorder(redis)
        record = UsageRecord("gpt-4o-mini", common_pb2.Usage(input_tokens=9, output_tokens=5), 9)

        async def record_only() -> None:
            await recorder.record(["consumers/bench-probe"], record)

        async def record_and_settle() -> None:
            reservation = await limiter.acquire(limits, 100, 1000)
            await recorder.record(["consumers/bench-probe"], record, settlement(reservation, 14, 9))

        async def count() -> None:
            counter.count(request, "openai")

        async def vouch() -> None:
            keys.verify(
                keys.mint(
                    consumer="consumers/bench-probe",
                    key_name="consumers/bench-probe/keys/abcdefghijkl",
                    address="127.0.0.1",
                    request_id="bench-request",
                    timeout=30,
                )
            )

        once = IdempotencyStore(redis)
        answer = Outcome([b"x" * 300], (), (("x-llmgw-model", "gpt-4o-mini"),))
        serial = itertools.count()

        async def first_with_id() -> None:
            attempt = await once.claim(
                Scope("consumers/bench-probe", "bench", f"r{next(serial)}", "fp"), None
            )
            assert isinstance(attempt, Attempt)
            await attempt.finish(answer)

        async def repeat_with_id() -> None:
            await once.claim(Scope("consumers/bench-probe", "bench", "r0", "fp"), None)

        reserve_us = await _cpu_us(reserve, calls)
        return {
            "key check (gate, cached key)": await _cpu_us(admit, calls),
            "principal assertion: mint + verify (per service-to-service call)": await _cpu_us(
                vouch, calls
            ),
            "limits and budget: reserve (1 Redis call)": reserve_us,
            "usage record (every request, with or without limits)": await _cpu_us(
                record_only, calls
            ),
            "usage record, 16 requests finishing at once (one Redis call carries them)": (
                await _cpu_us_together(record_only, calls, 16)
            ),
            "usage record carrying the settlement of 3 limits": await _cpu_us(
                record_and_settle, calls
            )
            - reserve_us,
            "prompt tokens with the tokenizer (one short message)": await _cpu_us(count, calls),
            "request id: claim + record the outcome (only requests carrying one)": await _cpu_us(
                first_with_id, calls
            ),
            "request id: a repeat answered from the recorded outcome": await _cpu_us(
                repeat_with_id, calls
            ),
        }
    finally:
        await redis.aclose()


def run_features(
    work: Path, body: dict[str, Any], duration: float, replicas: dict[str, int], wrk: Any
) -> tuple[dict[tuple[str, int], Any], dict[tuple[str, int], float], dict[str, float]]:
    """wrk results and router CPU seconds per (variant, concurrency), and the CPU of
    each added step measured alone."""
    runs: dict[tuple[str, int], Any] = {}
    router_cpu: dict[tuple[str, int], float] = {}
    feature_dir = work / "features"
    feature_dir.mkdir()
    with running_gateway(
        feature_dir,
        replicas=replicas,
        record=False,
        env=lambda fakes: {"LLMGW_AUTH": "required", "LLMGW_ADMIN_KEY": ADMIN_KEY},
    ) as gw:
        keys = asyncio.run(_provision(gw.grpc_target))
        url = gw.public_url + "/v1/chat/completions"
        meter = CpuMeter({"router": [r.process.pid or 0 for r in gw.stack.replicas["router"]]})
        for variant in VARIANTS:
            body_file = feature_dir / f"{variant.consumer}-{variant.model}.json"
            body_file.write_text(json.dumps({**body, "model": variant.model}))
            key = keys[variant.consumer]
            for concurrency in (1, 16):
                wrk(url, concurrency, 2, body_file, key)  # warm-up (and the cache's one miss)
                meter.start()
                result = wrk(url, concurrency, duration, body_file, key)
                meter.stop()
                runs[(variant.name, concurrency)] = result
                router_cpu[(variant.name, concurrency)] = meter.spent["router"]
                print(f"{variant.name} c={concurrency}: {result}", flush=True)
        steps = asyncio.run(component_costs(gw.stack.redis_url, keys["plain"]))
        print(steps, flush=True)
    return runs, router_cpu, steps


def main() -> int:
    """The steps alone, printed: `python -m bench.features` (no wrk runs)."""
    with (
        tempfile.TemporaryDirectory(prefix="llmgw-bench-steps-") as tmp,
        running_gateway(
            Path(tmp),
            record=False,
            env=lambda fakes: {"LLMGW_AUTH": "required", "LLMGW_ADMIN_KEY": ADMIN_KEY},
        ) as gw,
    ):
        keys = asyncio.run(_provision(gw.grpc_target))
        steps = asyncio.run(component_costs(gw.stack.redis_url, keys["plain"]))
    for name, us in steps.items():
        print(f"{us:8,.0f} us  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
