"""AIP-134 update masks and AIP-154 etags, on the real resource messages."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2

from llmgw.identity.v1 import identity_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common import field_masks
from services.common.errors import Aborted
from services.common.identity.validation import CONSUMER_FIELDS
from services.common.validation import Violations

SESSION_FIELDS = ("system_prompt", "context", "labels", "ttl")


def _paths(resource: object, mask: list[str], mutable: tuple[str, ...]) -> list[str]:
    violations = Violations()
    paths = field_masks.update_paths(violations, resource, mask, mutable)  # type: ignore[arg-type]
    violations.raise_if_any()
    return paths


def test_no_mask_names_exactly_the_populated_fields() -> None:
    consumer = identity_pb2.Consumer(name="consumers/a", display_name="x")
    assert _paths(consumer, [], CONSUMER_FIELDS) == ["display_name"]
    consumer.budget.daily_limit = 1.0
    consumer.ip_allowlist.append("10.0.0.0/8")
    assert _paths(consumer, [], CONSUMER_FIELDS) == ["display_name", "ip_allowlist", "budget"]
    # A bool left false is not populated: re-enabling needs the mask.
    assert "disabled" not in _paths(identity_pb2.Consumer(disabled=False), [], CONSUMER_FIELDS)


def test_message_and_map_fields_count_when_set_or_not_empty() -> None:
    session = session_pb2.Session(ttl=duration_pb2.Duration(seconds=0))
    assert _paths(session, [], SESSION_FIELDS) == ["ttl"]
    session.labels["team"] = "a"
    assert _paths(session, [], SESSION_FIELDS) == ["labels", "ttl"]
    assert _paths(session_pb2.Session(), [], SESSION_FIELDS) == []


def test_wildcard_names_every_mutable_field_and_must_stand_alone() -> None:
    assert _paths(identity_pb2.Consumer(), ["*"], CONSUMER_FIELDS) == list(CONSUMER_FIELDS)
    violations = Violations()
    field_masks.update_paths(violations, identity_pb2.Consumer(), ["*", "groups"], CONSUMER_FIELDS)
    assert [v.field for v in violations.items] == ["update_mask.paths"]


def test_a_named_mask_keeps_the_mutable_order_and_refuses_other_fields() -> None:
    assert _paths(identity_pb2.Consumer(), ["disabled", "groups"], CONSUMER_FIELDS) == [
        "groups",
        "disabled",
    ]
    violations = Violations()
    field_masks.update_paths(
        violations, identity_pb2.Consumer(), ["name", "x" * 10_000], CONSUMER_FIELDS
    )
    assert [v.field for v in violations.items] == ["update_mask.paths[0]", "update_mask.paths[1]"]
    # A caller's path is quoted back bounded.
    assert len(violations.items[1].description) < 300


def test_apply_paths_replaces_whole_fields_and_clears_unset_ones() -> None:
    stored = identity_pb2.Consumer(
        display_name="old", groups=["groups/a", "groups/b"], disabled=True
    )
    stored.budget.daily_limit = 5
    field_masks.apply_paths(
        identity_pb2.Consumer(groups=["groups/c"]), stored, ["groups", "budget"]
    )
    assert list(stored.groups) == ["groups/c"]
    assert not stored.HasField("budget")
    assert (stored.display_name, stored.disabled) == ("old", True)


def test_the_etag_follows_the_content_and_ignores_its_own_field() -> None:
    a = identity_pb2.Consumer(name="consumers/a", display_name="x")
    tag = field_masks.content_etag(a)
    a.etag = "anything"
    assert field_masks.content_etag(a) == tag
    a.display_name = "y"
    assert field_masks.content_etag(a) != tag


def test_a_stale_etag_is_aborted_and_an_empty_one_is_not_checked() -> None:
    field_masks.require_etag("", "current", "consumers/a")
    field_masks.require_etag("current", "current", "consumers/a")
    with pytest.raises(Aborted, match="consumers/a was changed"):
        field_masks.require_etag("stale", "current", "consumers/a")
