"""Request ids (AIP-155) over the real Redis: at most once per caller and id, repeats get
the first outcome, concurrent repeats wait for it, failures free the id again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from google.protobuf import struct_pb2, wrappers_pb2

from llmgw.identity.v1 import identity_pb2
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from services.common.idempotency import sealing
from services.common.idempotency.request_ids import request_id_of
from services.common.idempotency.run import once, once_streamed, request_scope, scope
from services.common.idempotency.sealing import Sealer
from services.common.idempotency.store import (
    REPLAY_HEADER,
    IdempotencyStore,
    Outcome,
    Scope,
    fingerprint,
)
from services.common.identity.principal import Principal
from services.common.validation import Violations
from tests.support.servicer_context import FakeContext

SECRET = b"s" * 32


@pytest.fixture
def store(redis_client: aioredis.Redis) -> IdempotencyStore:
    return IdempotencyStore(redis_client, sealer=Sealer(SECRET), lease=0.3)


def _scope(request_id: str = "req-1", fp: str = "fp", principal: str = "consumers/a") -> Scope:
    return Scope(principal, "test.Method", request_id, fp)


class Counter:
    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.calls = 0
        self._delay = delay
        self._fail = fail

    async def __call__(self, context: Any) -> wrappers_pb2.StringValue:
        self.calls += 1
        await asyncio.sleep(self._delay)
        if self.calls <= self._fail:
            raise Unavailable("upstream down")
        context.set_trailing_metadata((("x-llmgw-model", "m"),))
        return wrappers_pb2.StringValue(value=f"answer {self.calls}")


async def test_a_repeat_gets_the_first_answer_and_the_work_runs_once(
    store: IdempotencyStore,
) -> None:
    work = Counter()
    first_ctx, again_ctx = FakeContext(), FakeContext()
    first = await once(store, _scope(), first_ctx, wrappers_pb2.StringValue, work)
    again = await once(store, _scope(), again_ctx, wrappers_pb2.StringValue, work)
    assert (first.value, again.value, work.calls) == ("answer 1", "answer 1", 1)
    assert first_ctx.trailing == (("x-llmgw-model", "m"),)
    assert again_ctx.trailing == (("x-llmgw-model", "m"), (REPLAY_HEADER, "true"))


async def test_concurrent_repeats_wait_for_the_running_first_request(
    store: IdempotencyStore,
) -> None:
    work = Counter(delay=0.5)  # longer than the lease: the runner must renew it
    answers = await asyncio.gather(
        *(once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, work) for _ in range(20))
    )
    assert work.calls == 1
    assert {a.value for a in answers} == {"answer 1"}


async def test_ids_are_per_caller_and_per_method(store: IdempotencyStore) -> None:
    work = Counter()
    await once(
        store, _scope(principal="consumers/a"), FakeContext(), wrappers_pb2.StringValue, work
    )
    await once(
        store, _scope(principal="consumers/b"), FakeContext(), wrappers_pb2.StringValue, work
    )
    other = Scope("consumers/a", "test.Other", "req-1", "fp")
    await once(store, other, FakeContext(), wrappers_pb2.StringValue, work)
    assert work.calls == 3


async def test_the_same_id_with_another_request_is_invalid_argument(
    store: IdempotencyStore,
) -> None:
    await once(store, _scope(fp="one"), FakeContext(), wrappers_pb2.StringValue, Counter())
    with pytest.raises(InvalidArgument) as caught:
        await once(store, _scope(fp="two"), FakeContext(), wrappers_pb2.StringValue, Counter())
    assert caught.value.violations[0].field == "request_id"


async def test_a_failure_frees_the_id_for_a_repeat(store: IdempotencyStore) -> None:
    work = Counter(fail=1)
    with pytest.raises(Unavailable):
        await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, work)
    answer = await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, work)
    assert (answer.value, work.calls) == ("answer 2", 2)


async def test_a_cancelled_first_request_frees_the_id(store: IdempotencyStore) -> None:
    work = Counter(delay=5)
    task = asyncio.create_task(once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, work))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    quick = Counter()
    answer = await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, quick)
    assert answer.value == "answer 1" and quick.calls == 1


async def test_a_dead_runner_s_claim_lapses_after_its_lease(store: IdempotencyStore) -> None:
    # A runner that died: it claimed the id and never renewed, finished or released it.
    claimed = await store.claim(_scope(), None)
    assert not isinstance(claimed, Outcome)
    claimed._renewer.cancel()  # the runner's process is gone
    work = Counter()
    answer = await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, work)
    assert answer.value == "answer 1" and work.calls == 1


async def test_a_repeat_waits_no_longer_than_its_deadline(store: IdempotencyStore) -> None:
    running = asyncio.create_task(
        once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, Counter(delay=1.0))
    )
    await asyncio.sleep(0.05)
    with pytest.raises(DeadlineExceeded, match="still running"):
        await once(store, _scope(), FakeContext(remaining=0.2), wrappers_pb2.StringValue, Counter())
    await running


async def test_a_stream_is_replayed_message_for_message(store: IdempotencyStore) -> None:
    calls = 0

    async def chunks(context: Any) -> AsyncIterator[wrappers_pb2.StringValue]:
        nonlocal calls
        calls += 1
        await context.send_initial_metadata((("x-llmgw-route", "primary"),))
        for i in range(3):
            yield wrappers_pb2.StringValue(value=f"chunk {i}")
        context.set_trailing_metadata((("x-llmgw-session-saved", "true"),))

    first_ctx, again_ctx = FakeContext(), FakeContext()
    first = [
        c.value
        async for c in once_streamed(store, _scope(), first_ctx, wrappers_pb2.StringValue, chunks)
    ]
    again = [
        c.value
        async for c in once_streamed(store, _scope(), again_ctx, wrappers_pb2.StringValue, chunks)
    ]
    assert first == again == ["chunk 0", "chunk 1", "chunk 2"]
    assert calls == 1
    assert again_ctx.initial == (("x-llmgw-route", "primary"), (REPLAY_HEADER, "true"))
    assert again_ctx.trailing == (("x-llmgw-session-saved", "true"),)


async def test_an_answer_too_large_to_keep_is_reported_not_rerun(
    redis_client: aioredis.Redis,
) -> None:
    store = IdempotencyStore(redis_client, max_outcome_bytes=100)
    work = Counter()

    async def big(context: Any) -> wrappers_pb2.StringValue:
        await work(context)
        return wrappers_pb2.StringValue(value="x" * 1000)

    await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, big)
    with pytest.raises(FailedPrecondition, match="too large"):
        await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, big)
    assert work.calls == 1


async def test_a_secret_rests_sealed_and_is_replayed_opened(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    where = Scope("consumers/a", "identity.CreateApiKey", "k1", "fp", secret=True)

    async def issue(context: Any) -> wrappers_pb2.StringValue:
        return wrappers_pb2.StringValue(value="sk-the-secret-value")

    await once(store, where, FakeContext(), wrappers_pb2.StringValue, issue)
    stored = await redis_client.hget(where.key, "outcome")
    assert stored is not None and b"sk-the-secret" not in stored
    again = await once(store, where, FakeContext(), wrappers_pb2.StringValue, issue)
    assert again.value == "sk-the-secret-value"
    # Another secret cannot open it.
    other = IdempotencyStore(redis_client, sealer=Sealer(b"t" * 32))
    with pytest.raises(FailedPrecondition, match="cannot be opened"):
        await once(other, where, FakeContext(), wrappers_pb2.StringValue, issue)


async def test_a_sealed_secret_whose_nonce_starts_like_the_not_kept_marker_opens(
    store: IdempotencyStore, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nonce is random: its first byte is "!" (the marker's) once in 256 seals."""
    monkeypatch.setattr(sealing.os, "urandom", lambda n: b"!" * n)
    where = Scope("consumers/a", "identity.CreateApiKey", "k2", "fp", secret=True)

    async def issue(context: Any) -> wrappers_pb2.StringValue:
        return wrappers_pb2.StringValue(value="sk-the-secret-value")

    await once(store, where, FakeContext(), wrappers_pb2.StringValue, issue)
    assert (await redis_client.hget(where.key, "outcome") or b"").startswith(b"!")
    again = await once(store, where, FakeContext(), wrappers_pb2.StringValue, issue)
    assert again.value == "sk-the-secret-value"


