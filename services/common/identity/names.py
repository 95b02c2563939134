"""Resource names of consumers, groups and keys, and the ids inside them."""

from __future__ import annotations

import re

from services.common.errors import InvalidArgument

ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_CONSUMER = re.compile(r"^consumers/([^/]+)$")
_GROUP = re.compile(r"^groups/([^/]+)$")
_KEY = re.compile(r"^consumers/([^/]+)/keys/([^/]+)$")


def valid_id(resource_id: str) -> bool:
    return ID_PATTERN.fullmatch(resource_id) is not None


def consumer_name(consumer_id: str) -> str:
    return f"consumers/{consumer_id}"


def group_name(group_id: str) -> str:
    return f"groups/{group_id}"


def key_name(consumer_id: str, key_id: str) -> str:
    return f"consumers/{consumer_id}/keys/{key_id}"


def group_id_of(name: str) -> str | None:
    """The id in `groups/{id}`; None when `name` is not such a name."""
    match = _GROUP.fullmatch(name)
    return match.group(1) if match and valid_id(match.group(1)) else None


def parse_consumer(name: str, field: str = "name") -> str:
    """The id in `consumers/{id}`; INVALID_ARGUMENT on `field` otherwise."""
    match = _CONSUMER.fullmatch(name)
    if match is None or not valid_id(match.group(1)):
        raise InvalidArgument.for_field(field, "must be consumers/{consumer}")
    return match.group(1)


def parse_group(name: str, field: str = "name") -> str:
    group_id = group_id_of(name)
    if group_id is None:
        raise InvalidArgument.for_field(field, "must be groups/{group}")
    return group_id


def parse_key(name: str, field: str = "name") -> tuple[str, str]:
    """(consumer id, key id) of `consumers/{consumer}/keys/{key}`."""
    match = _KEY.fullmatch(name)
    if match is None or not (valid_id(match.group(1)) and valid_id(match.group(2))):
        raise InvalidArgument.for_field(field, "must be consumers/{consumer}/keys/{key}")
    return match.group(1), match.group(2)
