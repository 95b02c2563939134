"""The scripting contract: Behaviour defaults, JSON round-trip, and queue matching."""

from __future__ import annotations

import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.fakes.behaviour import count_words, split_json, split_words
from tests.fakes.state import FakeState


def test_default_text_is_fixed_and_split_into_words() -> None:
    behaviour = Behaviour()
    assert behaviour.resolved_text == DEFAULT_TEXT
    assert behaviour.pieces == ("Hello", " from", " the", " fake.")
    assert behaviour.resolved_finish == "stop"


@pytest.mark.parametrize("text", ["", " lead", "trail  ", "a\nb\tc", "one"])
def test_word_pieces_join_back_to_the_text(text: str) -> None:
    assert "".join(split_words(text)) == text


@pytest.mark.parametrize("text", ['{"a": [1, "x, y"]}', '{"broken": "unterminated', "{}"])
def test_json_fragments_join_back_to_the_text(text: str) -> None:
    fragments = split_json(text)
    assert "".join(fragments) == text
    assert len(fragments) > 1


def test_chunks_give_the_text_and_must_agree_with_it() -> None:
    assert Behaviour(chunks=["a", "b"]).resolved_text == "ab"
    with pytest.raises(ValueError, match="join"):
        Behaviour(text="abc", chunks=["a", "b"])
    with pytest.raises(TypeError):
        Behaviour(chunks="ab")


def test_tool_calls_drop_the_default_text_and_finish_with_tool_calls() -> None:
    behaviour = Behaviour(tool_calls=[ToolCallSpec(name="f")])
    assert behaviour.resolved_text == ""
    assert behaviour.pieces == ()
    assert behaviour.resolved_finish == "tool_calls"


def test_malformed_arguments_pass_through_as_text() -> None:
    assert ToolCallSpec(name="f", arguments='{"a": 1}').arguments_object == {"a": 1}
    assert ToolCallSpec(name="f", arguments="{oops").arguments_object == "{oops"


def test_json_round_trip_keeps_only_non_defaults() -> None:
    behaviour = Behaviour(
        text="ok",
        tool_calls=[ToolCallSpec(name="f", arguments='{"x": 1}', id="call_1")],
        usage=(3, 4),
        status=429,
        headers={"retry-after": "1"},
        chunk_delay=0.01,
        match_model="m",
    )
    data = behaviour.to_dict()
    assert "delay" not in data
    assert data["tool_calls"] == [{"name": "f", "arguments": '{"x": 1}', "id": "call_1"}]
    assert Behaviour.from_dict(data) == behaviour
    assert Behaviour.from_json(behaviour.to_json()) == behaviour
    assert Behaviour().to_dict() == {}


def test_from_dict_rejects_unknown_fields_and_accepts_object_arguments() -> None:
    with pytest.raises(ValueError, match="unknown"):
        Behaviour.from_dict({"txt": "typo"})
    spec = Behaviour.from_dict({"tool_calls": [{"name": "f", "arguments": {"a": 1}}]})
    assert spec.tool_calls[0].arguments_object == {"a": 1}


def test_negative_fault_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="break_after"):
        Behaviour(break_after=-1)


def test_queue_is_fifo_and_honours_match_model() -> None:
    state = FakeState()
    first, for_b, second = Behaviour(text="1"), Behaviour(text="b", match_model="b"), Behaviour()
    state.script([first, for_b, second])
    assert state.take("a") is first
    assert state.take("a") is second
    assert state.take("a") == Behaviour()
    assert state.take("b") is for_b


def test_prompt_estimate_counts_words_not_roles() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "two words"}]},
    ]
    assert count_words(messages) == 4
