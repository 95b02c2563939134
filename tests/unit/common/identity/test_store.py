"""Consumers and groups over the real Redis: validation, conflicts, masks, paging."""

from __future__ import annotations

import pytest

from llmgw.identity.v1 import identity_pb2
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from services.common.identity.store import IdentityStore
from tests.unit.common.identity.conftest import START, FakeClock, NewConsumer


async def test_consumer_create_get_and_already_exists(store: IdentityStore) -> None:
    created = await store.create_consumer(identity_pb2.Consumer(display_name="Alice"), "alice")
    assert created.name == "consumers/alice"
    assert created.create_time.seconds == int(START)
    assert await store.get_consumer("consumers/alice") == created
    with pytest.raises(AlreadyExists):
        await store.create_consumer(identity_pb2.Consumer(), "alice")
    with pytest.raises(NotFound):
        await store.get_consumer("consumers/bob")


@pytest.mark.parametrize("bad_id", ["", "Alice", "1alice", "a" * 64, "al_ice", "al/ice"])
async def test_ids_are_validated(store: IdentityStore, bad_id: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await store.create_consumer(identity_pb2.Consumer(), bad_id)
    assert [v.field for v in caught.value.violations] == ["consumer_id"]
    with pytest.raises(InvalidArgument):
        await store.create_group(identity_pb2.Group(), bad_id)


async def test_a_consumer_naming_an_unknown_group_is_a_field_violation(
    store: IdentityStore,
) -> None:
    await store.create_group(identity_pb2.Group(), "team")
    with pytest.raises(InvalidArgument) as caught:
        await store.create_consumer(
            identity_pb2.Consumer(groups=["groups/team", "groups/ghost"]), "alice"
        )
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("consumer.groups[1]", "group groups/ghost does not exist")
    ]
    with pytest.raises(NotFound):
        await store.get_consumer("consumers/alice")


async def test_consumer_and_group_fields_are_validated(store: IdentityStore) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await store.create_consumer(
            identity_pb2.Consumer(
                groups=["team"],
                ip_allowlist=["10.0.0.0/8", "not-an-ip"],
                limits=[identity_pb2.RateLimit(limit=0)],
                budget=identity_pb2.Budget(soft_threshold=2),
            ),
            "alice",
        )
    fields = {v.field for v in caught.value.violations}
    assert fields == {
        "consumer.groups[0]",
        "consumer.ip_allowlist[1]",
        "consumer.limits[0].unit",
        "consumer.limits[0].window",
        "consumer.limits[0].limit",
        "consumer.budget.soft_threshold",
    }
    with pytest.raises(InvalidArgument) as group_error:
        await store.create_group(
            identity_pb2.Group(allowed_services=["tool", "chat"], allowed_models=["g*pt", ""]),
            "team",
        )
    assert {v.field for v in group_error.value.violations} == {
        "group.allowed_services[1]",
        "group.allowed_models[0]",
        "group.allowed_models[1]",
    }


async def test_update_applies_only_the_mask_and_stamps_the_time(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await store.create_group(identity_pb2.Group(), "team")
    await store.create_consumer(
        identity_pb2.Consumer(display_name="Alice", ip_allowlist=["10.0.0.0/8"]), "alice"
    )
    clock.advance(5)
    updated = await store.update_consumer(
        identity_pb2.Consumer(
            name="consumers/alice", display_name="ignored", groups=["groups/team"]
        ),
        ["groups"],
    )
    assert updated.display_name == "Alice"
    assert list(updated.groups) == ["groups/team"]
    assert list(updated.ip_allowlist) == ["10.0.0.0/8"]
    assert updated.update_time.seconds == int(START) + 5
    assert updated.create_time.seconds == int(START)
    assert await store.get_consumer("consumers/alice") == updated

    # No mask: only what the request populates changes (AIP-134).
    renamed = await store.update_consumer(
        identity_pb2.Consumer(name="consumers/alice", display_name="Al")
    )
    assert renamed.display_name == "Al"
    assert list(renamed.groups) == ["groups/team"]
    assert list(renamed.ip_allowlist) == ["10.0.0.0/8"]
    # `*` replaces every mutable field, defaults included.
    replaced = await store.update_consumer(identity_pb2.Consumer(name="consumers/alice"), ["*"])
    assert replaced.display_name == "" and not replaced.groups and not replaced.ip_allowlist

    with pytest.raises(InvalidArgument) as caught:
        await store.update_consumer(identity_pb2.Consumer(name="consumers/alice"), ["name"])
    assert caught.value.violations[0].field == "update_mask.paths[0]"
    with pytest.raises(InvalidArgument):
        await store.update_consumer(
            identity_pb2.Consumer(name="consumers/alice", groups=["groups/ghost"]), ["groups"]
        )
    with pytest.raises(NotFound):
        await store.update_consumer(identity_pb2.Consumer(name="consumers/bob"))


async def test_group_update_and_delete_while_it_has_members(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await store.create_group(identity_pb2.Group(allowed_models=["gpt-*"]), "team")
    updated = await store.update_group(
        identity_pb2.Group(name="groups/team", admin=True, allowed_models=["x"]), ["admin"]
    )
    assert updated.admin and list(updated.allowed_models) == ["gpt-*"]
    await new_consumer("alice", "team")

    with pytest.raises(FailedPrecondition) as caught:
        await store.delete_group("groups/team")
    assert "1 member" in caught.value.message and "alice" not in caught.value.message
    await store.update_consumer(identity_pb2.Consumer(name="consumers/alice"), ["groups"])
    await store.delete_group("groups/team")
    with pytest.raises(NotFound):
        await store.get_group("groups/team")
    with pytest.raises(NotFound):
        await store.delete_group("groups/team")


async def test_listings_page_in_id_order_and_refuse_foreign_tokens(
    store: IdentityStore,
) -> None:
    ids = [f"c{i:02d}" for i in range(7)]
    for consumer_id in reversed(ids):
        await store.create_consumer(identity_pb2.Consumer(), consumer_id)
    await store.create_group(identity_pb2.Group(), "g1")

    page, token = await store.list_consumers(page_size=3)
    names = [c.name for c in page]
    while token:
        page, token = await store.list_consumers(page_size=3, page_token=token)
        names.extend(c.name for c in page)
    assert names == [f"consumers/{i}" for i in ids]

    _, consumer_token = await store.list_consumers(page_size=1)
    with pytest.raises(InvalidArgument):
        await store.list_groups(page_token=consumer_token)
    with pytest.raises(InvalidArgument):
        await store.list_consumers(page_token="garbage")
    with pytest.raises(InvalidArgument):
        await store.list_consumers(page_size=-1)
    groups, last = await store.list_groups()
    assert [g.name for g in groups] == ["groups/g1"] and last == ""


async def test_every_write_bumps_the_version(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    versions = [await store.version()]

    async def bumped() -> None:
        versions.append(await store.version())
        assert versions[-1] != versions[-2]

    await store.create_group(identity_pb2.Group(), "team")
    await bumped()
    await new_consumer("alice", "team")
    await bumped()
    issued = await store.create_key("consumers/alice")
    await bumped()
    await store.revoke_key(issued.api_key.name)
    await bumped()
    await store.update_group(identity_pb2.Group(name="groups/team", admin=True), ["admin"])
    await bumped()
    await store.delete_consumer("consumers/alice")
    await bumped()
    await store.get_group("groups/team")
    assert await store.version() == versions[-1]
