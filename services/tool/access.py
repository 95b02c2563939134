"""Who may use which tool, and who may change the registry: every tool RPC asks here.

- Authentication off (no principal): everything, as before authentication existed.
- Admins may use every tool, and only admins may register or delete one: a registered
  tool makes the gateway send HTTP requests where it says.
- Anyone else may use a tool when one of their groups allows it (`acl.allows_tool`) and
  the tool's `allowed_consumers` is empty or names them, as `consumers/alice` or `alice`.
- A call the Investigation service makes on a caller's behalf (admitted by the caller's
  `investigation` access, services/common/identity/gate.py) may use the read-only
  toolset tools, and only those: reading the cluster and the metrics is what an
  investigation is; any other tool still needs the groups' `allowed_tools`.
- A refusal never reveals whether the tool exists: the groups are asked before the tool
  is looked up, and a tool whose own list leaves the caller out is refused in the same
  words as one the groups forbid.
- Header values written literally in a definition are never shown (`shown_header`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.caller import current_caller
from services.common.errors import NotFound, PermissionDenied
from services.common.identity import acl
from services.common.identity.principal import Principal
from services.tool.entries import Entry, ToolsetEntry

_CONSUMERS = "consumers/"
REDACTED_HEADER = "[redacted]"
# A `${NAME}` or `${NAME:-default}` reference, as the executor expands them.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _named(principal: Principal, allowed_consumers: Sequence[str]) -> bool:
    short = principal.name.removeprefix(_CONSUMERS)
    return any(entry.strip() in (principal.name, short) for entry in allowed_consumers)


def _consumers_allow(principal: Principal, entry: Entry) -> bool:
    allowed = entry.public.allowed_consumers
    return not allowed or _named(principal, allowed)


def _denied(principal: Principal, tool_id: str) -> PermissionDenied:
    return PermissionDenied(f"tool {tool_id!r} is not allowed for {principal.name}")


def _is_toolset(entry: Entry) -> bool:
    return isinstance(entry, ToolsetEntry)


def _investigating(entry: Entry) -> bool:
    """A toolset tool asked for by the Investigation service for its caller."""
    return _is_toolset(entry) and current_caller().for_investigation


def may_use(principal: Principal | None, entry: Entry) -> bool:
    """Whether the caller may see and run `entry` (ListTools filters with this)."""
    if principal is None or acl.is_admin(principal) or _investigating(entry):
        return True
    return acl.allows_tool(principal, entry.tool_id) and _consumers_allow(principal, entry)


def usable_entry(
    principal: Principal | None, tool_id: str, lookup: Callable[[str], Entry]
) -> Entry:
    """The tool `lookup` finds for `tool_id`, once the caller may use it.

    Raises PermissionDenied before calling `lookup` when the caller's groups forbid the
    id, so an unknown and an existing forbidden tool are refused alike; whatever
    `lookup` raises (NotFound) reaches only callers the groups allow.
    """
    if principal is None or acl.is_admin(principal):
        return lookup(tool_id)
    if current_caller().for_investigation and not acl.allows_tool(principal, tool_id):
        try:
            entry = lookup(tool_id)
        except NotFound:
            raise _denied(principal, tool_id) from None
        if _is_toolset(entry):
            return entry
        raise _denied(principal, tool_id)
    if not acl.allows_tool(principal, tool_id):
        raise _denied(principal, tool_id)
    entry = lookup(tool_id)
    if not _consumers_allow(principal, entry):
        raise _denied(principal, tool_id)
    return entry


def require_registrar(principal: Principal | None) -> None:
    """CreateTool and DeleteTool: PermissionDenied unless the caller is an admin."""
    if principal is not None:
        acl.require_admin(principal)


def shown_header(value: str) -> str:
    """A configured header value as any caller may see it.

    `${NAME}` references are shown as written (the credential is in the environment, not
    in the value), a `${NAME:-default}` without its default, and a value with no
    reference at all (a credential pasted into the definition) not at all.
    """
    if not _REFERENCE.search(value):
        return REDACTED_HEADER if value else value
    return _REFERENCE.sub(
        lambda m: "${" + m.group(1) + (":-" + REDACTED_HEADER if m.group(2) else "") + "}",
        value,
    )


def shown(principal: Principal | None, entry: Entry) -> tool_pb2.Tool:
    """The tool as the caller may see it: who else may use it is for admins only, and
    literal header values for nobody (admins included: responses are logged and cached
    by clients, and the value is in the definition its author holds)."""
    visible = tool_pb2.Tool()
    visible.CopyFrom(entry.public)
    for name, value in entry.public.http.headers.items():
        visible.http.headers[name] = shown_header(value)
    if not (principal is None or acl.is_admin(principal)):
        del visible.allowed_consumers[:]
    return visible
