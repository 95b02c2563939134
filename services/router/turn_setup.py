"""What a chat turn brings beyond the request's own messages: the gateway's tools it
names (offered to the model, run by the tool loop) and its session's history (merged
into the provider request, within the model's context window and the session's size
limit)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc

from llmgw.common.v1 import error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.errors import GatewayError, QuotaViolation, ResourceExhausted
from services.common.session_client import MAX_HISTORY_MESSAGES, SessionClient
from services.common.tool_client import ToolClient
from services.common.validation import Violations
from services.router.catalog import Catalog, ResolvedModel
from services.router.history import compose, history_bytes
from services.router.routing.token_estimate import (
    estimate_output_tokens,
    estimate_prompt_tokens,
)
from services.router.tool_loop import DEFAULT_MAX_ITERATIONS, ToolLoop
from services.router.turn import Turn


def context_window(resolved: ResolvedModel) -> int | None:
    """The smallest known context window among the model's deployments."""
    return min((d.context_window for d in resolved.deployments if d.context_window), default=None)


async def open_turn(
    request: chat_pb2.CreateChatCompletionRequest,
    upstream: provider_pb2.CompleteRequest,
    resolved: ResolvedModel,
    catalog: Catalog,
    *,
    sessions: SessionClient,
    tools: ToolClient,
    timeout: float | None,
    request_id: str,
) -> Turn:
    """Offers the gateway's tools and merges the session's history into `upstream`."""
    options = request.gateway
    turn = Turn(new_turn=list(upstream.messages), request_id=request_id)
    if options.tools:
        turn.loop = ToolLoop(
            await load_tools(tools, options.tools, timeout),
            tools,
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
    session = await sessions.load(
        options.session,
        options.history_window or MAX_HISTORY_MESSAGES,
        history_bytes(
            upstream.messages, fixed_tokens=fixed, context_tokens=context_window(resolved)
        ),
        timeout,
    )
    composition = compose(
        upstream.messages,
        session,
        window=options.history_window,
        fixed_tokens=fixed,
        context_tokens=context_window(resolved),
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


async def load_tools(
    client: ToolClient, names: Sequence[str], timeout: float | None
) -> dict[str, tool_pb2.Tool]:
    """The named registered tools; an unknown one is the caller's mistake."""
    results = await asyncio.gather(
        *(client.get(name, timeout) for name in names), return_exceptions=True
    )
    problems = Violations()
    found: dict[str, tool_pb2.Tool] = {}
    for i, (name, result) in enumerate(zip(names, results, strict=True)):
        if isinstance(result, GatewayError) and result.code is grpc.StatusCode.NOT_FOUND:
            problems.add(f"gateway.tools[{i}]", f"no registered tool '{name}'")
        elif isinstance(result, BaseException):
            raise result
        else:
            found[name] = result
    problems.raise_if_any()
    return found