async def test_without_a_sealing_secret_a_secret_is_never_kept(
    redis_client: aioredis.Redis,
) -> None:
    store = IdempotencyStore(redis_client)
    where = Scope("consumers/a", "identity.CreateApiKey", "k1", "fp", secret=True)
    issued = 0

    async def issue(context: Any) -> wrappers_pb2.StringValue:
        nonlocal issued
        issued += 1
        return wrappers_pb2.StringValue(value="sk-the-secret-value")

    await once(store, where, FakeContext(), wrappers_pb2.StringValue, issue)
    assert b"sk-the-secret" not in (await redis_client.hget(where.key, "outcome") or b"")
    with pytest.raises(FailedPrecondition, match="shown once"):
        await once(store, where, FakeContext(), wrappers_pb2.StringValue, issue)
    assert issued == 1


async def test_redis_unreachable_is_unavailable() -> None:
    store = IdempotencyStore(aioredis.Redis(port=1, socket_connect_timeout=0.2))
    with pytest.raises(Unavailable, match="request id"):
        await once(store, _scope(), FakeContext(), wrappers_pb2.StringValue, Counter())


async def test_no_request_id_runs_the_work_without_a_store() -> None:
    work = Counter()
    await once(None, None, FakeContext(), wrappers_pb2.StringValue, work)
    await once(None, None, FakeContext(), wrappers_pb2.StringValue, work)
    assert work.calls == 2


