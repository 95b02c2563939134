"""Whose sessions the caller of the current RPC may use.

A session belongs to the consumer that created it (`Session.owner`). A non-admin
consumer sees only its own sessions; admins, and every caller while authentication is
off, see every session. Sessions created with authentication off have owner "", so once
it is on only admins see them. The caller comes from `services.common.caller`.
"""

from __future__ import annotations

from services.common.caller import current_principal
from services.common.errors import PermissionDenied
from services.common.identity.acl import is_admin


def current_owner() -> str:
    """The owner recorded on sessions the caller creates ("" while authentication is off)."""
    principal = current_principal()
    return "" if principal is None else principal.name


def sees_every_session() -> bool:
    principal = current_principal()
    return principal is None or is_admin(principal)


def required_owner() -> str | None:
    """The owner a session must have for the caller to use it; None: any owner will do."""
    return None if sees_every_session() else current_owner()


def listing_owner(requested: str) -> str:
    """The owner whose sessions ListSessions returns ("" for every session).

    Empty `requested` means the caller's own sessions, except for callers who see every
    session: for them it means every session. Raises PermissionDenied when a caller who
    sees only its own sessions asks for another owner's.
    """
    if sees_every_session():
        return requested
    own = current_owner()
    if requested and requested != own:
        raise PermissionDenied("listing another consumer's sessions needs the admin role")
    return own
