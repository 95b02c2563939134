"""The consumer, group and key RPCs of IdentityService through a real gRPC server and the
real Redis, on a clock the test moves: codes, field violations, durations, secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, field_mask_pb2
from google.rpc import error_details_pb2

from llmgw.identity.v1 import identity_pb2, identity_service_pb2
from llmgw.identity.v1 import identity_service_pb2_grpc as identity_grpc
from services.common.errors import RemoteError, find_detail
from services.common.identity.principal import Principal
from services.common.identity.store import IdentityStore, Refusal
from services.common.server import RunningServer, ServiceDefinition, create_server
from services.common.settings import ServiceSettings
from services.router.identity_admin import IdentityAdmin
from services.router.identity_service import NO_REDIS, SERVICE_NAME, IdentityServicer

START = 1_700_000_000.0
DEFAULT_OVERLAP = 600.0
IDENTITY_RPCS = {
    "CreateConsumer": identity_service_pb2.CreateConsumerRequest,
    "GetConsumer": identity_service_pb2.GetConsumerRequest,
    "ListConsumers": identity_service_pb2.ListConsumersRequest,
    "UpdateConsumer": identity_service_pb2.UpdateConsumerRequest,
    "DeleteConsumer": identity_service_pb2.DeleteConsumerRequest,
    "CreateGroup": identity_service_pb2.CreateGroupRequest,
    "GetGroup": identity_service_pb2.GetGroupRequest,
    "ListGroups": identity_service_pb2.ListGroupsRequest,
    "UpdateGroup": identity_service_pb2.UpdateGroupRequest,
    "DeleteGroup": identity_service_pb2.DeleteGroupRequest,
    "CreateApiKey": identity_service_pb2.CreateApiKeyRequest,
    "ListApiKeys": identity_service_pb2.ListApiKeysRequest,
    "RotateApiKey": identity_service_pb2.RotateApiKeyRequest,
    "RevokeApiKey": identity_service_pb2.RevokeApiKeyRequest,
}


class Clock:
    """Unix seconds that move only when told."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis(redis_client: aioredis.Redis) -> aioredis.Redis:
    return redis_client


@pytest.fixture
def store(redis: aioredis.Redis, clock: Clock) -> IdentityStore:
    return IdentityStore(redis, clock=clock)


async def _serve(identity: IdentityAdmin | None) -> RunningServer:
    servicer = IdentityServicer(identity)
    settings = ServiceSettings(service="router", port=0, metrics_port=0, access_log=False)
    return await create_server(
        settings,
        ServiceDefinition(
            register=lambda server: identity_grpc.add_IdentityServiceServicer_to_server(
                servicer, server
            ),
            service_names=[SERVICE_NAME],
        ),
    )


@pytest.fixture
async def admin(store: IdentityStore) -> AsyncIterator[identity_grpc.IdentityServiceStub]:
    running = await _serve(IdentityAdmin(store, default_overlap_seconds=DEFAULT_OVERLAP))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield identity_grpc.IdentityServiceStub(channel)
    await running.stop(0)