def test_the_id_comes_from_the_field_or_the_header_and_must_be_well_formed() -> None:
    header = (("idempotency-key", "abc-1"),)
    violations = Violations()
    assert request_id_of(violations, "request_id", "", header) == "abc-1"
    assert request_id_of(violations, "request_id", "abc-1", header) == "abc-1"
    assert request_id_of(violations, "request_id", "x.y:z_1", ()) == "x.y:z_1"
    assert request_id_of(violations, "request_id", "", ()) == ""
    assert not violations
    request_id_of(violations, "request_id", "other", header)
    request_id_of(violations, "request_id", "has space", ())
    request_id_of(violations, "request_id", "x" * 129, ())
    request_id_of(violations, "request_id", "", (("idempotency-key", "bad/id"),))
    assert [v.field for v in violations.items] == [
        "request_id",
        "request_id",
        "request_id",
        "Idempotency-Key",
    ]


def test_the_fingerprint_ignores_the_request_id_only() -> None:
    a = struct_pb2.Struct()
    a.update({"request_id": "1", "x": 1})
    b = struct_pb2.Struct()
    b.update({"request_id": "2", "x": 1})
    assert fingerprint(a) != fingerprint(b)
    scoped = wrappers_pb2.StringValue(value="v")
    assert fingerprint(scoped, "value") == fingerprint(wrappers_pb2.StringValue(value="w"), "value")


def test_the_scope_is_the_caller_s() -> None:
    alice = Principal(
        consumer=identity_pb2.Consumer(name="consumers/alice"), groups=(), key_name="k"
    )
    token = set_caller(Caller(principal=alice))
    try:
        assert scope("m", "r", "f").principal == "consumers/alice"
    finally:
        reset_caller(token)
    assert scope("m", "r", "f").principal == "anonymous"
    violations = Violations()
    found = request_scope(
        violations,
        "m",
        wrappers_pb2.StringValue(value="r1"),
        FakeContext(),
        field="value",  # type: ignore[arg-type]
    )
    assert found is not None and found.request_id == "r1"
