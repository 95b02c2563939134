"""Running a servicer's work under a request id: unary answers and streams alike.

`once` and `once_streamed` take the claim (or the first outcome), run the work with a
context that records the metadata it sends, and record the outcome for repeats. A
request without an id runs the work directly, at no cost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from services.common.caller import current_principal
from services.common.channels import remaining_timeout
from services.common.errors import FailedPrecondition
from services.common.idempotency.request_ids import request_id_of
from services.common.idempotency.store import (
    Attempt,
    IdempotencyStore,
    Metadata,
    Outcome,
    Scope,
    fingerprint,
    replayed,
)
from services.common.validation import Violations

M = TypeVar("M", bound=Message)
ServicerContext: TypeAlias = grpc.aio.ServicerContext

ANONYMOUS = "anonymous"


class RecordingContext:
    """The servicer context, recording the initial and trailing metadata the work sets."""

    def __init__(self, context: ServicerContext) -> None:
        self._context = context
        self.initial: Metadata = ()
        self.trailing: Metadata = ()

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.initial = _text_pairs(metadata)
        await self._context.send_initial_metadata(metadata)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.trailing = _text_pairs(metadata)
        self._context.set_trailing_metadata(metadata)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _text_pairs(metadata: Sequence[tuple[str, str | bytes]]) -> Metadata:
    """Text metadata only (binary `-bin` entries are not replayed)."""
    return tuple((k, v) for k, v in metadata if isinstance(v, str))


def scope(method: str, request_id: str, fingerprint: str, *, secret: bool = False) -> Scope:
    """The scope of `request_id` for the current caller."""
    principal = current_principal()
    return Scope(
        principal.name if principal is not None else ANONYMOUS,
        method,
        request_id,
        fingerprint,
        secret,
    )


def request_scope(
    violations: Violations,
    method: str,
    request: Message,
    context: ServicerContext,
    *,
    field: str = "request_id",
    secret: bool = False,
) -> Scope | None:
    """The scope of the request's id (its `field`, a dotted path, or the Idempotency-Key
    header); None when it has none. Problems with the id go to `violations`."""
    holder: Any = request
    for part in field.split("."):
        holder = getattr(holder, part)
    request_id = request_id_of(violations, field, holder, context.invocation_metadata())
    if not request_id:
        return None
    return scope(method, request_id, fingerprint(request, field), secret=secret)


def _require(store: IdempotencyStore | None) -> IdempotencyStore:
    if store is None:
        raise FailedPrecondition("request_id needs Redis (LLMGW_REDIS_URL)")
    return store


async def once(
    store: IdempotencyStore | None,
    where: Scope | None,
    context: ServicerContext,
    response_type: type[M],
    work: Callable[[ServicerContext], Awaitable[M]],
) -> M:
    """`work(context)`'s answer, run at most once per scope (`where` None: no request id,
    just run it)."""
    if where is None:
        return await work(context)
    got = await _require(store).claim(where, remaining_timeout(context))
    if isinstance(got, Outcome):
        if got.initial_metadata:
            await context.send_initial_metadata(got.initial_metadata)
        context.set_trailing_metadata(replayed(got.trailing_metadata))
        return response_type.FromString(got.responses[0])
    recorder = RecordingContext(context)
    try:
        response = await work(recorder)
    except BaseException:
        await _release(got)
        raise
    await got.finish(Outcome([response.SerializeToString()], recorder.initial, recorder.trailing))
    return response


async def once_streamed(
    store: IdempotencyStore | None,
    where: Scope | None,
    context: ServicerContext,
    response_type: type[M],
    work: Callable[[ServicerContext], AsyncGenerator[M, None]],
) -> AsyncGenerator[M, None]:
    """`work(context)`'s stream, run at most once per scope; a repeat gets the first
    stream again, message for message."""
    if where is None:
        async with contextlib.aclosing(work(context)) as direct:
            async for message in direct:
                yield message
        return
    store = _require(store)
    got = await store.claim(where, remaining_timeout(context))
    if isinstance(got, Outcome):
        await context.send_initial_metadata(replayed(got.initial_metadata))
        for raw in got.responses:
            yield response_type.FromString(raw)
        context.set_trailing_metadata(got.trailing_metadata)
        return
    recorder = RecordingContext(context)
    recorded: list[bytes] = []
    size = 0
    too_large = False
    try:
        async with contextlib.aclosing(work(recorder)) as messages:
            async for message in messages:
                if not too_large:
                    raw = message.SerializeToString()
                    size += len(raw)
                    too_large = size > store.max_outcome_bytes
                    recorded.append(raw)
                yield message
    except BaseException:
        await _release(got)
        raise
    await got.finish(
        Outcome([] if too_large else recorded, recorder.initial, recorder.trailing, too_large)
    )


async def _release(attempt: Attempt) -> None:
    """Drops the claim even while the task is being cancelled."""
    await asyncio.shield(attempt.release())
