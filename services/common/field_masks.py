"""Update masks (AIP-134) and etags (AIP-154), the same rules for every resource.

An Update names the fields it changes in `update_mask`. With no mask it changes exactly
the fields the request populates: a scalar that is not its default, a message field that
is set, a list or map that is not empty. So `PATCH {"display_name": "x"}` changes the
display name and nothing else; clearing a field (back to its default) needs the field
in the mask. The mask `*` replaces every mutable field, defaults included.

An etag is a strong validator of one version of a resource: it changes with every
write. An Update that carries an etag other than the current one is ABORTED, so a
read-modify-write cycle cannot silently overwrite a change it did not see.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from services.common.errors import Aborted
from services.common.text_checks import shown
from services.common.validation import Violations

WILDCARD = "*"


def populated(resource: Message, field: str) -> bool:
    """Whether the request sets `field` (the AIP-134 rule for an empty mask)."""
    descriptor = resource.DESCRIPTOR.fields_by_name[field]
    if descriptor.is_repeated:
        return len(getattr(resource, field)) > 0
    if descriptor.has_presence:
        return resource.HasField(field)
    return bool(getattr(resource, field) != descriptor.default_value)


def update_paths(
    violations: Violations,
    resource: Message,
    mask: Sequence[str],
    mutable: Sequence[str],
    field: str = "update_mask.paths",
) -> list[str]:
    """The fields an Update changes, in `mutable`'s order.

    `mask` empty: the mutable fields `resource` populates; `*` alone: every mutable field;
    otherwise the named fields, each of which must be mutable (a violation on
    `field[i]` otherwise).
    """
    if not mask:
        return [name for name in mutable if populated(resource, name)]
    if WILDCARD in mask:
        if len(mask) > 1:
            violations.add(field, f"'{WILDCARD}' must be the only path when it is used")
        return list(mutable)
    for i, path in enumerate(mask):
        if path not in mutable:
            violations.add(
                f"{field}[{i}]",
                f"{shown(path)} is not an updatable field "
                f"(updatable: {', '.join(mutable)}, or '{WILDCARD}')",
            )
    named = set(mask)
    return [name for name in mutable if name in named]


def apply_paths(source: Message, target: Message, paths: Sequence[str]) -> None:
    """Copies `paths` of `source` onto `target`, replacing lists, maps and messages whole
    (a field unset in `source` is cleared in `target`)."""
    field_mask_pb2.FieldMask(paths=list(paths)).MergeMessage(
        source, target, replace_message_field=True, replace_repeated_field=True
    )


def content_etag(resource: Message) -> str:
    """An etag over the resource's content (its `etag` field left out): equal for equal
    content, different after any change of a stored field (the update time included)."""
    copy = type(resource)()
    copy.CopyFrom(resource)
    if "etag" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("etag")
    digest = hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def require_etag(given: str, current: str, name: str) -> None:
    """ABORTED unless `given` is empty or the resource's current etag."""
    if given and given != current:
        raise stale(name)


def stale(name: str) -> Aborted:
    """The error of an update whose etag is not the resource's current one."""
    return Aborted(
        f"{name} was changed since the etag was read: read it again and retry with its current etag"
    )