async def _error(call: Any) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """The code, message and field violations ({field: description}) of a failed call."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    status = RemoteError.from_rpc_error(caught.value).status
    bad = find_detail(status, error_details_pb2.BadRequest)
    fields = {v.field: v.description for v in bad.field_violations} if bad else {}
    return caught.value.code(), status.message, fields


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(value * 1e9))
    return duration


def _stamp(stamp: Any) -> float:
    return float(stamp.ToNanoseconds()) / 1e9


async def _group(admin: identity_grpc.IdentityServiceStub, group_id: str) -> identity_pb2.Group:
    request = identity_service_pb2.CreateGroupRequest(
        group=identity_pb2.Group(allowed_models=["*"])
    )
    request.group_id = group_id
    return (await admin.CreateGroup(request)).group


async def _consumer(
    admin: identity_grpc.IdentityServiceStub, consumer_id: str, *groups: str
) -> identity_pb2.Consumer:
    request = identity_service_pb2.CreateConsumerRequest(
        consumer=identity_pb2.Consumer(display_name=consumer_id.title(), groups=list(groups)),
        consumer_id=consumer_id,
    )
    return (await admin.CreateConsumer(request)).consumer


async def _key(
    admin: identity_grpc.IdentityServiceStub, consumer_id: str
) -> identity_service_pb2.CreateApiKeyResponse:
    return await admin.CreateApiKey(
        identity_service_pb2.CreateApiKeyRequest(parent=f"consumers/{consumer_id}")
    )


# -- consumers and groups -------------------------------------------------------------


async def test_a_consumer_is_created_read_listed_updated_and_deleted(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    await _group(admin, "staff")
    created = await _consumer(admin, "alice", "groups/staff")
    await _consumer(admin, "bob")
    assert created.name == "consumers/alice"
    assert list(created.groups) == ["groups/staff"]
    assert _stamp(created.create_time) == START

    got = await admin.GetConsumer(identity_service_pb2.GetConsumerRequest(name="consumers/alice"))
    assert got.consumer == created

    first = await admin.ListConsumers(identity_service_pb2.ListConsumersRequest(page_size=1))
    assert [c.name for c in first.consumers] == ["consumers/alice"]
    assert first.next_page_token
    second = await admin.ListConsumers(
        identity_service_pb2.ListConsumersRequest(page_size=1, page_token=first.next_page_token)
    )
    assert [c.name for c in second.consumers] == ["consumers/bob"]
    assert second.next_page_token == ""

    # Only the masked field changes: the groups stay although the request names none.
    updated = await admin.UpdateConsumer(
        identity_service_pb2.UpdateConsumerRequest(
            consumer=identity_pb2.Consumer(name="consumers/alice", display_name="Alice A."),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
    )
    assert updated.consumer.display_name == "Alice A."
    assert list(updated.consumer.groups) == ["groups/staff"]

    await admin.DeleteConsumer(identity_service_pb2.DeleteConsumerRequest(name="consumers/alice"))
    code, _, _ = await _error(
        admin.GetConsumer(identity_service_pb2.GetConsumerRequest(name="consumers/alice"))
    )
    assert code is grpc.StatusCode.NOT_FOUND
    code, _, _ = await _error(
        admin.DeleteConsumer(identity_service_pb2.DeleteConsumerRequest(name="consumers/alice"))
    )
    assert code is grpc.StatusCode.NOT_FOUND


async def test_a_group_is_created_read_listed_updated_and_deleted(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    created = await _group(admin, "staff")
    await _group(admin, "ops")
    assert created.name == "groups/staff"

    got = await admin.GetGroup(identity_service_pb2.GetGroupRequest(name="groups/staff"))
    assert got.group == created
    listed = await admin.ListGroups(identity_service_pb2.ListGroupsRequest())
    assert [g.name for g in listed.groups] == ["groups/ops", "groups/staff"]
    assert listed.next_page_token == ""

    # No mask: only the populated field changes; allowed_models is kept.
    updated = await admin.UpdateGroup(
        identity_service_pb2.UpdateGroupRequest(
            group=identity_pb2.Group(name="groups/staff", admin=True)
        )
    )
    assert updated.group.admin is True
    assert list(updated.group.allowed_models) == ["*"]
    # `*` replaces every mutable field: allowed_models is cleared, admin reset.
    updated = await admin.UpdateGroup(
        identity_service_pb2.UpdateGroupRequest(
            group=identity_pb2.Group(name="groups/staff", display_name="S"),
            update_mask=field_mask_pb2.FieldMask(paths=["*"]),
        )
    )
    assert (updated.group.display_name, updated.group.admin) == ("S", False)
    assert list(updated.group.allowed_models) == []

    await admin.DeleteGroup(identity_service_pb2.DeleteGroupRequest(name="groups/staff"))
    code, _, _ = await _error(
        admin.GetGroup(identity_service_pb2.GetGroupRequest(name="groups/staff"))
    )
    assert code is grpc.StatusCode.NOT_FOUND


async def test_an_update_without_a_mask_changes_only_what_it_populates(
    admin: identity_grpc.IdentityServiceStub, clock: Clock
) -> None:
    # The hole this closes: PATCH {"display_name": "x"} re-enabled a disabled consumer and
    # cleared its allow-list, limits and budget.
    spec = identity_pb2.Consumer(display_name="Alice", disabled=True, ip_allowlist=["10.0.0.0/8"])
    spec.limits.add(
        unit=identity_pb2.RateLimit.UNIT_REQUESTS,
        window=identity_pb2.RateLimit.WINDOW_MINUTE,
        limit=10,
    )
    spec.budget.daily_limit = 2.5
    created = (
        await admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(consumer=spec, consumer_id="alice")
        )
    ).consumer
    clock.now = START + 1
    updated = (
        await admin.UpdateConsumer(
            identity_service_pb2.UpdateConsumerRequest(
                consumer=identity_pb2.Consumer(name="consumers/alice", display_name="x")
            )
        )
    ).consumer
    assert updated.display_name == "x"
    assert updated.disabled is True
    assert list(updated.ip_allowlist) == ["10.0.0.0/8"]
    assert list(updated.limits) == list(created.limits)
    assert updated.budget.daily_limit == 2.5
    # Re-enabling takes the field in the mask.
    enabled = (
        await admin.UpdateConsumer(
            identity_service_pb2.UpdateConsumerRequest(
                consumer=identity_pb2.Consumer(name="consumers/alice"),
                update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
            )
        )
    ).consumer
    assert enabled.disabled is False and enabled.budget.daily_limit == 2.5


async def test_an_update_with_a_stale_etag_is_aborted(
    admin: identity_grpc.IdentityServiceStub, clock: Clock
) -> None:
    read = await _consumer(admin, "alice")
    assert read.etag
    got = await admin.GetConsumer(identity_service_pb2.GetConsumerRequest(name=read.name))
    assert got.consumer.etag == read.etag
    clock.now = START + 1
    changed = await admin.UpdateConsumer(
        identity_service_pb2.UpdateConsumerRequest(
            consumer=identity_pb2.Consumer(name=read.name, display_name="B", etag=read.etag)
        )
    )
    assert changed.consumer.etag not in ("", read.etag)
    code, message, _ = await _error(
        admin.UpdateConsumer(
            identity_service_pb2.UpdateConsumerRequest(
                consumer=identity_pb2.Consumer(name=read.name, display_name="C", etag=read.etag)
            )
        )
    )
    assert code is grpc.StatusCode.ABORTED and "consumers/alice" in message
    current = await admin.GetConsumer(identity_service_pb2.GetConsumerRequest(name=read.name))
    assert current.consumer.display_name == "B"
    # Groups carry etags the same way; listing shows them too.
    group = await _group(admin, "staff")
    listed = await admin.ListGroups(identity_service_pb2.ListGroupsRequest())
    assert [g.etag for g in listed.groups] == [group.etag]
    await admin.UpdateGroup(
        identity_service_pb2.UpdateGroupRequest(
            group=identity_pb2.Group(name=group.name, admin=True, etag=group.etag)
        )
    )
    code, _, _ = await _error(
        admin.UpdateGroup(
            identity_service_pb2.UpdateGroupRequest(
                group=identity_pb2.Group(name=group.name, admin=False, etag=group.etag)
            )
        )
    )
    assert code is grpc.StatusCode.ABORTED


async def test_an_update_that_changes_nothing_writes_nothing(
    admin: identity_grpc.IdentityServiceStub, clock: Clock
) -> None:
    read = await _consumer(admin, "alice")
    clock.now = START + 60
    same = await admin.UpdateConsumer(
        identity_service_pb2.UpdateConsumerRequest(consumer=identity_pb2.Consumer(name=read.name))
    )
    assert same.consumer == read


async def test_creating_an_existing_consumer_or_group_is_already_exists(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    await _group(admin, "staff")
    await _consumer(admin, "alice")
    code, message, _ = await _error(_consumer(admin, "alice"))
    assert code is grpc.StatusCode.ALREADY_EXISTS
    assert "consumers/alice" in message
    code, _, _ = await _error(_group(admin, "staff"))
    assert code is grpc.StatusCode.ALREADY_EXISTS


async def test_bad_input_is_invalid_argument_naming_every_field(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    code, _, fields = await _error(
        admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(
                consumer=identity_pb2.Consumer(groups=["staff"], ip_allowlist=["not-an-ip"]),
                consumer_id="Alice",
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(fields) == {"consumer_id", "consumer.groups[0]", "consumer.ip_allowlist[0]"}

    code, _, fields = await _error(_consumer(admin, "alice", "groups/missing"))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "does not exist" in fields["consumer.groups[0]"]

    await _consumer(admin, "alice")
    code, _, fields = await _error(
        admin.UpdateConsumer(
            identity_service_pb2.UpdateConsumerRequest(
                consumer=identity_pb2.Consumer(name="consumers/alice"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(fields) == {"update_mask.paths[0]"}

    code, _, fields = await _error(
        admin.GetConsumer(identity_service_pb2.GetConsumerRequest(name="alice"))
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"name"})
    code, _, fields = await _error(
        admin.ListGroups(identity_service_pb2.ListGroupsRequest(page_token="x"))
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"page_token"})


async def test_a_group_with_members_cannot_be_deleted(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    await _group(admin, "staff")
    await _consumer(admin, "alice", "groups/staff")
    code, message, _ = await _error(
        admin.DeleteGroup(identity_service_pb2.DeleteGroupRequest(name="groups/staff"))
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "1 member" in message

    await admin.UpdateConsumer(
        identity_service_pb2.UpdateConsumerRequest(
            consumer=identity_pb2.Consumer(name="consumers/alice"),
            update_mask=field_mask_pb2.FieldMask(paths=["groups"]),
        )
    )
    await admin.DeleteGroup(identity_service_pb2.DeleteGroupRequest(name="groups/staff"))
    listed = await admin.ListGroups(identity_service_pb2.ListGroupsRequest())
    assert list(listed.groups) == []


# -- keys -----------------------------------------------------------------------------


async def test_the_secret_is_returned_once_and_never_listed(
    admin: identity_grpc.IdentityServiceStub, store: IdentityStore
) -> None:
    await _consumer(admin, "alice")
    issued = await _key(admin, "alice")
    key = issued.api_key
    assert key.name.startswith("consumers/alice/keys/")
    assert key.active and not key.HasField("expire_time")
    assert issued.secret.startswith(key.prefix + "_")
    principal = await store.verify(issued.secret)
    assert isinstance(principal, Principal) and principal.key_name == key.name

    listed = await admin.ListApiKeys(
        identity_service_pb2.ListApiKeysRequest(parent="consumers/alice")
    )
    assert list(listed.api_keys) == [key]
    secret_part = issued.secret.removeprefix(key.prefix + "_")
    assert secret_part.encode() not in listed.SerializeToString()


async def test_a_key_ttl_sets_its_expiry(
    admin: identity_grpc.IdentityServiceStub, store: IdentityStore, clock: Clock
) -> None:
    await _consumer(admin, "alice")
    issued = await admin.CreateApiKey(
        identity_service_pb2.CreateApiKeyRequest(parent="consumers/alice", ttl=_seconds(60.5))
    )
    assert _stamp(issued.api_key.expire_time) == START + 60.5
    clock.now = START + 61
    assert await store.verify(issued.secret) is Refusal.EXPIRED
    listed = await admin.ListApiKeys(
        identity_service_pb2.ListApiKeysRequest(parent="consumers/alice")
    )
    assert [k.active for k in listed.api_keys] == [False]


async def test_rotation_keeps_the_old_key_for_the_overlap(
    admin: identity_grpc.IdentityServiceStub, store: IdentityStore, clock: Clock
) -> None:
    await _consumer(admin, "alice")
    old = await _key(admin, "alice")
    rotated = await admin.RotateApiKey(
        identity_service_pb2.RotateApiKeyRequest(
            name=old.api_key.name, overlap=_seconds(90), ttl=_seconds(3600)
        )
    )
    assert rotated.previous_api_key.name == old.api_key.name
    assert _stamp(rotated.previous_api_key.expire_time) == START + 90
    assert rotated.api_key.name != old.api_key.name
    assert _stamp(rotated.api_key.expire_time) == START + 3600
    assert rotated.secret and rotated.secret != old.secret
    assert isinstance(await store.verify(old.secret), Principal)

    clock.now = START + 90
    assert await store.verify(old.secret) is Refusal.EXPIRED
    assert isinstance(await store.verify(rotated.secret), Principal)
    listed = await admin.ListApiKeys(
        identity_service_pb2.ListApiKeysRequest(parent="consumers/alice")
    )
    assert {k.name: k.active for k in listed.api_keys} == {
        old.api_key.name: False,
        rotated.api_key.name: True,
    }


@pytest.mark.parametrize("overlap", [None, 0.0], ids=["missing", "zero"])
async def test_rotation_without_an_overlap_uses_the_default(
    admin: identity_grpc.IdentityServiceStub, overlap: float | None
) -> None:
    await _consumer(admin, "alice")
    old = await _key(admin, "alice")
    request = identity_service_pb2.RotateApiKeyRequest(name=old.api_key.name)
    if overlap is not None:
        request.overlap.CopyFrom(_seconds(overlap))
    rotated = await admin.RotateApiKey(request)
    assert _stamp(rotated.previous_api_key.expire_time) == START + DEFAULT_OVERLAP
    assert not rotated.api_key.HasField("expire_time")


async def test_bad_durations_are_invalid_argument_on_their_fields(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    await _consumer(admin, "alice")
    old = await _key(admin, "alice")
    code, _, fields = await _error(
        admin.RotateApiKey(
            identity_service_pb2.RotateApiKeyRequest(
                name=old.api_key.name, overlap=_seconds(-1), ttl=_seconds(-0.5)
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert fields == {"overlap": "must not be negative", "ttl": "must not be negative"}

    code, _, fields = await _error(
        admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(
                parent="consumers/alice", ttl=duration_pb2.Duration(seconds=1, nanos=-1)
            )
        )
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, {"ttl": "is not a valid duration"})
    code, _, fields = await _error(
        admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent="consumers/alice", ttl=_seconds(0))
        )
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"ttl"})

    listed = await admin.ListApiKeys(
        identity_service_pb2.ListApiKeysRequest(parent="consumers/alice")
    )
    assert [k.name for k in listed.api_keys] == [old.api_key.name]  # nothing was issued


async def test_revoke_ends_a_key_at_once_and_is_idempotent(
    admin: identity_grpc.IdentityServiceStub, store: IdentityStore, clock: Clock
) -> None:
    await _consumer(admin, "alice")
    issued = await _key(admin, "alice")
    revoked = await admin.RevokeApiKey(
        identity_service_pb2.RevokeApiKeyRequest(name=issued.api_key.name)
    )
    assert revoked.api_key.active is False
    assert _stamp(revoked.api_key.revoke_time) == START
    assert await store.verify(issued.secret) is Refusal.REVOKED

    clock.now = START + 5
    again = await admin.RevokeApiKey(
        identity_service_pb2.RevokeApiKeyRequest(name=issued.api_key.name)
    )
    assert _stamp(again.api_key.revoke_time) == START
    code, message, _ = await _error(
        admin.RotateApiKey(identity_service_pb2.RotateApiKeyRequest(name=issued.api_key.name))
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "revoked" in message


async def test_keys_of_unknown_consumers_or_keys_are_not_found(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    await _consumer(admin, "alice")
    issued = await _key(admin, "alice")
    await _consumer(admin, "bob")
    bobs_view = issued.api_key.name.replace("consumers/alice/", "consumers/bob/")
    calls = [
        admin.CreateApiKey(identity_service_pb2.CreateApiKeyRequest(parent="consumers/ghost")),
        admin.ListApiKeys(identity_service_pb2.ListApiKeysRequest(parent="consumers/ghost")),
        admin.RevokeApiKey(
            identity_service_pb2.RevokeApiKeyRequest(name="consumers/alice/keys/nope")
        ),
        admin.RotateApiKey(identity_service_pb2.RotateApiKeyRequest(name=bobs_view)),
    ]
    for call in calls:
        code, _, _ = await _error(call)
        assert code is grpc.StatusCode.NOT_FOUND
    code, _, fields = await _error(
        admin.CreateApiKey(identity_service_pb2.CreateApiKeyRequest(parent="alice"))
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"parent"})


async def test_deleting_a_consumer_ends_its_keys(
    admin: identity_grpc.IdentityServiceStub, store: IdentityStore
) -> None:
    await _consumer(admin, "alice")
    issued = await _key(admin, "alice")
    await admin.DeleteConsumer(identity_service_pb2.DeleteConsumerRequest(name="consumers/alice"))
    assert await store.verify(issued.secret) is Refusal.UNKNOWN


# -- without Redis --------------------------------------------------------------------


async def test_without_redis_every_identity_rpc_is_failed_precondition() -> None:
    running = await _serve(None)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = identity_grpc.IdentityServiceStub(channel)
            for rpc, request in IDENTITY_RPCS.items():
                code, message, _ = await _error(getattr(stub, rpc)(request()))
                assert (rpc, code, message) == (
                    rpc,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    NO_REDIS,
                )
    finally:
        await running.stop(0)


def test_every_identity_rpc_of_the_proto_is_covered() -> None:
    service = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"]
    assert {m.name for m in service.methods} == set(IDENTITY_RPCS)


def test_the_default_overlap_must_be_positive() -> None:
    never_connected = IdentityStore(aioredis.Redis())
    with pytest.raises(ValueError, match="default_overlap_seconds"):
        IdentityAdmin(never_connected, default_overlap_seconds=0)


# -- hostile input --------------------------------------------------------------------


async def test_an_unknown_limit_unit_or_window_is_refused(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    limits = [identity_pb2.RateLimit(unit=99, window=99, limit=10)]
    code, _, fields = await _error(
        admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(
                consumer=identity_pb2.Consumer(limits=limits), consumer_id="alice"
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(fields) == {"consumer.limits[0].unit", "consumer.limits[0].window"}
    assert "99 is not a Unit" in fields["consumer.limits[0].unit"]
    code, _, fields = await _error(
        admin.CreateGroup(
            identity_service_pb2.CreateGroupRequest(
                group=identity_pb2.Group(limits=limits), group_id="team"
            )
        )
    )
    assert set(fields) == {"group.limits[0].unit", "group.limits[0].window"}


async def test_key_durations_past_ten_years_are_refused(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    await _consumer(admin, "alice")
    huge = duration_pb2.Duration(seconds=300_000_000_000)
    code, _, fields = await _error(
        admin.CreateApiKey(
            identity_service_pb2.CreateApiKeyRequest(parent="consumers/alice", ttl=huge)
        )
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"ttl"})
    old = await _key(admin, "alice")
    code, _, fields = await _error(
        admin.RotateApiKey(
            identity_service_pb2.RotateApiKeyRequest(name=old.api_key.name, overlap=huge, ttl=huge)
        )
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"overlap", "ttl"})
    ten_years = await admin.CreateApiKey(
        identity_service_pb2.CreateApiKeyRequest(
            parent="consumers/alice", ttl=_seconds(10 * 365 * 86_400)
        )
    )
    assert ten_years.api_key.expire_time.seconds > START


async def test_display_names_lists_budgets_and_request_ids_are_bounded(
    admin: identity_grpc.IdentityServiceStub,
) -> None:
    consumer = identity_pb2.Consumer(
        display_name="x" * 100_000,
        groups=[f"groups/g{i}" for i in range(100)],
        ip_allowlist=["1" * 100_000, "not-an-ip"],
        budget=identity_pb2.Budget(daily_limit=float("inf"), monthly_limit=float("nan")),
    )
    code, message, fields = await _error(
        admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(
                consumer=consumer, consumer_id="alice", request_id="r" * 10_000
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(fields) == {"request_id"}
    code, message, fields = await _error(
        admin.CreateConsumer(
            identity_service_pb2.CreateConsumerRequest(consumer=consumer, consumer_id="alice")
        )
    )
    assert set(fields) >= {
        "consumer.display_name",
        "consumer.groups",
        "consumer.ip_allowlist[0]",
        "consumer.ip_allowlist[1]",
        "consumer.budget.daily_limit",
        "consumer.budget.monthly_limit",
    }
    assert len(message) <= 512 and all(len(d) <= 256 for d in fields.values())
    code, _, fields = await _error(
        admin.CreateGroup(
            identity_service_pb2.CreateGroupRequest(
                group=identity_pb2.Group(allowed_models=["m" * 10_000]), group_id="team"
            )
        )
    )
    assert set(fields) == {"group.allowed_models[0]"}
