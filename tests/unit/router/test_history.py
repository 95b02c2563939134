"""Session history merged into a request: instructions, window, token budget, alignment."""

from __future__ import annotations

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.router.history import compose, trim_history
from services.router.routing.token_estimate import estimate_message_tokens

USER, ASSISTANT, TOOL, SYSTEM = (
    common_pb2.ROLE_USER,
    common_pb2.ROLE_ASSISTANT,
    common_pb2.ROLE_TOOL,
    common_pb2.ROLE_SYSTEM,
)


def _m(role: int, text: str) -> common_pb2.Message:
    return common_pb2.Message(role=role, content=[common_pb2.ContentPart(text=text)])


def _texts(messages: list[common_pb2.Message]) -> list[str]:
    return [m.content[0].text for m in messages]


def _session(*history: common_pb2.Message, system_prompt: str = "") -> session_pb2.Session:
    return session_pb2.Session(
        name="sessions/s",
        system_prompt=system_prompt,
        messages=[session_pb2.SessionMessage(index=i, message=m) for i, m in enumerate(history)],
    )


HISTORY = [_m(USER, "u1"), _m(ASSISTANT, "a1"), _m(USER, "u2"), _m(ASSISTANT, "a2")]


def test_session_prompt_stands_in_when_the_request_has_no_instructions() -> None:
    got = compose(
        [_m(USER, "new")],
        _session(*HISTORY, system_prompt="be brief"),
        window=0,
        fixed_tokens=0,
        context_tokens=None,
    )
    assert _texts(got.messages) == ["be brief", "u1", "a1", "u2", "a2", "new"]
    assert got.messages[0].role == SYSTEM
    assert _texts(got.new_turn) == ["new"]
    assert (got.history_used, got.history_dropped) == (4, 0)


def test_request_instructions_win_over_the_session_prompt_and_are_not_part_of_the_turn() -> None:
    got = compose(
        [_m(SYSTEM, "mine"), _m(USER, "new")],
        _session(*HISTORY, system_prompt="theirs"),
        window=0,
        fixed_tokens=0,
        context_tokens=None,
    )
    assert _texts(got.messages) == ["mine", "u1", "a1", "u2", "a2", "new"]
    assert _texts(got.new_turn) == ["new"]


def test_window_keeps_the_last_messages_starting_at_a_user_turn() -> None:
    # The last 3 would start at a1 (an assistant turn): the kept history starts at u2.
    assert _texts(trim_history(HISTORY, 3, None)) == ["u2", "a2"]
    assert _texts(trim_history(HISTORY, 2, None)) == ["u2", "a2"]
    assert _texts(trim_history(HISTORY, 0, None)) == ["u1", "a1", "u2", "a2"]


def test_tool_results_never_lead_the_history() -> None:
    call = common_pb2.Message(
        role=ASSISTANT, tool_calls=[common_pb2.ToolCall(id="c", name="t", arguments="{}")]
    )
    history = [_m(USER, "q"), call, _m(TOOL, "result"), _m(ASSISTANT, "answer")]
    assert _texts(trim_history(history, 2, None)) == []
    assert len(trim_history(history, 4, None)) == 4


def test_token_budget_drops_the_oldest_history_first() -> None:
    cost = sum(estimate_message_tokens(m) for m in HISTORY[2:])
    assert _texts(trim_history(HISTORY, 0, cost)) == ["u2", "a2"]
    assert _texts(trim_history(HISTORY, 0, cost - 1)) == []  # a2 alone does not start at a user
    assert trim_history(HISTORY, 0, 0) == []


def test_context_window_leaves_room_for_the_request_itself() -> None:
    new = [_m(USER, "new")]
    spent = 100 + estimate_message_tokens(new[0])
    history_cost = sum(estimate_message_tokens(m) for m in HISTORY)
    roomy = compose(
        new,
        _session(*HISTORY),
        window=0,
        fixed_tokens=100,
        context_tokens=spent + history_cost,
    )
    assert roomy.history_used == 4
    tight = compose(
        new,
        _session(*HISTORY),
        window=0,
        fixed_tokens=100,
        context_tokens=spent + history_cost - 1,
    )
    assert (tight.history_used, tight.history_dropped) == (2, 2)
    assert _texts(tight.messages) == ["u2", "a2", "new"]
