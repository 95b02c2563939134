"""Whose owned resources (sessions, investigations) the caller of the current RPC may use.

Such a resource belongs to the consumer that created it (`owner`). A non-admin consumer
sees only its own; admins, and every caller while authentication is off, see them all.
Resources created with authentication off have owner "", so once it is on only admins
see them. The caller comes from `services.common.caller`.
"""

from __future__ import annotations

from services.common.caller import current_principal
from services.common.errors import PermissionDenied
from services.common.identity.acl import is_admin


def current_owner() -> str:
    """The owner recorded on what the caller creates ("" while authentication is off)."""
    principal = current_principal()
    return "" if principal is None else principal.name


def sees_everything() -> bool:
    principal = current_principal()
    return principal is None or is_admin(principal)


def required_owner() -> str | None:
    """The owner a resource must have for the caller to use it; None: any owner will do."""
    return None if sees_everything() else current_owner()


def listing_owner(requested: str, what: str = "sessions") -> str:
    """The owner whose resources a List returns ("" for everyone's).

    Empty `requested` means the caller's own, except for callers who see everything:
    for them it means everyone's. Raises PermissionDenied when a caller who
    sees only its own sessions asks for another owner's.
    """
    if sees_everything():
        return requested
    own = current_owner()
    if requested and requested != own:
        raise PermissionDenied(f"listing another consumer's {what} needs the admin role")
    return own
