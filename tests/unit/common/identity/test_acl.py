"""ACL checks: union over groups, `*` and prefixes, services, admin, IP allow-lists."""

from __future__ import annotations

import pytest

from llmgw.identity.v1 import identity_pb2
from services.common.errors import PermissionDenied
from services.common.identity import acl
from services.common.identity.principal import Principal


def principal(*groups: identity_pb2.Group, ip_allowlist: tuple[str, ...] = ()) -> Principal:
    consumer = identity_pb2.Consumer(name="consumers/alice", ip_allowlist=list(ip_allowlist))
    return Principal(consumer, tuple(groups), "consumers/alice/keys/k1")


def test_models_are_the_union_of_the_groups_and_empty_grants_nothing() -> None:
    chat = identity_pb2.Group(name="groups/chat", allowed_models=["gpt-4o-mini", "claude-*"])
    local = identity_pb2.Group(name="groups/local", allowed_models=["llama"])
    alice = principal(chat, local)
    assert acl.allows_model(alice, "gpt-4o-mini")
    assert acl.allows_model(alice, "claude-3-5-haiku")
    assert acl.allows_model(alice, "llama")
    assert not acl.allows_model(alice, "gpt-4o")
    assert not acl.allows_model(alice, "claude")  # `claude-*` needs the dash
    assert not acl.allows_model(principal(identity_pb2.Group()), "llama")
    assert not acl.allows_model(principal(), "llama")
    assert acl.allows_model(principal(identity_pb2.Group(allowed_models=["*"])), "anything")


def test_a_model_and_its_provider_must_be_allowed_by_the_same_group() -> None:
    openai_only = identity_pb2.Group(allowed_models=["gpt-4o"], allowed_providers=["openai"])
    any_provider_llama = identity_pb2.Group(allowed_models=["llama"])
    alice = principal(openai_only, any_provider_llama)
    assert acl.allows_model(alice, "gpt-4o", "openai")
    assert not acl.allows_model(alice, "gpt-4o", "azure")
    assert acl.allows_model(alice, "gpt-4o")
    assert acl.allows_model(alice, "llama", "ollama")


def test_tools_services_and_admin() -> None:
    tools = identity_pb2.Group(allowed_tools=["search", "weather"], allowed_services=["tool"])
    everything = identity_pb2.Group(allowed_tools=["*"], allowed_services=["*"])
    admin = identity_pb2.Group(admin=True)
    alice = principal(tools)
    assert acl.allows_tool(alice, "search")
    assert not acl.allows_tool(alice, "shell")
    assert acl.allows_tool(principal(everything), "shell")
    assert acl.allows_service(alice, "tool")
    assert acl.allows_service(alice, "router")  # open: models decide
    assert not acl.allows_service(alice, "session")
    assert not acl.allows_service(alice, "admin")
    assert acl.allows_service(principal(everything), "investigation")
    assert acl.allows_service(principal(admin), "admin")
    assert acl.is_admin(principal(tools, admin))
    assert not acl.is_admin(principal(tools, everything))


def test_refusals_name_what_was_refused_and_only_the_caller() -> None:
    alice = principal(identity_pb2.Group(allowed_models=["llama"]))
    with pytest.raises(PermissionDenied) as model:
        acl.require_model(alice, "gpt-4o")
    assert model.value.message == "model 'gpt-4o' is not allowed for consumers/alice"
    with pytest.raises(PermissionDenied) as tool:
        acl.require_tool(alice, "shell")
    assert tool.value.message == "tool 'shell' is not allowed for consumers/alice"
    with pytest.raises(PermissionDenied) as service:
        acl.require_service(alice, "session")
    assert "session" in service.value.message
    with pytest.raises(PermissionDenied):
        acl.require_admin(alice)
    with pytest.raises(PermissionDenied) as ip:
        acl.require_ip(principal(ip_allowlist=("10.0.0.0/8",)), "192.0.2.1")
    assert ip.value.message == "calls from 192.0.2.1 are not allowed for consumers/alice"
    acl.require_model(alice, "llama")


@pytest.mark.parametrize(
    ("allowlist", "address", "allowed"),
    [
        ((), "203.0.113.9", True),
        (("10.0.0.0/8",), "10.1.2.3", True),
        (("10.0.0.0/8",), "11.0.0.1", False),
        (("192.0.2.7",), "192.0.2.7", True),
        (("192.0.2.7",), "192.0.2.8", False),
        (("2001:db8::/32",), "2001:db8::1", True),
        (("2001:db8::/32",), "2001:db9::1", False),
        (("::1",), "::1", True),
        (("10.0.0.0/8",), "::ffff:10.0.0.1", True),
        (("10.0.0.0/8",), "2001:db8::1", False),
        (("2001:db8::/32",), "10.0.0.1", False),
        (("10.0.0.0/8",), "not-an-address", False),
        (("10.0.0.0/8", "2001:db8::/32"), "2001:db8::5", True),
    ],
)
def test_consumer_ip_allowlist(allowlist: tuple[str, ...], address: str, allowed: bool) -> None:
    assert acl.allows_ip(principal(ip_allowlist=allowlist), address) is allowed


def test_every_restricting_list_must_admit_the_address() -> None:
    office = identity_pb2.Group(ip_allowlist=["10.0.0.0/8"])
    unrestricted = identity_pb2.Group()
    assert acl.allows_ip(principal(office, unrestricted), "10.0.0.1")
    assert not acl.allows_ip(principal(office, unrestricted), "192.0.2.1")
    narrow = principal(office, ip_allowlist=("10.9.0.0/16",))
    assert acl.allows_ip(narrow, "10.9.1.1")
    assert not acl.allows_ip(narrow, "10.8.1.1")


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.1:5000", "10.0.0.1"),
        ("ipv6:[::1]:5000", "::1"),
        ("ipv6:[2001:db8::1]:443", "2001:db8::1"),
        ("unix:/tmp/socket", None),
        ("", None),
    ],
)
def test_peer_address(peer: str, address: str | None) -> None:
    assert acl.peer_address(peer) == address
