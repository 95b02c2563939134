"""What a principal may do: pure checks over its consumer and groups.

Decisions (documented in the README's "Keys and access control"):

- Permissions are the union over the consumer's groups: allowed if any group allows. A
  consumer in no group may do nothing but authenticate.
- An empty `allowed_models`, `allowed_tools` or `allowed_services` grants nothing; `*`
  grants everything, `prefix*` every name with that prefix. Being explicit is safer than
  "empty means all": a group created without a list cannot widen access by accident.
- A model is allowed when one group allows both the model and the provider serving it
  (that group's `allowed_providers` empty: any provider). Mixing one group's models with
  another's providers would grant combinations no group grants.
- `router` (chat, model listing) is open to every authenticated consumer: what it reaches
  is decided per model by `allows_model`. `admin` is open to admins (and to groups that
  list it, for GetUsage on oneself; every other admin RPC also needs `is_admin`).
- IP allow-lists restrict, they never grant: the address must be in the consumer's list
  and in the list of every group that has one (an empty list admits any address).
- Messages name what was refused and the caller's own consumer, nothing else.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from services.common.errors import PermissionDenied
from services.common.identity.principal import Principal

OPEN_SERVICES = frozenset({"router"})
ADMIN_SERVICE = "admin"
TOOL_SERVICE = "tool"
INVESTIGATION_SERVICE = "investigation"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def matches(patterns: Iterable[str], value: str) -> bool:
    """Whether `value` is named by one of `patterns` (exact, `*`, or `prefix*`)."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if value.startswith(pattern[:-1]):
                return True
        elif pattern == value:
            return True
    return False


def is_admin(principal: Principal) -> bool:
    return any(group.admin for group in principal.groups)


def allows_model(principal: Principal, model: str, provider: str = "") -> bool:
    """`provider` "" checks the model alone (e.g. to list it): any provider will do."""
    return any(
        matches(group.allowed_models, model)
        and (not provider or not group.allowed_providers or provider in group.allowed_providers)
        for group in principal.groups
    )


def allows_tool(principal: Principal, tool_id: str) -> bool:
    return any(matches(group.allowed_tools, tool_id) for group in principal.groups)


def allows_service(principal: Principal, service: str) -> bool:
    """`service`: router, session, tool, investigation or admin."""
    if service in OPEN_SERVICES:
        return True
    if service == ADMIN_SERVICE and is_admin(principal):
        return True
    return any(matches(group.allowed_services, service) for group in principal.groups)


def allows_ip(principal: Principal, address: str) -> bool:
    """Whether `address` (IPv4 or IPv6, without port) passes every allow-list.

    An unparsable address passes only when no list restricts anything.
    """
    lists = [principal.consumer.ip_allowlist, *(g.ip_allowlist for g in principal.groups)]
    restricting = [entries for entries in lists if entries]
    if not restricting:
        return True
    ip = parse_address(address)
    if ip is None:
        return False
    return all(any(_in(ip, entry) for entry in entries) for entries in restricting)


def parse_address(address: str) -> IPAddress | None:
    """An address without port; IPv4-mapped IPv6 (`::ffff:10.0.0.1`) becomes IPv4."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def peer_address(peer: str) -> str | None:
    """The address in a gRPC peer string (`ipv4:10.0.0.1:5000`, `ipv6:[::1]:5000`)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0] or None
    if kind == "ipv6":
        host = rest.rsplit(":", 1)[0] if rest.startswith("[") else rest
        return host.strip("[]") or None
    return None


def require_model(principal: Principal, model: str, provider: str = "") -> None:
    if not allows_model(principal, model, provider):
        raise PermissionDenied(f"model {model!r} is not allowed for {principal.name}")


def require_tool(principal: Principal, tool_id: str) -> None:
    if not allows_tool(principal, tool_id):
        raise PermissionDenied(f"tool {tool_id!r} is not allowed for {principal.name}")


def require_service(principal: Principal, service: str) -> None:
    if not allows_service(principal, service):
        raise PermissionDenied(f"the {service} service is not allowed for {principal.name}")


def require_admin(principal: Principal) -> None:
    if not is_admin(principal):
        raise PermissionDenied(f"this operation needs the admin role, which {principal.name} lacks")


def require_ip(principal: Principal, address: str) -> None:
    if not allows_ip(principal, address):
        raise PermissionDenied(f"calls from {address} are not allowed for {principal.name}")


@functools.lru_cache(maxsize=4096)
def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def _in(ip: IPAddress, entry: str) -> bool:
    network = _network(entry)
    # ipaddress answers False (never raises) across IPv4/IPv6.
    return network is not None and ip in network
