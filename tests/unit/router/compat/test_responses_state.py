"""Stored responses: messages to and from the session service's form, and the 404s of
an unknown or malformed previous_response_id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest
from google.protobuf import json_format

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.router.v1 import chat_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.errors import NotFound, ResourceExhausted
from services.common.session_client import SessionClient
from services.router.compat.responses_request import to_chat_request
from services.router.compat.responses_state import ResponseStore, from_stored, to_stored

RESP = "resp_" + "ab" * 16


class FakeSessions:
    """The SessionClient calls a store makes, in memory."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[common_pb2.Message]] = {}
        self.listed: list[str] = []

    async def create(self, session_id: str, session: session_pb2.Session, timeout: Any) -> str:
        self.sessions[f"sessions/{session_id}"] = []
        return f"sessions/{session_id}"

    async def append(self, name: str, messages: Sequence[common_pb2.Message], timeout: Any) -> None:
        self.sessions[name].extend(messages)

    async def list_messages(
        self, name: str, max_messages: int, max_bytes: int, timeout: Any
    ) -> list[common_pb2.Message]:
        self.listed.append(name)
        if name not in self.sessions:
            raise NotFound(f"session '{name}' not found")
        return list(self.sessions[name])


def _store(fake: FakeSessions, max_messages: int = 100) -> ResponseStore:
    return ResponseStore(cast(SessionClient, fake), max_messages)


def _conversation() -> list[chat_pb2.ChatMessage]:
    parsed = to_chat_request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "look"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "done"},
                {"role": "assistant", "content": "ok"},
            ],
        }
    )
    return parsed.input_messages


def _as_dicts(messages: Sequence[chat_pb2.ChatMessage]) -> list[dict[str, Any]]:
    return [json_format.MessageToDict(m, preserving_proto_field_name=True) for m in messages]


def test_messages_survive_storage() -> None:
    conversation = _conversation()
    back = [from_stored(to_stored(m)) for m in conversation]
    assert _as_dicts(back) == [
        {"role": "user", "content": [{"type": "text", "text": "look"}]},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "done"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]


async def test_a_saved_conversation_is_continued() -> None:
    fake = FakeSessions()
    store = _store(fake)
    await store.save(RESP, _conversation(), None)
    history = await store.history(RESP, None)
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert fake.listed == [f"sessions/{RESP}"]


async def test_unknown_id_is_404_naming_the_field() -> None:
    with pytest.raises(NotFound) as missing:
        await _store(FakeSessions()).history(RESP, None)
    assert missing.value.message.startswith("previous_response_id:")


@pytest.mark.parametrize("bad", ["resp_1", "sessions/x", "chatcmpl-1", "resp_" + "G" * 32])
async def test_malformed_id_is_404_without_a_lookup(bad: str) -> None:
    fake = FakeSessions()
    with pytest.raises(NotFound) as missing:
        await _store(fake).history(bad, None)
    assert "previous_response_id" in missing.value.message
    assert fake.listed == []


def test_a_conversation_too_long_to_store_is_refused() -> None:
    store = _store(FakeSessions(), max_messages=3)
    store.check_room(3)
    with pytest.raises(ResourceExhausted):
        store.check_room(4)
