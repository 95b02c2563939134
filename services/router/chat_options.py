"""The checks of a chat request before any lookup: its OpenAI fields (`chat_request`)
and the gateway's own options (`gateway.*`), every problem reported at once."""

from __future__ import annotations

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2
from services.common.session_client import MAX_HISTORY_MESSAGES
from services.common.session_names import parse_session_name
from services.common.validation import Violations
from services.router.cache.policy import OPTION_FIELD as CACHE_OPTION_FIELD
from services.router.cache.policy import check_mode
from services.router.chat_request import to_complete_request
from services.router.routing.strategies import STRATEGIES
from services.router.tool_loop import MAX_GATEWAY_TOOLS, MAX_ITERATIONS_LIMIT, TOOL_ID

STRATEGY_NAMES = ", ".join(sorted(STRATEGIES))


def validated(
    request: chat_pb2.CreateChatCompletionRequest, *, streaming: bool
) -> provider_pb2.CompleteRequest:
    """The request as the provider call it becomes; INVALID_ARGUMENT naming every
    problem otherwise."""
    problems = Violations()
    if request.stream and not streaming:
        problems.add("stream", "true needs the streaming RPC (StreamChatCompletion)")
    upstream = to_complete_request(request, problems)
    gateway_options(request, problems)
    problems.raise_if_any()
    upstream.include_usage = streaming
    return upstream


def gateway_options(request: chat_pb2.CreateChatCompletionRequest, problems: Violations) -> None:
    """Validates the gateway options; refuses those whose capability is not built yet."""
    options = request.gateway
    if options.routing_strategy and options.routing_strategy not in STRATEGIES:
        problems.add(
            "gateway.routing_strategy",
            f"unknown strategy '{options.routing_strategy}' (one of {STRATEGY_NAMES})",
        )
    if options.session:
        parse_session_name(problems, "gateway.session", options.session)
    if not 0 <= options.history_window <= MAX_HISTORY_MESSAGES:
        problems.add("gateway.history_window", f"must be in [0, {MAX_HISTORY_MESSAGES}]")
    elif options.history_window and not options.session:
        problems.add("gateway.history_window", "needs gateway.session")
    if len(options.tools) > MAX_GATEWAY_TOOLS:
        problems.add("gateway.tools", f"at most {MAX_GATEWAY_TOOLS} tools")
    own = {tool.function.name for tool in request.tools}
    seen: set[str] = set()
    for i, name in enumerate(options.tools):
        where = f"gateway.tools[{i}]"
        if TOOL_ID.fullmatch(name) is None:
            problems.add(where, f"'{name}' is not a tool id ({TOOL_ID.pattern})")
        elif name in seen:
            problems.add(where, f"'{name}' is listed twice")
        elif name in own:
            problems.add(where, f"'{name}' is also one of the request's own tools")
        seen.add(name)
    if not 0 <= options.max_iterations <= MAX_ITERATIONS_LIMIT:
        problems.add("gateway.max_iterations", f"must be in [0, {MAX_ITERATIONS_LIMIT}]")
    elif options.max_iterations and not options.tools:
        problems.add("gateway.max_iterations", "needs gateway.tools")
    problem = check_mode(options.cache)
    if problem is not None:
        problems.add(CACHE_OPTION_FIELD, problem)
