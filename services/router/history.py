"""Session history merged into a chat request, and trimmed to fit.

The request's own instructions (its system and developer messages) come first; when it
has none, the session's system prompt stands in. Then the session's history, then the
request's other messages — the new turn, which is also what gets appended to the session
when the completion succeeds.

History is cut from the oldest end: to the last `window` messages when the caller asks,
and to a token budget (what the model's context window leaves after the instructions,
the new turn, the tools and the answer). The kept history then starts at a user message,
so no tool result is ever sent without the assistant turn that asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.router.routing.token_estimate import (
    CHARS_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    estimate_message_tokens,
)

_INSTRUCTIONS = (common_pb2.ROLE_SYSTEM, common_pb2.ROLE_DEVELOPER)


@dataclass(frozen=True)
class Composition:
    # What the model is sent.
    messages: list[common_pb2.Message]
    # The request's messages other than instructions: the turn to append.
    new_turn: list[common_pb2.Message]
    # History messages sent, and left out by the window or the token budget.
    history_used: int
    history_dropped: int


def _starts_at_user(history: Sequence[common_pb2.Message]) -> int:
    for i, message in enumerate(history):
        if message.role == common_pb2.ROLE_USER:
            return i
    return len(history)


def trim_history(
    history: Sequence[common_pb2.Message], window: int, token_budget: int | None
) -> list[common_pb2.Message]:
    """The most recent history that fits `window` messages (0: any number) and
    `token_budget` tokens (None: any), starting at a user message."""
    kept = list(history[-window:]) if window > 0 else list(history)
    if token_budget is not None:
        total = 0
        start = len(kept)
        while start > 0:
            cost = estimate_message_tokens(kept[start - 1])
            if total + cost > token_budget:
                break
            total += cost
            start -= 1
        kept = kept[start:]
    return kept[_starts_at_user(kept) :]


def history_bytes(
    request_messages: Sequence[common_pb2.Message],
    *,
    fixed_tokens: int,
    context_tokens: int | None,
) -> int:
    """The most bytes of stored history the session service need return: the token
    room the context window leaves, in bytes (a message's token estimate is its
    overhead plus a quarter of its bytes, so no history `compose` keeps is larger).
    0 when the context window is unknown: the session service's own bound applies."""
    if not context_tokens:
        return 0
    spent = fixed_tokens + sum(estimate_message_tokens(m) for m in request_messages)
    room = max(context_tokens - spent, 0)
    # At least one byte: 0 would mean "no limit" to the session service.
    return max(room * CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS * CHARS_PER_TOKEN, 1)


def compose(
    request_messages: Sequence[common_pb2.Message],
    session: session_pb2.Session,
    *,
    window: int,
    fixed_tokens: int,
    context_tokens: int | None,
) -> Composition:
    """The messages to send for a request naming `session`.

    `fixed_tokens` is what the request costs besides its messages (tools, the answer);
    `context_tokens` the model's context window (None: unknown, no token budget).
    """
    instructions = [m for m in request_messages if m.role in _INSTRUCTIONS]
    new_turn = [m for m in request_messages if m.role not in _INSTRUCTIONS]
    if not instructions and session.system_prompt:
        instructions = [
            common_pb2.Message(
                role=common_pb2.ROLE_SYSTEM,
                content=[common_pb2.ContentPart(text=session.system_prompt)],
            )
        ]
    history = [m.message for m in session.messages]
    budget = None
    if context_tokens:
        spent = fixed_tokens + sum(estimate_message_tokens(m) for m in instructions + new_turn)
        budget = max(context_tokens - spent, 0)
    kept = trim_history(history, window, budget)
    return Composition(
        messages=[*instructions, *kept, *new_turn],
        new_turn=new_turn,
        history_used=len(kept),
        history_dropped=len(history) - len(kept),
    )
