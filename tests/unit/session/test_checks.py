"""Request rules: one field violation per problem."""

from __future__ import annotations

from google.protobuf import duration_pb2

from llmgw.common.v1 import chat_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.field_masks import update_paths
from services.common.gateway_config import SessionConfig
from services.common.validation import Violations
from services.session.message_checks import check_messages
from services.session.request_checks import MUTABLE_FIELDS, page_size, ttl_ms

LIMITS = SessionConfig(default_ttl_seconds=60, max_ttl_seconds=120)


def fields(violations: Violations) -> list[str]:
    return [v.field for v in violations.items]


def test_message_rules_name_every_problem() -> None:
    violations = Violations()
    messages = [
        chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.ContentPart(text="ok")]),
        chat_pb2.Message(content=[chat_pb2.ContentPart(text="no role")]),
        chat_pb2.Message(role=chat_pb2.ROLE_TOOL, content=[chat_pb2.ContentPart(text="r")]),
        chat_pb2.Message(
            role=chat_pb2.ROLE_USER,
            tool_call_id="x",
            tool_calls=[chat_pb2.ToolCall()],
            content=[chat_pb2.ContentPart(), chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl())],
        ),
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM),
        chat_pb2.Message(
            role=chat_pb2.ROLE_ASSISTANT, tool_calls=[chat_pb2.ToolCall(id="c", name="t")]
        ),
        chat_pb2.Message(role=42, content=[chat_pb2.ContentPart(text="?")]),
    ]
    check_messages(violations, "messages", messages, max_bytes=1024)
    assert fields(violations) == [
        "messages[1].role",
        "messages[2].tool_call_id",
        "messages[3].content[0]",
        "messages[3].content[1].image_url.url",
        "messages[3].tool_calls",
        "messages[3].tool_calls[0].id",
        "messages[3].tool_calls[0].name",
        "messages[3].tool_call_id",
        "messages[4].content",
        "messages[6].role",
    ]


def test_message_size_limit_counts_serialized_bytes() -> None:
    violations = Violations()
    big = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.ContentPart(text="x" * 100)])
    check_messages(violations, "messages", [big], max_bytes=big.ByteSize() - 1)
    assert fields(violations) == ["messages[0]"]
    violations = Violations()
    check_messages(violations, "messages", [big], max_bytes=big.ByteSize())
    assert not violations


def test_no_messages_is_a_violation() -> None:
    violations = Violations()
    check_messages(violations, "messages", [], max_bytes=10)
    assert fields(violations) == ["messages"]


def test_ttl_bounds_and_default() -> None:
    violations = Violations()
    assert ttl_ms(violations, "ttl", None, LIMITS) == 60_000
    assert ttl_ms(violations, "ttl", duration_pb2.Duration(nanos=1), LIMITS) == 1
    assert ttl_ms(violations, "ttl", duration_pb2.Duration(seconds=120), LIMITS) == 120_000
    assert not violations
    ttl_ms(violations, "ttl", duration_pb2.Duration(), LIMITS)
    ttl_ms(violations, "ttl", duration_pb2.Duration(seconds=-5), LIMITS)
    ttl_ms(violations, "ttl", duration_pb2.Duration(seconds=120, nanos=1), LIMITS)
    assert [v.description for v in violations.items] == [
        "must be positive",
        "must be positive",
        "must be at most 120s",
    ]


def test_page_size_defaults_caps_and_rejects_negative() -> None:
    violations = Violations()
    assert page_size(violations, "page_size", 0, 50, 1000) == 50
    assert page_size(violations, "page_size", 5000, 50, 1000) == 1000
    assert not violations
    page_size(violations, "page_size", -1, 50, 1000)
    assert fields(violations) == ["page_size"]


def test_update_mask_paths() -> None:
    violations = Violations()
    everything = session_pb2.Session(system_prompt="p", ttl=duration_pb2.Duration(seconds=1))
    everything.context["k"] = "v"
    everything.labels["a"] = "b"
    assert update_paths(violations, everything, [], MUTABLE_FIELDS) == [
        "system_prompt",
        "context",
        "labels",
        "ttl",
    ]
    assert update_paths(violations, session_pb2.Session(), [], MUTABLE_FIELDS) == []
    assert update_paths(violations, everything, ["ttl", "labels"], MUTABLE_FIELDS) == [
        "labels",
        "ttl",
    ]
    assert not violations
    update_paths(violations, everything, ["labels", "owner", "name"], MUTABLE_FIELDS)
    assert fields(violations) == ["update_mask.paths[1]", "update_mask.paths[2]"]
